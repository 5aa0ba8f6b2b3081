"""Modal screens: help, confirmation before a step runs, and readable error panels."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

HELP_TEXT = """\
[b]Moving around[/b]
  n / b        next / back: Overview, Target, then the five steps
  o  t  1-5    jump to Overview, Target, or step 1-5
  tab          move between the list on the left and the page
  up / down    scroll, or move in a list; space ticks a check

[b]Steps[/b]
  r            run this step: it shows what will happen and asks
               first (weights: start, or resume where it stopped)
  s            pause the weight transfer (its state is saved)
  m            mark a step done by hand (press again to undo)
  Enter        in a field (weights settings, secrets export, new
               URL): use it and refresh the preview

[b]Anywhere[/b]
  d            switch between dark and light colours
  ?            this help
  q            quit (a running transfer is paused and saved first)

Progress is saved in .flymigrate/tui.json in the app folder. A
paused transfer can also be continued from a shell with the
`flymigrate transfer SRC DST` command shown on the Weights page.
The mouse works too: click the list, buttons and checks."""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark,enter", "close", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box", classes="dialog"):
            yield Static("Keys", classes="dialog-title")
            with VerticalScroll():
                yield Static(HELP_TEXT, id="help-text")
            yield Button("Close", id="help-close", variant="primary", compact=True)

    @on(Button.Pressed, "#help-close")
    def action_close(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """Ask before anything changes; y / Enter runs, n / Esc cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("y", "answer(True)", "Run"), Binding("n,escape", "answer(False)", "Cancel")]

    def __init__(self, question: str, details: list[str]) -> None:
        super().__init__()
        self.question = question
        self.details = details

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box", classes="dialog"):
            yield Static(self.question, classes="dialog-title")
            with VerticalScroll(id="confirm-details"):
                yield Static("\n".join(self.details) or "Nothing else changes.", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Run (y)", id="confirm-yes", variant="success", compact=True)
                yield Button("Cancel (n)", id="confirm-no", compact=True)

    def on_mount(self) -> None:
        self.query_one("#confirm-yes", Button).focus()

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)

    @on(Button.Pressed, "#confirm-yes")
    def _yes(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#confirm-no")
    def _no(self) -> None:
        self.dismiss(False)


class ErrorScreen(ModalScreen[None]):
    """A readable error panel: what happened and what to do. Never a traceback."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,enter,q", "close", "Close")]

    def __init__(self, title: str, message: str, hint: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.message = message
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(id="error-box", classes="dialog"):
            yield Static(self.title_text, classes="dialog-title error-title")
            with VerticalScroll():
                yield Static(self.message, id="error-message", markup=False)
                if self.hint:
                    yield Static("What to do", classes="error-todo")
                    yield Static(self.hint, id="error-hint", markup=False)
            yield Button("Close (Esc)", id="error-close", variant="primary", compact=True)

    @on(Button.Pressed, "#error-close")
    def action_close(self) -> None:
        self.dismiss(None)
