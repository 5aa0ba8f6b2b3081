"""``flymigrate apply``: carry out the plan's five steps (resumable; state in APP_DIR/.flymigrate/)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .targets import add_deploy_options, add_target_arg, deploy_options

STEPS = ("weights", "dockerfile", "secrets", "base_urls", "scaling")


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "apply",
        help="carry out the migration steps (resumable)",
        description="Run the plan: move the weights, make the image portable, recreate the secrets, point clients "
        "at the new URL and write the target's config. Shows each step's changes first; state is kept in "
        "APP_DIR/.flymigrate/ so it can be stopped and run again.",
    )
    p.add_argument("app_dir", nargs="?", default=".", metavar="APP_DIR", help="the Fly app folder (default: .)")
    add_target_arg(p)
    p.add_argument("--yes", "-y", action="store_true", help="do not ask before each step (unattended)")
    p.add_argument("--dry-run", action="store_true", help="show the plan and change nothing (same as `plan`)")
    p.add_argument("--only", action="append", choices=STEPS, metavar="STEP",
                   help=f"run only this step (repeatable); STEP is one of {', '.join(STEPS)}")
    p.add_argument("--skip", action="append", choices=STEPS, metavar="STEP",
                   help=f"skip this step (repeatable); STEP is one of {', '.join(STEPS)}")
    p.add_argument("--base-url", metavar="URL", help="the new endpoint URL (else read after --deploy)")
    p.add_argument("--out", metavar="DIR", help="where generated files go (default: APP_DIR)")
    p.add_argument("--deploy", action="store_true", help="deploy after writing the config (shows the command first)")
    p.add_argument("--secrets", action="append", metavar="FILE", help="a secrets export (repeatable)")
    p.add_argument("--code", action="append", metavar="DIR", help="client code to rewrite (repeatable; default APP_DIR)")
    p.add_argument("--config", metavar="PATH", help="the fly.toml to read")
    p.add_argument("--gpu", metavar="KIND[:N]", help="the Fly GPU when fly.toml does not say")
    p.add_argument("--app", dest="app_name", metavar="NAME", help="the Fly app name, when fly.toml has none")
    add_deploy_options(p)
    p.add_argument("--state-dir", metavar="DIR", help="where transfer journals live (default: the global state dir)")
    p.set_defaults(run=run)


class _Printer:
    def __init__(self) -> None:
        self.out = sys.stderr

    def __call__(self, ev: Any) -> None:
        if ev.kind == "progress":
            print(f"  [{ev.step}] {ev.message}", file=self.out, flush=True)
        elif ev.kind == "started":
            print(f"-> {ev.step}: {ev.message}", file=self.out, flush=True)
        elif ev.kind == "finished":
            print(f"ok {ev.step}: {ev.message}", file=self.out, flush=True)
            for n in ev.data.get("notes", []) or []:
                print(f"   note: {n}", file=self.out)
            for c in ev.data.get("commands", []) or []:
                print(f"   run: {c}", file=self.out)
        elif ev.kind == "skipped":
            print(f"-- {ev.step}: {ev.message}", file=self.out, flush=True)
        elif ev.kind == "blocked":
            print(f"!! {ev.step} blocked: {ev.message}", file=self.out, flush=True)
        elif ev.kind == "failed":
            print(f"!! {ev.step} failed: {ev.message}", file=self.out, flush=True)


def _warn_readable_secrets(paths: list[str]) -> None:
    """The plan's `secrets-file-permissions` warning, shown by apply too (it holds values others can read)."""
    from pathlib import Path

    from ..errors import ConfigError
    from ..parse.secrets import load_secrets

    for p in paths:
        try:
            exp = load_secrets(Path(p), display=p)
        except ConfigError:
            continue  # apply reports it
        for f in exp.findings:
            if f.code == "secrets-file-permissions":
                print(f"warning: {f.message}", file=sys.stderr, flush=True)


