"""What the walkthrough remembers between runs: the chosen target and each step's progress.

Stored as ``APP_DIR/.flymigrate/tui.json``, written atomically (temp file + ``os.replace``) so that
quitting or a crash at any moment leaves either the old or the new file, never a torn one. Progress
is kept per target, so switching target and back loses nothing. No Textual here.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # type checkers see the standard decorator
    from dataclasses import dataclass, field
else:  # start-up time: no exec per generated method (flymigrate/_dataclass.py)
    from .._dataclass import dataclass, field
from pathlib import Path
from typing import Any

from ..fsutil import atomic_write
from ..model import STEP_IDS
from ..targets import TARGETS
from ..paths import app_state_dir, ensure_private_dir

SCHEMA = "flymigrate/tui/v1"
FILE_NAME = "tui.json"


@dataclass
class StepProgress:
    status: str = "todo"  # todo | running | paused | done | failed
    result: str = ""  # one readable line about the last run
    checks: list[int] = field(default_factory=list)  # indexes of ticked manual checks

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "result": self.result, "checks": sorted(set(self.checks))}

    @classmethod
    def from_json(cls, data: Any) -> StepProgress:
        if not isinstance(data, dict):
            return cls()
        checks = [int(i) for i in data.get("checks", []) if isinstance(i, int)]
        return cls(str(data.get("status", "todo")), str(data.get("result", "")), checks)


@dataclass
class TargetProgress:
    steps: dict[str, StepProgress] = field(default_factory=lambda: {s: StepProgress() for s in STEP_IDS})
    # what the user typed on the weights page: from, volume_id, datacenter, endpoint_url, bucket
    # (the same settings as `flymigrate apply --weights-from/--volume-id/...`; never a secret)
    weights_fields: dict[str, str] = field(default_factory=dict)
    base_url: str = ""  # the new endpoint URL for the base-URL step (`flymigrate apply --base-url`)

    def to_json(self) -> dict[str, Any]:
        return {"steps": {k: v.to_json() for k, v in self.steps.items()},
                "weights_fields": dict(sorted(self.weights_fields.items())), "base_url": self.base_url}

    @classmethod
    def from_json(cls, data: Any) -> TargetProgress:
        tp = cls()
        if isinstance(data, dict):
            steps = data.get("steps") or {}
            for sid in STEP_IDS:
                tp.steps[sid] = StepProgress.from_json(steps.get(sid))
            tp.base_url = str(data.get("base_url") or "")
            wf = data.get("weights_fields") or {}
            if isinstance(wf, dict):
                tp.weights_fields = {str(k): str(v) for k, v in wf.items() if isinstance(v, str)}
        return tp


@dataclass
class TuiState:
    path: Path
    target: str | None = None
    targets: dict[str, TargetProgress] = field(default_factory=dict)
    secrets_paths: list[str] = field(default_factory=list)  # export files added in the walkthrough (paths only)
    unreadable: str | None = None  # set when an existing file could not be read (it is kept, not overwritten)

    def progress(self, target: str) -> TargetProgress:
        return self.targets.setdefault(target, TargetProgress())

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "target": self.target, "secrets_paths": list(self.secrets_paths),
                "targets": {k: v.to_json() for k, v in sorted(self.targets.items())}}

    def save(self) -> None:
        """Write atomically; never leaves a half-written file behind."""
        if self.unreadable is not None:
            return
        ensure_private_dir(self.path.parent)
        atomic_write(self.path, json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n", mode=0o600)


def state_path(app_dir: Path) -> Path:
    return app_state_dir(app_dir) / FILE_NAME


def load_state(app_dir: Path) -> TuiState:
    """Read ``tui.json``; a missing file is a fresh start, a broken one is reported and left untouched."""
    path = state_path(app_dir)
    st = TuiState(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return st
    except OSError as exc:
        st.unreadable = f"{path}: {exc.strerror or exc}"
        return st
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} file")
    except ValueError as exc:
        st.unreadable = f"{path}: {exc}"
        return st
    target = data.get("target")
    st.target = target if target in TARGETS else None
    st.secrets_paths = [str(p) for p in data.get("secrets_paths") or [] if isinstance(p, str)]
    for name, tp in (data.get("targets") or {}).items():
        if name in TARGETS:
            st.targets[name] = progress = TargetProgress.from_json(tp)
            for sid, step in progress.steps.items():
                if step.status == "running":  # the last session ended without saying how (killed, crashed)
                    step.status = "paused" if sid == "weights" else "todo"
                    step.result = "interrupted; state is saved" if sid == "weights" else ""
    return st
