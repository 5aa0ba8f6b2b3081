"""Step 3: recreate the secrets on the target (through the target's own call) and render its secret files."""

from __future__ import annotations

from typing import Any

from ..context import TITLES, Context, StepPreview
from .scaling import generated_configs
from .deploy import _from_cwd, shlex_quote


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
    exports = [v for k, v in ctx.plan.inputs if k == "secrets"]
    valued = [e for e in exports if not e.endswith(".json")] or exports[-1:]  # `fly secrets list --json`: names
    for c in p.changes:
        if c.rel.endswith(".sh"):  # a script that reads the values on stdin: a command that works from here
            if len(valued) > 1:  # values spread over several exports: feed them all
                cats = "; echo; ".join(f"cat {shlex_quote(v)}" for v in valued)  # a file may lack its last newline
                p.commands.append(f"({cats}) | {_from_cwd(c.path)}")
            else:
                p.commands.append(f"{_from_cwd(c.path)} < {shlex_quote(valued[-1] if valued else 'secrets.env')}")
    p.notes += ctx.target.secrets_manual(spec)
    return p


def execute_secrets(ctx: Context, p: StepPreview) -> str:
    return ctx.target.secrets_apply(ctx, p)
