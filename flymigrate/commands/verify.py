"""``flymigrate verify``: does the migrated endpoint serve, and is it as fast as before? One exit code."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .targets import TargetChoices
KINDS = ("openai", "tgi", "ollama", "whisper", "generic")


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text!r}")
    return n


def add_parser(sub: Any) -> None:
    from .transfer import parse_duration

    p = sub.add_parser(
        "verify", help="prove the migrated endpoint serves: checks, cold start, warm latency, one verdict",
        description="Wait for the endpoint through its cold start, run the checks that fit the app (health route; "
        "an OpenAI-compatible server lists the model and streams a chat answer; ollama lists and generates; a "
        "whisper server transcribes a bundled clip), then measure warm latency. Exit 0: all passed; 5: a check "
        "failed; 3: unreachable after --timeout; 2: bad input.",
        epilog="Credentials (never printed): RUNPOD_API_KEY; Modal proxy-auth MODAL_PROXY_TOKEN_ID/"
        "MODAL_PROXY_TOKEN_SECRET (or MODAL_KEY/MODAL_SECRET); a Cloud Run identity token (--id-token, else "
        "`gcloud auth print-identity-token`, else ADC); the app's own key (VLLM_API_KEY...) from --secrets or "
        "the environment.")
    p.add_argument("app_dir", nargs="?", default=None, metavar="APP_DIR",
                   help="the app folder (its apply state has the deployed URL; its fly.toml and Dockerfile say what "
                   "to check); optional with --url")
    p.add_argument("--to", dest="target", required=True, choices=TargetChoices(), metavar="TARGET", help="the platform the app now runs on")
    p.add_argument("--url", help="the endpoint's base URL (default: the URL `apply --deploy` recorded)")
    p.add_argument("--secrets", action="append", default=[], metavar="FILE",
                   help="a secrets export with the app's own key or the platform tokens (repeatable)")
    p.add_argument("--requests", type=_positive_int, default=20, metavar="N", help="warm requests (default 20; 0: none)")
    p.add_argument("--concurrency", type=_positive_int, default=1, metavar="C",
                   help="parallel warm requests (default 1; capped at the target's concurrency)")
    p.add_argument("--timeout", type=parse_duration, default=600.0, metavar="DURATION",
                   help="how long to wait for a cold start (default 10m; e.g. 90s, 15m)")
    p.add_argument("--request-timeout", type=parse_duration, default=300.0, metavar="DURATION",
                   help="per request, once ready (default 5m)")
    p.add_argument("--baseline", metavar="FILE", help="a previous `--format json` report: a p95 above 1.5x its p95, "
                   "or a check that passed there and fails now, fails the verdict")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--out", metavar="FILE", help="also write the report to FILE")
    p.add_argument("--id-token", metavar="TOKEN", help="a Cloud Run identity token; @FILE or - (stdin) keep it out "
                   "of the process list")
    p.add_argument("--kind", choices=KINDS, help="the server kind, when neither the app nor the server says")
    p.add_argument("--model", help="the model the endpoint must list (default: what the Fly app served)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..errors import EXIT_REMOTE, UserError
    from ..fsutil import atomic_write
    from ..redact import redact
    from ..verify import EXIT_VERIFY_FAILED, VerifyOptions, verify
    from ..verify.auth import read_id_token_arg
    from ..verify.ready import Progress
    from ..verify.report import render_text

    app_dir = args.app_dir
    if app_dir is None and not args.url:
        if not Path("fly.toml").exists():
            raise UserError("give APP_DIR (an app folder that was deployed with `flymigrate apply --deploy`) or "
                            "--url URL.")
        app_dir = "."
    if args.out and Path(args.out).is_dir():
        raise UserError(f"--out {args.out} is a folder; give a file name, e.g. {Path(args.out) / 'verify.json'}.")
    opts = VerifyOptions(target=args.target, app_dir=app_dir, url=args.url, secrets=list(args.secrets),
                         requests=args.requests, concurrency=args.concurrency, timeout_s=args.timeout,
                         request_timeout_s=args.request_timeout, baseline=args.baseline,
                         id_token=read_id_token_arg(args.id_token) if args.id_token else None,
                         kind=args.kind, model=args.model)
    report = verify(opts, progress=Progress(sys.stderr))
    if args.format == "json":
        import json

        text = json.dumps(report.to_json(), indent=2) + "\n"
    else:
        text = render_text(report)
    text = redact(text)  # last line of defence: no known secret value leaves in the report
    sys.stdout.write(text)
    if args.out:
        try:
            atomic_write(Path(args.out), text, mode=0o644)
        except OSError as exc:
            raise UserError(f"cannot write --out {args.out}: {exc.strerror}.") from None
    if not report.reachable:
        return EXIT_REMOTE
    return 0 if report.passed else EXIT_VERIFY_FAILED
