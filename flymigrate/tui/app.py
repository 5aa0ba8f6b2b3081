"""The Textual app. ``create_app`` is the one factory: ``flymigrate tui`` and the tests both call it.

Workers (``@work(thread=True)``) call :mod:`.core` and only post messages; the ``on_*`` handlers
here own every widget update and every write of the saved state.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, ClassVar

from rich.color import Color
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import ContentSwitcher, Footer, Input, ListItem, ListView, RadioSet, Static

from ..errors import FlymigrateError, Interrupted
from ..model import STEP_IDS
from ..targets import TARGETS
from . import core
from .messages import (
    PreviewsLoaded,
    SessionFailed,
    SessionLoaded,
    StepEnded,
    TransferEnded,
    TransferProgress,
    WeightsPreviewReady,
)
from .screens import ConfirmScreen, ErrorScreen, HelpScreen
from .state import StepProgress, TuiState, load_state
from .widgets import STEP_SETTINGS, CheckItem, OverviewPage, StepPage, TargetPage, TransferPanel

PAGES: tuple[str, ...] = ("overview", "target", *STEP_IDS)
PAGE_LABELS = {"overview": "Overview", "target": "Target", **{s: f"{i}. {core.STEP_SHORT[s]}"
                                                              for i, s in enumerate(STEP_IDS, 1)}}
STATUS_MARK = {"todo": " ", "running": ">", "paused": "|", "done": "✓", "failed": "!"}


class FlymigrateApp(App[int]):
    """The walkthrough: overview, target choice, then the five steps in order."""

    CSS_PATH = "app.tcss"
    TITLE = "flymigrate"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q,ctrl+q", "quit", "Quit", key_display="q"),
        Binding("n", "next_page", "Next"),
        Binding("b", "prev_page", "Back"),
        Binding("r", "run_step", "Run"),
        Binding("s", "pause", "Pause"),
        Binding("m", "mark_done", "Mark done"),
        Binding("d", "toggle_theme", "Dark/light"),
        Binding("v", "verify", "Verify"),  # on the last step, once apply --deploy recorded a URL: flymigrate verify
        Binding("o", "goto('overview')", "Overview", show=False),
        Binding("t", "goto('target')", "Target", show=False),
        *[Binding(str(i), f"goto('{s}')", core.STEP_SHORT[s], show=False) for i, s in enumerate(STEP_IDS, 1)],
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

    # ---- layout ---------------------------------------------------------------------------------------------

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

    @work(thread=True, exclusive=True, group="session", exit_on_error=False)
    def _load_session(self) -> None:
        try:
            session = core.load_session(self.app_dir, secrets_paths=self.secrets_paths, code_dirs=self.code_dirs,
                                        **self.input_options,
                                        preview_targets=(self.target,) if self.target else (),
                                        base_urls={t: tp.base_url for t, tp in self.saved.targets.items()
                                                   if tp.base_url})
        except FlymigrateError as err:
            self.post_message(SessionFailed("flymigrate could not read the app", err.message,
                                            (err.where + ": " if err.where else "") + (err.hint or "")))
            return
        except Exception as err:  # noqa: BLE001 -- shown as a panel, never as a traceback
            self.post_message(SessionFailed("Unexpected error while reading the app", f"{type(err).__name__}: {err}",
                                            "Please report it; `flymigrate plan` with --debug shows details."))
            return
        self.post_message(SessionLoaded(session))

    @work(thread=True, group="previews", exit_on_error=False)
    def _load_previews(self, session: core.Session, target: str) -> None:
        try:
            previews, error = core.load_previews(session, target)
        except Exception as err:  # noqa: BLE001 -- the plan-based previews stay on screen, with the reason
            previews, error = {}, f"{type(err).__name__}: {err}"
        self.post_message(PreviewsLoaded(target, previews, error or ""))

    def on_previews_loaded(self, message: PreviewsLoaded) -> None:
        if self.session is not None:
            self.session.previews[message.target] = message.previews
            if message.error:
                self.session.preview_errors[message.target] = message.error
            else:
                self.session.preview_errors.pop(message.target, None)
            if message.target == self.target:
                self.refresh_all()

    # ---- rendering ------------------------------------------------------------------------------------------

    def _q(self, selector: Any, expect_type: Any = None) -> Any:
        """Query the main screen, whichever modal (help, confirm, error) is on top of it."""
        base = self.screen_stack[0] if self.screen_stack else self.screen
        return base.query_one(selector, expect_type) if expect_type is not None else base.query_one(selector)

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

    def _progress(self, sid: str) -> StepProgress | None:
        return self.saved.progress(self.target).steps[sid] if self.target else None

    def _weights_fields(self) -> dict[str, str]:
        assert self.session is not None and self.target is not None
        return {**core.weights_defaults(self.session, self.target), **self.saved.progress(self.target).weights_fields}

    def _refresh_weights_panel(self) -> None:
        panel = self._q(TransferPanel)
        if self.target is None or self.session is None:
            panel.display = False
            return
        panel.display = True
        fields = self._weights_fields()
        running = self.transfer_stop is not None
        panel.set_fields(self.target, fields, editable=not running)
        preview = self.weights_previews.get(self.target)
        panel.show_destination(preview, core.weights_cli(self.session, self.target, fields), self.styles_for_text())
        if not running:
            progress = self._progress("weights")
            snap = None
            if preview is not None and preview.data.get("dest"):
                try:
                    snap = core.TransferWatch(str(preview.data.get("src", "")), str(preview.data["dest"])).poll()
                except Exception:  # noqa: BLE001 -- an unreadable journal must not stop the walkthrough
                    snap = None
            panel.show_snapshot(snap, progress.status if progress else "todo")

    @work(thread=True, exclusive=True, group="weights-preview", exit_on_error=False)
    def _weights_preview_worker(self, session: core.Session, target: str, fields: dict[str, str]) -> None:
        try:
            preview = core.weights_preview(session, target, fields)
        except FlymigrateError as err:
            self.post_message(WeightsPreviewReady(target, None, err.message))
            return
        except Exception as err:  # noqa: BLE001 -- shown in the panel, not as a traceback
            self.post_message(WeightsPreviewReady(target, None, f"{type(err).__name__}: {err}"))
            return
        self.post_message(WeightsPreviewReady(target, preview, ""))

    def on_weights_preview_ready(self, message: WeightsPreviewReady) -> None:
        if message.preview is not None:
            self.weights_previews[message.target] = message.preview
        else:
            self.weights_previews.pop(message.target, None)
        if message.target == self.target and self.screen_stack:
            self._refresh_weights_panel()
            if message.error:
                from rich.markup import escape

                self.notify(escape(message.error), severity="error", timeout=6)  # `[name]` is text, not markup

    def _refresh_nav(self) -> None:
        for sid in STEP_IDS:
            progress = self._progress(sid)
            mark = STATUS_MARK.get(progress.status, " ") if progress else " "
            item = self._q(f"#nav-{sid}", ListItem)
            item.query_one(Static).update(f"{mark} {PAGE_LABELS[sid]}")
        self._q("#nav-target", ListItem).query_one(Static).update(
            f"{'✓' if self.target else ' '} Target")
        self._q("#nav-overview", ListItem).query_one(Static).update("  Overview")

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

    def show_error(self, title: str, message: str, hint: str = "") -> None:
        self.push_screen(ErrorScreen(title, message, hint))

    def save(self) -> None:
        try:
            self.saved.save()
        except OSError as err:
            self.show_error("Progress could not be saved", f"{self.saved.path}: {err.strerror or err}",
                            "Check the app folder is writable; your choices stay in this session.")

    # ---- message handlers (the only place state changes) ----------------------------------------------------

    def on_session_loaded(self, message: SessionLoaded) -> None:
        self.session = message.session
        self.pending_secrets = []
        if self.target is not None:
            self._weights_preview_worker(self.session, self.target, self._weights_fields())
        if self.target is not None and self.saved.target != self.target:
            self.saved.target = self.target
            self.save()
        self.refresh_all()
        if self.target is None:
            self.show_page("target")
            self.focus_page()
        self.refresh_bindings()

    def on_session_failed(self, message: SessionFailed) -> None:
        if self.pending_secrets and self.session is not None:  # the new export is unreadable: keep the old session
            self.saved.secrets_paths = [p for p in self.saved.secrets_paths if p not in self.pending_secrets]
            self.save()
            self.secrets_paths = list(dict.fromkeys([*self.cli_secrets_paths, *self.saved.secrets_paths]))
            self.pending_secrets = []
            self.show_error("The secrets export could not be read", message.message, message.hint)
            return
        self._q("#overview-body", Static).update(f"{message.title}.\n\n{message.message}\n\n{message.hint}")
        self.show_error(message.title, message.message, message.hint)

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

    @on(RadioSet.Changed, "#target-choice")
    def _target_changed(self, event: RadioSet.Changed) -> None:
        name = TARGETS[event.index]
        if name == self.target:
            return
        if self.transfer_stop is not None or any(w.group == "step" and w.is_running for w in self.workers):
            self.show_error("A step is running", "The target cannot change while a step runs or the weights copy.",
                            "Wait for the step to finish, or press s to pause the transfer; it resumes where it "
                            "stopped.")
            self._q(TargetPage).show(self.session, self.target, self.styles_for_text())  # type: ignore[arg-type]
            return
        self.target = name
        self.saved.target = name
        self.saved.progress(name)
        self.save()
        self.refresh_all()
        if self.session is not None and name not in self.session.previews:
            self._load_previews(self.session, name)
        if self.session is not None:
            self._weights_preview_worker(self.session, name, self._weights_fields())
        self.notify(f"Target: {core.TARGET_LABELS[name]}. Progress for every target is kept.", timeout=3)

    @on(CheckItem.Toggled)
    def _checks_changed(self, event: CheckItem.Toggled) -> None:
        page = next((a for a in event.item.ancestors if isinstance(a, StepPage)), None)
        if page is None or self.target is None:
            return
        self.saved.progress(self.target).steps[page.step_id].checks = page.checked()
        self.save()

    @on(Input.Changed, "TransferPanel Input")
    def _fields_edited(self, event: Input.Changed) -> None:
        if self.target is None or self.session is None or self.transfer_stop is not None:
            return
        defaults = core.weights_defaults(self.session, self.target)
        fields = {k: v for k, v in self._q(TransferPanel).fields().items()
                  if k in core.FIELDS_BY_TARGET[self.target] and v and v != defaults.get(k)}
        tp = self.saved.progress(self.target)
        if fields != tp.weights_fields:
            tp.weights_fields = fields
            self.save()

    @on(Input.Submitted, "#setting-secrets")
    def _secrets_submitted(self, event: Input.Submitted) -> None:
        paths = [p.strip() for p in event.value.split(",") if p.strip()]
        missing = [p for p in paths if not Path(p).is_file()]
        if missing:
            self.show_error("No such file", ", ".join(missing),
                            "Give the path of your secrets export (a .env file, an env dump or `fly secrets list "
                            "--json`), relative to the folder flymigrate was started in, or absolute.")
            return
        added = [str(Path(p).resolve()) for p in paths]
        self.pending_secrets = [p for p in added if p not in self.saved.secrets_paths]
        self.saved.secrets_paths = list(dict.fromkeys([*self.saved.secrets_paths, *added]))
        self.save()
        self.secrets_paths = list(dict.fromkeys([*self.cli_secrets_paths, *self.saved.secrets_paths]))
        event.input.value = ""
        self._q("#page-secrets").focus()  # so that keys navigate again
        self.notify("Reading the secrets export (names only are shown)...", timeout=3)
        self._load_session()

    @on(Input.Submitted, "#setting-base_urls")
    def _base_url_submitted(self, event: Input.Submitted) -> None:
        import re

        url = event.value.strip().rstrip("/")
        if url and not re.match(r"^https?://[^\s/<>]+", url):
            self.show_error("Not an http(s) URL", repr(url), "Example: https://acme--serve.modal.run")
            return
        if self.target is None or self.session is None:
            return
        self.saved.progress(self.target).base_url = url
        self.save()
        self.session.base_urls[self.target] = url
        self._q("#page-base_urls").focus()
        self._load_previews(self.session, self.target)

    @on(Input.Submitted, "TransferPanel Input")
    def _fields_submitted(self) -> None:
        if self.session is not None and self.target is not None:
            self._weights_preview_worker(self.session, self.target, self._weights_fields())
        self._q("#page-weights").focus()

    def on_transfer_progress(self, message: TransferProgress) -> None:
        if not self.screen_stack:  # shutting down
            return
        self._q(TransferPanel).show_snapshot(message.snapshot, "running")

    def on_transfer_ended(self, message: TransferEnded) -> None:
        self.transfer_stop = None
        if not self.screen_stack:  # shutting down: the engine has saved its journal; save ours
            self._record_transfer_end(message)
            return
        panel = self._q(TransferPanel)
        progress = self._record_transfer_end(message)
        if message.preview is not None and message.target:
            self.weights_previews[message.target] = message.preview
        if progress is not None:
            self._q("#page-weights", StepPage).show_progress(progress)
            self._refresh_weights_panel()
            if message.snapshot is not None:
                panel.show_snapshot(message.snapshot, progress.status)
            self._refresh_nav()
        self.refresh_bindings()
        if self.quitting:
            self.exit(0)
            return
        if message.outcome == "failed":
            started = message.snapshot is not None and message.snapshot.started
            # leave the page showing the transfer panel (what was blocked), decided after the final layout,
            # whatever happened to the scroll queued when the step started
            self.call_after_refresh(lambda: self._q("#transfer-stats").scroll_visible(animate=False))
            self.show_error("The weight transfer stopped" if started else "The weights step could not start",
                            message.message, message.hint)
        elif message.outcome == "done":
            self.notify("Weights copied and verified.", timeout=4)

    def _record_step_end(self, message: StepEnded) -> StepProgress | None:
        target = message.target or self.target
        if target is None:
            return None
        progress = self.saved.progress(target).steps[message.step_id]
        progress.status = "done" if message.ok else ("todo" if progress.status == "running" else progress.status)
        if message.ok:
            progress.result = message.message
        self.save()
        return progress

    def _record_transfer_end(self, message: TransferEnded) -> StepProgress | None:
        if self.target is None:
            return None
        progress = self.saved.progress(self.target).steps["weights"]
        progress.status = {"done": "done", "stopped": "paused"}.get(message.outcome, "failed")
        progress.result = message.message
        self.save()
        return progress

    def on_step_ended(self, message: StepEnded) -> None:
        if self.quitting:
            self._record_step_end(message)
            self.exit(0)
            return
        if self.session is not None and message.previews is not None and message.target:
            self.session.previews[message.target] = message.previews
            if message.target == self.target:
                styles = self.styles_for_text()
                for sid in STEP_IDS:
                    if sid != message.step_id:
                        self._q(f"#page-{sid}", StepPage).show(self.session, self.target, self._progress(sid), styles)
        progress = self._record_step_end(message)
        if progress is None:
            return
        if self.session is not None and (message.target or self.target) == self.target:
            self._q(f"#page-{message.step_id}", StepPage).show(self.session, self.target, progress,
                                                                self.styles_for_text())
        self._refresh_nav()
        if not message.ok:
            self.show_error(f"{core.STEP_SHORT[message.step_id]}: not run", message.message, message.hint)

    # ---- actions --------------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("run_step", "mark_done"):
            if self.page not in STEP_IDS:
                return False  # hidden off the step pages
            ready = self.session is not None and self.target is not None and self.transfer_stop is None
            return True if ready else None  # shown dimmed while not possible
        if action == "pause":
            return self.transfer_stop is not None or False
        if action == "verify":
            if self.page != STEP_IDS[-1] or self.session is None or self.target is None:
                return False
            from ..verify import deployed_url  # imported on the last step only: not before the first paint

            return deployed_url(self.session.app_dir, self.target) is not None
        return True

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_goto(self, page: str) -> None:
        self.show_page(page)

    def action_next_page(self) -> None:
        self.show_page(PAGES[min(len(PAGES) - 1, PAGES.index(self.page) + 1)])

    def action_prev_page(self) -> None:
        self.show_page(PAGES[max(0, PAGES.index(self.page) - 1)])

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    def _watch_theme(self, theme_name: str) -> None:  # re-colour the pre-rendered text
        super()._watch_theme(theme_name)
        if self.is_mounted:
            self.call_after_refresh(self.refresh_all)

    def action_mark_done(self) -> None:
        if self.page not in STEP_IDS or self.target is None:
            return
        progress = self.saved.progress(self.target).steps[self.page]
        if progress.status == "running":
            return
        if progress.status == "done":
            progress.status, progress.result = "todo", ""
        else:
            progress.status, progress.result = "done", "marked done by hand"
        self.save()
        self._q(f"#page-{self.page}", StepPage).show_progress(progress)
        self._refresh_nav()

    def _blockers(self, sid: str) -> list[str]:
        """Why this step cannot run now (empty: it can): the plan's blocked status or apply's preview."""
        if self.session is None or self.target is None:
            return []
        step = self.session.plans[self.target].step(sid)
        out = list(step.cannot[:1] or step.needs) if step.status == "blocked" else []
        preview = (self.weights_previews.get(self.target) if sid == "weights"
                   else self.session.previews.get(self.target, {}).get(sid))
        out += [b for b in getattr(preview, "blocking", None) or [] if b not in out]
        return out

    def action_run_step(self) -> None:
        if self.session is None or self.target is None or self.page not in STEP_IDS:
            return
        sid = self.page
        blockers = self._blockers(sid)
        if blockers:  # nothing to confirm: say what is missing instead of offering to run
            hint = ("Fill in the fields above (Enter refreshes the preview), then press r again." if sid == "weights"
                    else "Give what is listed (the field above, or the flymigrate command line), then press r again.")
            self.show_error(f"{core.STEP_SHORT[sid]}: blocked", "; ".join(blockers), hint)
            return
        if sid == "weights":
            if self.transfer_stop is not None:
                return
            fields = self._weights_fields()
            preview = self.weights_previews.get(self.target)
            details = [preview.summary if preview is not None else f"Copy {fields.get('from')}"]
            details += [f"blocked: {b}" for b in (preview.blocking if preview is not None else [])]
            details += ["", "It is resumable: pause with s or quit with q at any time and",
                        "continue later here or from a shell with:",
                        f"  {core.weights_cli(self.session, self.target, fields)}"]
            question = "Start the weight transfer?"
        else:
            lines = core.step_preview(self.session, self.target, sid)
            details = [lines[0].strip()] if lines and lines[0].startswith("  ") else []
            details += [{"@": "", "x": "blocked: ", "?": "needs: "}[line[0]] + line[2:]
                        for line in lines if line[:1] in "@x?"]
            details.append("(the full preview is on the page behind this dialog)")
            question = f"Run step {STEP_IDS.index(sid) + 1}: {self.session.plans[self.target].step(sid).title}?"

        def answered(yes: bool | None) -> None:
            if yes:
                self._start_step(sid)

        self.push_screen(ConfirmScreen(question, details), answered)

    def _start_step(self, sid: str) -> None:
        assert self.target is not None and self.session is not None
        progress = self.saved.progress(self.target).steps[sid]
        progress.status = "running"
        self.save()
        self._q(f"#page-{sid}", StepPage).show_progress(progress)
        self._refresh_nav()
        if sid == "weights":
            fields = self._weights_fields()
            self.transfer_stop = threading.Event()
            self._q(TransferPanel).set_fields(self.target, fields, editable=False)
            self._q(TransferPanel).show_snapshot(None, "running")
            self.call_after_refresh(lambda: self._q("#transfer-stats").scroll_visible(animate=False))
            self._transfer_worker(self.session, self.target, fields, self.transfer_stop)
        else:
            self._step_worker(self.session, self.target, sid)
        self.refresh_bindings()

    def action_verify(self) -> None:
        if self.session is not None and self.target is not None:
            self.notify(f"Verifying the {self.target} endpoint (cold start, checks, latency)...")
            self._verify_worker(str(self.session.app_dir), self.target, list(self.session.secrets_paths))

    @work(thread=True, exclusive=True, group="verify", exit_on_error=False)
    def _verify_worker(self, app_dir: str, target: str, secrets: list[str]) -> None:
        from ..verify import run_for_ui

        title, text, hint = run_for_ui(app_dir, target, secrets)
        self.call_from_thread(self.show_error, title, text, hint)

    @work(thread=True, exclusive=True, group="step", exit_on_error=False)
    def _step_worker(self, session: core.Session, target: str, sid: str) -> None:
        ended: StepEnded
        try:
            result = core.run_step(session, target, sid)
        except FlymigrateError as err:
            ended = StepEnded(sid, False, err.message, err.hint or "", target)
        except Exception as err:  # noqa: BLE001 -- a panel, not a traceback
            ended = StepEnded(sid, False, f"unexpected error: {type(err).__name__}: {err}", "Please report it.", target)
        else:
            ended = StepEnded(sid, True, result, "", target)
        try:
            ended.previews, _ = core.load_previews(session, target)  # the files changed: show what is left
        except Exception:  # noqa: BLE001 -- keep the old previews
            ended.previews = None
        self.post_message(ended)

    @work(thread=True, exclusive=True, group="transfer", exit_on_error=False)
    def _transfer_worker(self, session: core.Session, target: str, fields: dict[str, str],
                         stop: threading.Event) -> None:
        """Runs apply's weights step in a helper thread and polls the journals for live progress."""
        try:
            preview = core.weights_preview(session, target, fields)
        except Exception:  # noqa: BLE001 -- apply reports the same problem with a message below
            preview = None
        data = preview.data if preview is not None else {}
        watch = core.TransferWatch(str(data.get("src", "")), str(data.get("dest", ""))) if data.get("dest") else None
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                on_event = watch.on_apply_event if watch is not None else (lambda ev: None)
                outcome["message"] = core.run_weights(session, target, fields, stop, on_event)
            except BaseException as err:  # noqa: BLE001 -- handed to the worker below
                outcome["error"] = err

        runner = threading.Thread(target=run, name="fm-tui-weights", daemon=True)
        runner.start()
        while runner.is_alive():
            runner.join(0.25)
            if watch is not None:
                try:
                    self.post_message(TransferProgress(watch.poll()))
                except Exception:  # noqa: BLE001, S110 -- a journal being created; try again next tick
                    pass
        snap = None
        if watch is not None:
            try:
                snap = watch.poll()
            except Exception:  # noqa: BLE001
                snap = None
        err = outcome.get("error")
        if err is None:
            ended = TransferEnded(snap, "done", str(outcome.get("message", "done")))
        elif isinstance(err, Interrupted):
            where = (f" at {core.fmt_bytes(snap.bytes_done)} of {core.fmt_bytes(snap.bytes_total)}"
                     if snap is not None and snap.started else "")
            ended = TransferEnded(snap, "stopped", f"paused{where}; state saved")
        elif isinstance(err, FlymigrateError):
            ended = TransferEnded(snap, "failed", err.message, err.hint or "")
        else:
            ended = TransferEnded(snap, "failed", f"unexpected error: {type(err).__name__}: {err}",
                                  "State is saved; press r to try again. Please report it.")
        ended.target, ended.preview = target, preview
        self.post_message(ended)

    def action_pause(self) -> None:
        if self.transfer_stop is not None:
            self.transfer_stop.set()
            self.notify("Pausing: finishing the parts in flight and saving state...", timeout=3)

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

    # ---- no traceback on screen -----------------------------------------------------------------------------

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
