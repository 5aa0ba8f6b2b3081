"""Fixtures for the apply tests: app copies, loopback fakes (Modal control plane, HF Hub, moto S3), CLI runner.

Everything listens on 127.0.0.1. The CLI runs in a subprocess (env set before SDKs import; kill -9 possible).
Canary secret values are planted in every secrets export; tests scan all output and written files for them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from servers.hf_hub import FakeHub
from servers.modal_fake import ModalFake

EXAMPLE = ROOT / "examples" / "acme-chat"
FIXTURES = TESTS / "fixtures" / "apps"
CORPUS = ROOT.parent / "shared" / "corpus"
CANARIES = {"HF_TOKEN": "hf_CANARYtok3n_5e1f0c", "API_KEY": "sk-CANARY-apikey-77c2d9"}
HF_FILES = {"config.json": b'{"model_type": "qwen2"}\n', "tokenizer.json": b"{}\n" * 50,
            "model-00001-of-00002.safetensors": os.urandom(300_000), "model-00002-of-00002.safetensors": os.urandom(200_000)}


def write_env(path: Path, values: dict[str, str]) -> Path:
    path.write_text("".join(f'{k}="{v}"\n' for k, v in values.items()))
    return path


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """Own temp dirs: other sessions' pytest runs on this machine rotate pytest-of-<user>/pytest-N under us."""
    d = Path(tempfile.mkdtemp(prefix="fm-apply-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def module_tmp() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="fm-apply-mod-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def acme(tmp_path: Path) -> Path:
    d = tmp_path / "acme-chat"
    shutil.copytree(EXAMPLE, d)
    write_env(d / "full.env", CANARIES)
    return d


@pytest.fixture(scope="session")
def modal_fake() -> Iterator[ModalFake]:
    f = ModalFake().start()
    yield f
    f.stop()


@pytest.fixture(scope="session")
def hf_hub() -> Iterator[FakeHub]:
    hub = FakeHub({"Qwen/Qwen2.5-7B-Instruct": HF_FILES}).start()
    yield hub
    hub.stop()


@pytest.fixture
def cli_env(tmp_path: Path, modal_fake: ModalFake, hf_hub: FakeHub) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "RUNPOD_", "HF_", "MODAL_", "FLYMIGRATE_"))}
    env.update(modal_fake.env(home=str(home)))
    env.update(FLYMIGRATE_STATE_DIR=str(tmp_path / "state"), HF_ENDPOINT=hf_hub.url, HF_HUB_DISABLE_TELEMETRY="1",
               FLYMIGRATE_BACKOFF_BASE="0.05", PYTHONPATH=str(ROOT), NO_COLOR="1")
    return env


def run_cli(args: list[str], env: dict[str, str], timeout: float = 120,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flymigrate", *args], env=env, cwd=str(ROOT), capture_output=True, check=False,
                          text=True, timeout=timeout, input=stdin if stdin is not None else "")


def tree(root: Path, *, skip_state: bool = True) -> dict[str, bytes]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if skip_state and rel.startswith(".flymigrate/") and not rel.startswith(".flymigrate/backup/"):
            continue
        if p.is_file():
            out[rel] = p.read_bytes()
    return out


def assert_no_canary(*blobs: str | bytes, where: str = "") -> None:
    for b in blobs:
        data = b.encode() if isinstance(b, str) else b
        for v in CANARIES.values():
            assert v.encode() not in data, f"secret value leaked in {where}"


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    """How many plan-apply contract checks ran (test_contract.py), for the closing note."""
    mod = sys.modules.get("tests.apply.test_contract") or sys.modules.get("apply.test_contract")
    if mod is not None and getattr(mod, "CHECKS", None):
        total = sum(mod.CHECKS.values())
        terminalreporter.write_line(f"plan-apply contract checks: {total} run, {len(mod.FAILED)} failed "
                                    f"({', '.join(f'{k} {v}' for k, v in sorted(mod.CHECKS.items()))})")
