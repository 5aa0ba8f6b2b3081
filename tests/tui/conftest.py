"""Fixtures for the walkthrough tests: a copy of the example app, a private state dir, the app factory.

Async tests run on anyio's pytest plugin (asyncio backend); everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
EXAMPLE = ROOT / "examples" / "acme-chat"
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

SIZE = (80, 24)
SECRETS = ["acme-chat/fly-secrets.json", "acme-chat/example.env"]
HF_TOKEN_VALUE = "hf_example_not_a_real_token"  # the value in examples/acme-chat/example.env


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """cwd = tmp_path holding acme-chat/ (so every path the app shows is short and the same on every run)."""
    shutil.copytree(EXAMPLE, tmp_path / "acme-chat", ignore=shutil.ignore_patterns(".flymigrate"))
    # git does not keep file modes: a fresh clone has example.env at 0644, which adds a permissions finding
    (tmp_path / "acme-chat" / "example.env").chmod(0o600)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLYMIGRATE_STATE_DIR", str(tmp_path / "state"))
    for k in list(os.environ):
        if k.startswith(("AWS_", "HF_", "RUNPOD_", "MODAL_")):
            monkeypatch.delenv(k, raising=False)
    return tmp_path


@pytest.fixture
def make_app(workdir: Path) -> Callable[..., Any]:
    from flymigrate.tui.app import create_app

    def make(target: str | None = "modal", app_dir: str = "acme-chat", secrets: list[str] | None = None) -> Any:
        return create_app(app_dir, target=target, secrets_paths=SECRETS if secrets is None else secrets)

    return make


@pytest.fixture(scope="session")
def moto() -> Iterator[Any]:
    from servers.moto_s3 import MotoS3

    m = MotoS3()
    yield m
    m.stop()


async def settle(app: Any, pilot: Any) -> None:
    """Wait until the workers are idle and the messages they posted are handled.

    The first read of the app starts after the first frame (``call_after_refresh``): on a loaded machine no
    worker may exist yet when this is first called, so it also waits (boundedly) until the session is read or
    an error panel is up.
    """
    for _ in range(400):
        await app.workers.wait_for_complete()
        await pilot.pause()
        if getattr(app, "session", None) is not None or len(app.screen_stack) > 1 or not app.is_running:
            return
        await pilot.pause(0.05)


def plain(widget: Any) -> str:
    """The text a Static shows (Rich tables rendered wide, so cells do not wrap)."""
    from rich.console import Console

    content = widget.content
    if isinstance(content, str):
        return content
    console = Console(width=400, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(content)
    return console.export_text()


def screen_text(app: Any) -> str:
    """What is on the terminal right now, as text (from the SVG screenshot)."""
    import html

    return html.unescape(app.export_screenshot()).replace("\xa0", " ")
