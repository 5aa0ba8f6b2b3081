"""Deploy: the target's deploy calls, then plan again with the URL they produced."""

from __future__ import annotations

import os
from pathlib import Path

from ..context import TITLES, Context, StepPreview, _PLACEHOLDER_RE
from ..state import sha256_text
from .scaling import generated_configs


def _from_cwd(path: Path) -> str:
    """A script's path as a command typed in the current folder (``./x.sh``, ``app/x.sh``), shell-quoted."""
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
