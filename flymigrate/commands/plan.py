"""`flymigrate plan`: the dry run. Reads only; writes nothing but --out."""

from __future__ import annotations

import argparse
import os
import sys

from .targets import add_deploy_options, add_target_arg, deploy_options


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "plan",
        help="dry run: read a Fly app and print the migration plan",
        description="Read fly.toml, its Dockerfile, a secrets export and client code, and print the five-step "
        "migration plan (weights, Dockerfile, secrets, base URLs, scaling). Reads only; writes nothing but --out.",
    )
    p.add_argument("app_dir", nargs="?", default=".", metavar="APP_DIR", help="the Fly app folder (default: .)")
    add_target_arg(p)
    p.add_argument("--config", metavar="PATH", help="the fly.toml to read (default: APP_DIR/fly.toml)")
    p.add_argument("--secrets", action="append", metavar="FILE", help="a secrets export: `fly secrets list --json`, "
                   "an env dump, or a .env / `fly secrets import` file (repeatable: names from one, values from another)")
    p.add_argument("--code", action="append", metavar="DIR", help="client code to scan for base URLs "
                   "(repeatable; default: APP_DIR)")
    p.add_argument("--gpu", metavar="KIND[:N]", help="the Fly GPU when fly.toml does not say (a10, l40s, "
                   "a100-pcie-40gb, a100-sxm4-80gb)")
    p.add_argument("--base-url", metavar="URL", help="the new endpoint URL, when already known")
    p.add_argument("--app", dest="app_name", metavar="NAME", help="the Fly app name, when fly.toml has none")
    add_deploy_options(p)
    p.add_argument("--format", choices=("text", "markdown", "json"), default="text",
                   help="text for the terminal (default), markdown for a PR or wiki, json for scripts "
                   "(the stable schema flymigrate/plan/v2, documented in docs/plan-json.md)")
    p.add_argument("--out", metavar="FILE", help="also write the report to FILE (atomically)")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                   help="colour the text output: auto (default) when stdout is a terminal and NO_COLOR is unset")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .. import api
    from ..fsutil import atomic_write
    from ..render import render
    from pathlib import Path

    plan = api.plan(args.app_dir, args.target, config_path=args.config, secrets_paths=args.secrets,
                    code_dirs=args.code, gpu=args.gpu, app_name=args.app_name, options=deploy_options(args))
    from ..textfmt import output_width

    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty() and not os.environ.get("NO_COLOR"))
    inv = invocation(args)
    sys.stdout.write(render(plan, args.format, color=color and args.format == "text", width=output_width(sys.stdout),
                            invocation=inv))
    if args.out:
        out = Path(args.out)
        if out.is_dir():
            from ..errors import UserError

            raise UserError(f"--out {args.out} is a folder; give a file name, e.g. {out / 'plan.md'}.")
        try:
            atomic_write(out, render(plan, args.format, color=False, invocation=inv), mode=0o644)
        except OSError as exc:
            from ..errors import UserError

            raise UserError(f"cannot write --out {args.out}: {exc.strerror}.") from None
        print(f"Plan written to {args.out}.", file=sys.stderr)
    return 0


def invocation(args: argparse.Namespace) -> dict[str, object]:
    """The arguments as typed, for the next commands the report ends with (paths relative to the cwd)."""
    return {"app_dir": args.app_dir, "config": getattr(args, "config", None), "secrets": args.secrets or (),
            "code": getattr(args, "code", None) or (), "gpu": getattr(args, "gpu", None),
            "app_name": getattr(args, "app_name", None), "base_url": getattr(args, "base_url", None)}
