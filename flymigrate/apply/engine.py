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

from ..errors import FlymigrateError, ResumableError, UserError
from ..fsutil import atomic_write
from ..model import Plan
from ..paths import ensure_private_dir
from ..planner import PlanInputs
from ..scan import SKIP_DIRS, find_in_text, iter_files, rewrite_url
from .rewrite import RewriteContext, rewrite_script
from .spec import ApplyOptions, ServiceSpec, build_spec
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
        tstate = self.state.target(plan.target)
        self.base_url: str | None = (opts.base_url.rstrip("/") if opts.base_url else None) or tstate.get("deployed_url")
        self.weights_source = opts.weights_from or (plan.weights.chosen.url if plan.weights.chosen else None)
        self.spec: ServiceSpec = build_spec(plan, inputs.app, inputs.dockerfile.text if inputs.dockerfile else None,
                                            opts, weights_source=self.weights_source, base_url=self.base_url)
        self.test_delay = float(os.environ.get("FLYMIGRATE_APPLY_TEST_DELAY", "0") or 0)

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
        """Write one file: back up the original once, refuse to clobber edits made after flymigrate wrote it."""
        path = change.path
        key = self.rel_app(path)
        current = path.read_text("utf-8") if path.exists() else None
        if current == change.new:
            self.state.record_written(key, sha256_text(change.new))
            return False
        if current is not None:
            b = self.backup_path(path)
            ours = sha256_text(current) in self.state.written(key)
            if not b.exists():
                if not ours:
                    ensure_private_dir(b.parent)
                    atomic_write(b, current.encode("utf-8"), mode=0o600)
            elif not ours and current != b.read_text("utf-8") and not change.generated:
                raise UserError(f"{change.rel} changed since flymigrate rewrote it; not overwriting your edits.",
                                hint=f"The original is in {b}. Undo your edit or restore the original, then "
                                "re-run.")
            elif not ours and change.generated and current != b.read_text("utf-8"):
                # a generated file the user replaced: keep theirs as a numbered backup
                n = 2
                while b.with_name(f"{b.name}.{n}").exists():
                    n += 1
                atomic_write(b.with_name(f"{b.name}.{n}"), current.encode("utf-8"), mode=0o600)
        mode = change.mode
        if mode is None and current is None:
            mode = 0o644
        # record before writing: a kill between the two leaves a hash we own, never a stranger's file
        self.state.record_written(key, sha256_text(change.new))
        self.state.save()
        atomic_write(path, change.new, mode=mode)
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
        need = {"runpod": "--volume-id ID --datacenter DC (the RunPod network volume)",
                "cloudrun": "--bucket NAME (the GCS bucket for the weights)"}.get(ctx.plan.target, "a destination")
        p.status = "blocked"
        p.blocking.append(f"the destination {dest} has a placeholder: pass {need}")
        p.summary = f"{src} -> {dest}"
        return p
    if ctx.plan.target == "runpod" and not ctx.opts.datacenter:
        p.status = "blocked"
        p.blocking.append("RunPod network volumes are reached per datacenter: pass --datacenter (e.g. EU-RO-1)")
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


def _url_rewrite(ctx: Context, text: str) -> str:
    if not ctx.base_url:
        return text
    hits, _ = find_in_text(text, ctx.plan.app, "")
    return _apply_hits(text, [h for h in hits if h.kind != "fdaa"], ctx.base_url)


def _apply_hits(text: str, hits: list[Any], new_base: str) -> str:
    if not hits:
        return text
    starts = [0] + [m.end() for m in re.finditer("\n", text)]
    # one pass, pieces joined once: re-slicing the whole text per hit was O(hits x size) (a 32 MB log with the
    # host on every line never finished)
    pieces: list[str] = []
    pos = 0
    for h in sorted(hits, key=lambda h: (h.line, h.column)):
        off = starts[h.line - 1] + h.column - 1
        if off < pos or text[off: off + len(h.old)] != h.old:
            continue
        pieces.append(text[pos:off])
        pieces.append(rewrite_url(h.old, new_base))
        pos = off + len(h.old)
    pieces.append(text[pos:])
    return "".join(pieces)


