"""Stop-and-rerun: SIGKILL `python -m flymigrate apply ... --yes` during each step, run it again, and compare the
final tree and the remote state (Modal volume + secret) with an uninterrupted run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from servers.modal_fake import ModalFake

from .conftest import CANARIES, EXAMPLE, ROOT, assert_no_canary, run_cli, tree, write_env

STEPS = ("weights", "dockerfile", "secrets", "base_urls", "scaling")


def _copy(tmp: Path, name: str) -> Path:
    d = tmp / name / "acme-chat"
    shutil.copytree(EXAMPLE, d)
    write_env(d / "full.env", CANARIES)
    return d


def _args(app: Path) -> list[str]:
    return ["apply", str(app), "--to", "modal", "--yes", "--secrets", str(app / "fly-secrets.json"),
            "--secrets", str(app / "full.env"), "--base-url", "https://ws--flymigrate-acme-chat-serve.modal.run"]


def _env(base: dict[str, str], fake: ModalFake, home: Path, state: Path) -> dict[str, str]:
    env = dict(base)
    env.update(fake.env(home=str(home)))
    env["FLYMIGRATE_STATE_DIR"] = str(state)
    return env


def _remote(fake: ModalFake) -> tuple[dict[str, bytes], dict[str, str]]:
    vol = "flymigrate-acme-chat-weights"
    files = {p: fake.read_file(vol, p) for p in sorted(fake.list_files(vol))}
    return files, fake.secret_values("flymigrate-acme-chat-secrets")


def _final(app: Path) -> dict[str, bytes]:
    return {k: v for k, v in tree(app).items()}


@pytest.fixture(scope="module")
def reference(module_tmp: Path, hf_hub) -> tuple[dict[str, bytes], tuple]:
    tmp = module_tmp
    app = _copy(tmp, "ref")
    (tmp / "home").mkdir()
    with ModalFake() as fake:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HF_", "MODAL_", "FLYMIGRATE_"))}
        env.update(HF_ENDPOINT=hf_hub.url, PYTHONPATH=str(ROOT), FLYMIGRATE_BACKOFF_BASE="0.05")
        r = run_cli(_args(app), _env(env, fake, tmp / "home", tmp / "state"))
        assert r.returncode == 0, r.stderr
        return _final(app), _remote(fake)


@pytest.mark.parametrize("step", STEPS)
def test_kill_during_step_then_rerun(step: str, tmp_path: Path, reference, cli_env: dict[str, str]) -> None:
    ref_tree, ref_remote = reference
    app = _copy(tmp_path, "killed")
    with ModalFake() as fake:
        env = _env(cli_env, fake, tmp_path / "home", tmp_path / "state2")
        env["FLYMIGRATE_APPLY_TEST_DELAY"] = "0.4"
        proc = subprocess.Popen([sys.executable, "-m", "flymigrate", *_args(app)], env=env, cwd=str(ROOT),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        state = app / ".flymigrate" / "state.json"
        deadline = time.monotonic() + 60
        killed = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                st = json.loads(state.read_text())["targets"]["modal"]["steps"]
            except (OSError, ValueError, KeyError):
                st = {}
            if st.get(step, {}).get("status") == "running":
                time.sleep(0.1)
                proc.send_signal(signal.SIGKILL)
                killed = True
                break
            time.sleep(0.01)
        out, err = proc.communicate(timeout=30)
        assert killed, f"step {step} never seen running: {err.decode()[-2000:]}"
        st = json.loads(state.read_text())["targets"]["modal"]["steps"]
        assert st[step]["status"] == "running"  # it really died inside the step
        env.pop("FLYMIGRATE_APPLY_TEST_DELAY")
        r = run_cli(_args(app), env)
        assert r.returncode == 0, r.stderr
        assert _final(app) == ref_tree
        assert _remote(fake) == ref_remote
        st = json.loads(state.read_text())["targets"]["modal"]["steps"]
        assert all(st[s]["status"] == "done" for s in STEPS)
        # the originals survived the kill
        for rel in ("Dockerfile", "start.sh", "client/chat.py"):
            assert (app / ".flymigrate" / "backup" / rel).read_bytes() == (EXAMPLE / rel).read_bytes()
        assert_no_canary(out, err, r.stdout, r.stderr, state.read_bytes(), where="kill/rerun output")


def test_sigterm_exits_130_and_rerun_finishes(tmp_path: Path, reference, cli_env: dict[str, str]) -> None:
    ref_tree, _ = reference
    app = _copy(tmp_path, "term")
    with ModalFake() as fake:
        env = _env(cli_env, fake, tmp_path / "home", tmp_path / "state3")
        env["FLYMIGRATE_APPLY_TEST_DELAY"] = "0.5"
        proc = subprocess.Popen([sys.executable, "-m", "flymigrate", *_args(app)], env=env, cwd=str(ROOT),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        state = app / ".flymigrate" / "state.json"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                st = json.loads(state.read_text())["targets"]["modal"]["steps"]
            except (OSError, ValueError, KeyError):
                st = {}
            if st.get("base_urls", {}).get("status") == "running":
                proc.send_signal(signal.SIGTERM)
                break
            time.sleep(0.01)
        _out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err.decode()[-2000:]
        assert b"run the same command again" in err
        env.pop("FLYMIGRATE_APPLY_TEST_DELAY")
        r = run_cli(_args(app), env)
        assert r.returncode == 0, r.stderr
        assert _final(app) == ref_tree
