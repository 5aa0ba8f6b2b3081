"""The walkthrough's headless side: what the screens show, computed from :mod:`flymigrate.api` only.

Nothing here imports Textual, and nothing here decides anything the CLI would decide differently: the
plans come from the same planner, the transfer is the same engine (same journal, so ``flymigrate
transfer`` with the same URLs continues a transfer started here and vice versa). This module only
turns those results into lines to show and keeps transfer progress counters.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # type checkers see the standard decorator
    from dataclasses import dataclass, field
else:  # start-up time: no exec per generated method (flymigrate/_dataclass.py)
    from .._dataclass import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import FlymigrateError, UserError
from ..model import FlyApp, Plan, Step
from ..targets import LABELS, SHORT_LABELS, TARGETS, _AttrMap


def _api() -> Any:
    """The facade, imported on first use: parsing and planning are not needed for the first paint."""
    from .. import api

    return api



TARGET_LABELS = LABELS
TARGET_SHORT = SHORT_LABELS
STEP_SHORT = {"weights": "Weights", "dockerfile": "Dockerfile", "secrets": "Secrets", "base_urls": "Base URLs",
              "scaling": "Scaling"}
# compare.py row keys per target (RunPod: flex workers, the scale-to-zero mode)
COMPARE_ROW = _AttrMap("compare_row")


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
    config_path: str | None = None  # --config, --gpu, --app as given to `flymigrate tui`
    gpu: str | None = None
    app_name: str | None = None
    # apply's per-step previews (flymigrate.apply.StepPreview) per target; refreshed after a step runs
    previews: dict[str, dict[str, Any]] = field(default_factory=dict)
    preview_errors: dict[str, str] = field(default_factory=dict)
    base_urls: dict[str, str] = field(default_factory=dict)  # the new endpoint per target, once the user knows it

    @property
    def name(self) -> str:
        return self.app.app or self.app_dir.resolve().name

    def api_kwargs(self) -> dict[str, Any]:
        """What every api call of this session passes on: the inputs exactly as the user gave them."""
        return {"secrets_paths": list(self.secrets_paths) or None, "code_dirs": list(self.code_dirs) or None,
                "config_path": self.config_path, "gpu": self.gpu, "app_name": self.app_name}


def load_session(app_dir: Path, *, secrets_paths: list[str] | None = None,
                 code_dirs: list[str] | None = None, preview_targets: tuple[str, ...] = (),
                 base_urls: dict[str, str] | None = None, config_path: str | None = None, gpu: str | None = None,
                 app_name: str | None = None) -> Session:
    """Read the app once and plan it for every target (reads only)."""
    inp = _api().load_inputs(app_dir, secrets_paths=secrets_paths or None, code_dirs=code_dirs or None,
                             config_path=config_path, gpu=gpu, app_name=app_name)
    plans = {t: _api().build_plan(inp, t) for t in TARGETS}
    comparison = None
    attach = getattr(_api(), "attach_comparison", None)  # the cost / cold-start model, as `flymigrate plan` adds it
    if attach is not None:
        try:
            comparison = getattr(attach(plans[TARGETS[0]], inp, plans), "comparison", None)
        except FlymigrateError:
            comparison = None
    session = Session(app_dir=app_dir, app=inp.app, plans=plans, comparison=comparison,
                      dockerfile_text=inp.dockerfile.text if inp.dockerfile else None, inputs_read=inp.inputs,
                      secrets_paths=tuple(secrets_paths or ()), code_dirs=tuple(code_dirs or ()),
                      base_urls=dict(base_urls or {}), config_path=config_path, gpu=gpu, app_name=app_name)
    for t in preview_targets:
        session.previews[t], err = load_previews(session, t)
        if err:
            session.preview_errors[t] = err
    return session


def apply_available() -> bool:
    return callable(getattr(_api(), "preview", None)) and callable(getattr(_api(), "apply", None))


def load_previews(session: Session, target: str) -> tuple[dict[str, Any], str | None]:
    """``flymigrate apply``'s own previews (real diffs, generated files, secret names); empty without apply."""
    if not apply_available():
        return {}, None
    from ..apply import ApplyOptions

    try:
        previews = _api().preview(session.app_dir, target,
                               options=ApplyOptions(target=target, base_url=session.base_urls.get(target) or None),
                               **session.api_kwargs())
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
    if s is None or math.isnan(s) or s < 0:
        return "--"
    s = round(s)
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