def preview_dockerfile(ctx: Context) -> StepPreview:
    spec = ctx.spec
    p = StepPreview("dockerfile", TITLES["dockerfile"], "ready", "")
    app = ctx.inputs.app
    df = ctx.inputs.dockerfile
    cfg_dir = ctx.app_dir
    if df is not None:
        path = cfg_dir / df.path
        new = _url_rewrite(ctx, spec.dockerfile_text or df.text)
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
    # the app's own scripts ([[files]] sources, start.sh, entrypoints)
    ctx_rw = RewriteContext(app, ctx.plan.target, spec.slug, False)
    for rel, text in sorted(ctx.inputs.scripts.items()):
        path = ctx.app_dir / rel
        if path.is_symlink() or not path.is_file():
            continue
        new = _url_rewrite(ctx, rewrite_script(text, ctx_rw, rel))
        cur = path.read_text("utf-8")
        if new != text or cur != new:
            p.changes.append(FileChange(rel, path, cur, new, original=text))
    p.notes += list(spec.notes) + ctx_rw.notes
    for i in ctx.plan.docker_issues:
        if i.kind == "registry":
            p.notes.append(f"{i.message} Re-push it (`fly auth docker`, docker pull/tag/push) and pass --image.")
        if i.kind == "baked-weights" and not ctx.weights_source:
            p.notes.append(f"{i.where}: weights are still downloaded at build time (no weights source to move them "
                           "from); pass --weights-from to put them on the volume instead")
    if ctx.plan.target == "modal":
        p.notes.append("Modal builds the image from " + (f"{spec.dockerfile_name} (modal.Image.from_dockerfile)"
                                                         if spec.dockerfile_text else
                                                         f"the registry image {spec.registry_image}"))
    elif ctx.plan.target == "cloudrun":
        p.notes.append(f"Cloud Run sets PORT={spec.port} (containerPort) for the server")
    elif ctx.plan.target == "runpod":
        p.notes.append(f"RunPod load-balancing worker: PORT={spec.port}, PORT_HEALTH={spec.port}; GET /ping must "
                       "answer 200 once the model is loaded (204 while loading)")
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
    t = ctx.plan.target
    if t == "modal":
        name = f"flymigrate-{spec.slug}-secrets"
        p.summary = f"Create the Modal secret {name!r} with {len(values)} key(s) through the Modal API."
        p.data = {"secret": name}
    elif t == "runpod":
        p.summary = ("RunPod has no secrets API: create these secrets in the console (Settings > Secrets) with "
                     "exactly these names; the endpoint template references them.")
        p.notes += [f"{n}: create RunPod secret {n!r}, referenced as {{{{ RUNPOD_SECRET_{n} }}}}" for n in names]
    else:
        from ..targets.cloudrun_files import render_create_secrets, secret_id

        path = ctx.out_dir / "create-secrets.sh"
        cur = path.read_text("utf-8") if path.exists() else None
        p.changes.append(FileChange(_shown(ctx, path), path, cur, render_create_secrets(spec), mode=0o755,
                                    generated=True))
        exports = [v for k, v in ctx.plan.inputs if k == "secrets"]
        valued = [e for e in exports if not e.endswith(".json")] or exports[-1:]  # `fly secrets list --json`: names
        src = valued[-1] if valued else "secrets.env"
        p.summary = (f"Secret Manager: {len(names)} secret(s) referenced with secretKeyRef; create-secrets.sh creates "
                     "them reading the values on stdin.")
        if len(valued) > 1:  # values spread over several exports: feed them all  (paths work from where the user is)
            cats = "; echo; ".join(f"cat {shlex_quote(v)}" for v in valued)  # echo: a file may lack its last newline
            p.commands.append(f"({cats}) | {_from_cwd(path)}")
        else:
            p.commands.append(f"{_from_cwd(path)} < {shlex_quote(src)}")
        p.notes += [f"{n} -> Secret Manager secret {secret_id(spec, n)!r}" for n in names]
    return p


