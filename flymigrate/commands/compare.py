"""`flymigrate compare`: which target, for this app's traffic? Cost, cold start and effort. Reads only."""

from __future__ import annotations

import argparse
import os
import sys

from .targets import TargetChoices


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "compare",
        help="compare Modal, RunPod and Cloud Run for this app: monthly cost, cold start, manual steps",
        description="Read fly.toml and compare Modal, RunPod Serverless (flex and active workers) and Google Cloud "
        "Run for this app and its traffic, next to keeping the same GPU always on at Fly's old price: the GPU each "
        "would use and whether the model fits, price per GPU-second, monthly cost scaling to zero and with the warm "
        "capacity fly.toml implied, break-even utilisation, expected cold start, and which migration steps are "
        "manual there. Traffic you do not give is derived from fly.toml and stated as an assumption. Reads only.",
    )
    p.add_argument("app_dir", nargs="?", default=".", metavar="APP_DIR", help="the Fly app folder (default: .)")
    p.add_argument("--config", metavar="PATH", help="the fly.toml to read (default: APP_DIR/fly.toml)")
    p.add_argument("--to", dest="targets", action="append", choices=TargetChoices(), metavar="TARGET",
                   help="only compare this target (repeatable; default: all three)")
    p.add_argument("--gpu", metavar="KIND[:N]", help="the Fly GPU, overriding fly.toml (a10, l40s, a100-pcie-40gb, "
                   "a100-sxm4-80gb; :N for N GPUs)")
    p.add_argument("--requests-per-day", type=float, metavar="N", help="requests per day")
    p.add_argument("--seconds-per-request", type=float, metavar="S", help="GPU seconds one request takes")
    p.add_argument("--busy-hours", type=float, metavar="H", help="hours per day the traffic arrives in (1-24)")
    p.add_argument("--concurrency", type=int, metavar="N", help="requests one GPU instance serves at once "
                   "(default: fly.toml's concurrency soft_limit, else 1)")
    p.add_argument("--weights-gb", type=float, metavar="GB", help="size of the model weights in GB (10^9 bytes); "
                   "decides whether the model fits and how long it takes to load")
    p.add_argument("--prices", metavar="FILE", help="a price data file to use instead of the built-in one")
    p.add_argument("--format", choices=("text", "markdown", "json"), default="text",
                   help="text for the terminal (default), markdown for a PR or wiki, json for scripts "
                   "(schema flymigrate/compare/v1)")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                   help="colour the text output: auto (default) when stdout is a terminal and NO_COLOR is unset")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .. import api
    from ..compare import Traffic, compare_app, load_prices, render
    from ..errors import UserError

    gpu = None
    if args.gpu:
        from ..planner import parse_gpu_arg

        try:
            gpu = parse_gpu_arg(args.gpu)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    app = api.load_app(args.app_dir, args.config)
    weights = None
    notes: list[str] = []
    if args.weights_gb is not None:
        if not args.weights_gb > 0:
            raise UserError(f"--weights-gb must be > 0, got {args.weights_gb:g}.")
        weights = int(args.weights_gb * 1e9)
    else:
        for m in app.mounts:
            if m.initial_size_gb:
                notes.append(f"the Fly volume {m.source} (mounted at {m.destination}) is {m.initial_size_gb:g} GB: an "
                             f"upper bound for the weights, not used as their size (pass --weights-gb).")
    traffic = Traffic(args.requests_per_day, args.seconds_per_request, args.busy_hours, args.concurrency)
    prices = load_prices(args.prices) if args.prices else None
    comparison = compare_app(app, weights, traffic, gpu=gpu, targets=args.targets, notes=notes, prices=prices)
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty() and not os.environ.get("NO_COLOR"))
    fmt = "rich" if args.format == "text" and color else args.format
    from ..textfmt import output_width

    sys.stdout.write(render(comparison, fmt, width=output_width(sys.stdout)))
    return 0