class _CompareTarget:
    """A comparison row key -> the target it prices (a target's own key, or the key with a variant suffix such
    as RunPod's flex / active rows), read from the registry."""

    def get(self, key: str | None, default: str | None = None) -> str | None:
        from ..targets import names

        return next((t for t in names() if key == t or (key or "").startswith(t + "-")), default)


COMPARE_TARGET = _CompareTarget()


def is_vllm(session: Session) -> bool:
    text = " ".join([session.app.build.image or "", session.dockerfile_text or ""]).lower()
    return "vllm" in text


def server_neutral(session: Session, text: str) -> str:
    """Advice worded for the app's own server: vLLM flags only for a vLLM app (a whisper app has none)."""
    if is_vllm(session) or "vLLM" not in text:
        return text
    return text.replace("e.g. vLLM --max-num-seqs, a semaphore", "e.g. a semaphore or the server's own limit")


def findings_sorted(plan: Plan) -> list[Any]:
    order = {"error": 0, "warning": 1, "info": 2}
    return sorted(plan.findings, key=lambda f: order.get(f.severity, 3))


def target_facts(session: Session) -> list[tuple[str, dict[str, str]]]:
    """Rows of (fact, {target: text}) for the side-by-side target table."""
    rows: list[tuple[str, dict[str, str]]] = []

    def row(label: str, fn: Callable[[str, Plan], str]) -> None:
        rows.append((label, {t: fn(t, p) for t, p in session.plans.items()}))

    def gpu(_t: str, p: Plan) -> str:  # the Deployment's GPU (what apply writes), with the plan's fit check
        g, dep = p.gpu or {}, p.deployment
        if not g:
            return "CPU only (no GPU)" if any(f.code == "cpu-only" for f in p.findings) else "no GPU in fly.toml"
        fit = "fits" if g.get("fits") else ("BLOCKED" if g.get("blocked") else "does not fit")
        name = (dep.gpu if dep is not None else g.get("target_gpu")) or "not offered"
        count = dep.gpu_count if dep is not None else 1
        vram = f"{g.get('target_vram_gb', '?')} GB"
        return f"{name}, {f'{count} x ' if count > 1 else ''}{vram}, {fit}"

    def scaling(_t: str, p: Plan) -> str:  # the Deployment's scaling
        s = p.deployment.scaling if p.deployment is not None else p.scaling
        if s is None:
            return "n/a"
        idle = f", idle {s.idle_timeout_s}s" if s.idle_timeout_s is not None else ""
        conc = f", {s.max_concurrency} per instance" if s.max_concurrency else ""
        return f"{s.min}-{s.max}{idle}{conc}"

    def lost(_t: str, p: Plan) -> str:
        items = [server_neutral(session, c) for st in p.steps for c in st.cannot]
        return "; ".join(items) if items else "nothing"

    def manual(_t: str, p: Plan) -> str:
        names = [STEP_SHORT[s.id] for s in p.steps if s.status in ("manual", "blocked")]
        return ", ".join(names) if names else "none"

    row("GPU", gpu)
    row("Scaling", scaling)
    row("Steps needing you", manual)
    c = session.comparison
    if c is not None:
        def cost(t: str, _p: Plan) -> str:  # the row that prices this target's Deployment as planned
            try:
                r = c.row_for(t)
            except KeyError:
                return "n/a"
            return f"${r.monthly:,.0f}/month" if r.monthly is not None else "n/a"

        def cold(t: str, _p: Plan) -> str:
            try:
                r = c.row_for(t)
            except KeyError:
                return "n/a"
            return f"~{r.cold_start_s:.0f}s" if r.cold_start_s is not None else "n/a"

        row("Cost (as planned)", cost)
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
    if session.preview_errors.get(target):
        out.append(f"x flymigrate apply cannot preview this yet: {session.preview_errors[target]}")
    if step_id == "weights":
        w = plan.weights
        out.append(f"@ from  {w.chosen.url if w.chosen and w.chosen.url else '(no source found)'}")
        if w.chosen:
            out.append(f"  {w.chosen.description}" + (f" ({w.chosen.where})" if w.chosen.where else ""))
        if ap is None:
            out.append(f"@ to    {plan.weights_destination or '(no destination)'}")
        if plan.weights_mount_path:
            out.append(f"  mounted where the app expects it: {plan.weights_mount_path}")
        for k, v in w.env:
            out.append(f"+ env {k}={v}")
        out.append(f"  size: {fmt_bytes(w.size_bytes)}")
        for s in w.sources:
            if s is not w.chosen:
                out.append(f"  also found: {s.description}")
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


