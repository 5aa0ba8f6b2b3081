"""The apply engine: runs the steps (``apply/steps``, one module each) in plan order, resumably.

Events go to a reporter callback (``ApplyEvent``); the CLI prints them, the TUI posts Textual messages.
State lives in ``APP_DIR/.flymigrate/state.json`` (see :mod:`.state`); originals are kept in
``APP_DIR/.flymigrate/backup/`` before anything is changed, and every rewrite starts from the original, so a
re-run never stacks changes and a second run after success writes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import CredentialsMissing, FlymigrateError, ResumableError, UserError
from ..planner import PlanInputs
from .context import (STEP_ORDER, TITLES, ApplyEvent, ApplyResult, Context, FileChange, Reporter, StepOutcome,
                      StepPreview)
from .options import ApplyOptions
from .state import sha256_text
from .steps import EXECUTE, PREVIEW
from .steps.scaling import generated_configs
from .steps.secrets import _secret_values

__all__ = ["STEP_ORDER", "TITLES", "ApplyEvent", "ApplyResult", "Context", "FileChange", "Reporter", "StepOutcome",
           "StepPreview", "generated_configs", "previews", "pristine_inputs", "run", "selected_steps",
           "_secret_values"]


def selected_steps(opts: ApplyOptions) -> list[str]:
    for s in (*opts.only, *opts.skip):
        if s not in STEP_ORDER and s != "deploy":
            raise UserError(f"unknown step {s!r}; steps are {', '.join(STEP_ORDER)}.")
    steps = [s for s in STEP_ORDER if (not opts.only or s in opts.only) and s not in opts.skip]
    return steps


def previews(ctx: Context) -> list[StepPreview]:
    out = [PREVIEW[s](ctx) for s in selected_steps(ctx.opts)]
    if ctx.opts.deploy:
        out.append(PREVIEW["deploy"](ctx))
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
    access = "public" if ctx.dep.public else "private"
    if ctx.state.target(target).get("access") != access:
        ctx.state.target(target)["access"] = access  # decided from the clients' Fly URLs, about to be rewritten
        ctx.state.save()
    if ctx.plan.app and any(f.code == "app-name-derived" for f in ctx.plan.findings) \
            and ctx.state.data.get("app_name") != ctx.plan.app:
        ctx.state.data["app_name"] = ctx.plan.app  # the URLs it came from are about to be rewritten
        ctx.state.save()
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
