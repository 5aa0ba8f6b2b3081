"""The walkthrough's headless side: what the screens show, computed from :mod:`flymigrate.api` only.

Nothing here imports Textual, and nothing here decides anything the CLI would decide differently: the
plans come from the same planner, the transfer is the same engine (same journal, so ``flymigrate
transfer`` with the same URLs continues a transfer started here and vice versa). This module only
turns those results into lines to show and keeps transfer progress counters.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import api
from ..errors import FlymigrateError, UserError
from ..model import TARGETS, FlyApp, Plan, Step

TARGET_LABELS = {"modal": "Modal", "runpod": "RunPod Serverless", "cloudrun": "Google Cloud Run"}
TARGET_SHORT = {"modal": "Modal", "runpod": "RunPod", "cloudrun": "Cloud Run"}
STEP_SHORT = {"weights": "Weights", "dockerfile": "Dockerfile", "secrets": "Secrets", "base_urls": "Base URLs",
              "scaling": "Scaling"}
# compare.py row keys per target (RunPod: flex workers, the scale-to-zero mode)
COMPARE_ROW = {"modal": "modal", "runpod": "runpod-flex", "cloudrun": "cloudrun"}


@dataclass(frozen=True)
class Session:
    """Everything the screens need, loaded once in a worker."""

    app_dir: Path
    app: FlyApp
    plans: dict[str, Plan]
    comparison: Any | None  # flymigrate.compare.Comparison when that module is installed
    dockerfile_text: str | None
    inputs_read: tuple[tuple[str, str], ...]
    secrets_paths: tuple[str, ...] = ()
    code_dirs: tuple[str, ...] = ()
    # apply's per-step previews (flymigrate.apply.StepPreview) per target; refreshed after a step runs
    previews: dict[str, dict[str, Any]] = field(default_factory=dict)
    preview_errors: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.app.app or self.app_dir.resolve().name


def load_session(app_dir: Path, *, secrets_paths: list[str] | None = None,
                 code_dirs: list[str] | None = None, preview_targets: tuple[str, ...] = ()) -> Session:
    """Read the app once and plan it for every target (reads only)."""
    inp = api.load_inputs(app_dir, secrets_paths=secrets_paths or None, code_dirs=code_dirs or None)
    plans = {t: api.build_plan(inp, t) for t in TARGETS}
    comparison = None
    try:
        from ..compare import compare_app  # optional: the cost / cold-start model
    except ImportError:  # pragma: no cover - older builds
        compare_app = None
    if compare_app is not None:
        try:
            comparison = compare_app(inp.app, plans[TARGETS[0]].weights.size_bytes)
        except FlymigrateError:
            comparison = None
    session = Session(app_dir=app_dir, app=inp.app, plans=plans, comparison=comparison,
                      dockerfile_text=inp.dockerfile.text if inp.dockerfile else None, inputs_read=inp.inputs,
                      secrets_paths=tuple(secrets_paths or ()), code_dirs=tuple(code_dirs or ()))
    for t in preview_targets:
        session.previews[t], err = load_previews(session, t)
        if err:
            session.preview_errors[t] = err
    return session


def apply_available() -> bool:
    return callable(getattr(api, "preview", None)) and callable(getattr(api, "apply", None))


def load_previews(session: Session, target: str) -> tuple[dict[str, Any], str | None]:
    """``flymigrate apply``'s own previews (real diffs, generated files, secret names); empty without apply."""
    if not apply_available():
        return {}, None
    try:
        previews = api.preview(session.app_dir, target, secrets_paths=list(session.secrets_paths) or None,
                               code_dirs=list(session.code_dirs) or None)
    except FlymigrateError as err:
        return {}, err.message
    return {p.step: p for p in previews}, None


def applied_status(app_dir: Path, target: str) -> dict[str, str]:
    """Step statuses `flymigrate apply` recorded in APP_DIR/.flymigrate/state.json (done from the CLI too)."""
    try:
        from ..apply import read_state
    except ImportError:
        return {}
    data = read_state(app_dir) or {}
    steps = ((data.get("targets") or {}).get(target) or {}).get("steps") or {}
    return {sid: str(st.get("status", "")) for sid, st in steps.items() if isinstance(st, dict)}