def step_heading(session: Session, target: str, step_id: str) -> tuple[str, str, str]:
    """(title, status, summary) of a step page, as the plan states them (its JSON ``steps[]``)."""
    step = session.plans[target].step(step_id)
    return step.title, step.status, server_neutral(session, step.summary)


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

    options = ApplyOptions(target=target, only=(step_id,), yes=True, base_url=session.base_urls.get(target) or None)
    result = _api().apply(session.app_dir, target, options=options,
                       stop=stop, **session.api_kwargs())
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
#
# The transfer runs through `flymigrate apply --only weights` (same URLs, same Hugging Face cache layout, same
# journal as the CLI). Live progress is read from the transfer engine's journals (exact bytes per file, also
# across the two transfers of the HF cache layout); retries come from apply's events.

WEIGHTS_FIELDS: dict[str, tuple[str, str, str]] = {  # key -> (label, placeholder, apply flag)
    "from": ("from", "hf://ORG/REPO, s3://BUCKET/PREFIX, a local folder", "--weights-from"),
    "volume_id": ("volume id", "RunPod network volume id", "--volume-id"),
    "datacenter": ("datacenter", "RunPod datacenter, e.g. EU-RO-1", "--datacenter"),
    "endpoint_url": ("endpoint", "S3 endpoint (default: from the datacenter)", "--endpoint-url"),
    "bucket": ("bucket", "GCS bucket for the weights", "--bucket"),
}
FIELDS_BY_TARGET = _AttrMap("weights_fields", ("from",))


def weights_defaults(session: Session, target: str) -> dict[str, str]:
    w = session.plans[target].weights
    return {"from": w.chosen.url if w.chosen and w.chosen.url else ""}


def _weights_options(target: str, fields: dict[str, str]) -> Any:
    from ..apply import ApplyOptions

    def get(key: str) -> str | None:
        value = fields.get(key, "").strip()
        return value if value and key in FIELDS_BY_TARGET[target] else None

    return ApplyOptions(target=target, only=("weights",), yes=True, weights_from=get("from"),
                        volume_id=get("volume_id"), datacenter=get("datacenter"), bucket=get("bucket"),
                        endpoint_url=get("endpoint_url"))


def weights_preview(session: Session, target: str, fields: dict[str, str]) -> Any | None:
    """apply's preview of the weights step with these settings (None without apply)."""
    if not apply_available():
        return None
    previews = _api().preview(session.app_dir, target, options=_weights_options(target, fields),
                           **session.api_kwargs())
    return previews[0] if previews else None


def weights_cli(session: Session, target: str, fields: dict[str, str]) -> str:
    """The command that continues (or runs) the same transfer from a shell."""
    import shlex

    parts = ["flymigrate", "apply", str(session.app_dir), "--to", target, "--only", "weights"]
    for key in FIELDS_BY_TARGET[target]:
        value = fields.get(key, "").strip()
        if value and not (key == "from" and value == weights_defaults(session, target)["from"]):
            parts += [WEIGHTS_FIELDS[key][2], value]
    return " ".join(shlex.quote(p) for p in parts)