def _warn_dirty_git(app_dir: str) -> None:
    """Warn (never block) when the app folder is in a git work tree with uncommitted changes: apply rewrites
    files, and a clean tree makes its changes easy to review (`git diff`) and to undo (`git checkout`)."""
    import shutil
    import subprocess

    if shutil.which("git") is None:
        return
    try:
        r = subprocess.run(["git", "-C", app_dir, "status", "--porcelain", "--untracked-files=no", "--", "."],
                           capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return
    if r.returncode != 0:
        return  # not a git work tree
    changed = [ln[3:] for ln in r.stdout.splitlines() if ln.strip()]
    if changed:
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        print(f"warning: the git work tree has uncommitted changes ({', '.join(changed[:3])}{more}); commit or "
              "stash them first so flymigrate's rewrites are easy to review with `git diff` and to undo.",
              file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    import signal
    import threading

    from .. import api
    from ..apply import ApplyOptions
    from ..errors import UserError

    if args.dry_run:
        from ..render import render

        from ..textfmt import output_width
        from .plan import invocation

        plan = api.plan(args.app_dir, args.target, config_path=args.config, secrets_paths=args.secrets,
                        code_dirs=args.code, gpu=args.gpu, app_name=args.app_name, options=deploy_options(args))
        sys.stdout.write(render(plan, "text", color=False, width=output_width(sys.stdout), invocation=invocation(args)))
        return 0
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if not args.yes and not interactive:
        raise UserError("apply changes files and remote state, and there is no terminal to ask for confirmation.",
                        hint="Pass --yes to run unattended, or --dry-run to only see the plan.")
    opts = ApplyOptions(target=args.target, yes=args.yes, only=tuple(args.only or ()), skip=tuple(args.skip or ()),
                        weights_from=args.weights_from, base_url=args.base_url, out_dir=args.out, deploy=args.deploy,
                        volume_id=args.volume_id, datacenter=args.datacenter, bucket=args.bucket,
                        endpoint_url=args.endpoint_url, region=args.region, image=args.image,
                        state_dir=args.state_dir, gpu_type=args.gpu_type,
                        access=args.access, keep_app_auth=args.keep_app_auth)
    if args.out:
        import os

        out = args.out
        if os.path.lexists(out) and not os.path.isdir(out):
            raise UserError(f"--out {out} exists and is not a folder; generated files go into a folder.")
    _warn_readable_secrets(args.secrets or [])
    _warn_dirty_git(args.app_dir)
    stop = threading.Event()

    def on_term(signum: int, frame: Any) -> None:
        stop.set()
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, on_term)

    def confirm(p: Any) -> bool:
        sys.stdout.write(p.render())
        sys.stdout.flush()
        try:
            ans = input(f"Apply step {p.step!r}? [y/N] ")
        except EOFError:
            return False
        return ans.strip().lower() in ("y", "yes")

    try:
        res = api.apply(args.app_dir, args.target, options=opts, reporter=_Printer(),
                        confirm=None if args.yes else confirm, stop=stop, config_path=args.config,
                        secrets_paths=args.secrets, code_dirs=args.code, gpu=args.gpu, app_name=args.app_name)
    finally:
        signal.signal(signal.SIGTERM, old)
    from ..render import SHORT_NAMES
    from ..textfmt import output_width, wrap

    width = output_width(sys.stdout)
    print(f"flymigrate apply -> {args.target}:")
    for o in res.outcomes:
        for line in wrap(f"  {o.step:<11}{o.status.replace('_', ' '):<14}{o.message}", width, extra_indent=25):
            print(line)
    if res.base_url:
        print(f"  new URL: {res.base_url}")
    if res.blocked:
        names = ", ".join(SHORT_NAMES.get(b, b) for b in res.blocked)
        print(f"Blocked: {names} (why: above). Fix what is listed and run the same command again; finished steps "
              "are not redone.", file=sys.stderr)
        return 2
    return 0
