"""Fixtures for the verify tests: stand-in servers on 127.0.0.1, a CLI runner, a clean credential environment.

The real `gcloud` is shadowed by a stand-in script on PATH (no test may reach Google or wait on it); each
test that needs an identity token from gcloud writes its own.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from standin import Config, StandIn  # noqa: E402
from vhelpers import write_gcloud  # noqa: E402

CRED_VARS = ("RUNPOD_API_KEY", "MODAL_PROXY_TOKEN_ID", "MODAL_PROXY_TOKEN_SECRET", "MODAL_KEY", "MODAL_SECRET",
             "VLLM_API_KEY", "FLYMIGRATE_APP_API_KEY", "GOOGLE_APPLICATION_CREDENTIALS", "OPENAI_API_KEY")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for v in CRED_VARS:
        monkeypatch.delenv(v, raising=False)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    write_gcloud(bindir, None)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FLYMIGRATE_STATE_DIR", str(tmp_path / "state"))
    return bindir


@pytest.fixture
def serve() -> Iterator:
    started: list[StandIn] = []

    def start(listen_after_s: float = 0.0, **kw) -> StandIn:
        s = StandIn(Config(**kw), listen_after_s=listen_after_s)
        started.append(s)
        return s

    yield start
    for s in started:
        s.close()


