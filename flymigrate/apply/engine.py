"""The apply engine: one executor per step, each with a UI-free ``preview`` and ``execute``.

Events go to a reporter callback (``ApplyEvent``); the CLI prints them, the TUI posts Textual messages.
State lives in ``APP_DIR/.flymigrate/state.json`` (see :mod:`.state`); originals are kept in
``APP_DIR/.flymigrate/backup/`` before anything is changed, and every rewrite starts from the original, so a
re-run never stacks changes and a second run after success writes nothing.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..deployment import Deployment
from ..errors import CredentialsMissing, FlymigrateError, ResumableError, UserError
from ..fsutil import atomic_write
from ..model import Plan
from ..paths import ensure_private_dir
from ..planner import PlanInputs, build_plan
from ..scan import apply_hits, find_in_text, read_text_enc
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


# ------------------------------------------------------------------------------------------------ weights


def _join(url: str, sub: str) -> str:
    sub = sub.strip("/")
    if not sub:
        return url if url.endswith("/") else url + "/"
    return url.rstrip("/") + "/" + sub + "/"


def preview_weights(ctx: Context) -> StepPreview:
    spec = ctx.spec
    src = ctx.weights_source
    p = StepPreview("weights", TITLES["weights"], "ready", "")
    if not src:
        p.status = "nothing_to_do" if not ctx.plan.weights.mount_path else "manual"
        p.summary = ("No weights source known: pass --weights-from hf://ORG/REPO, s3://BUCKET/PREFIX, a local folder "
                     "or fly-volume://APP/VOLUME/ (or move them yourself with `flymigrate transfer`)."
                     if p.status == "manual" else "No weights to move.")
        return p
    dest = spec.weights_dest
    if dest is None or _PLACEHOLDER_RE.search(dest):
        p.status = "blocked"
        p.blocking.append(f"the destination {dest} has a placeholder: pass {ctx.target.weights_option_hint()}")
        p.summary = f"{src} -> {dest}"
        return p
    blocking = ctx.target.weights_blocking(spec)
    if blocking:
        p.status = "blocked"
        p.blocking += blocking
    lay = spec.layout
    if lay.kind == "hf-cache":
        base = _join(dest, lay.subdir)
        p.summary = f"{src} -> {base}snapshots/<commit>/ ({lay.note}; mounted at {lay.mount_path})"
    else:
        p.summary = f"{src} -> {_join(dest, lay.subdir)} (mounted at {lay.mount_path})"
    p.commands.append(f"flymigrate transfer {src} {_join(dest, lay.subdir)}"
                      + (" (+ snapshots/<commit>/ and refs/main)" if lay.kind == "hf-cache" else ""))
    p.data = {"src": src, "dest": dest, "layout": lay.kind, "subdir": lay.subdir}
    return p


def _resolve_hf_commit(src: str) -> str:
    from ..transfer.base import AdapterOptions, parse_url
    from ..transfer.hf import source

    s = source(parse_url(src), AdapterOptions())
    try:
        for _ in s.list():
            break
    finally:
        s.close()
    assert s.commit
    return s.commit


def execute_weights(ctx: Context, p: StepPreview) -> str:
    from ..transfer.engine import TransferOptions, run_transfer

    src = p.data["src"]
    dest = p.data["dest"]
    lay = ctx.spec.layout
    st = ctx.state.step(ctx.plan.target, "weights")
    topts = TransferOptions(state_dir=Path(ctx.opts.state_dir) if ctx.opts.state_dir else None, stop=ctx.stop,
                            endpoint_url=ctx.opts.endpoint_url, datacenter=ctx.opts.datacenter)
    # the app's secrets export holds the credentials its weights lived behind (Tigris's AWS_*, HF_TOKEN):
    # the source is read with them, as the app read it (they take precedence over the environment)
    export = ctx.inputs.secrets
    file_env = {sec.name: sec.value.reveal() for sec in export.secrets if sec.value is not None} if export else {}
    if file_env:
        topts.env = {**os.environ, **file_env}
    last = [0.0]

    def progress(ev: Any) -> None:
        now = time.monotonic()
        if ev.kind in ("file_done", "file_skipped", "done", "warning", "retry") or now - last[0] > 1.0:
            last[0] = now
            ctx.emit("progress", "weights", f"{ev.kind} {ev.path or ''} {ev.message}".strip(),
                     bytes=ev.bytes, total=ev.total, event=ev.kind, path=ev.path)

    transfers: list[tuple[str, str]] = []
    if lay.kind == "hf-cache":
        repo = src[5:].split("@", 1)[0]
        commit = st.get("commit") if st.get("src") == src else None
        if not commit:
            commit = _resolve_hf_commit(src)
            ctx.state.set_step(ctx.plan.target, "weights", src=src, commit=commit)
        base = _join(dest, lay.subdir)
        refs_dir = ensure_private_dir(ctx.state.dir / "hf-refs" / repo.replace("/", "--"))
        ensure_private_dir(refs_dir / "refs")
        atomic_write(refs_dir / "refs" / "main", commit, mode=0o600)
        transfers = [(f"hf://{repo}@{commit}", base + f"snapshots/{commit}/"), (str(refs_dir), base)]
    else:
        transfers = [(src, _join(dest, lay.subdir))]
    copied = skipped = 0
    for s, d in transfers:
        ctx.emit("progress", "weights", f"transfer {s} -> {d}")
        res = run_transfer(s, d, topts, progress)
        if not res.ok:
            raise ResumableError(f"the weights transfer left {len(res.failed)} file(s) not copied.",
                                 hint="Run the same command again to continue.")
        copied += res.files_copied
        skipped += res.files_skipped
        ctx.pause()
    return f"{copied} file(s) copied, {skipped} already there"


# ------------------------------------------------------------------------------------------------ dockerfile


def preview_dockerfile(ctx: Context) -> StepPreview:
    spec = ctx.spec
    p = StepPreview("dockerfile", TITLES["dockerfile"], "ready", "")
    app = ctx.inputs.app
    df = ctx.inputs.dockerfile
    cfg_dir = ctx.app_dir
    if df is not None:
        path = cfg_dir / df.path
        new = spec.dockerfile_text if spec.dockerfile_text is not None else df.text
        cur = path.read_text("utf-8") if path.exists() else None
        p.changes.append(FileChange(df.path, path, cur, new, original=ctx.original_text(path)))
    elif spec.dockerfile_is_thin and spec.dockerfile_text:
        cand = ctx.out_dir / "Dockerfile"
        ours = cand.exists() and sha256_text(cand.read_text("utf-8")) in ctx.state.written(ctx.rel_app(cand))
        name = "Dockerfile" if not cand.exists() or ours else "Dockerfile.flymigrate"
        path = ctx.out_dir / name
        cur = path.read_text("utf-8") if path.exists() else None
        p.changes.append(FileChange(_shown(ctx, path), path, cur, spec.dockerfile_text, generated=True))
        p.notes.append(f"[build] image {app.build.image}: a thin Dockerfile FROM it carries what Fly added at deploy "
                       "time; build and push it, then point the target at the new image")
    # the app's own scripts ([[files]] sources, start.sh, entrypoints), as the Deployment has them
    for rel, new in spec.script_rewrites:
        path = ctx.app_dir / rel
        if path.is_symlink() or not path.is_file():
            continue
        cur = path.read_text("utf-8")
        p.changes.append(FileChange(rel, path, cur, new, original=ctx.inputs.scripts.get(rel)))
    p.notes += list(spec.notes) + ctx.target.plan_notes(spec).get("dockerfile", [])
    for i in ctx.plan.docker_issues:
        if i.kind == "registry":
            p.notes.append(f"{i.message} Re-push it (`fly auth docker`, docker pull/tag/push) and pass --image.")
        if i.kind == "baked-weights" and not ctx.weights_source:
            p.notes.append(f"{i.where}: weights are still downloaded at build time (no weights source to move them "
                           "from); pass --weights-from to put them on the volume instead")
    changed = [c for c in p.changes if c.changed]
    if not p.changes:
        p.status = "nothing_to_do"
        p.summary = "No Dockerfile or image to change."
    else:
        p.summary = (f"{len(changed)} file(s) to change: " + ", ".join(c.rel for c in changed)) if changed else \
            "Already portable (nothing left to change)."
    return p


def _shown(ctx: Context, path: Path) -> str:
    try:
        return path.resolve().relative_to(ctx.out_dir.resolve()).as_posix() if ctx.out_dir != ctx.app_dir \
            else ctx.rel_app(path)
    except ValueError:
        return str(path)


def execute_files(ctx: Context, p: StepPreview) -> str:
    n = 0
    for c in p.changes:
        if ctx.stop.is_set():
            raise ResumableError("stopped; state is saved.", hint="Run the same command again to continue.")
        if ctx.write(p.step, c):
            n += 1
    return f"{n} file(s) written" if n else "nothing to change"


# ------------------------------------------------------------------------------------------------ secrets


def _secret_values(ctx: Context) -> tuple[dict[str, Any], list[str]]:
    values: dict[str, Any] = {}
    missing: list[str] = []
    export = ctx.inputs.secrets
    by_name = {s.name: s for s in export.secrets} if export else {}
    for sp in ctx.plan.secrets:
        s = by_name.get(sp.name)
        if s is not None and s.value is not None:
            values[sp.name] = s.value
        else:
            missing.append(sp.name)
    return values, missing


def preview_secrets(ctx: Context) -> StepPreview:
    spec = ctx.spec
    values, missing = _secret_values(ctx)
    names = [sp.name for sp in ctx.plan.secrets]
    p = StepPreview("secrets", TITLES["secrets"], "ready", "", secrets=names)
    if not names:
        p.status = "nothing_to_do" if ctx.inputs.secrets is not None else "manual"
        p.summary = "No secrets." if ctx.inputs.secrets is not None else \
            "No secrets export given (--secrets FILE); nothing to recreate."
        return p
    if missing:
        p.status = "blocked"
        p.blocking.append("no value for " + ", ".join(missing) + " (Fly cannot show secrets again): add them to a "
                          ".env file and pass it with --secrets")
    p.summary = ctx.target.secrets_summary(spec, len(values)) + "."
    p.changes += generated_configs(ctx, "secrets")
    for c in p.changes:
        if c.rel.endswith(".sh"):
            exports = [v for k, v in ctx.plan.inputs if k == "secrets"]
            src = os.path.relpath(exports[-1]) if exports else "secrets.env"
            p.commands.append(f"{os.path.relpath(c.path)} < {src}")
    p.notes += ctx.target.secrets_manual(spec)
    return p


def execute_secrets(ctx: Context, p: StepPreview) -> str:
    return ctx.target.secrets_apply(ctx, p)


# ------------------------------------------------------------------------------------------------ base URLs


def preview_base_urls(ctx: Context) -> StepPreview:
    """Rewrite exactly the plan's hits (same walk, encodings and skip rules as the plan's scan; ``--code`` too)."""
    p = StepPreview("base_urls", TITLES["base_urls"], "ready", "")
    new_base = ctx.base_url
    changes: list[FileChange] = []
    private: list[str] = []
    by_path: dict[str, list[Any]] = {}
    for h in ctx.plan.base_urls:
        if h.kind == "fdaa":
            p.notes.append(f"{h.path}:{h.line}: literal 6PN address {h.old} left as is: check whether it pointed at "
                           "this app and replace it by hand")
            continue
        by_path.setdefault(h.path, []).append(h)
        if h.kind in ("flycast", "internal"):
            private.append(f"{h.path}:{h.line}")
    for shown, hits in by_path.items():
        fp = ctx.app_dir / shown
        if fp.is_symlink():
            p.notes.append(f"{shown} is a symlink: not rewritten (edit its target)")
            continue
        try:
            got = read_text_enc(fp)
        except OSError:
            continue
        if got is None:
            continue
        text, enc = got
        # the same finder the plan's scan ran, on the same decoded text: the plan's hits (all of them, also past
        # the plan's per-file listing cap in a log full of the URL)
        found, _ = find_in_text(text, ctx.plan.app, shown)
        hits = [h for h in found if h.kind != "fdaa"]
        if new_base:
            changes.append(FileChange(shown, fp, text, apply_hits(text, hits, new_base), encoding=enc))
        else:
            changes.append(FileChange(shown, fp, text, text, encoding=enc))
            p.notes += [f"{shown}:{h.line}: {h.old}" for h in hits]
    if not changes:
        p.status = "nothing_to_do"
        p.summary = "No base URLs of this app left in the code."
        return p
    if not new_base:
        p.status = "manual"
        p.summary = (f"{len(changes)} file(s) still use the Fly URL, but the new URL is not known yet: pass "
                     "--base-url URL (or --deploy); a placeholder is never written into code.")
        p.changes = []
        return p
    p.changes = changes
    p.summary = f"{len(changes)} file(s): Fly URLs -> {new_base}"
    if private:
        where = sorted(set(private))
        more = f" and {len(where) - 20} more" if len(where) > 20 else ""
        p.notes.append("add authentication: these used a private .flycast/.internal/fdaa address and now reach a "
                       "public endpoint: " + ", ".join(where[:20]) + more)
    return p


# ------------------------------------------------------------------------------------------------ scaling / config


def generated_configs(ctx: Context, step: str | None = "scaling") -> list[FileChange]:
    """The files the target renders from the Deployment (``step``: only those that step writes; None: all)."""
    spec = ctx.spec
    out: list[FileChange] = []
    df_rel = ctx_rel = None
    if spec.dockerfile_text is not None:
        if ctx.inputs.dockerfile is not None:
            df_path = ctx.app_dir / ctx.inputs.dockerfile.path
        else:
            thin = [c for c in preview_dockerfile(ctx).changes if c.generated]
            df_path = thin[0].path if thin else ctx.out_dir / "Dockerfile"
        df_rel = os.path.relpath(df_path, ctx.out_dir).replace(os.sep, "/")
        ctx_rel = os.path.relpath(ctx.app_dir, ctx.out_dir).replace(os.sep, "/")
    for g in ctx.target.render(spec, dockerfile_rel=df_rel, context_rel=ctx_rel):
        if step is not None and g.step != step:
            continue
        path = ctx.out_dir / g.name
        cur = path.read_text("utf-8") if path.exists() else None
        out.append(FileChange(_shown(ctx, path), path, cur, g.text, mode=g.mode, generated=True))
    return out


def preview_scaling(ctx: Context) -> StepPreview:
    p = StepPreview("scaling", TITLES["scaling"], "ready", "")
    p.changes = generated_configs(ctx)
    step = ctx.plan.step("scaling")
    p.summary = step.summary + " Written to " + ", ".join(c.rel for c in p.changes) + "."
    if step.status == "blocked":
        p.status = "blocked"
        p.blocking += list(step.cannot[:1])
    elif step.status == "manual":
        # the plan needs something first (the GPU): the config is written with a placeholder, the step is not done
        p.status = "manual"
        p.notes += [f"needs {n}" for n in step.needs]
    for c in p.changes:
        for m in sorted(set(_PLACEHOLDER_RE.findall(c.new))):
            p.notes.append(f"{c.rel} still has {m}: fill it in (or pass the matching option) before deploying")
    p.notes += [n for n in step.changes if n.startswith("why:")]
    return p


# ------------------------------------------------------------------------------------------------ deploy


def preview_deploy(ctx: Context) -> StepPreview:
    cmds = ctx.target.deploy_commands(ctx.spec)
    p = StepPreview("deploy", TITLES["deploy"], "ready", f"Deploy to {ctx.target.label}: {cmds[-1] if cmds else ''}",
                    commands=cmds)
    for c in generated_configs(ctx, None):
        p.data[c.rel] = sha256_text(c.new)  # a changed config is deployed again
        for m in sorted(set(_PLACEHOLDER_RE.findall(c.new))):
            p.blocking.append(f"{c.rel} still has {m}")
    if p.blocking:
        p.status = "blocked"
    return p


def execute_deploy(ctx: Context, p: StepPreview) -> str:
    t = ctx.plan.target
    ctx.emit("progress", "deploy", "running: " + "; ".join(p.commands))
    url = ctx.target.deploy(ctx)
    if url:
        ctx.state.target(t)["deployed_url"] = url
        ctx.state.save()
        ctx.replan(url)
    return f"deployed{': ' + url if url else ''}"


# ------------------------------------------------------------------------------------------------ driver

PREVIEW = {"weights": preview_weights, "dockerfile": preview_dockerfile, "secrets": preview_secrets,
           "base_urls": preview_base_urls, "scaling": preview_scaling, "deploy": preview_deploy}
EXECUTE: dict[str, Callable[[Context, StepPreview], str]] = {
    "weights": execute_weights, "dockerfile": execute_files, "secrets": execute_secrets,
    "base_urls": execute_files, "scaling": execute_files, "deploy": execute_deploy}


def selected_steps(opts: ApplyOptions) -> list[str]:
    for s in (*opts.only, *opts.skip):
        if s not in STEP_ORDER and s != "deploy":
            raise UserError(f"unknown step {s!r}; steps are {', '.join(STEP_ORDER)}.")
    steps = [s for s in STEP_ORDER if (not opts.only or s in opts.only) and s not in opts.skip]
    return steps


def previews(ctx: Context) -> list[StepPreview]:
    out = [PREVIEW[s](ctx) for s in selected_steps(ctx.opts)]
    if ctx.opts.deploy:
        out.append(preview_deploy(ctx))
    return out


def run(ctx: Context, confirm: Callable[[StepPreview], bool] | None = None) -> ApplyResult:
    steps = selected_steps(ctx.opts)
    order = list(steps)
    deploy = ctx.opts.deploy
    # the new URL comes from the deploy: rewrite base URLs after it
    if deploy and "base_urls" in order and not ctx.base_url:
        order.remove("base_urls")
        order.append("deploy")
        order.append("base_urls")
    elif deploy:
        order.append("deploy")
    result = ApplyResult(ctx.plan.target)
    target = ctx.plan.target
    for sid in order:
        if ctx.stop.is_set():
            raise ResumableError("stopped; state is saved.", hint="Run the same command again to continue.")
        p = PREVIEW[sid](ctx)
        st = ctx.state.step(target, sid)
        fp = p.fingerprint()
        if st.get("status") == "done" and st.get("fingerprint") == fp and sid in ("weights", "secrets", "deploy") \
                and sid not in ctx.opts.only:
            ctx.emit("skipped", sid, "already done")
            result.outcomes.append(StepOutcome(sid, "already_done", "already done"))
            continue
        if sid == "deploy":
            held = [o.step for o in result.outcomes if o.status in ("blocked", "failed")]
            if held:
                p.status = "blocked"
                p.blocking.append(f"{', '.join(held)} must be done first (the deployed app would not start)")
        if p.status == "blocked":
            ctx.state.set_step(target, sid, status="blocked", blocking=p.blocking)
            ctx.emit("blocked", sid, "; ".join(p.blocking))
            result.outcomes.append(StepOutcome(sid, "blocked", "; ".join(p.blocking)))
            continue
        if p.status in ("nothing_to_do", "manual"):
            if st.get("status") != "done":
                ctx.state.set_step(target, sid, status=p.status, fingerprint=fp)
            ctx.emit("skipped", sid, p.summary)
            result.outcomes.append(StepOutcome(sid, "skipped" if p.status == "manual" else "nothing_to_do", p.summary))
            continue
        if sid not in ("weights", "secrets", "deploy") and not any(c.changed for c in p.changes):
            ctx.state.set_step(target, sid, status="done", fingerprint=fp)
            ctx.emit("skipped", sid, "nothing to change (already applied)")
            result.outcomes.append(StepOutcome(sid, "already_done", "nothing to change"))
            continue
        if confirm is not None and not confirm(p):
            ctx.emit("skipped", sid, "skipped (not confirmed)")
            result.outcomes.append(StepOutcome(sid, "skipped", "not confirmed"))
            continue
        missing = ctx.target.credentials_missing(sid, dict(os.environ))
        if missing:
            ctx.state.set_step(target, sid, status="blocked", blocking=[missing])
            ctx.emit("blocked", sid, missing)
            result.outcomes.append(StepOutcome(sid, "blocked", missing))
            continue
        ctx.state.set_step(target, sid, status="running", fingerprint=fp)
        ctx.emit("started", sid, p.summary)
        try:
            msg = EXECUTE[sid](ctx, p)
        except CredentialsMissing as exc:  # found by the SDK itself: an input to supply, the rest still runs
            ctx.state.set_step(target, sid, status="blocked", blocking=[str(exc)[:300]])
            ctx.emit("blocked", sid, str(exc))
            result.outcomes.append(StepOutcome(sid, "blocked", str(exc)))
            continue
        except BaseException as exc:
            status = "failed"
            ctx.state.set_step(target, sid, status=status, error=str(exc)[:300] if isinstance(exc, FlymigrateError)
                               else type(exc).__name__)
            ctx.emit("failed", sid, str(exc) if isinstance(exc, FlymigrateError) else type(exc).__name__)
            raise
        files = {c.rel: sha256_text(c.new) for c in p.changes}
        ctx.state.set_step(target, sid, status="done", fingerprint=fp, files=files, error=None)
        ctx.emit("finished", sid, msg, notes=list(p.notes), commands=list(p.commands) if sid != "deploy" else [])
        result.outcomes.append(StepOutcome(sid, "done", msg))
        result.files_written += [c.rel for c in p.changes if c.changed]
    result.base_url = ctx.base_url
    return result


def pristine_inputs(inputs: PlanInputs, app_dir: Path) -> PlanInputs:
    """The inputs as they were before flymigrate changed anything (originals from the backups)."""
    from ..parse.dockerfile import parse_dockerfile_text
    from ..parse.flytoml import load_fly_config

    bdir = app_dir / ".flymigrate" / "backup"
    if not bdir.is_dir():
        return inputs
    changes: dict[str, Any] = {}
    df = inputs.dockerfile
    if df is not None and (bdir / df.path).is_file():
        changes["dockerfile"] = parse_dockerfile_text((bdir / df.path).read_text("utf-8"), df.path)
    scripts = dict(inputs.scripts)
    for rel in list(scripts):
        if (bdir / rel).is_file():
            scripts[rel] = (bdir / rel).read_text("utf-8")
    changes["scripts"] = scripts
    cfg = inputs.app.config_path
    if cfg and (bdir / cfg).is_file():
        app = load_fly_config(bdir / cfg, display=cfg)
        if inputs.app.app != app.app:
            app = replace(app, app=inputs.app.app)
        changes["app"] = app
    return replace(inputs, **changes)