# ---- what the screens show ----------------------------------------------------------------------------------


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "unknown"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def fmt_duration(s: float | None) -> str:
    if s is None or s != s or s < 0:
        return "--"
    s = int(round(s))
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def findings_sorted(plan: Plan) -> list[Any]:
    order = {"error": 0, "warning": 1, "info": 2}
    return sorted(plan.findings, key=lambda f: order.get(f.severity, 3))


def target_facts(session: Session) -> list[tuple[str, dict[str, str]]]:
    """Rows of (fact, {target: text}) for the side-by-side target table."""
    rows: list[tuple[str, dict[str, str]]] = []

    def row(label: str, fn: Callable[[str, Plan], str]) -> None:
        rows.append((label, {t: fn(t, p) for t, p in session.plans.items()}))

    def gpu(_t: str, p: Plan) -> str:
        g = p.gpu or {}
        if not g:
            return "no GPU in fly.toml"
        fit = "fits" if g.get("fits") else ("BLOCKED" if g.get("blocked") else "does not fit")
        return f"{g.get('target_gpu')}, {g.get('target_vram_gb', '?')} GB, {fit}"

    def scaling(_t: str, p: Plan) -> str:
        s = p.scaling
        if s is None:
            return "n/a"
        idle = f", idle {s.idle_timeout_s}s" if s.idle_timeout_s is not None else ""
        conc = f", {s.max_concurrency} per instance" if s.max_concurrency else ""
        return f"{s.min}-{s.max}{idle}{conc}"

    def lost(_t: str, p: Plan) -> str:
        items = [c for st in p.steps for c in st.cannot]
        return "; ".join(items) if items else "nothing"

    def manual(_t: str, p: Plan) -> str:
        names = [STEP_SHORT[s.id] for s in p.steps if s.status in ("manual", "blocked")]
        return ", ".join(names) if names else "none"

    row("GPU", gpu)
    row("Scaling", scaling)
    row("Steps needing you", manual)
    c = session.comparison
    if c is not None:
        def cost(t: str, _p: Plan) -> str:
            try:
                r = c.row(COMPARE_ROW[t])
            except KeyError:
                return "n/a"
            return f"${r.monthly_scale_to_zero:,.0f}/month" if r.monthly_scale_to_zero is not None else "n/a"

        def cold(t: str, _p: Plan) -> str:
            try:
                r = c.row(COMPARE_ROW[t])
            except KeyError:
                return "n/a"
            return f"~{r.cold_start_s:.0f}s" if r.cold_start_s is not None else "n/a"

        row("Cost (scale to zero)", cost)
        row("Cold start", cold)
    row("What is lost", lost)
    return rows


def _file_line(app_dir: Path, rel: str, line: int) -> str | None:
    try:
        with open(app_dir / rel, encoding="utf-8", errors="replace") as fh:
            for i, text in enumerate(fh, 1):
                if i == line:
                    return text.rstrip("\n")
    except OSError:
        return None
    return None


def _apply_preview_lines(p: Any) -> list[str]:
    out = [f"  {p.summary}"] if p.summary else []
    out += [f"x {b}" for b in p.blocking]
    for c in p.changes:
        if not c.changed:
            continue
        out.append(f"@ {'new file' if c.old is None else 'change'} {c.rel}")
        for line in c.diff().splitlines():
            if line.startswith(("+++", "---")):
                continue
            if line.startswith("@@"):
                out.append(f"  {line}")
            elif line.startswith(("+", "-")):
                out.append(line)
            else:
                out.append(f" {line}")
    if p.secrets:
        out.append("@ secrets (names only; values never shown)")
        out += [f"+ {name}" for name in p.secrets]
    out += [f"  $ {cmd}" for cmd in p.commands]
    out += [f"  note: {n}" for n in p.notes]
    return out


