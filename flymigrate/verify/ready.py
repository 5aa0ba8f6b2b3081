"""Wait for the endpoint the way each platform behaves during a cold start, and time it.

* RunPod load-balancing endpoints: ``GET /ping`` answers 204 while the worker initialises and 200 when it is
  ready; a request that finds no ready worker within the endpoint's window gets **400** (retry it)
  (docs.runpod.io/serverless/load-balancing/overview: "200 healthy, 204 initializing"; "the system
  returns a 400 error. To implement retries, you should account for this response code").
* Modal and Cloud Run: 503 / 429 (and 502 / 504 from the front) or a refused / reset connection while a
  container starts.

Cold start = first request sent -> first successful answer. 401/403 end the wait at once: waiting longer
cannot fix a credential.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from .http import Client, ConnectError

STARTING = {204, 429, 502, 503, 504}
AUTH = {401, 403, 407}


@dataclass
class Readiness:
    ready: bool
    cold_start_s: float | None
    attempts: int
    path: str
    last: str  # the last answer or error, for the report
    status: int | None = None  # the last status seen (None: never connected)


class Progress:
    """One live line on stderr: overwritten on a terminal, a new line every few seconds otherwise."""

    def __init__(self, stream=None, every_s: float = 5.0) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every_s = every_s
        self._last: float | None = None
        self._width = 0

    def update(self, text: str) -> None:
        now = time.monotonic()
        if self.tty:
            pad = max(0, self._width - len(text))
            self.stream.write("\r" + text + " " * pad)
            self._width = len(text)
            self.stream.flush()
        elif self._last is None or now - self._last >= self.every_s:
            self.stream.write(text + "\n")
            self.stream.flush()
            self._last = now

    def done(self, text: str | None = None) -> None:
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self._width = 0
        if text:
            self.stream.write(text + "\n")
        self.stream.flush()


def wait_ready(client: Client, target: str, path: str, timeout_s: float, *, progress: Progress | None = None,
               interval_s: float = 0.5, max_interval_s: float = 5.0, probe_timeout_s: float = 30.0,
               clock: Callable[[], float] = time.monotonic) -> Readiness:
    from .auth import _spec

    no_worker = _spec(target).no_worker_status
    start = clock()
    deadline = start + timeout_s
    attempts = 0
    wait = interval_s
    last = "no answer yet"
    status: int | None = None
    while True:
        attempts += 1
        remaining = deadline - clock()
        try:
            r = client.get(path, timeout=max(0.5, min(probe_timeout_s, remaining)))
            status = r.status
            if r.status in AUTH:
                return Readiness(False, None, attempts, path, f"{r.status} {r.reason}: {r.text(120)}".strip(": "),
                                 r.status)
            if no_worker is not None and r.status == no_worker:
                last = f"{r.status}: no worker became ready within the platform's window (retrying)"
            elif r.status in STARTING:
                last = f"{r.status} {'initialising' if r.status == 204 else r.reason or 'starting'}"
            else:
                return Readiness(True, clock() - start, attempts, path, f"{r.status} {r.reason}", r.status)
        except ConnectError as exc:
            last = str(exc)
        elapsed = clock() - start
        if progress is not None:
            progress.update(f"waiting for {path} to answer: {elapsed:.0f}s, {attempts} tries, last: {last}")
        left = deadline - clock()
        if left <= 0:
            return Readiness(False, None, attempts, path, last, status)
        time.sleep(min(wait, left))
        wait = min(max_interval_s, wait * 1.5)