def execute_secrets(ctx: Context, p: StepPreview) -> str:
    t = ctx.plan.target
    if t == "modal":
        values, _ = _secret_values(ctx)
        name = p.data["secret"]
        _modal_create_secret(name, values)
        ctx.pause()
        return f"Modal secret {name!r} has {len(values)} key(s): {', '.join(sorted(values))}"
    if t == "runpod":
        return "add these secrets in the RunPod console: " + ", ".join(p.secrets)
    return execute_files(ctx, p)


def _modal_create_secret(name: str, values: dict[str, Any]) -> None:
    import modal
    from modal.exception import NotFoundError

    env = {k: v.reveal() for k, v in values.items()}
    try:
        create = getattr(modal.Secret, "_create_deployed", None)
        if create is not None:
            # what `modal secret create --force` calls: the secret holds exactly the export's values, also on a
            # re-run after new values were supplied (objects.create(allow_existing=True) would keep old ones)
            create(name, env, overwrite=True)
        else:  # pragma: no cover - older/newer SDK without it
            modal.Secret.objects.create(name, env, allow_existing=True)
        modal.Secret.from_name(name, required_keys=sorted(env)).hydrate()
    except NotFoundError:
        raise UserError(f"the Modal secret {name!r} already exists without all of {', '.join(sorted(env))}.",
                        hint=f"Delete it (`modal secret delete {name}`) and run apply again.") from None
    except Exception as exc:  # the SDK's connection errors: never echo values (they are not in the message)
        if isinstance(exc, FlymigrateError):
            raise
        from ..errors import RemoteError

        raise RemoteError(f"creating the Modal secret {name!r} failed: {type(exc).__name__}: "
                          f"{_redact(str(exc), env)}") from None


def _redact(msg: str, env: dict[str, str]) -> str:
    for v in env.values():
        if v and len(v) >= 4:
            msg = msg.replace(v, "<redacted>")
    return msg[:300]


# ------------------------------------------------------------------------------------------------ base URLs


def _scan_roots(ctx: Context) -> list[tuple[Path, str]]:
    if ctx.code_dirs:
        roots = []
        for c in ctx.code_dirs:
            cp = Path(c)
            label = ctx.rel_app(cp)
            roots.append((cp, "" if label == "." else label))
        cfg = ctx.app_dir / (ctx.inputs.app.config_path or "fly.toml")
        roots.append((cfg, ""))
        return roots
    return [(ctx.app_dir, "")]


def preview_base_urls(ctx: Context) -> StepPreview:
    p = StepPreview("base_urls", TITLES["base_urls"], "ready", "")
    new_base = ctx.base_url
    findings: list[Any] = []
    changes: list[FileChange] = []
    private: list[str] = []
    seen: set[str] = set()
    for root, label in _scan_roots(ctx):
        for item in iter_files(root, findings):
            full, rel = item[0], item[1]
            fp = Path(full)
            shown = f"{label}/{rel}" if label else (rel if root.is_dir() else ctx.rel_app(fp))
            if shown in seen or any(part in SKIP_DIRS for part in Path(shown).parts):
                continue
            seen.add(shown)
            try:
                data = fp.read_bytes()
            except OSError:
                continue
            if b"\x00" in data[:8192]:
                continue  # binary: never touched
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                continue
            hits, _ = find_in_text(text, ctx.plan.app, shown)
            fdaa = [h for h in hits if h.kind == "fdaa"]
            hits = [h for h in hits if h.kind != "fdaa"]
            p.notes += [f"{shown}:{h.line}: literal 6PN address {h.old} left as is: check whether it pointed at "
                        "this app and replace it by hand" for h in fdaa]
            if not hits:
                continue
            for h in hits:
                if h.kind in ("flycast", "internal", "fdaa"):
                    private.append(f"{shown}:{h.line}")
            if fp.is_symlink():
                p.notes.append(f"{shown} is a symlink: not rewritten (edit its target)")
                continue
            if new_base:
                changes.append(FileChange(shown, fp, text, _apply_hits(text, hits, new_base)))
            else:
                changes.append(FileChange(shown, fp, text, text))
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


