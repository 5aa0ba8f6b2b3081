"""The five steps: run one (after a confirmation, or say what blocks it), mark it done by hand, tick its checks,
and verify the deployed endpoint from the last one."""

from __future__ import annotations

from textual import on, work
from textual.binding import Binding, BindingType

from ..errors import FlymigrateError
from ..model import STEP_IDS
from . import core
from .base import Walkthrough
from .messages import StepEnded
from .screens import ConfirmScreen
from .state import StepProgress
from .widgets import CheckItem, StepPage

RUN_BINDINGS: list[BindingType] = [Binding("r", "run_step", "Run")]
MARK_BINDINGS: list[BindingType] = [Binding("m", "mark_done", "Mark done")]
# on the last step, once apply --deploy recorded a URL: flymigrate verify
VERIFY_BINDINGS: list[BindingType] = [Binding("v", "verify", "Verify")]


class Steps(Walkthrough):
    """r, m and v on the step pages; the step worker and what its end changes."""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("run_step", "mark_done"):
            if self.page not in STEP_IDS:
                return False  # hidden off the step pages
            ready = self.session is not None and self.target is not None and self.transfer_stop is None
            return True if ready else None  # shown dimmed while not possible
        if action == "verify":
            if self.page != STEP_IDS[-1] or self.session is None or self.target is None:
                return False
            from ..verify import deployed_url  # imported on the last step only: not before the first paint

            return deployed_url(self.session.app_dir, self.target) is not None
        return super().check_action(action, parameters)

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
            question, details = self._transfer_question()
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

    def _start_step(self, sid: str) -> None:
        assert self.target is not None and self.session is not None
        progress = self.saved.progress(self.target).steps[sid]
        progress.status = "running"
        self.save()
        self._q(f"#page-{sid}", StepPage).show_progress(progress)
        self._refresh_nav()
        if sid == "weights":
            self._start_transfer()
        else:
            self._step_worker(self.session, self.target, sid)
        self.refresh_bindings()

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

    @on(CheckItem.Toggled)
    def _checks_changed(self, event: CheckItem.Toggled) -> None:
        page = next((a for a in event.item.ancestors if isinstance(a, StepPage)), None)
        if page is None or self.target is None:
            return
        self.saved.progress(self.target).steps[page.step_id].checks = page.checked()
        self.save()

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

    def action_verify(self) -> None:
        if self.session is not None and self.target is not None:
            self.notify(f"Verifying the {self.target} endpoint (cold start, checks, latency)...")
            self._verify_worker(str(self.session.app_dir), self.target, list(self.session.secrets_paths))

    @work(thread=True, exclusive=True, group="verify", exit_on_error=False)
    def _verify_worker(self, app_dir: str, target: str, secrets: list[str]) -> None:
        from ..verify import run_for_ui

        title, text, hint = run_for_ui(app_dir, target, secrets)
        self.call_from_thread(self.show_error, title, text, hint)
