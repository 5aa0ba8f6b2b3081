"""``flymigrate tui [APP_DIR]``: the interactive walkthrough. Textual is imported only when it runs."""

from __future__ import annotations

import argparse
from typing import Any

from .targets import TargetChoices


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "tui",
        help="the interactive walkthrough: see the app, pick a target, run the five steps",
        description="Open the interactive walkthrough for a Fly app: what flymigrate understood, the targets side "
        "by side, then the five steps, each previewed before it runs. Progress is saved in APP_DIR/.flymigrate/; "
        "quit at any time and come back.",
    )
    p.add_argument("app_dir", nargs="?", default=".", metavar="APP_DIR", help="the Fly app folder (default: .)")
    p.add_argument("--to", dest="target", choices=TargetChoices(), metavar="TARGET", help="the target (you can change it in the walkthrough)")
    p.add_argument("--secrets", dest="secrets", action="append", metavar="FILE",
                   help="your `fly secrets` export (.env, env dump or `fly secrets list --json`); repeatable")
    p.add_argument("--code", dest="code", action="append", metavar="DIR",
                   help="folders to scan for Fly URLs (default: the app folder); repeatable")
    p.add_argument("--config", metavar="PATH", help="the fly.toml to read (default: APP_DIR/fly.toml)")
    p.add_argument("--gpu", metavar="KIND[:N]", help="the Fly GPU when fly.toml does not say (a10, l40s, "
                   "a100-pcie-40gb, a100-sxm4-80gb)")
    p.add_argument("--app", dest="app_name", metavar="NAME", help="the Fly app name, when fly.toml has none")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..errors import UserError

    app_dir = Path(args.app_dir)
    if not app_dir.is_dir():
        raise UserError(f"the app folder {app_dir} does not exist.", hint="Pass the folder that holds fly.toml.")
    from ..api import app_root

    app_dir = app_root(app_dir, args.config)  # from a subfolder: the folder fly.toml was found in
    # deferred: textual costs ~120 ms to import, and only this command needs it
    from ..tui.app import create_app

    app = create_app(app_dir, target=args.target, secrets_paths=args.secrets, code_dirs=args.code,
                     config_path=args.config, gpu=args.gpu, app_name=args.app_name)
    code = app.run()
    if app.crash is not None:
        raise app.crash
    return int(code or 0)