def generated_configs(ctx: Context) -> list[FileChange]:
    spec = ctx.spec
    t = ctx.plan.target
    out: list[FileChange] = []

    def add(name: str, content: str, mode: int | None = None) -> None:
        path = ctx.out_dir / name
        cur = path.read_text("utf-8") if path.exists() else None
        out.append(FileChange(_shown(ctx, path), path, cur, content, mode=mode, generated=True))

    if t == "modal":
        from ..targets.modal_files import render_modal_app

        df_rel = ctx_rel = None
        if spec.dockerfile_text is not None:
            if ctx.inputs.dockerfile is not None:
                df_path = ctx.app_dir / ctx.inputs.dockerfile.path
            else:
                thin = [c for c in preview_dockerfile(ctx).changes if c.generated]
                df_path = thin[0].path if thin else ctx.out_dir / "Dockerfile"
            df_rel = os.path.relpath(df_path, ctx.out_dir).replace(os.sep, "/")
            ctx_rel = os.path.relpath(ctx.app_dir, ctx.out_dir).replace(os.sep, "/")
        add("modal_app.py", render_modal_app(spec, dockerfile_rel=df_rel, context_rel=ctx_rel))
    elif t == "runpod":
        from ..targets.runpod_files import render_runpod_spec

        add("runpod-endpoint.json", render_runpod_spec(spec))
    else:
        from ..targets.cloudrun_files import render_service_yaml

        add("service.yaml", render_service_yaml(spec))
    return out


def preview_scaling(ctx: Context) -> StepPreview:
    p = StepPreview("scaling", TITLES["scaling"], "ready", "")
    p.changes = generated_configs(ctx)
    step = ctx.plan.step("scaling")
    p.summary = step.summary + " Written to " + ", ".join(c.rel for c in p.changes) + "."
    if step.status == "blocked":
        p.status = "blocked"
        p.blocking += list(step.cannot[:1])
    for c in p.changes:
        for m in sorted(set(_PLACEHOLDER_RE.findall(c.new))):
            p.notes.append(f"{c.rel} still has {m}: fill it in (or pass the matching option) before deploying")
    p.notes += [n for n in step.changes if n.startswith("why:")]
    return p


# ------------------------------------------------------------------------------------------------ deploy


def deploy_command(ctx: Context) -> tuple[list[str] | None, str]:
    t = ctx.plan.target
    if t == "modal":
        return ["modal", "deploy", "modal_app.py"], "modal deploy modal_app.py"
    if t == "cloudrun":
        cmd = ["gcloud", "run", "services", "replace", "service.yaml", "--region", ctx.spec.region or "us-central1"]
        return cmd, " ".join(cmd)
    return None, ("runpod.create_template(name, image_name, ..., env={...}, is_serverless=True) + "
                  "runpod.create_endpoint(name, template_id, gpu_ids, ...) via RUNPOD_API_BASE_URL")


def _from_cwd(path: Path) -> str:
    """A script's path as a command typed in the current folder (``./x.sh``, ``app/x.sh``), shell-quoted."""
    import os

    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        rel = str(path)
    if not rel.startswith(("/", ".")) and os.sep not in rel:
        rel = "./" + rel
    return shlex_quote(rel)


def shlex_quote(s: str) -> str:
    import shlex

    return shlex.quote(s)


