"""What every apply step shares: the run's context (plan, inputs, options, state, the one file writer), and the
preview / outcome / event types the shells read. No step logic here: each step is a module in ``apply/steps``."""

from __future__ import annotations

import difflib
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..deployment import Deployment
from ..errors import UserError
from ..fsutil import atomic_write
from ..model import Plan
from ..paths import ensure_private_dir
from ..planner import PlanInputs, build_plan
from ..targets import get_target
from .options import ApplyOptions
from .state import ApplyState, sha256_text

STEP_ORDER = ("weights", "dockerfile", "secrets", "base_urls", "scaling")
TITLES = {"weights": "Move the model weights", "dockerfile": "Make the image portable",
          "secrets": "Recreate the secrets", "base_urls": "Point clients at the new endpoint",
          "scaling": "Translate the scaling policy", "deploy": "Deploy"}
_PLACEHOLDER_RE = re.compile(r"<[A-Za-z_]+>")


@dataclass(frozen=True)
class ApplyEvent:
    """kind: started | progress | finished | skipped | failed | blocked | message."""

    kind: str
    step: str
    message: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)


Reporter = Callable[[ApplyEvent], None]


@dataclass
class FileChange:
    rel: str  # shown path (relative to the app folder, or to --out)
    path: Path
    old: str | None  # current content (None: new file)
    new: str
    mode: int | None = None
    generated: bool = False  # a file flymigrate generates (vs. one of the app's own, rewritten)
    original: str | None = None  # the pre-flymigrate content (backup) when known
    encoding: str = "utf-8"  # how the file is written back (the encoding it was read in)

    @property
    def changed(self) -> bool:
        return self.old != self.new

    def diff(self) -> str:
        a = (self.old or "").splitlines(keepends=True)
        b = self.new.splitlines(keepends=True)
        out = "".join(difflib.unified_diff(a, b, f"a/{self.rel}" if self.old is not None else "/dev/null",
                                           f"b/{self.rel}", n=2))
        return out if out.endswith("\n") or not out else out + "\n"


@dataclass
class StepPreview:
    """What a step would do, before it does it (diffs, generated files, secret names, commands)."""

    step: str
    title: str
    status: str  # ready | nothing_to_do | blocked | manual | done
    summary: str
    changes: list[FileChange] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)  # names only
    commands: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    blocking: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def fingerprint(self) -> str:
        parts = [self.step, self.status] + [f"{c.rel}:{sha256_text(c.new)}" for c in self.changes]
        parts += sorted(self.secrets) + [repr(sorted(self.data.items()))]
        return sha256_text("\n".join(parts))

    def render(self) -> str:
        lines = [f"== {self.title} [{self.status.upper()}]", f"   {self.summary}"]
        for b in self.blocking:
            lines.append(f"   blocked: {b}")
        for c in self.changes:
            if not c.changed:
                continue
            lines.append(f"   {'write' if c.old is None else 'change'} {c.rel}")
            lines.append(c.diff().rstrip("\n"))
        if self.secrets:
            lines.append("   secrets (names only): " + ", ".join(self.secrets))
        for cmd in self.commands:
            lines.append(f"   $ {cmd}")
        for n in self.notes:
            lines.append(f"   note: {n}")
        return "\n".join(lines) + "\n"


@dataclass
class StepOutcome:
    step: str
    status: str  # done | skipped | blocked | failed | nothing_to_do | already_done
    message: str = ""


@dataclass
class ApplyResult:
    target: str
    outcomes: list[StepOutcome] = field(default_factory=list)
    base_url: str | None = None
    files_written: list[str] = field(default_factory=list)

    @property
    def blocked(self) -> list[str]:
        return [o.step for o in self.outcomes if o.status == "blocked"]

    @property
    def ok(self) -> bool:
        return all(o.status in ("done", "skipped", "nothing_to_do", "already_done") for o in self.outcomes)


# ------------------------------------------------------------------------------------------------ context


