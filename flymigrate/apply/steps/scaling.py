"""Step 5: write the target's rendered config (scaling, resources, env) from the Deployment."""

from __future__ import annotations

import os
from pathlib import Path

from ..context import TITLES, Context, FileChange, StepPreview, _PLACEHOLDER_RE
from ..state import sha256_text



def thin_dockerfile_path(ctx: Context) -> Path:
    """Where the thin Dockerfile of a ``[build] image`` app goes: ``Dockerfile``, unless one the user owns is
    already there (then ``Dockerfile.flymigrate``)."""
    cand = ctx.out_dir / "Dockerfile"
    ours = cand.exists() and sha256_text(cand.read_text("utf-8")) in ctx.state.written(ctx.rel_app(cand))
    return ctx.out_dir / ("Dockerfile" if not cand.exists() or ours else "Dockerfile.flymigrate")


def generated_configs(ctx: Context, step: str | None = "scaling") -> list[FileChange]:
    """The files the target renders from the Deployment (``step``: only those that step writes; None: all)."""
    spec = ctx.spec
    out: list[FileChange] = []
    df_rel = ctx_rel = None
    if spec.dockerfile_text is not None:
        if ctx.inputs.dockerfile is not None:
            df_path = ctx.app_dir / ctx.inputs.dockerfile.path
        else:
            df_path = thin_dockerfile_path(ctx)
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


def _shown(ctx: Context, path: Path) -> str:
    try:
        return path.resolve().relative_to(ctx.out_dir.resolve()).as_posix() if ctx.out_dir != ctx.app_dir \
            else ctx.rel_app(path)
    except ValueError:
        return str(path)
