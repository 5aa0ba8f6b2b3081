"""Warm latency: N requests at concurrency C, each worker thread on its own keep-alive connection."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .http import Client, ConnectError

# one request: (client) -> error text or None; raising ConnectError counts as an error too
Request = Callable[[Client], "str | None"]


@dataclass
class Latency:
    requests: int
    concurrency: int
    what: str
    samples_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_examples: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def pct(self, p: float) -> float | None:
        if not self.samples_ms:
            return None
        s = sorted(self.samples_ms)
        k = max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))  # nearest-rank
        return s[k]

    def to_json(self) -> dict[str, Any]:
        r = (lambda v: None if v is None else round(v, 3))
        return {"p50_ms": r(self.pct(50)), "p95_ms": r(self.pct(95)),
                "max_ms": r(max(self.samples_ms) if self.samples_ms else None), "errors": self.errors,
                "requests": self.requests, "concurrency": self.concurrency, "what": self.what,
                "error_examples": self.error_examples[:3]}


def measure(make_client: Callable[[], Client], request: Request, n: int, concurrency: int, what: str,
            progress: Callable[[int, int], None] | None = None) -> Latency:
    out = Latency(n, concurrency, what)
    lock = threading.Lock()
    counter = iter(range(n))
    done = [0]

    def worker() -> None:
        c = make_client()
        try:
            while True:
                with lock:
                    if next(counter, None) is None:
                        return
                t0 = time.perf_counter()
                try:
                    err = request(c)
                except ConnectError as exc:
                    err = str(exc)
                ms = (time.perf_counter() - t0) * 1000
                with lock:
                    done[0] += 1
                    if err is None:
                        out.samples_ms.append(ms)
                    else:
                        out.errors += 1
                        if len(out.error_examples) < 3:
                            out.error_examples.append(err)
                    if progress is not None:
                        progress(done[0], n)
        finally:
            c.close()

    t0 = time.perf_counter()
    if concurrency <= 1:
        worker()
    else:
        threads = [threading.Thread(target=worker, daemon=True) for _ in range(min(concurrency, n))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    out.wall_s = time.perf_counter() - t0
    return out
