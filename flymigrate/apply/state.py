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
