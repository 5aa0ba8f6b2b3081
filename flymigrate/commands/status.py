"""``flymigrate status``: what is done, in flight and left, for every transfer journal."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("status", help="what is done, in flight and left (transfers)",
                       description="Show every weight transfer flymigrate knows of (done, in flight, stopped and "
                       "resumable, with sizes and verification) and, given an app folder, which of its five apply "
                       "steps are done for each target. Reads only.")
    p.add_argument("app_dir", nargs="?", default=None, metavar="APP_DIR", help="an app folder: also show its `apply` state")
    p.add_argument("--state-dir", type=Path, default=None, metavar="DIR", help="where journals live")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="text (default) or json for scripts (schema flymigrate/status/v1)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..transfer.engine import list_status
    from .transfer import human

    rows = list_status(args.state_dir)
    applied = None
    if args.app_dir:  # apply state of an app folder (flymigrate.apply.state)
        from ..apply.state import apply_status, format_apply_status

        applied = apply_status(Path(args.app_dir))
    verified = None
    if args.app_dir:  # the last `flymigrate verify` verdict per target
        from ..verify.report import format_last, last_verdicts

        verified = last_verdicts(Path(args.app_dir))
    if args.format == "json":
        out: dict[str, Any] = {"schema": "flymigrate/status/v1", "transfers": rows}
        if args.app_dir:
            out["apply"] = applied
            out["verify"] = verified
        print(json.dumps(out, indent=2))
        return 0
    if applied:
        print("\n".join(format_apply_status(applied)))
    if verified:
        print("\n".join(format_last(verified)))
    if not rows:
        print("no transfers yet.")
        return 0
    for r in rows:
        files = r.get("files", {})
        done = files.get("done", 0) + files.get("skipped", 0)
        inflight = files.get("uploading", 0)
        left = files.get("pending", 0) + files.get("failed", 0)
        state = "running" if r.get("running") else ("finished" if r.get("finished") and not left and not inflight
                                                     else "incomplete (run the same command again)")
        print(f"{r.get('src')} -> {r.get('dst')}: {state}")
        if r.get("error"):
            print(f"  journal unreadable: {r['error']}")
        print(f"  files: {done} done, {inflight} in flight, {left} left"
              f"{', ' + str(files.get('failed')) + ' failed' if files.get('failed') else ''}")
        print(f"  bytes: {human(r.get('bytes_done', 0))} of {human(r.get('bytes_total', 0))}")
        if r.get("finished"):
            print(f"  finished: {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(float(r['finished'])))}")
        for f in r.get("failed", []):
            print(f"  failed: {f}")
        if state.startswith("incomplete") and r.get("resume_command"):
            print(f"  continue with: {r['resume_command']}")
    return 0