def preview_deploy(ctx: Context) -> StepPreview:
    _, shown = deploy_command(ctx)
    cmds = [shown]
    if ctx.plan.target == "cloudrun" and ctx.plan.secrets:
        cmds.insert(0, f"{_from_cwd(ctx.out_dir / 'create-secrets.sh')} < (the export's values, on stdin)")
    p = StepPreview("deploy", TITLES["deploy"], "ready", f"Deploy to {ctx.plan.target}: {shown}", commands=cmds)
    for c in generated_configs(ctx):
        p.data[c.rel] = sha256_text(c.new)  # a changed config is deployed again
        for m in sorted(set(_PLACEHOLDER_RE.findall(c.new))):
            if m != "<BUCKET>" or ctx.plan.target == "cloudrun":
                p.blocking.append(f"{c.rel} still has {m}")
    if p.blocking:
        p.status = "blocked"
    return p


def execute_deploy(ctx: Context, p: StepPreview) -> str:
    import subprocess

    t = ctx.plan.target
    argv, shown = deploy_command(ctx)
    ctx.emit("progress", "deploy", f"running: {shown}")
    url = None
    if t == "cloudrun":
        _cloudrun_create_secrets(ctx)
    if argv is not None:
        try:
            proc = subprocess.run(argv, cwd=ctx.out_dir, capture_output=True, check=False, text=True, timeout=3600)
        except FileNotFoundError:
            raise UserError(f"`{argv[0]}` is not on PATH; install it, or run `{shown}` yourself.") from None
        if proc.returncode != 0:
            from ..errors import RemoteError

            raise RemoteError(f"`{shown}` failed (exit {proc.returncode}): {(proc.stderr or proc.stdout)[-500:]}")
        if t == "modal":
            m = re.search(r"https://[A-Za-z0-9.-]+\.modal\.run", proc.stdout + proc.stderr)
            url = m.group(0) if m else None
        else:
            d = subprocess.run(["gcloud", "run", "services", "describe", ctx.spec.slug, "--region",
                                ctx.spec.region or "us-central1", "--format", "value(status.url)"],
                               cwd=ctx.out_dir, capture_output=True, check=False, text=True, timeout=600)
            url = d.stdout.strip() or None
    else:
        url = _runpod_deploy(ctx)
    if url:
        ctx.state.target(t)["deployed_url"] = url
        ctx.state.save()
        ctx.base_url = url
    return f"deployed{': ' + url if url else ''}"


def _cloudrun_create_secrets(ctx: Context) -> None:
    """Run create-secrets.sh, feeding NAME=VALUE lines on its stdin (a pipe: values never touch argv)."""
    import subprocess

    values, missing = _secret_values(ctx)
    script = ctx.out_dir / "create-secrets.sh"
    if not values or not script.exists():
        return
    if missing:
        raise UserError("cannot deploy: no value for " + ", ".join(missing) + " (the service references them).",
                        hint="Add them to a .env file passed with --secrets.")
    lines = []
    for k, v in values.items():
        raw = v.reveal()
        if "\n" in raw:
            raise UserError(f"the value of {k} spans lines; create it yourself: gcloud secrets create ... "
                            "--data-file=FILE, then re-run.")
        lines.append(f"{k}={raw}")
    ctx.emit("progress", "deploy", "running: ./create-secrets.sh < (the export's values, on stdin)")
    proc = subprocess.run(["bash", str(script)], input="\n".join(lines) + "\n", cwd=ctx.out_dir,
                          capture_output=True, check=False, text=True, timeout=600)
    if proc.returncode != 0:
        from ..errors import RemoteError

        raise RemoteError(f"create-secrets.sh failed (exit {proc.returncode}): "
                          f"{_redact(proc.stderr, {k: v.reveal() for k, v in values.items()})}")


