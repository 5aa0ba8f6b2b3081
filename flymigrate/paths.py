"""Where flymigrate keeps state. Created with private permissions (0700 dirs, 0600 files)."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """The global state directory (transfer journals, logs, crash reports).

    ``FLYMIGRATE_STATE_DIR`` wins; else ``$XDG_STATE_HOME/flymigrate``; else ``~/.local/state/flymigrate``.
    """
    env = os.environ.get("FLYMIGRATE_STATE_DIR")
    if env:
        base = Path(env)
    else:
        xdg = os.environ.get("XDG_STATE_HOME")
        base = Path(xdg) / "flymigrate" if xdg else Path.home() / ".local" / "state" / "flymigrate"
    return base


def ensure_private_dir(path: Path) -> Path:
    """mkdir -p with mode 0700 (and tighten an existing one we own)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        if path.stat().st_mode & 0o077:
            path.chmod(0o700)
    except OSError:
        pass
    return path


def app_state_dir(app_dir: Path) -> Path:
    """Per-app state for ``apply``: ``APP_DIR/.flymigrate/``.

    A ``.flymigrate`` that is a symlink (or not a folder) is refused: a cloned repository could point it anywhere,
    and state and backups of the user's files would then be written outside the app folder.
    """
    d = app_dir / ".flymigrate"
    if d.is_symlink() or (d.exists() and not d.is_dir()):
        from .errors import UserError

        raise UserError(f"{d} is a symlink or not a folder; flymigrate keeps its state and backups there and will "
                        "not write through it.", hint=f"Remove it (`rm {d}`) and run the command again.")
    return d
