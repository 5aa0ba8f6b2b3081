"""Step 1: move the weights (through the transfer engine) to where the Deployment mounts them."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from ...errors import ResumableError
from ...fsutil import atomic_write
from ...paths import ensure_private_dir
from ..context import TITLES, Context, StepPreview, _PLACEHOLDER_RE


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
    from ...transfer.base import AdapterOptions, parse_url
    from ...transfer.hf import source

    s = source(parse_url(src), AdapterOptions())
    try:
        for _ in s.list():
            break
    finally:
        s.close()
    assert s.commit
    return s.commit


def execute_weights(ctx: Context, p: StepPreview) -> str:
    from ...transfer.engine import TransferOptions, run_transfer

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
