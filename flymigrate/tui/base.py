"""What every part of the walkthrough app shares: its state, the query of the main screen, errors and saving.

The app (:mod:`.app`) is put together from one class per job, each in its own module with its bindings,
actions, workers and message handlers: :mod:`.session` (reading the app, the target, the inputs typed in),
:mod:`.navigation` (pages and the list on the left), :mod:`.view` (drawing the pages, colours),
:mod:`.steps` (running, marking and verifying steps), :mod:`.weights` (the weight transfer). They all derive
from :class:`Walkthrough`, which holds nothing but what they share. Workers call :mod:`.core` and only post
messages (:mod:`.messages`); the handlers own every widget update and every write of the saved state.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.app import App

from .screens import ErrorScreen
from .state import StepProgress, TuiState

if TYPE_CHECKING:
    from . import core


class Walkthrough(App[int]):
    """The state of one walkthrough (set by :class:`.app.FlymigrateApp`) and the helpers every part uses."""

    app_dir: Path
    input_options: dict[str, Any]  # --config, --gpu, --app as given to `flymigrate tui`
    cli_secrets_paths: list[str]
    code_dirs: list[str]
    saved: TuiState
    secrets_paths: list[str]
    target: str | None
    session: core.Session | None
    page: str
    transfer_stop: threading.Event | None
    quitting: bool
    crash: BaseException | None
    pending_secrets: list[str]  # export files just added, dropped again if they cannot be read
    weights_previews: dict[str, Any]  # apply's weights preview per target, with the typed settings

    if TYPE_CHECKING:  # provided by the parts (see the module docstring); declared for type checkers
        def refresh_all(self) -> None: ...
        def styles_for_text(self) -> dict[str, str]: ...
        def show_page(self, page: str) -> None: ...
        def focus_page(self) -> None: ...
        def _refresh_nav(self) -> None: ...
        def _load_session(self) -> None: ...
        def _load_previews(self, session: core.Session, target: str) -> None: ...
        def _weights_fields(self) -> dict[str, str]: ...
        def _refresh_weights_panel(self) -> None: ...
        def _weights_preview_worker(self, session: core.Session, target: str, fields: dict[str, str]) -> None: ...
        def _start_transfer(self) -> None: ...
        def _transfer_question(self) -> tuple[str, list[str]]: ...

    def _q(self, selector: Any, expect_type: Any = None) -> Any:
        """Query the main screen, whichever modal (help, confirm, error) is on top of it."""
        base = self.screen_stack[0] if self.screen_stack else self.screen
        return base.query_one(selector, expect_type) if expect_type is not None else base.query_one(selector)

    def _progress(self, sid: str) -> StepProgress | None:
        return self.saved.progress(self.target).steps[sid] if self.target else None

    def show_error(self, title: str, message: str, hint: str = "") -> None:
        self.push_screen(ErrorScreen(title, message, hint))

    def save(self) -> None:
        try:
            self.saved.save()
        except OSError as err:
            self.show_error("Progress could not be saved", f"{self.saved.path}: {err.strerror or err}",
                            "Check the app folder is writable; your choices stay in this session.")
