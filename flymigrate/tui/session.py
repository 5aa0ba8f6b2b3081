"""The session: reading the app (and apply's previews) in workers, the target choice, and the inputs typed
in on the pages (a secrets export, the new endpoint URL) that make it read again."""

from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.widgets import Input, RadioSet, Static

from ..errors import FlymigrateError
from ..targets import TARGETS
from . import core
from .base import Walkthrough
from .messages import PreviewsLoaded, SessionFailed, SessionLoaded
from .widgets import TargetPage


class SessionLoading(Walkthrough):
    """Loads :class:`.core.Session` off the UI thread and keeps it in step with what the user chose."""

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
