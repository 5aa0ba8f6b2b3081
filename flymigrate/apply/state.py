"""``APP_DIR/.flymigrate/state.json``: per target, per step status and what was written (hashes only).

Never holds a secret value: secret *names* at most. Written atomically, 0600, in a 0700 folder.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..fsutil import atomic_write
from ..paths import app_state_dir, ensure_private_dir

SCHEMA = "flymigrate/apply-state/v1"


def sha256_text(data: str | bytes) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


class ApplyState:
    def __init__(self, app_dir: Path) -> None:
        self.dir = app_state_dir(app_dir)
        self.path = self.dir / "state.json"
        self.data: dict[str, Any] = {"schema": SCHEMA, "targets": {}, "written": {}}
        if self.path.exists():
            try:
                loaded = json.loads(self.path.read_text("utf-8"))
                if isinstance(loaded, dict) and loaded.get("schema") == SCHEMA:
                    self.data = loaded
                    self.data.setdefault("targets", {})
                    self.data.setdefault("written", {})
            except (OSError, ValueError):
                pass  # unreadable state: start over (every step is idempotent)

    @property
    def backup_dir(self) -> Path:
        return self.dir / "backup"

    def target(self, name: str) -> dict[str, Any]:
        return self.data["targets"].setdefault(name, {"steps": {}})

    def step(self, target: str, step: str) -> dict[str, Any]:
        return self.target(target)["steps"].setdefault(step, {"status": "pending"})

    def set_step(self, target: str, step: str, **fields: Any) -> None:
        st = self.step(target, step)
        st.update(fields)
        self.save()

    def record_written(self, rel: str, digest: str) -> None:
        lst = self.data["written"].setdefault(rel, [])
        if digest not in lst:
            lst.append(digest)
            del lst[:-8]

    def written(self, rel: str) -> list[str]:
        return list(self.data["written"].get(rel, []))

    def save(self) -> None:
        ensure_private_dir(self.dir)
        ignore = self.dir / ".gitignore"
        if not ignore.exists():  # state and backups are this machine's, not the repository's: keep `git status` clean
            atomic_write(ignore, "# written by flymigrate: its state and backups stay out of git\n*\n", mode=0o600)
        atomic_write(self.path, json.dumps(self.data, indent=2, sort_keys=True) + "\n", mode=0o600)


def read_state(app_dir: Path) -> dict[str, Any] | None:
    """The raw state of an app folder, or None (for ``flymigrate status``)."""
    p = app_state_dir(app_dir) / "state.json"
    if not p.exists():
        return None
    try:
        data = json.loads(p.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def apply_status(app_dir: Path) -> dict[str, Any] | None:
    """Per target, per step status of ``apply`` in an app folder (for ``flymigrate status APP_DIR``)."""
    data = read_state(app_dir)
    if data is None:
        return None
    out: dict[str, Any] = {}
    for target, t in sorted((data.get("targets") or {}).items()):
        steps = t.get("steps") or {}
        out[target] = {
            "steps": {sid: {"status": (steps.get(sid) or {}).get("status", "pending"),
                            "error": (steps.get(sid) or {}).get("error"),
                            "blocking": (steps.get(sid) or {}).get("blocking")}
                      for sid in ("weights", "dockerfile", "secrets", "base_urls", "scaling", "deploy")
                      if sid in steps or sid != "deploy"},
            "deployed_url": t.get("deployed_url"),
        }
    return out


def format_apply_status(status: dict[str, Any]) -> list[str]:
    lines = []
    for target, t in status.items():
        lines.append(f"apply -> {target}:")
        for sid, st in t["steps"].items():
            extra = st.get("error") or "; ".join(st.get("blocking") or [])
            shown = "running or interrupted (run apply again to continue)" if st["status"] == "running" else st["status"]
            lines.append(f"  {sid:<10} {shown}{'  (' + extra + ')' if extra else ''}")
        if t.get("deployed_url"):
            lines.append(f"  deployed: {t['deployed_url']}")
        left = [s for s, st in t["steps"].items() if st["status"] not in ("done", "nothing_to_do")]
        if left:
            lines.append(f"  left: {', '.join(left)} (run `flymigrate apply ... --to {target}` again)")
    return lines


class ApplyLock:
    """One ``apply`` at a time per app folder: an exclusive ``flock`` on ``.flymigrate/apply.lock``, released by
    the kernel when the process ends (also on ``kill -9``), so a stale lock never blocks the next run."""

    def __init__(self, app_dir: Path) -> None:
        self.dir = app_state_dir(app_dir)
        self.path = self.dir / "apply.lock"
        self.fd: int | None = None

    def __enter__(self) -> ApplyLock:
        import fcntl
        import os

        from ..errors import UserError

        from ..paths import ensure_private_dir

        ensure_private_dir(self.dir)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            self.fd = None
            raise UserError("another `flymigrate apply` is running on this app folder; two at once would interleave "
                            "their writes.", hint="Wait for it to finish (or stop it), then run this command again."
                            ) from None
        return self

    def __exit__(self, *exc: object) -> None:
        import os

        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
