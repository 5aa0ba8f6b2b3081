"""What in the image only made sense on Fly: the plan's view of the rules apply's Dockerfile step carries out.

Each finding comes from a rule (``rules.py`` for the text rules, ``rewrite.py`` for the whole-file ones) that
holds its detector and its fixer. ``analyze`` runs the same fixer the rewrite runs (pure, cheap) and asks the
detector again on its output: ``DockerIssue.auto`` is True only when the fix takes; otherwise the issue is one to
fix by hand.

Pure analysis of the parsed Dockerfile, fly.toml and the app's own scripts; no I/O beyond what the caller
passes in (``scripts`` maps a relative path to its text).
"""

from __future__ import annotations

import re

from .model import DockerIssue, Dockerfile, FlyApp
from .rewrite import COMMAND, FILES, NO_CUDA, REGISTRY, rewrite_dockerfile_checked, thin_dockerfile
from .rules import (
    BAKED_RE,
    BUNDLES_CUDA_RE,
    CPU_BASE_RE,
    CUDA_BASE_HINTS,
    FLY_ENTRYPOINT_D_RE,
    FLY_ENV_RE,
    IPV6_RE,
    IPV6_SUBS,
    SHIM_RE,
    TEXT_RULES,
    RewriteContext,
    check_script,
    fix_env_value,
    ipv6_env_value,
    needs_cuda_base,
)

__all__ = ["analyze", "needs_cuda_base", "BAKED_RE", "BUNDLES_CUDA_RE", "CPU_BASE_RE", "CUDA_BASE_HINTS",
           "FLY_ENTRYPOINT_D_RE", "FLY_ENV_RE", "IPV6_RE", "IPV6_SUBS", "SHIM_RE", "TEXT_RULES"]  # re-exported

# what a script finding says (the Dockerfile findings use each rule's own message)
_SCRIPT_MSG = {"driver-shim": "runs a Fly GPU driver shim", "ipv6-bind": "binds IPv6 only",
               "fly-env": "uses a FLY_* variable", "fly-entrypoint-d": "calls a Fly-only /opt/nvidia/entrypoint.d hook",
               "app-auth": "starts the server with its own API key, checked in the `Authorization` header the "
               "target's gateway takes its key in"}


def _slug(name: str | None) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", (name or "app").lower()).strip("-") or "app"