class Context:
    def __init__(self, app_dir: Path, plan: Plan, inputs: PlanInputs, opts: ApplyOptions, *,
                 code_dirs: list[str] | None = None, reporter: Reporter | None = None,
                 stop: threading.Event | None = None) -> None:
        self.app_dir = app_dir
        self.plan = plan
        self.inputs = inputs
        self.opts = opts
        self.code_dirs = code_dirs or []
        self.reporter = reporter or (lambda ev: None)
        self.stop = stop or threading.Event()
        self.state = ApplyState(app_dir)
        self.out_dir = Path(opts.out_dir) if opts.out_dir else app_dir
        self.target = get_target(plan.target)
        tstate = self.state.target(plan.target)
        deployed = tstate.get("deployed_url")
        if deployed and not (opts.base_url or not plan.deployment.url_is_placeholder):
            self.replan(deployed)  # the URL a previous --deploy produced
        self.test_delay = float(os.environ.get("FLYMIGRATE_APPLY_TEST_DELAY", "0") or 0)

    # the plan's Deployment is the only source of what is written and deployed
    @property
    def dep(self) -> Deployment:
        return self.plan.deployment  # type: ignore[no-any-return]

    spec = dep  # the name it had before the planner decided it

    @property
    def base_url(self) -> str | None:
        return None if self.dep.url_is_placeholder else self.dep.url

    @property
    def weights_source(self) -> str | None:
        return self.dep.weights_source

    def replan(self, base_url: str) -> None:
        """The deploy produced the URL: plan again with it (the planner decides; apply never patches)."""
        self.plan = build_plan(self.inputs, self.plan.target, options=self.opts.deploy_options(base_url))

    def secret_values(self) -> tuple[dict[str, Any], list[str]]:
        from .steps.secrets import _secret_values

        return _secret_values(self)

    def run_command(self, argv: list[str]) -> str:
        """Run a deploy tool in the output folder; its output (stdout + stderr) or a RemoteError."""
        import subprocess

        shown = " ".join(argv)
        try:
            proc = subprocess.run(argv, cwd=self.out_dir, capture_output=True, check=False, text=True, timeout=3600)
        except FileNotFoundError:
            raise UserError(f"`{argv[0]}` is not on PATH; install it, or run `{shown}` yourself.") from None
        if proc.returncode != 0:
            from ..errors import RemoteError

            raise RemoteError(f"`{shown}` failed (exit {proc.returncode}): {(proc.stderr or proc.stdout)[-500:]}")
        return proc.stdout + proc.stderr

    def write_files(self, p: StepPreview) -> str:
        from .steps.dockerfile import execute_files

        return execute_files(self, p)

    def emit(self, kind: str, step: str, message: str = "", **data: Any) -> None:
        self.reporter(ApplyEvent(kind, step, message, data))

    def rel_app(self, p: Path) -> str:
        try:
            return p.resolve().relative_to(self.app_dir.resolve()).as_posix()
        except ValueError:
            return str(p)

    def backup_path(self, path: Path) -> Path:
        rel = self.rel_app(path)
        if rel.startswith("/"):
            rel = "_outside/" + rel.lstrip("/")
        return self.state.backup_dir / rel

    def original_text(self, path: Path) -> str | None:
        b = self.backup_path(path)
        if b.exists():
            return b.read_text("utf-8")
        if path.exists():
            return path.read_text("utf-8")
        return None

    def pause(self) -> None:
        """Test hook (FLYMIGRATE_APPLY_TEST_DELAY): widen the window between writes for kill tests."""
        if self.test_delay:
            time.sleep(self.test_delay)

    def write(self, step: str, change: FileChange) -> bool:
        """Write one file: back up the original once, refuse to clobber edits made after flymigrate wrote it.
        Bytes on disk are compared and kept as they are (a latin-1 or UTF-16 file round-trips exactly)."""
        path = change.path
        key = self.rel_app(path)
        new_bytes = change.new.encode(change.encoding)
        current = path.read_bytes() if path.exists() else None

        def digest(data: bytes) -> str:
            try:
                return sha256_text(data.decode(change.encoding))
            except UnicodeDecodeError:
                return sha256_text(data)

        if current == new_bytes:
            self.state.record_written(key, sha256_text(change.new))
            return False
        if current is not None:
            b = self.backup_path(path)
            ours = digest(current) in self.state.written(key)
            if not b.exists():
                if not ours:
                    ensure_private_dir(b.parent)
                    atomic_write(b, current, mode=0o600)
            elif not ours and current != b.read_bytes() and not change.generated:
                raise UserError(f"{change.rel} changed since flymigrate rewrote it; not overwriting your edits.",
                                hint=f"The original is in {b}. Undo your edit or restore the original, then "
                                "re-run.")
            elif not ours and change.generated and current != b.read_bytes():
                # a generated file the user replaced: keep theirs as a numbered backup
                n = 2
                while b.with_name(f"{b.name}.{n}").exists():
                    n += 1
                atomic_write(b.with_name(f"{b.name}.{n}"), current, mode=0o600)
        mode = change.mode
        if mode is None and current is None:
            mode = 0o644
        # record before writing: a kill between the two leaves a hash we own, never a stranger's file
        self.state.record_written(key, sha256_text(change.new))
        self.state.save()
        atomic_write(path, new_bytes, mode=mode)
        self.emit("progress", step, f"wrote {change.rel}", path=change.rel)
        self.pause()
        return True