def step_preview(session: Session, target: str, step_id: str) -> list[str]:
    """The preview of one step as lines; a leading '+', '-', '?', '!', 'x' or '@' marks how to colour it.

    Steps 2-5 show ``flymigrate apply``'s own preview (the exact diffs it would write) when apply is installed.
    """
    plan = session.plans[target]
    step = plan.step(step_id)
    ap = session.previews.get(target, {}).get(step_id)
    if ap is not None and step_id != "weights":
        return _apply_preview_lines(ap) + [f"? {n}" for n in step.needs] + [f"! {c}" for c in step.cannot]
    out: list[str] = []
    if step_id == "weights":
        w = plan.weights
        out.append(f"@ from  {w.chosen.url if w.chosen and w.chosen.url else '(no source found)'}")
        if w.chosen:
            out.append(f"  {w.chosen.description}" + (f" ({w.chosen.where})" if w.chosen.where else ""))
        out.append(f"@ to    {w.destination_url or '(no destination)'}")
        if w.mount_path:
            out.append(f"  mounted where the app expects it: {w.mount_path}")
        for k, v in w.env:
            out.append(f"+ env {k}={v}")
        out.append(f"  size: {fmt_bytes(w.size_bytes)}")
        for s in w.sources:
            if s is not w.chosen:
                out.append(f"  also found: {s.description}")
        if ap is not None:
            out += [f"x {b}" for b in ap.blocking]
            if ap.data.get("layout") == "hf-cache":
                out.append("  note: the walkthrough copies the files as they are to the URL below; `flymigrate apply "
                           "--only weights` also lays them out as a Hugging Face cache (snapshots/<commit>/)")
    elif step_id == "dockerfile":
        lines = (session.dockerfile_text or "").splitlines()
        in_df = [d for d in plan.docker_issues if d.line and d.where and d.where.split(":")[0].lower().endswith("dockerfile")]
        elsewhere = [d for d in plan.docker_issues if d not in in_df]
        if in_df:
            name = in_df[0].where.rsplit(":", 1)[0] if in_df[0].where else "Dockerfile"
            out.append(f"@ {name}: lines that change")
            for d in sorted(in_df, key=lambda d: d.line or 0):
                old = lines[d.line - 1] if d.line and d.line <= len(lines) else ""
                out.append(f"  line {d.line}: {d.message}")
                out.append(f"- {old}")
                out.append(f"+ ({d.fix})" if d.fix else "+ (changed)")
        for d in elsewhere:
            out.append(f"@ {d.where or '(image)'}")
            out.append(f"  {d.message}")
            if d.fix:
                out.append(f"+ {d.fix}")
        extra = [c for c in step.changes if not any(c.endswith(d.fix) for d in plan.docker_issues if d.fix)]
        for c in extra:
            if not any(d.message in c for d in plan.docker_issues):
                out.append(f"+ {c}")
    elif step_id == "secrets":
        made = [s for s in plan.secrets if s.has_value]
        missing = [s for s in plan.secrets if not s.has_value]
        if made:
            out.append(f"@ will be created on {TARGET_LABELS[target]} ({len(made)})")
            out += [f"+ {s.name}  ->  {s.target_ref}" for s in made]
        if missing:
            out.append(f"@ must be added by hand: no value in your export ({len(missing)})")
            out += [f"? {s.name}  ->  {s.target_ref}" for s in missing]
        if not plan.secrets:
            out.append("  no secrets found (pass --secrets FILE with your `fly secrets` export)")
        out.append("  values are never shown here, written to files or passed on a command line")
    elif step_id == "base_urls":
        by_file: dict[str, list[Any]] = {}
        for h in plan.base_urls:
            by_file.setdefault(h.path, []).append(h)
        for path, hits in by_file.items():
            out.append(f"@ {path}")
            by_line: dict[int, list[Any]] = {}
            for h in hits:
                by_line.setdefault(h.line, []).append(h)
            for line_no, line_hits in by_line.items():
                old = _file_line(session.app_dir, path, line_no)
                if old is None:
                    for h in line_hits:
                        out.append(f"- {line_no}: {h.old}")
                        out.append(f"+ {line_no}: {h.new}")
                    continue
                new = old
                for h in line_hits:
                    new = new.replace(h.old, h.new or h.old)
                out.append(f"- {line_no}: {old}")
                out.append(f"+ {line_no}: {new}")
        if not plan.base_urls:
            out.append("  no Fly URLs found in the code")
        for h in plan.other_fly_urls:
            out.append(f"! {h.path}:{h.line}: {h.old} is another Fly app (not rewritten)")
    elif step_id == "scaling":
        s = plan.scaling
        if s is not None and s.config:
            out.append(f"@ generated {TARGET_LABELS[target]} config")
            out += [f"+ {k} = {v!r}" for k, v in s.config]
            out += [f"  {n}" for n in s.notes]
        else:
            out += [f"+ {c}" for c in step.changes]
    for n in step.needs:
        out.append(f"? {n}")
    for c in step.cannot:
        out.append(f"! {c}")
    return out


