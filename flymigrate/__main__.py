import signal
import sys


def _interrupted_while_starting(signum, frame):  # Ctrl-C before the CLI's error boundary exists
    sys.exit(130)


signal.signal(signal.SIGINT, _interrupted_while_starting)

from .cli import console  # noqa: E402

console()
