"""Drawing the pages from the session: every page at once, the title, colours that follow the theme."""

from __future__ import annotations

from pathlib import Path

from rich.color import Color
from textual.binding import Binding, BindingType
from textual.widgets import Input, Static

from ..model import STEP_IDS
from . import core
from .base import Walkthrough
from .widgets import STEP_SETTINGS, OverviewPage, StepPage, TargetPage

THEME_BINDINGS: list[BindingType] = [Binding("d", "toggle_theme", "Dark/light")]


class View(Walkthrough):
    """Shows the session on every page; re-colours the pre-rendered text when the theme changes."""

    def styles_for_text(self) -> dict[str, str]:
        """Rich styles from the current theme, so colours stay readable on dark and light themes."""
        variables = self.get_css_variables()

        def pick(*names: str) -> str:
            for name in names:
                value = variables.get(name, "")
                try:
                    Color.parse(value)
                    return value
                except Exception:  # noqa: BLE001, S112 -- not a plain colour ("auto 87%"): try the next one
                    continue
            return ""

        return {"diff-add": pick("text-success", "success"), "diff-del": pick("text-error", "error"),
                "needs": pick("text-warning", "warning"), "lost": pick("text-error", "error"),
                "heading": "bold " + pick("text-accent", "accent", "text-primary", "primary")}

    def _sync_with_apply(self) -> None:
        """Steps `flymigrate apply` finished (from the CLI too) show as done here."""
        if self.target is None:
            return
        changed = False
        for sid, status in core.applied_status(self.app_dir, self.target).items():
            progress = self.saved.progress(self.target).steps.get(sid)
            if progress is not None and status == "done" and progress.status != "done":
                progress.status, progress.result = "done", "done with flymigrate apply"
                changed = True
        if changed:
            self.save()

    def refresh_all(self) -> None:
        session = self.session
        if session is None:
            return
        self._sync_with_apply()
        styles = self.styles_for_text()
        where = core.TARGET_LABELS[self.target] if self.target else "(target not chosen: press t)"
        self._q("#titlebar", Static).update(f"flymigrate  {session.name} -> {where}")
        self._q(OverviewPage).show(session, self.target, styles)
        self._q(TargetPage).show(session, self.target, styles)
        for sid in STEP_IDS:
            self._q(f"#page-{sid}", StepPage).show(session, self.target, self._progress(sid), styles)
        self._refresh_weights_panel()
        self._refresh_nav()
        if self.target is not None:
            box = self._q("#setting-base_urls", Input)
            if not box.has_focus:
                box.value = self.saved.progress(self.target).base_url
        self._q("#setting-secrets", Input).placeholder = (
            f"reading: {', '.join(Path(p).name for p in self.secrets_paths)}; add more, comma-separated"
             if self.secrets_paths else STEP_SETTINGS["secrets"][1])

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    def _watch_theme(self, theme_name: str) -> None:  # re-colour the pre-rendered text
        super()._watch_theme(theme_name)
        if self.is_mounted:
            self.call_after_refresh(self.refresh_all)
