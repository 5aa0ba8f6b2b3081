"""The Textual app. ``create_app`` is the one factory: ``flymigrate tui`` and the tests both call it.

:class:`FlymigrateApp` only puts the walkthrough together: its state, its layout, the footer's keys in order
and quitting. Each job is a part in its own module (see :mod:`.base`); the pages are in :mod:`.widgets`, the
modal dialogs in :mod:`.screens`, everything that is not Textual in :mod:`.core` and :mod:`.state`.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import ContentSwitcher, Footer, ListItem, ListView, Static

from ..model import STEP_IDS
from ..targets import TARGETS
from . import core
from .navigation import HELP_BINDINGS, JUMP_BINDINGS, PAGE_BINDINGS, PAGE_LABELS, PAGES, Navigation
from .session import SessionLoading
from .state import TuiState, load_state
from .steps import MARK_BINDINGS, RUN_BINDINGS, VERIFY_BINDINGS, Steps
from .view import THEME_BINDINGS, View
from .weights import PAUSE_BINDINGS, Weights
from .widgets import OverviewPage, StepPage, TargetPage

__all__ = ["PAGES", "FlymigrateApp", "create_app"]


class FlymigrateApp(SessionLoading, Navigation, View, Steps, Weights):
    """The walkthrough: overview, target choice, then the five steps in order."""

    CSS_PATH = "app.tcss"
    TITLE = "flymigrate"
    ENABLE_COMMAND_PALETTE = False
    # the footer's order; each part's keys are defined beside its actions
    BINDINGS: ClassVar[list[BindingType]] = [
        *HELP_BINDINGS,
        Binding("q,ctrl+q", "quit", "Quit", key_display="q"),
        *PAGE_BINDINGS,
        *RUN_BINDINGS,
        *PAUSE_BINDINGS,
        *MARK_BINDINGS,
        *THEME_BINDINGS,
        *VERIFY_BINDINGS,
        *JUMP_BINDINGS,
    ]

    def __init__(self, app_dir: Path, *, target: str | None = None, secrets_paths: list[str] | None = None,
                 code_dirs: list[str] | None = None, config_path: str | None = None, gpu: str | None = None,
                 app_name: str | None = None) -> None:
        super().__init__()
        self.input_options = {"config_path": config_path, "gpu": gpu, "app_name": app_name}
        self.app_dir = app_dir
        self.cli_secrets_paths = list(secrets_paths or [])
        self.code_dirs = list(code_dirs or [])
        self.saved: TuiState = load_state(app_dir)
        self.secrets_paths = list(dict.fromkeys([*self.cli_secrets_paths, *self.saved.secrets_paths]))
        self.target: str | None = target or self.saved.target
        self.session: core.Session | None = None
        self.page = "overview"
        self.transfer_stop: threading.Event | None = None
        self.quitting = False
        self.crash: BaseException | None = None
        self.pending_secrets: list[str] = []  # export files just added, dropped again if they cannot be read
        self.weights_previews: dict[str, Any] = {}  # apply's weights preview per target, with the typed settings

    def compose(self) -> ComposeResult:
        yield Static("flymigrate", id="titlebar")
        with Horizontal(id="body"):
            yield ListView(*[ListItem(Static(PAGE_LABELS[p], classes="nav-label"), id=f"nav-{p}") for p in PAGES],
                           id="nav")
            with ContentSwitcher(id="pages", initial="page-overview"):
                yield OverviewPage(id="page-overview")
                yield TargetPage(id="page-target")
                for sid in STEP_IDS:
                    yield StepPage(sid, id=f"page-{sid}")
        yield Footer()

    def on_mount(self) -> None:
        if self.saved.unreadable:
            self.show_error("Saved progress could not be read",
                            f"{self.saved.unreadable}. It was left as it is and nothing will be saved over it.",
                            "Move the file away (or fix it) and start flymigrate tui again to save progress.")
        self.call_after_refresh(self._load_session)  # after the first frame: the worker competes for the GIL

    async def action_quit(self) -> None:
        if self.transfer_stop is not None and not self.quitting:
            self.quitting = True
            self.transfer_stop.set()
            self.notify("Saving the transfer state before quitting (q again to leave now; nothing is lost "
                        "either way)...", timeout=10)
            return
        step_running = any(w.group == "step" and w.is_running for w in self.workers)
        if step_running and not self.quitting:
            self.quitting = True
            self.notify("Letting the running step finish its write before quitting (q again to leave now)...",
                        timeout=10)
            return
        self.exit(0)

    def _handle_exception(self, error: Exception) -> None:
        self.crash = error
        if self.transfer_stop is not None:
            self.transfer_stop.set()
        super()._handle_exception(error)

    def _print_error_renderables(self) -> None:
        # the command re-raises self.crash into the CLI's error boundary, which writes the crash log
        self._exit_renderables.clear()


def create_app(app_dir: str | Path = ".", *, target: str | None = None, secrets_paths: list[str] | None = None,
               code_dirs: list[str] | None = None, config_path: str | None = None, gpu: str | None = None,
               app_name: str | None = None) -> FlymigrateApp:
    """The one factory, shared by ``flymigrate tui`` and the tests."""
    if target is not None and target not in TARGETS:
        raise ValueError(f"unknown target {target!r}")
    return FlymigrateApp(Path(app_dir), target=target, secrets_paths=secrets_paths, code_dirs=code_dirs,
                         config_path=config_path, gpu=gpu, app_name=app_name)
