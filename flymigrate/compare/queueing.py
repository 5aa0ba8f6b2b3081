"""The queueing and cost maths: billed instance-seconds per day for scale-to-zero and for warm capacity, and
the break-even solver. Pure functions of numbers; no prices, no targets.

Per day (then x hours_per_month / 24)::

    window = busy_hours x 3600               requests arrive at random (Poisson) inside the busy window
    lam    = requests / window
    work   = requests x S / P                instance-seconds spent serving (P requests share one instance)
    idle   = requests x e^(-lam S) x (1 - e^(-lam T)) / lam
                                             billed idle tail: after a request the instance stays up until
                                             the next arrival or the idle timeout T, whichever comes first
    colds  = requests x e^(-lam (S + T))     arrivals that find no warm instance; at least 1/day when the
                                             quiet part of the day is longer than T
    billed = work + idle + colds x cold_start_s   (start-up is billed on every serverless platform priced)
             capped at keeping the needed instances (at most the Deployment's maximum) up all day

Warm capacity (w instances kept up: the Deployment's minimum): w x 86400 s at the always-on rate, plus work
beyond w x window at the on-demand rate with one cold start and one idle tail per extra instance, up to the
Deployment's maximum (load beyond that is not served, and not billed).
"""

from __future__ import annotations

import math
from collections.abc import Callable

DAY_S = 86400.0


def scale_to_zero_day(requests: float, seconds: float, busy_hours: float, concurrency: int, idle_s: float,
                      cold_start_s: float, max_instances: int | None = None) -> tuple[float, float]:
    """Billed instance-seconds per day and cold starts per day with scale-to-zero (see module doc)."""
    if requests <= 0:
        return 0.0, 0.0
    window = busy_hours * 3600.0
    lam = requests / window
    hold = seconds + idle_s  # an arrival keeps an instance up this long unless another one comes first
    up = requests * (-math.expm1(-lam * hold)) / lam  # union of [arrival, arrival + S + T] over the day
    work = requests * seconds / concurrency
    p = math.exp(-lam * hold)
    colds = requests * p / (1.0 + p * lam * cold_start_s)  # arrivals during a cold start join that instance
    if (24.0 - busy_hours) * 3600.0 > idle_s:
        colds = max(colds, 1.0)
    colds = min(colds, requests)
    billed = max(up, work) + colds * cold_start_s
    needed = max(1, math.ceil(work / window - 1e-9))
    if max_instances is not None:
        needed = min(needed, max(1, max_instances))
    return min(billed, needed * DAY_S), colds


def warm_day(requests: float, seconds: float, busy_hours: float, concurrency: int, idle_s: float,
             cold_start_s: float, warm: int, max_instances: int | None = None) -> tuple[float, float]:
    """(always-on instance-seconds, on-demand overflow instance-seconds) per day with ``warm`` instances kept."""
    window = busy_hours * 3600.0
    work = requests * seconds / concurrency
    overflow = max(0.0, work - warm * window)
    if overflow <= 0:
        return warm * DAY_S, 0.0
    extra = math.ceil(overflow / window - 1e-9)
    if max_instances is not None:
        room = max(0, max_instances - warm)
        if extra > room:  # the Deployment's maximum caps the capacity: the rest is not served
            extra = room
            overflow = min(overflow, room * window)
        if extra == 0:
            return warm * DAY_S, 0.0
    return warm * DAY_S, overflow + extra * (cold_start_s + idle_s)


def instances_needed(requests: float, seconds: float, busy_hours: float, concurrency: int) -> int:
    work = requests * seconds / concurrency
    return max(1, math.ceil(work / (busy_hours * 3600.0) - 1e-9))


def over_capacity(requests: float, seconds: float, busy_hours: float, concurrency: int, max_instances: int) -> bool:
    """True when the traffic needs more instances than the Deployment's maximum."""
    return instances_needed(requests, seconds, busy_hours, concurrency) > max(1, max_instances)


def solve_break_even(excess: Callable[[float], float], u_max: float, steps: int = 200) -> float | None:
    """Smallest utilisation u in (0, u_max] with excess(u) >= 0, or None. Deterministic scan + bisection."""
    prev = 0.0
    for i in range(1, steps + 1):
        u = u_max * i / steps
        if excess(u) >= 0:
            lo, hi = prev, u
            for _ in range(50):
                mid = (lo + hi) / 2
                if excess(mid) >= 0:
                    hi = mid
                else:
                    lo = mid
            return hi
        prev = u
    return None
