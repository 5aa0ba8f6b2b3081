"""Typed errors and the exit codes they map to.

Library code raises these; only the CLI/TUI boundary turns them into exit codes and messages.
Exit codes (stable, documented in README):
    0  done
    1  unexpected internal error (traceback goes to a log file, never to the screen)
    2  invalid input or usage: the user can fix it; the message names file:line
    3  a remote service kept failing after retries
    4  incomplete but resumable: run the same command again
  130  interrupted (Ctrl-C) -- also resumable
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_REMOTE = 3
EXIT_RESUMABLE = 4
EXIT_INTERRUPTED = 130


class FlymigrateError(Exception):
    """Base class. ``str(err)`` is a complete, user-facing paragraph."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None) -> None:
        self.message = message
        self.where = where
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        parts = []
        if self.where:
            parts.append(f"{self.where}: {self.message}")
        else:
            parts.append(self.message)
        if self.hint:
            parts.append(self.hint)
        return " ".join(p.rstrip() for p in parts)


class UserError(FlymigrateError):
    """Bad input or usage the user can fix (exit 2)."""

    exit_code = EXIT_USAGE


class ConfigError(UserError):
    """fly.toml / secrets file / Dockerfile problem, with file:line."""


class RemoteError(FlymigrateError):
    """A remote service kept failing after retries (exit 3)."""

    exit_code = EXIT_REMOTE


class ResumableError(FlymigrateError):
    """Stopped before finishing, state is saved; re-running continues (exit 4)."""

    exit_code = EXIT_RESUMABLE


class Interrupted(ResumableError):
    """Ctrl-C / SIGTERM; state is saved (exit 130)."""

    exit_code = EXIT_INTERRUPTED


class CredentialsMissing(UserError):
    """A vendor credential is not configured: an input the user supplies (exit 2). ``apply`` marks the step that
    needs it blocked and carries on with the steps that do not."""
