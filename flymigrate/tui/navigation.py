"""Moving around: the pages in order, the list on the left with each step's mark, the help dialog."""

from __future__ import annotations

from textual import on
from textual.binding import Binding, BindingType
from textual.widgets import ContentSwitcher, ListItem, ListView, Static

from ..model import STEP_IDS
from . import core
from .base import Walkthrough
from .screens import HelpScreen

PAGES: tuple[str, ...] = ("overview", "target", *STEP_IDS)
PAGE_LABELS = {"overview": "Overview", "target": "Target", **{s: f"{i}. {core.STEP_SHORT[s]}"
                                                              for i, s in enumerate(STEP_IDS, 1)}}
STATUS_MARK = {"todo": " ", "running": ">", "paused": "|", "done": "✓", "failed": "!"}

HELP_BINDINGS: list[BindingType] = [Binding("question_mark", "help", "Help", key_display="?")]
PAGE_BINDINGS: list[BindingType] = [Binding("n", "next_page", "Next"), Binding("b", "prev_page", "Back")]
JUMP_BINDINGS: list[BindingType] = [  # not in the footer: the help lists them
    Binding("o", "goto('overview')", "Overview", show=False),
    Binding("t", "goto('target')", "Target", show=False),
    *[Binding(str(i), f"goto('{s}')", core.STEP_SHORT[s], show=False) for i, s in enumerate(STEP_IDS, 1)],
]


class Navigation(Walkthrough):
    """n / b / o / t / 1-5, the list on the left, and which page has the focus."""

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_goto(self, page: str) -> None:
        self.show_page(page)

    def action_next_page(self) -> None:
        self.show_page(PAGES[min(len(PAGES) - 1, PAGES.index(self.page) + 1)])

    def action_prev_page(self) -> None:
        self.show_page(PAGES[max(0, PAGES.index(self.page) - 1)])

    def show_page(self, page: str) -> None:
        self.page = page
        self._q("#pages", ContentSwitcher).current = f"page-{page}"
        nav = self._q("#nav", ListView)
        index = PAGES.index(page)
        if nav.index != index:
            nav.index = index
        if self.focused is not nav:  # keep focus on what is visible (never on a hidden page)
            self.focus_page()
        self.refresh_bindings()

    def focus_page(self) -> None:
        if self.page == "target":
            # no scroll-into-view: the page opens at its top (the choice is right under the intro), and
            # the screen does not depend on when the deferred scroll lands
            self._q("#target-choice").focus(scroll_visible=False)
        else:
            self._q(f"#page-{self.page}").focus()

    def _refresh_nav(self) -> None:
        for sid in STEP_IDS:
            progress = self._progress(sid)
            mark = STATUS_MARK.get(progress.status, " ") if progress else " "
            item = self._q(f"#nav-{sid}", ListItem)
            item.query_one(Static).update(f"{mark} {PAGE_LABELS[sid]}")
        self._q("#nav-target", ListItem).query_one(Static).update(
            f"{'✓' if self.target else ' '} Target")
        self._q("#nav-overview", ListItem).query_one(Static).update("  Overview")

    @on(ListView.Highlighted, "#nav")
    def _nav_moved(self, event: ListView.Highlighted) -> None:
        if event.item is not None and event.item.id:
            page = event.item.id.removeprefix("nav-")
            if page != self.page:
                self.show_page(page)

    @on(ListView.Selected, "#nav")
    def _nav_selected(self, event: ListView.Selected) -> None:
        if event.item.id:
            self.show_page(event.item.id.removeprefix("nav-"))
            self.focus_page()
