"""The weights step: apply's settings typed on the page, its preview, and the resumable transfer with live
progress read from the transfer engine's journals (pause with s; quitting pauses it first)."""

from __future__ import annotations

import threading
from typing import Any

from textual import on, work
from textual.binding import Binding, BindingType
from textual.widgets import Input

from ..errors import FlymigrateError, Interrupted
from . import core
from .base import Walkthrough
from .messages import TransferEnded, TransferProgress, WeightsPreviewReady
from .state import StepProgress
from .widgets import StepPage, TransferPanel

PAUSE_BINDINGS: list[BindingType] = [Binding("s", "pause", "Pause")]


class Weights(Walkthrough):
    """The transfer panel on the weights page and the transfer worker behind it."""

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

    @on(Input.Submitted, "TransferPanel Input")
    def _fields_submitted(self) -> None:
        if self.session is not None and self.target is not None:
            self._weights_preview_worker(self.session, self.target, self._weights_fields())
        self._q("#page-weights").focus()

    def _transfer_question(self) -> tuple[str, list[str]]:
        """What the confirmation before the transfer says: from / to, what blocks it, how to continue it."""
        assert self.target is not None and self.session is not None
        fields = self._weights_fields()
        preview = self.weights_previews.get(self.target)
        details = [preview.summary if preview is not None else f"Copy {fields.get('from')}"]
        details += [f"blocked: {b}" for b in (preview.blocking if preview is not None else [])]
        details += ["", "It is resumable: pause with s or quit with q at any time and",
                    "continue later here or from a shell with:",
                    f"  {core.weights_cli(self.session, self.target, fields)}"]
        return "Start the weight transfer?", details

    def _start_transfer(self) -> None:
        assert self.target is not None and self.session is not None
        fields = self._weights_fields()
        self.transfer_stop = threading.Event()
        self._q(TransferPanel).set_fields(self.target, fields, editable=False)
        self._q(TransferPanel).show_snapshot(None, "running")
        self.call_after_refresh(lambda: self._q("#transfer-stats").scroll_visible(animate=False))
        self._transfer_worker(self.session, self.target, fields, self.transfer_stop)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "pause":
            return self.transfer_stop is not None or False
        return super().check_action(action, parameters)

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

    def _record_transfer_end(self, message: TransferEnded) -> StepProgress | None:
        if self.target is None:
            return None
        progress = self.saved.progress(self.target).steps["weights"]
        progress.status = {"done": "done", "stopped": "paused"}.get(message.outcome, "failed")
        progress.result = message.message
        self.save()
        return progress

    def action_pause(self) -> None:
        if self.transfer_stop is not None:
            self.transfer_stop.set()
            self.notify("Pausing: finishing the parts in flight and saving state...", timeout=3)
