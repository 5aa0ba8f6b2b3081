"""Fixtures for tests/transfer_dest (Modal volumes, GCS, Fly volumes). See fixtures.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from transfer_dest.fixtures import (  # noqa: F401
    FlyWorld,
    dst_gcs,
    dst_modal,
    fly_world,
    gcs_emu,
    modal_fake,
    src_fly,
    src_gcs,
)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def env(state: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("AWS_", "RUNPOD_", "HF_", "MODAL_", "STORAGE_EMULATOR", "GOOGLE_", "FLY_"))}
    e.update(FLYMIGRATE_STATE_DIR=str(state), FLYMIGRATE_BACKOFF_BASE="0.05", PYTHONPATH=str(ROOT))
    return e


def run_cli(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flymigrate", *args], env=env, cwd=str(ROOT), capture_output=True,
                          text=True, timeout=timeout)