def analyze(
    app: FlyApp,
    df: Dockerfile | None,
    scripts: dict[str, str],
    *,
    uses_gpu: bool,
    drop_baked: bool = False,
    drop_app_auth: str = "",
) -> list[DockerIssue]:
    """The Fly-only things in the image, fly.toml and scripts, each with its fix and whether apply's rewrite
    carries that fix out (``auto``). ``drop_baked``: the weights step fills the volume (a weights source is
    known), so apply drops weight downloads baked into image layers; without one they stay (fix by hand).
    ``drop_app_auth``: the Deployment's decision to drop the server's own key check (``rules.APP_KEY``)."""
    ctx = RewriteContext(app, "", _slug(app.app), drop_baked, drop_app_auth=drop_app_auth)
    issues: list[DockerIssue] = []
    # the very Dockerfile apply writes: whole-file fixes are checked against it
    written: str | None = None
    df_checks: list = []
    if df is not None:
        written, df_checks = rewrite_dockerfile_checked(df.text, RewriteContext(app, "", ctx.app_slug, drop_baked,
                                                                                drop_app_auth=drop_app_auth),
                                                        uses_gpu=uses_gpu, shown=df.path, parsed=df)
    elif app.build.image:
        written = thin_dockerfile(app.build.image, RewriteContext(app, "", ctx.app_slug, drop_baked,
                                                                  drop_app_auth=drop_app_auth))
    # --- the Dockerfile itself
    if df is not None:
        for idx, checks in df_checks:
            ins = df.instructions[idx]
            for c in checks:
                issues.append(DockerIssue(c.rule.kind, c.rule.message.format(what=c.what, keyword=ins.keyword),
                                          f"{df.path}:{ins.line}", ins.line, c.rule.fix_text, c.auto))
        image = NO_CUDA.detect(df, uses_gpu)
        final_from = next((ins for ins in reversed(df.instructions) if ins.keyword == "FROM"), None)
        if image is not None and final_from is not None:
            from .parse.dockerfile import parse_dockerfile_text

            fixed = written is not None and needs_cuda_base(parse_dockerfile_text(written, df.path)) is None
            issues.append(DockerIssue("no-cuda", f"the base image {image} has no CUDA user-space libraries and "
                                      "nothing installed brings them; on Fly the host injected the driver libs. "
                                      "Off Fly the image needs CUDA (a nvidia/cuda runtime base, or CUDA wheels "
                                      "such as torch+cu12).", f"{df.path}:{final_from.line}", final_from.line,
                                      NO_CUDA.fix_text, fixed))
    # --- fly.toml parts that were applied at deploy time
    for f in FILES.detect(app):
        auto = FILES.fixable(f) and FILES.fixed_in(f, written)
        if FLY_ENTRYPOINT_D_RE.search(f.guest_path):
            issues.append(DockerIssue("fly-entrypoint-d", f"[[files]] injects {f.guest_path}, a Fly-only "
                                      "driver-setup hook.", f.where, None, "drop it", auto))
            continue
        if FILES.already_copied(f, df, app):  # the image already has it there: nothing to add
            continue
        src = f"local file {f.local_path}" if f.local_path else ("the secret " + f.secret_name if f.secret_name
                                                                else "an inline raw_value")
        issues.append(DockerIssue("files", f"[[files]] injected {f.guest_path} from {src} at deploy time; the "
                                  "image must carry it now.", f.where, None,
                                  "COPY it into the image" if f.local_path else
                                  ("mount the secret as a file" if f.secret_name else "write it in the image"), auto))
    cmd_kinds = COMMAND.detect(app)
    cmd_auto = COMMAND.fixed_in(app, written)
    if "cmd" in cmd_kinds:
        what = "entrypoint" if app.experimental_entrypoint else "cmd"
        val = app.experimental_entrypoint or app.experimental_cmd
        issues.append(DockerIssue("cmd", f"[experimental] {what} = {list(val or ())} overrode the image at deploy "
                                  "time; it becomes an explicit ENTRYPOINT/CMD.", app.config_path, None,
                                  f"write {what.upper() if what == 'cmd' else 'ENTRYPOINT'} into the Dockerfile",
                                  cmd_auto))
    if "processes" in cmd_kinds:
        issues.append(DockerIssue("processes", "[processes] commands replaced CMD per process group; the served "
                                  "group's command becomes the image CMD.", app.config_path, None,
                                  "write CMD for the HTTP process group", cmd_auto))
    for c in COMMAND.checks(app, ctx):  # a shim / IPv6 bind / $FLY_* inside fly.toml's own commands
        issues.append(DockerIssue(c.rule.kind, "fly.toml's command " + c.rule.message.format(
            what=c.what, keyword="it").replace("it runs", "runs"), app.config_path, None, c.rule.fix_text, c.auto))
    if REGISTRY.detect(app):
        issues.append(DockerIssue("registry", f"{app.build.image} lives in Fly's private registry.",
                                  app.build.where, None, "re-push to a registry the target can pull", False))
    # --- env and scripts (start.sh, entrypoints, [[files]] sources)
    for name, value in app.env:
        if ipv6_env_value(value):
            issues.append(DockerIssue("ipv6-bind", f"[env] {name} = {value!r} binds IPv6 only.",
                                      app.env_line(name), None, "set it to 0.0.0.0",
                                      not ipv6_env_value(fix_env_value(value))))
    for rel, text in sorted(scripts.items()):
        for c in check_script(text, ctx, rel):
            issues.append(DockerIssue(c.rule.kind, f"{rel} {_SCRIPT_MSG.get(c.rule.kind, c.rule.kind)} (`{c.what}`).",
                                      f"{rel}:{c.line}", c.line, c.rule.fix_text, c.auto))
    return issues
