"""Retries with backoff and jitter; an outage (the remote was reached earlier in this run) is waited out for
``--retry-for``."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import RemoteError, ResumableError
from .base import TransientError
from .events import Event

if TYPE_CHECKING:
    from .engine import TransferOptions


class _Stopped(Exception):
    pass


class _Health:
    """Shared by one run's threads: has any request succeeded yet (so an outage now is an outage, not a typo)?"""

    reached = False

    def outage_left(self, opts: TransferOptions, network: bool, since: float) -> float:
        """Seconds a failure to reach the remote may still be retried beyond max_attempts (0: give up)."""
        if not (network and self.reached):
            return 0.0
        return max(0.0, opts.retry_for - (time.monotonic() - since))


def _fmt_secs(s: float) -> str:
    return f"{s / 60:.0f} min" if s >= 90 else f"{s:.0f}s"


def _retry(opts: TransferOptions, stop: threading.Event, emit: Callable[[Event], None], what: str,
           path: str | None, fn: Callable[[], Any], health: _Health | None = None) -> Any:
    """Call ``fn``; on TransientError back off exponentially with jitter (honouring Retry-After). Network
    failures after the remote was reached are retried for ``opts.retry_for`` seconds (an outage)."""
    attempt = 0
    since = 0.0
    while True:
        if stop.is_set():
            raise _Stopped()
        try:
            out = fn()
            if health is not None:
                health.reached = True
            return out
        except TransientError as e:
            attempt += 1
            since = since or time.monotonic()
            left = health.outage_left(opts, e.network, since) if health is not None else 0.0
            if attempt >= opts.max_attempts and left <= 0:
                if e.network:
                    raise ResumableError(
                        f"could not reach the server for {what} after {attempt} attempts ({e}).",
                        hint="State is saved; check the network and run the same command again to continue.",
                    ) from None
                raise RemoteError(
                    f"{what} kept failing after {attempt} attempts ({e}).",
                    hint="State is saved; run the same command again to continue once the service recovers.",
                ) from None
            delay = min(opts.backoff_max, opts.backoff_base * (2 ** (attempt - 1)))
            delay = delay * (0.5 + random.random() / 2)
            if e.retry_after is not None:
                delay = max(delay, min(e.retry_after, 300.0))
            if attempt >= opts.max_attempts:
                delay = min(delay, left)
                msg = (f"{what}: {e}; the network looks down ({_fmt_secs(time.monotonic() - since)} so far), still "
                       f"retrying for up to {_fmt_secs(left)} (--retry-for); retry {attempt} in {delay:.1f}s")
            else:
                msg = f"{what}: {e}; retry {attempt} in {delay:.1f}s"
            emit(Event("retry", path, message=msg, data={"attempt": attempt, "delay": round(delay, 2)}))
            if stop.wait(delay):
                raise _Stopped() from None
