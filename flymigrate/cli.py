"""The command line: a thin shell over :mod:`flymigrate.api`.

``main(argv) -> int`` is the single error boundary: typed errors become a one-paragraph message on
stderr and a documented exit code; anything unexpected is written to a crash log (never to the
screen unless ``--debug``).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import time
from collections.abc import Sequence

from . import __version__
from .errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_RESUMABLE, FlymigrateError

# Each command lives in flymigrate/commands/<name>.py with add_parser(subparsers) and run(args) -> int.
# Command modules must import nothing heavy at module level (start-up time is measured).
COMMANDS = ("plan", "apply", "transfer", "status", "compare", "tui", "verify")

EPILOG = """exit codes: 0 done; 1 internal error (see the crash log it names); 2 invalid input or usage;
3 a remote service kept failing; 4 stopped but resumable (run the same command again); 5 verify: a check failed;
130 interrupted."""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; ``only``: build just that command's subparser (start-up time: each command module and its
    options cost import and argparse time, and one command runs per process)."""
    parser = argparse.ArgumentParser(
        prog="flymigrate",
        description="Move a Fly.io GPU app to Modal, RunPod Serverless or Google Cloud Run.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"flymigrate {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for internal errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        if only is not None and name != only:
            continue
        modname = f"flymigrate.commands.{name}"
        if importlib.util.find_spec(modname) is None:
            continue
        importlib.import_module(modname).add_parser(sub)
    return parser


def _crash_log(exc: BaseException) -> str | None:
    from .paths import ensure_private_dir, state_dir
    import traceback  # start-up time: only a crash needs it

    from .redact import redact

    try:
        d = ensure_private_dir(state_dir() / "crash")
        path = d / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(redact("".join(traceback.format_exception(exc))))
        return str(path)
    except OSError:
        return None


def _disk_full(exc: BaseException) -> str | None:
    """`` (PATH)`` / ``""`` when ``exc`` (or what it wraps) is a full disk or quota, else None."""
    import errno

    seen = 0
    e: BaseException | None = exc
    while e is not None and seen < 5:
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return f" ({e.filename})" if e.filename else ""
        if type(e).__name__ in ("OperationalError", "DatabaseError") and "disk is full" in str(e):
            return ""  # sqlite3: the journal could not grow
        e = e.__cause__ or e.__context__
        seen += 1
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
    if not argv:
        # plain `flymigrate` inside an app folder opens the walkthrough (when the TUI is installed)
        if os.path.exists("fly.toml") and "tui" in parser._subparsers._group_actions[0].choices:  # type: ignore[union-attr]
            argv = ["tui", "."]
        else:
            parser.print_help()
            return 0
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    try:
        return int(args.run(args) or 0)
    except FlymigrateError as err:
        from .redact import redact

        msg = f"flymigrate: error: {redact(str(err))}"
        if sys.stderr.isatty():  # wrapped for a person; one line in logs and pipes, where grep reads it
            from .textfmt import output_width, wrap

            msg = "\n".join(wrap(msg, output_width(sys.stderr), extra_indent=2))
        print(msg, file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("\nflymigrate: interrupted; state is saved, run the same command again to continue.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0
    except Exception as exc:  # the one place an unexpected error is caught
        full = _disk_full(exc)
        if full is not None:
            print(f"flymigrate: error: no space left on the disk{full}. Nothing finished was lost; free some space "
                  "(or point FLYMIGRATE_STATE_DIR at a bigger disk) and run the same command again.", file=sys.stderr)
            return EXIT_RESUMABLE
        if args.debug:
            import traceback

            from .redact import redact

            print(redact(traceback.format_exc()), file=sys.stderr, end="")
        path = _crash_log(exc)
        where = f" Details were written to {path}." if path else ""
        print(
            f"flymigrate: internal error: {type(exc).__name__}.{where} "
            "Please report it (the log holds no secret values); --debug shows the traceback.",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def console() -> None:
    """The `flymigrate` program: run, then ignore Ctrl-C while the interpreter shuts down.

    A Ctrl-C that lands after the work is done (while Python finalises) would otherwise print an
    "Exception ignored ... KeyboardInterrupt" traceback; everything is saved by then.
    """
    import signal

    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C -> KeyboardInterrupt inside main()
    rc = main()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(rc)


if __name__ == "__main__":  # pragma: no cover
    console()
