"""Step 2: write the Deployment's Dockerfile and scripts (and the one file writer the file steps share)."""

from __future__ import annotations


from ...errors import ResumableError
from ..context import TITLES, Context, FileChange, StepPreview
from .scaling import _shown, generated_configs, thin_dockerfile_path


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
        path = thin_dockerfile_path(ctx)
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
    p.changes += generated_configs(ctx, "dockerfile")  # files the target renders for the image (a health adapter)
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




def execute_files(ctx: Context, p: StepPreview) -> str:
    n = 0
    for c in p.changes:
        if ctx.stop.is_set():
            raise ResumableError("stopped; state is saved.", hint="Run the same command again to continue.")
        if ctx.write(p.step, c):
            n += 1
    return f"{n} file(s) written" if n else "nothing to change"