def _runpod_deploy(ctx: Context) -> str:
    import runpod

    from ..targets.runpod_files import runpod_spec

    key = os.environ.get("RUNPOD_API_KEY")
    if not key:
        raise UserError("RUNPOD_API_KEY is not set; it is needed to create the endpoint.")
    spec = runpod_spec(ctx.spec)
    tpl, ep = spec["template"], spec["endpoint"]
    env = {e["key"]: e["value"] for e in tpl["env"]}
    for k, v in env.items():
        if any(ch in v for ch in '"\\\n'):
            raise UserError(f"env {k} holds a quote, backslash or newline, which the runpod SDK cannot send safely; "
                            "create the template in the console instead.")
    runpod.api_key = key
    st = ctx.state.target("runpod")
    # what was deployed, to notice a change on a later --deploy: the template by hash (its env holds plain
    # [env] values and secret *references*), the endpoint settings as they are (ids, GPU types, counts)
    tpl_hash = hashlib.sha256(json.dumps(tpl, sort_keys=True).encode()).hexdigest()[:12]
    ep_settings = {k: v for k, v in ep.items() if k not in ("name", "templateId")}
    tid = st.get("template_id")
    eid = st.get("endpoint_id")

    def make_template(name: str) -> str:
        t = runpod.create_template(name=name, image_name=tpl["imageName"], docker_start_cmd=tpl["dockerArgs"] or None,
                                   container_disk_in_gb=tpl["containerDiskInGb"], ports=tpl["ports"], env=env,
                                   is_serverless=True)
        st.update(template_id=t["id"], template_hash=tpl_hash)
        ctx.state.save()
        return str(t["id"])

    if tid and st.get("template_hash") not in (None, tpl_hash):
        # image, command, env or disk changed. RunPod template names are unique and the SDK cannot edit one:
        # create the new version, then point the endpoint at it (its workers roll over to the new image)
        name = f"{tpl['name']}-{tpl_hash[:8]}"
        ctx.emit("progress", "deploy", f"the template changed since the last deploy: creating {name} and pointing "
                 f"the endpoint at it (the old template {tid} stays; delete it in the console when done)")
        tid = make_template(name)
        if eid:
            runpod.update_endpoint_template(eid, tid)
    elif not tid:
        tid = make_template(tpl["name"])
    elif st.get("template_hash") is None:
        st["template_hash"] = tpl_hash  # state from before hashes were kept: take what is deployed as current
        ctx.state.save()
    if eid:
        old = st.get("endpoint_settings")
        if old is None:
            st["endpoint_settings"] = ep_settings
            ctx.state.save()
        elif old != ep_settings:
            diff = ", ".join(f"{k} {old.get(k)!r} -> {ep_settings.get(k)!r}" for k in sorted(set(old) | set(ep_settings))
                             if old.get(k) != ep_settings.get(k))
            ctx.emit("progress", "deploy", f"WARNING: endpoint {eid} was created with other settings ({diff}). The runpod "
                     "SDK cannot change an endpoint: edit it in the console (Serverless > the endpoint > Manage > Edit "
                     "Endpoint; runpod-endpoint.json has the new values), or delete it and run --deploy again.")
    if not eid:
        e = runpod.create_endpoint(name=ep["name"], template_id=tid, gpu_ids=ep["gpuIds"],
                                   network_volume_id=ep["networkVolumeId"] or None, locations=ep["locations"] or None,
                                   idle_timeout=ep["idleTimeout"], scaler_type=ep["scalerType"],
                                   scaler_value=ep["scalerValue"], workers_min=ep["workersMin"],
                                   workers_max=ep["workersMax"], flashboot=ep.get("flashBootType") == "FLASHBOOT",
                                   gpu_count=ep["gpuCount"])
        eid = e["id"]
        st.update(endpoint_id=eid, endpoint_settings=ep_settings)
        ctx.state.save()
    return f"https://{eid}.api.runpod.ai"


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
        if sid == "base_urls" and deploy:
            # the deploy may have produced the URL: rebuild what depends on it
            ctx.spec = build_spec(ctx.plan, ctx.inputs.app, ctx.inputs.dockerfile.text if ctx.inputs.dockerfile
                                  else None, ctx.opts, weights_source=ctx.weights_source, base_url=ctx.base_url)
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
        ctx.state.set_step(target, sid, status="running", fingerprint=fp)
        ctx.emit("started", sid, p.summary)
        try:
            msg = EXECUTE[sid](ctx, p)
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
