"""End to end: the real `flymigrate tui` command in a real terminal (tmux), driven by keystrokes."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from .conftest import EXAMPLE, HF_TOKEN_VALUE, ROOT

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed (CI installs it with apt-get in .ci/run)")


class Tmux:
    def __init__(self, command: str, cwd: Path, env: dict[str, str]) -> None:
        self.name = "fm-" + uuid.uuid4().hex[:8]
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        script = f"cd {shlex.quote(str(cwd))} && env {exports} {command}; echo EXIT=$?; sleep 60"
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", "100", "-y", "30", script], check=True)

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-t", self.name, "-p"], capture_output=True, text=True,
                              check=True).stdout

    # generous bounds: a behaviour test, not a timing one (on 2 cores shared with the rest of the suite, a key
    # typed while the app is starved of CPU took over 20 s to show); it returns as soon as the text is there
    def wait_for(self, text: str, timeout: float = 60.0) -> str:
        end = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > end:
                raise AssertionError(f"{text!r} did not appear; the screen was:\n{screen}")
            time.sleep(0.1)

    def wait_gone(self, text: str, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        while text in self.screen():
            if time.monotonic() > end:
                raise AssertionError(f"{text!r} is still on the screen:\n{self.screen()}")
            time.sleep(0.1)

    def kill(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True, check=False)


def test_a_person_walks_through_in_a_real_terminal(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLE, tmp_path / "acme-chat", ignore=shutil.ignore_patterns(".flymigrate"))
    env = {"PYTHONPATH": str(ROOT), "FLYMIGRATE_STATE_DIR": str(tmp_path / "state"), "TERM": "xterm-256color",
           "PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    cmd = f"{shlex.quote(sys.executable)} -m flymigrate"  # plain `flymigrate` inside the app folder
    tmux = Tmux(cmd, tmp_path / "acme-chat", env)
    try:
        screen = tmux.wait_for("Where should the app go?")  # no target yet: the choice comes first
        assert "target not chosen" in screen and "GPU" in screen
        tmux.keys("Right", "Enter")  # the choice has focus: RunPod
        screen = tmux.wait_for("acme-chat -> RunPod Serverless")
        tmux.keys("3")
        tmux.wait_for("Recreate the secrets")
        tmux.keys("Tab")  # to the export field
        time.sleep(0.3)
        tmux.keys("-l", "fly-secrets.json, example.env")
        tmux.wait_for("fly-secrets.json, example.env")  # typed, as a person sees it; then Enter
        tmux.keys("Enter")
        tmux.wait_for("1 with a value, 1 missing")  # API_KEY has no value in the export
        tmux.keys("o")
        screen = tmux.wait_for("value known")
        assert "API_KEY" in screen and HF_TOKEN_VALUE not in screen
        tmux.keys("2")
        tmux.wait_for("Make the image portable")
        tmux.wait_for("change Dockerfile")  # apply's own diff of the Dockerfile
        tmux.keys("r")
        tmux.wait_for("Run step 2")
        tmux.keys("n")  # cancel: nothing runs
        tmux.wait_gone("Run step 2")
        tmux.keys("m")
        screen = tmux.wait_for("Done: marked done by hand")
        assert "✓ 2. Dockerfile" in screen
        tmux.keys("?")
        tmux.wait_for("Moving around")
        tmux.keys("Escape")
        tmux.wait_gone("Moving around")
        tmux.keys("q")
        screen = tmux.wait_for("EXIT=")
        assert "EXIT=0" in screen and "Traceback" not in screen
    finally:
        tmux.kill()
    data = json.loads((tmp_path / "acme-chat" / ".flymigrate" / "tui.json").read_text())
    assert data["target"] == "runpod"
    assert data["targets"]["runpod"]["steps"]["dockerfile"]["status"] == "done"
    assert HF_TOKEN_VALUE not in json.dumps(data)
    assert [Path(p).name for p in data["secrets_paths"]] == ["fly-secrets.json", "example.env"]


def test_a_whole_migration_in_a_real_terminal_then_reopened(tmp_path: Path) -> None:
    """Issue 16: choose a target, go through all five steps (four run for real by `flymigrate apply`, the weights
    step is blocked without a bucket and marked done by hand), quit, reopen: the progress is kept."""
    shutil.copytree(EXAMPLE, tmp_path / "acme-chat", ignore=shutil.ignore_patterns(".flymigrate"))
    (tmp_path / "acme-chat" / "example.env").chmod(0o600)
    extra = tmp_path / "extra.env"  # the value the Fly export never had
    extra.write_text("API_KEY=sk-e2e-not-a-real-key\n")
    extra.chmod(0o600)
    env = {"PYTHONPATH": str(ROOT), "FLYMIGRATE_STATE_DIR": str(tmp_path / "state"), "TERM": "xterm-256color",
           "PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    cmd = (f"{shlex.quote(sys.executable)} -m flymigrate tui acme-chat --secrets acme-chat/fly-secrets.json "
           "--secrets acme-chat/example.env --secrets extra.env")
    tmux = Tmux(cmd, tmp_path, env)
    try:
        tmux.wait_for("Where should the app go?")
        tmux.keys("Right", "Right", "Enter")  # Cloud Run: every step but the weights writes files only
        tmux.wait_for("acme-chat -> Google Cloud Run")
        tmux.keys("1")
        tmux.wait_for("Move the model weights")
        tmux.keys("r")  # no bucket given: blocked, and said so instead of offering to run
        tmux.wait_for("Weights: blocked")
        tmux.keys("Escape")
        tmux.wait_gone("Weights: blocked")
        time.sleep(0.2)  # an Esc followed at once by a key reads as Alt+key
        tmux.keys("m")
        tmux.wait_for("Done: marked done by hand")
        for key, title in (("2", "Make the image portable"), ("3", "Recreate the secrets"),
                           ("5", "Translate the scaling policy")):
            tmux.keys(key)
            tmux.wait_for(title)
            tmux.keys("r")
            tmux.wait_for(f"Run step {key}")
            tmux.keys("y")
            tmux.wait_for("[done]")  # the header follows the result, not the plan's "[ready]"
        tmux.keys("4")
        tmux.wait_for("Point clients at the new endpoint")
        tmux.keys("Tab")  # to the new-URL field
        time.sleep(0.3)
        tmux.keys("-l", "https://acme-chat-123.us-central1.run.app")
        tmux.wait_for("acme-chat-123.us-central1.run.app")
        tmux.keys("Enter")
        tmux.wait_for("+clients that call `acme-chat-123")  # the preview now rewrites to the real URL
        tmux.keys("r")  # Enter left the field: r is the key binding again
        tmux.wait_for("Run step 4")
        tmux.keys("y")
        screen = tmux.wait_for("[done]")
        for label in ("✓ 1. Weights", "✓ 2. Dockerfile", "✓ 3. Secrets", "✓ 4. Base URLs", "✓ 5. Scaling"):
            assert label in screen, screen
        tmux.keys("q")
        screen = tmux.wait_for("EXIT=")
        assert "EXIT=0" in screen and "Traceback" not in screen
    finally:
        tmux.kill()
    app = tmp_path / "acme-chat"
    assert (app / "service.yaml").is_file() and (app / "create-secrets.sh").is_file()
    assert "acme-chat-123.us-central1.run.app" in (app / "client" / "chat.py").read_text()
    assert "sk-e2e-not-a-real-key" not in "".join(p.read_text(errors="replace") for p in app.rglob("*") if p.is_file())
    assert (app / ".flymigrate" / ".gitignore").read_text().strip().endswith("*")
    # reopen: the target and every step's progress are kept
    tmux = Tmux(f"{shlex.quote(sys.executable)} -m flymigrate tui acme-chat", tmp_path, env)
    try:
        screen = tmux.wait_for("✓ 5. Scaling")
        assert "acme-chat -> Google Cloud Run" in screen
        for label in ("✓ Target", "✓ 1. Weights", "✓ 2. Dockerfile", "✓ 3. Secrets", "✓ 4. Base URLs"):
            assert label in screen, screen
        tmux.keys("q")
        assert "EXIT=0" in tmux.wait_for("EXIT=")
    finally:
        tmux.kill()