def step_checks(session: Session, target: str, step_id: str) -> tuple[str, ...]:
    """The manual checks from ``checklists/`` for this step and target (the planner copies them in)."""
    step: Step = session.plans[target].step(step_id)
    if step.manual_checks:
        return step.manual_checks
    from ..checklists import load_steps

    return load_steps()[step_id].checks(target)


def step_why(step_id: str) -> str:
    from ..checklists import load_steps

    return load_steps()[step_id].why


# ---- running steps ------------------------------------------------------------------------------------------


def run_step(session: Session, target: str, step_id: str, stop: threading.Event | None = None) -> str:
    """Carry out one non-transfer step with ``flymigrate apply --only STEP``; returns a one-line result."""
    if not apply_available():
        raise UserError(
            f"this build cannot carry out the {STEP_SHORT[step_id]} step from the walkthrough "
            "(its executor, `flymigrate apply`, is not installed).",
            hint="Make the changes shown in the preview by hand, then press m to mark the step done; "
            "your ticks and progress are kept.")
    from ..apply import ApplyOptions

    result = api.apply(session.app_dir, target, options=ApplyOptions(target=target, only=(step_id,), yes=True),
                       stop=stop, secrets_paths=list(session.secrets_paths) or None,
                       code_dirs=list(session.code_dirs) or None)
    outcome = next((o for o in result.outcomes if o.step == step_id), None)
    if outcome is None:
        return "nothing to do"
    if outcome.status == "blocked":
        raise UserError(f"the {STEP_SHORT[step_id]} step is blocked: {outcome.message}.",
                        hint="Do what it asks (see the preview), then press r again; or do the step by hand "
                        "and press m.")
    if outcome.status == "skipped":
        raise UserError(f"this step needs you: {outcome.message}",
                        hint="Do it by hand with the preview and the checks below, then press m to mark it done.")
    if outcome.status == "failed":
        raise UserError(f"the {STEP_SHORT[step_id]} step failed: {outcome.message}.", hint="Press r to try again.")
    return outcome.message or outcome.status.replace("_", " ")


# ---- the weight transfer ------------------------------------------------------------------------------------


@dataclass
class FileProgress:
    path: str
    total: int
    done: int = 0
    status: str = "queued"  # queued | copying | done | skipped | failed


@dataclass
class TransferSnapshot:
    """A copy of the counters, safe to hand to the UI thread."""

    files: list[FileProgress]
    bytes_total: int
    bytes_done: int
    rate: float  # bytes/s over the last few seconds
    eta_s: float | None
    retries: int
    last_retry: str
    files_done: int
    files_total: int
    phase: str  # starting | copying | done | stopped | failed
    message: str = ""