def run_weights(session: Session, target: str, fields: dict[str, str], stop: threading.Event,
                on_event: Callable[[Any], None]) -> str:
    """Run (or continue) the weights step; setting ``stop`` saves state and raises Interrupted."""
    if not apply_available():
        raise UserError("this build cannot move the weights from the walkthrough (`flymigrate apply` is not "
                        "installed).", hint="Use `flymigrate transfer SRC DST`, then press m to mark the step done.")
    result = _api().apply(session.app_dir, target, options=_weights_options(target, fields), reporter=on_event,
                       stop=stop, **session.api_kwargs())
    outcome = next((o for o in result.outcomes if o.step == "weights"), None)
    if outcome is None:
        return "nothing to do"
    if outcome.status == "blocked":
        raise UserError(f"the weights step is blocked: {outcome.message}.",
                        hint="Fill in the fields above (Enter refreshes the preview), then press r again.")
    if outcome.status in ("skipped", "nothing_to_do"):
        raise UserError(f"nothing was copied: {outcome.message}", hint="Fill in where the weights come from above.")
    return outcome.message or outcome.status.replace("_", " ")


@dataclass
class FileProgress:
    path: str
    total: int
    done: int = 0
    status: str = "pending"  # pending | uploading | done | skipped | failed


@dataclass
class TransferSnapshot:
    """What the transfer view shows, computed off the UI thread."""

    files: list[FileProgress]
    bytes_total: int
    bytes_done: int
    rate: float  # bytes/s over the last few seconds
    eta_s: float | None
    retries: int
    last_retry: str
    files_done: int
    files_total: int
    started: bool  # a journal exists for this destination


def _journal_files(path: str) -> list[FileProgress]:
    import sqlite3

    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
        try:
            rows = db.execute("SELECT path, size, bytes_done, status FROM files ORDER BY path").fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return []
    out = []
    for rel, size, done, status in rows:
        done = size if status in ("done", "skipped") else min(done or 0, size)
        out.append(FileProgress(rel, int(size), int(done), str(status)))
    return out


def _matching_journals(src: str, dest: str) -> list[dict[str, Any]]:
    from ..transfer.engine import list_status

    root = dest.rstrip("/")
    out = []
    for row in list_status():
        rsrc, rdst = str(row.get("src") or ""), str(row.get("dst") or "").rstrip("/")
        if not (rdst == root or rdst.startswith(root + "/")):
            continue
        if src and not (rsrc == src or rsrc.startswith(src + "@") or "hf-refs" in rsrc):
            continue
        out.append(row)
    return out


@dataclass
class TransferWatch:
    """Turns journal polls and apply's retry events into :class:`TransferSnapshot` s."""

    src: str
    dest: str
    retries: int = 0
    last_retry: str = ""
    window: deque[tuple[float, int]] = field(default_factory=deque)
    clock: Callable[[], float] = time.monotonic
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_apply_event(self, ev: Any) -> None:
        data = getattr(ev, "data", {}) or {}
        if data.get("event") == "retry":
            with self.lock:
                self.retries += 1
                self.last_retry = ev.message

    def poll(self) -> TransferSnapshot:
        files: list[FileProgress] = []
        rows = _matching_journals(self.src, self.dest)
        for row in rows:
            files += _journal_files(str(row.get("journal", "")))
        total = sum(f.total for f in files)
        done = sum(f.done for f in files)
        with self.lock:
            now = self.clock()
            self.window.append((now, done))
            while len(self.window) > 2 and now - self.window[0][0] > 5.0:
                self.window.popleft()
            t0, d0 = self.window[0]
            rate = (done - d0) / (now - t0) if now - t0 > 0.2 else 0.0
            retries, last_retry = self.retries, self.last_retry
        rate = max(rate, 0.0)
        eta = (total - done) / rate if rate > 0 else None
        counted = [f for f in files if f.status != "skipped"]
        return TransferSnapshot(files=files, bytes_total=total, bytes_done=done, rate=rate, eta_s=eta,
                                retries=retries, last_retry=last_retry,
                                files_done=sum(1 for f in counted if f.status == "done"), files_total=len(counted),
                                started=bool(rows))
