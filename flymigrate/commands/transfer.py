"""``flymigrate transfer SRC DST``: standalone, unattended, resumable weight transfer.

Credentials come from the environment only (never argv): ``HF_TOKEN`` for Hugging Face;
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (+ ``AWS_ENDPOINT_URL_S3`` for Tigris) for ``s3://``;
``RUNPOD_S3_ACCESS_KEY_ID``/``RUNPOD_S3_SECRET_ACCESS_KEY`` (falling back to the AWS_* pair) for
``runpod-volume://``.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import UserError

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "ki": 1024, "kib": 1024, "m": 1000**2, "mb": 1000**2, "mi": 1024**2,
          "mib": 1024**2, "g": 1000**3, "gb": 1000**3, "gi": 1024**3, "gib": 1024**3}


def parse_size(text: str) -> int:
    m = _SIZE_RE.match(text)
    if not m or (m.group(2) or "").lower() not in _UNITS:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 64MiB, 100MB, 1GiB)")
    return int(float(m.group(1)) * _UNITS[(m.group(2) or "").lower()])


def parse_duration(text: str) -> float:
    from ..parse.units import duration_s

    secs = duration_s(text, int_unit=1.0) if not text.strip().replace(".", "", 1).isdigit() else float(text)
    if secs is None or secs < 0:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 15m, 1h, 90s, 0)")
    return secs


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "transfer",
        help="copy model weights (resumable): hf:// | local | s3:// -> runpod-volume:// | s3:// | ...",
        description="Copy model weights, resumably. Run the same command again after any interruption and it "
        "continues where it stopped. Credentials come from the environment (or --secrets FILE): HF_TOKEN; AWS_ACCESS_KEY_ID / "
        "AWS_SECRET_ACCESS_KEY (+ AWS_ENDPOINT_URL_S3 for Tigris); RUNPOD_S3_ACCESS_KEY_ID / "
        "RUNPOD_S3_SECRET_ACCESS_KEY for RunPod volumes; MODAL_TOKEN_ID / MODAL_TOKEN_SECRET (or ~/.modal.toml) "
        "for modal-volume://; Google Application Default Credentials for gs://; for fly-volume:// a logged-in "
        "flyctl on PATH (or FLY_API_TOKEN), which starts a small helper machine with the volume and removes it "
        "at the end.",
    )
    p.add_argument("src", metavar="SRC", help="hf://ORG/REPO[@REV], a local path, s3://BUCKET/PREFIX, fly-volume://APP/VOLUME/PATH")
    p.add_argument("dst", metavar="DST", help="runpod-volume://VOLUME_ID/PREFIX, s3://BUCKET/PREFIX, gs://..., modal-volume://...")
    p.add_argument("--yes", "-y", action="store_true", help="never ask; log progress lines instead of bars")
    p.add_argument("--dry-run", action="store_true", help="list what would be copied and how many bytes; copy nothing")
    p.add_argument("--datacenter", metavar="DC", help="RunPod datacenter of the volume, e.g. EU-RO-1 (default: RUNPOD_DATACENTER, else looked up with "
                   "RUNPOD_API_KEY, else found by asking each datacenter's S3 API)")
    p.add_argument("--endpoint-url", metavar="URL", help="S3 endpoint override (RunPod volumes / any S3 destination)")
    p.add_argument("--parallel", type=int, default=None, metavar="N", help="parts / files in flight (default 8)")
    p.add_argument("--part-size", type=parse_size, default=None, metavar="SIZE", help="multipart part size (default 64MiB from local disk, streamed; 16MiB otherwise, buffered)")
    p.add_argument("--state-dir", type=Path, default=None, metavar="DIR", help="where journals and logs live")
    p.add_argument("--overwrite", action="store_true", help="replace destination files that differ from the source")
    p.add_argument("--no-part-md5", action="store_true",
                   help="no per-part check on the server (= --part-check none; sha256 and size checks stay on)")
    p.add_argument("--part-check", choices=("auto", "crc32c", "md5", "none"), default="auto",
                   help="how the destination checks each part, on top of the end-to-end sha256: auto (default) = "
                   "CRC32C (x-amz-checksum-crc32c) where the S3 endpoint verifies it (probed once per run), else the "
                   "part's MD5 against its ETag; crc32c / md5 = that one; none = neither")
    p.add_argument("--secrets", action="append", default=[], metavar="FILE",
                   help="also read credentials from this file (repeatable): a .env / `fly secrets import` file or an "
                   "env dump, e.g. the export of your Fly app, where `fly storage create` put Tigris's AWS_* values. "
                   "Its values take precedence over the environment; only their names are ever printed")
    p.add_argument("--retry-for", type=parse_duration, default=None, metavar="DURATION",
                   help="once the copy is under way, keep retrying through a network outage for this long before "
                   "stopping with exit 4 (default 15m; 0 = give up after the usual 8 attempts)")
    p.add_argument("--json", action="store_true", help="print progress events as JSON lines on stdout")
    p.set_defaults(run=run)


class _Reporter:
    """Rich bars on a TTY; plain progress lines otherwise (or with --yes under CI)."""

    def __init__(self, use_bars: bool, json_out: bool) -> None:
        self.use_bars = use_bars and not json_out
        self.json_out = json_out
        self.total = 0
        self.done = 0
        self.sent = 0  # bytes sent by this run (not parts found on the server): what the rate is made of
        self.t_first: float | None = None  # when the first byte of this run went out
        self.t0 = time.monotonic()
        self.last_line = 0.0
        self.progress: Any = None
        self.task: Any = None
        self.file_tasks: dict[str, Any] = {}

    def __enter__(self) -> _Reporter:
        if self.use_bars:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self.progress = Progress(TextColumn("{task.description}", table_column=None), BarColumn(), DownloadColumn(),
                                     TransferSpeedColumn(), TimeRemainingColumn(), transient=False)
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def _line(self, text: str) -> None:
        from ..redact import redact

        text = redact(text)
        if self.progress is not None:
            self.progress.console.print(text)
        else:
            print(text, file=sys.stderr, flush=True)

    RATE_AFTER = 3.0  # seconds of sending before a rate (and an ETA) is shown

    def _rate(self, now: float) -> str:
        """", RATE/s, eta N" once the rate is known (a few seconds of this run's own sending), else ""."""
        if self.t_first is None or now - self.t_first < self.RATE_AFTER or self.sent <= 0:
            return ""
        rate = self.sent / (now - self.t_first)
        eta = (self.total - self.done) / rate
        return f", {human(rate)}/s, eta {_fmt_eta(eta)}"

    def __call__(self, ev: Any) -> None:
        if self.json_out:
            import json

            rec = {"kind": ev.kind, "path": ev.path, "bytes": ev.bytes, "total": ev.total, "message": ev.message}
            rec.update(dict(ev.data))
            if isinstance(rec.get("message"), str):
                from ..redact import redact

                rec["message"] = redact(rec["message"])
            print(json.dumps(rec), flush=True)
            return
        k = ev.kind
        if k == "plan":
            self.total = ev.total
            self._line(f"plan: {ev.message} ({human(ev.total)}); {ev.data.get('skipped', 0)} already there")
            if self.progress is not None:
                self.task = self.progress.add_task("total", total=max(1, ev.total))
        elif k in ("bytes", "resumed"):
            self.done += ev.bytes
            if k == "bytes":
                self.sent += ev.bytes
                if self.t_first is None:
                    self.t_first = time.monotonic()
            if self.progress is not None:
                self.progress.update(self.task, advance=ev.bytes)
                ft = self.file_tasks.get(ev.path or "")
                if ft is not None:
                    self.progress.update(ft, advance=ev.bytes)
            else:
                now = time.monotonic()
                if now - self.last_line >= 2.0:
                    self.last_line = now
                    pct = 100.0 * self.done / self.total if self.total else 100.0
                    self._line(f"progress: {human(self.done)} / {human(self.total)} ({pct:.0f}%)" + self._rate(now))
        elif k == "file_start":
            if self.progress is not None and ev.total > 64 * 1024 * 1024:
                self.file_tasks[ev.path or ""] = self.progress.add_task(ev.path or "", total=ev.total)
        elif k == "file_done":
            ft = self.file_tasks.pop(ev.path or "", None)
            if ft is not None:
                self.progress.remove_task(ft)
            self._line(f"done: {ev.path} ({human(ev.total)}, sha256 {str(ev.data.get('sha256', ''))[:12]}…)")
        elif k == "file_failed":
            self._line(f"FAILED: {ev.path}: {ev.message}")
        elif k in ("info", "warning", "retry", "resume", "cleanup"):
            self._line(f"{k}: {ev.path + ': ' if ev.path else ''}{ev.message}")


def _fmt_eta(s: float) -> str:
    s = max(0, int(s))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def _env_with_secrets(paths: list[str]) -> dict[str, str]:
    """The environment plus every value the secrets files hold (the files win). Says which names it took."""
    from ..parse.secrets import load_secrets

    values: dict[str, str] = {}
    for f in paths:
        export = load_secrets(Path(f))
        for finding in export.findings:
            if finding.severity == "warning" and finding.code == "secrets-file-permissions":
                print(f"warning: {finding.message}", file=sys.stderr)
        for sec in export.secrets:
            if sec.value is not None:
                values[sec.name] = sec.value.reveal()
    if not values:
        raise UserError(f"the secrets file(s) {', '.join(paths)} hold no values (a names-only `fly secrets list` "
                        "export cannot supply credentials).", hint="Pass a .env file or an env dump with the values.")
    over = sorted(k for k in values if k in os.environ and os.environ[k] != values[k])
    print(f"info: credentials from {', '.join(paths)}: {', '.join(sorted(values))}"
          + (f" (instead of the environment's {', '.join(over)})" if over else ""), file=sys.stderr)
    return {**os.environ, **values}


def run(args: argparse.Namespace) -> int:
    from ..transfer.engine import TransferOptions, run_transfer

    if args.parallel is not None and not 1 <= args.parallel <= 64:
        raise UserError("--parallel must be between 1 and 64.")
    if args.dry_run and args.src.startswith("fly-volume://"):
        # listing a Fly volume needs a helper machine; a dry run starts none and shows the flyctl commands instead
        from ..transfer.base import parse_url
        from ..transfer.fly_volume import dry_run_commands

        print(f"dry run: {args.src} -> {args.dst}")
        print("A Fly volume is read through a small helper machine, so a dry run starts none. The transfer runs:")
        for line in dry_run_commands(parse_url(args.src)):
            print("  " + line)
        return 0
    stop = threading.Event()
    opts = TransferOptions(
        parallel=args.parallel,
        part_size=args.part_size,
        overwrite=args.overwrite,
        dry_run=args.dry_run,
        datacenter=args.datacenter,
        endpoint_url=args.endpoint_url,
        state_dir=args.state_dir,
        stop=stop,
        part_md5=not args.no_part_md5,
        part_check=args.part_check,
    )
    if args.retry_for is not None:
        opts.retry_for = args.retry_for
    if args.secrets:
        opts.env, opts.secrets_files = _env_with_secrets(args.secrets), tuple(os.path.abspath(f) for f in args.secrets)
    # undocumented knobs for tests and impatient users: retry budget and backoff base (seconds)
    if os.environ.get("FLYMIGRATE_MAX_ATTEMPTS"):
        opts.max_attempts = max(1, int(os.environ["FLYMIGRATE_MAX_ATTEMPTS"]))
    if os.environ.get("FLYMIGRATE_BACKOFF_BASE"):
        opts.backoff_base = float(os.environ["FLYMIGRATE_BACKOFF_BASE"])
        opts.backoff_max = max(opts.backoff_base, min(opts.backoff_max, opts.backoff_base * 16))
    interactive = sys.stdout.isatty() and sys.stderr.isatty()
    use_bars = interactive and not (args.yes and os.environ.get("CI"))

    hits = {"n": 0}

    def on_signal(signum: int, frame: Any) -> None:
        hits["n"] += 1
        if hits["n"] > 1:
            os._exit(130)  # second Ctrl-C: leave now (the journal is always consistent)
        stop.set()

    old_int = signal.signal(signal.SIGINT, on_signal)
    old_term = signal.signal(signal.SIGTERM, on_signal)
    try:
        with _Reporter(use_bars and not args.dry_run, args.json) as rep:
            result = run_transfer(args.src, args.dst, opts, progress=rep)
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
    if args.dry_run:
        if args.json:
            return 0
        print(f"dry run: {args.src} -> {args.dst}")
        for item in result.plan:
            note = f"  ({item.reason})" if item.reason else ""
            print(f"  {item.action:9} {human(item.size):>11}  {item.path}{note}")
        for w in result.warnings:
            if w.startswith("could not check the destination"):
                print(f"note: {w}")
        n = sum(1 for i in result.plan if i.action != "skip")
        print(f"would copy {n} of {result.files_total} files, {human(result.bytes_to_copy)} "
              f"({result.bytes_to_copy} bytes); {result.files_skipped} already there.")
        return 0
    if not args.json:
        rate = result.bytes_sent / result.seconds if result.seconds > 0 else 0
        print(f"copied {result.files_copied} file(s), {human(result.bytes_sent)} sent"
              f"{', ' + human(result.bytes_reused) + ' already on the server' if result.bytes_reused else ''}, "
              f"{result.files_skipped} already there; all verified ({result.seconds:.1f}s, {human(rate)}/s).")
    return 0