@dataclass
class TransferTracker:
    """Folds the engine's :class:`~flymigrate.transfer.engine.Event` stream into counters."""

    files: dict[str, FileProgress] = field(default_factory=dict)
    bytes_total: int = 0
    bytes_done: int = 0
    retries: int = 0
    planned_files: int = 0
    last_retry: str = ""
    phase: str = "starting"
    message: str = ""
    window: deque[tuple[float, int]] = field(default_factory=deque)
    clock: Callable[[], float] = time.monotonic
    lock: threading.Lock = field(default_factory=threading.Lock)

    def feed(self, ev: Any) -> None:
        with self.lock:
            k = ev.kind
            if k == "plan":
                self.planned_files = int(ev.data.get("to_copy", 0) or 0)
                self.bytes_total = int(ev.total)
                self.phase = "copying"
                self.message = ev.message
            elif k == "file_start":
                fp = self.files.setdefault(ev.path or "", FileProgress(ev.path or "", int(ev.total)))
                fp.total = int(ev.total) or fp.total
                fp.status = "copying"
            elif k in ("bytes", "resumed"):
                fp = self.files.setdefault(ev.path or "", FileProgress(ev.path or "", 0))
                fp.done += int(ev.bytes)
                fp.status = "copying"
                self.bytes_done += int(ev.bytes)
                if k == "bytes":
                    self.window.append((self.clock(), int(ev.bytes)))
            elif k == "file_done":
                fp = self.files.setdefault(ev.path or "", FileProgress(ev.path or "", int(ev.total)))
                fp.status = "done"
                fp.done = fp.total = int(ev.total) or fp.total
            elif k == "file_skip":
                self.files[ev.path or ""] = FileProgress(ev.path or "", int(ev.total), int(ev.total), "skipped")
            elif k == "file_failed":
                fp = self.files.setdefault(ev.path or "", FileProgress(ev.path or "", int(ev.total)))
                fp.status = "failed"
            elif k == "retry":
                self.retries += 1
                self.last_retry = (f"{ev.path}: " if ev.path else "") + ev.message
            elif k == "done":
                self.phase = "done"
                self.message = ev.message

    def snapshot(self) -> TransferSnapshot:
        with self.lock:
            now = self.clock()
            while self.window and now - self.window[0][0] > 5.0:
                self.window.popleft()
            span = max(0.5, now - self.window[0][0]) if self.window else 0.0
            rate = sum(b for _, b in self.window) / span if span else 0.0
            left = max(0, self.bytes_total - self.bytes_done)
            eta = left / rate if rate > 0 else None
            files = [FileProgress(f.path, f.total, f.done, f.status) for f in self.files.values()]
            counted = [f for f in files if f.status != "skipped"]
            return TransferSnapshot(files=sorted(files, key=lambda f: f.path), bytes_total=self.bytes_total,
                                    bytes_done=min(self.bytes_done, self.bytes_total or self.bytes_done), rate=rate,
                                    eta_s=eta, retries=self.retries, last_retry=self.last_retry,
                                    files_done=sum(1 for f in counted if f.status == "done"),
                                    files_total=max(self.planned_files, len(counted)), phase=self.phase, message=self.message)


def saved_transfer(src: str, dst: str) -> dict[str, Any] | None:
    """The engine's journal summary for this pair of URLs, if a transfer was started before."""
    from ..transfer.engine import list_status

    for row in list_status():
        if row.get("src") == src and row.get("dst") == dst:
            return row
    return None


def run_weights(src: str, dst: str, stop: threading.Event, on_event: Callable[[Any], None]) -> Any:
    """Run (or continue) the transfer; setting ``stop`` makes the engine save state and raise Interrupted."""
    from ..transfer.engine import TransferOptions, run_transfer

    if "<" in src or "<" in dst:
        raise UserError("the transfer URL still holds a placeholder (the part in <...>).",
                        hint="Edit the source or destination above with the real value, then press r.")
    return run_transfer(src, dst, TransferOptions(stop=stop), progress=on_event)


def cli_equivalent(src: str, dst: str) -> str:
    return f"flymigrate transfer {src} {dst}"
