"""Which target, for *this* app? A pure, deterministic cost and cold-start model of the Deployments the
planner decides.

``compare`` prices exactly what ``plan`` shows and ``apply`` writes: for every registered target (or those
given with ``--to``) it builds the plan through the planner (:func:`flymigrate.planner.build_plan`) and reads
``plan.deployment`` -- GPU id and count, min / max instances, concurrency, idle timeout, cpus / memory -- and
``plan.steps`` (which steps need you). Each target's ``cost_rows`` hook says what an instance of its
Deployment costs (figures from ``flymigrate/data/prices.toml``); the "stay always-on at Fly's price" row is a
reference, not a target. No vendor SDK; the data file is the only I/O.

The rooms:

- :mod:`.prices`   -- the data file: loading, checking, dating
- :mod:`.inputs`   -- the traffic and each target's :class:`Planned` deployment, read from the plans
- :mod:`.queueing` -- billed instance-seconds for scale-to-zero / warm capacity, break-even (pure maths)
- :mod:`.rows`     -- rows, the recommendation, the sensitivity, :class:`Comparison`
- :mod:`.render`   -- text, markdown, JSON, rich

Public API (embedded by ``plan`` and the TUI target screen)::

    compare_app(app, weights_bytes, traffic, *, gpu=None, targets=None, plan_inputs=None, plans=None,
                prices=None, today=None) -> Comparison
    render(comparison, fmt) -> str          # fmt: "text" | "markdown" | "json" | "rich"
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import TYPE_CHECKING, Any

from .. import gpus
from ..errors import UserError
from ..model import FlyApp, GpuSpec
from .inputs import (
    DEFAULT_ONDEMAND_BUSY_HOURS,
    DEFAULT_ONDEMAND_REQUESTS,
    DEFAULT_SECONDS_PER_REQUEST,
    DEFAULT_STEADY_UTILISATION,
    Inputs,
    Planned,
    Traffic,
    planned_from,
    resolve_gpu_spec,
    resolve_inputs,
)
from .prices import Prices, default_prices_path, load_prices, resolve_today
from .queueing import DAY_S, instances_needed, scale_to_zero_day, solve_break_even, warm_day
from .render import render
from .rows import (
    REFERENCE_KEY,
    SCHEMA,
    Alternative,
    Comparison,
    Option,
    Recommendation,
    Row,
    Sensitivity,
    build_rows,
    compare_inputs,
    options,
    sensitivity,
)

if TYPE_CHECKING:
    from ..model import Plan
    from ..planner import PlanInputs

__all__ = [
    "DAY_S", "DEFAULT_ONDEMAND_BUSY_HOURS", "DEFAULT_ONDEMAND_REQUESTS", "DEFAULT_SECONDS_PER_REQUEST",
    "DEFAULT_STEADY_UTILISATION", "REFERENCE_KEY", "SCHEMA", "Alternative", "Comparison", "Inputs", "Option",
    "Planned", "Prices", "Recommendation", "Row", "Sensitivity", "Traffic", "build_rows", "compare_app",
    "compare_inputs", "compare_plans", "default_prices_path", "instances_needed", "load_prices", "options",
    "plan_targets", "render", "resolve_today", "scale_to_zero_day", "sensitivity", "solve_break_even", "warm_day",
]

MAX_GPUS = 8


def plan_targets(inp: PlanInputs, targets: tuple[str, ...] | list[str] | None = None,
                 plans: dict[str, Plan] | None = None) -> dict[str, Plan]:
    """The planner's plan per target (``plans`` already built are reused: the TUI and ``plan`` pass theirs)."""
    from ..planner import build_plan
    from ..targets import is_target, names

    only = tuple(dict.fromkeys(targets or ()))
    for t in only:
        if not is_target(t):
            raise UserError(f"unknown target {t!r}: use {', '.join(names())}.")
    have = dict(plans or {})
    chosen = [t for t in names() if not only or t in only]  # registry order, whatever order --to came in
    return {t: have[t] if t in have and have[t].deployment is not None else build_plan(inp, t) for t in chosen}


def _bigger_gpus(inp: Inputs, plans: dict[str, Plan], prices: Prices) -> tuple[Alternative, ...]:
    """When the planned GPUs are too small for known weights: per target, the cheapest Fly GPU kind x count
    (its ``map_gpu``) that fits, priced for the same traffic. ``--gpu KIND:N`` plans it."""
    from ..targets import get_target

    if inp.weights_bytes is None:
        return ()
    need = inp.weights_bytes * prices.common("vram_overhead_factor") / 1e9
    out: list[Alternative] = []
    for t, plan in plans.items():
        target = get_target(t)
        dep = plan.deployment
        best: Alternative | None = None
        for kind in gpus.FLY_GPU_KINDS:
            for n in range(1, MAX_GPUS + 1):
                tg = target.map_gpu(kind, n)
                if tg.blocked or not tg.name or not tg.vram_gb or tg.vram_gb * n < need:
                    continue
                dep2 = replace(dep, gpu=tg.name, gpu_count=n, gpu_label=tg.label, gpu_reason=tg.reason)
                pl = replace(planned_from(plan, target, prices, dep2), vram_gb=tg.vram_gb, mapping_fits=True,
                             alternatives=())
                inp2 = replace(inp, planned=(pl,))
                for row in build_rows(inp2, prices, with_break_even=False):
                    for o in options([row]):
                        if best is None or o.monthly < best.monthly - 1e-9:
                            best = Alternative(row, f"{kind}:{n}", o.monthly, o.mode)
                break  # more of the same kind only costs more
        if best is not None:
            out.append(best)
    return tuple(sorted(out, key=lambda a: a.monthly))


def compare_plans(inp: PlanInputs, weights_bytes: int | None, traffic: Traffic | None = None, *,
                  targets: tuple[str, ...] | list[str] | None = None, plans: dict[str, Plan] | None = None,
                  notes: tuple[str, ...] | list[str] = (), prices: Prices | None = None,
                  today: date | None = None) -> Comparison:
    """The comparison of the plans' Deployments for ``inp`` (the planner's inputs, GPU hints included)."""
    prices = prices or load_prices()
    resolve_gpu_spec(inp)  # a clear error before planning when there is no GPU to compare
    by_target = plan_targets(inp, targets, plans)
    ci = resolve_inputs(inp, by_target, weights_bytes, traffic or Traffic(), prices, notes)
    c = compare_inputs(ci, prices, today=today)
    if c.recommendation.key is None and weights_bytes is not None:
        alts = _bigger_gpus(ci, by_target, prices)
        if alts:
            c = compare_inputs(ci, prices, today=today, alternatives=alts)
    return c


def compare_app(app: FlyApp, weights_bytes: int | None, traffic: Traffic | None = None, *,
                gpu: GpuSpec | None = None, targets: tuple[str, ...] | list[str] | None = None,
                notes: tuple[str, ...] | list[str] = (), prices: Prices | None = None,
                today: date | None = None, plan_inputs: Any = None,
                plans: dict[str, Plan] | None = None) -> Comparison:
    """The comparison for ``app`` (see the module doc).

    ``gpu`` overrides the app's GPU (``--gpu``); ``targets`` limits the options (``--to``; the Fly reference row
    is always shown); ``plan_inputs`` are the planner's inputs when already loaded (GPU hints, Dockerfile,
    scripts), else they are just ``app``; ``plans`` are plans already built; ``notes`` are extra assumptions to
    state; ``today`` defaults to ``FLYMIGRATE_TODAY`` or the clock (it only decides the staleness warning).
    """
    from ..planner import PlanInputs

    inp = plan_inputs if plan_inputs is not None else PlanInputs(app=app)
    if gpu is not None:
        inp = replace(inp, gpu_override=gpu)
        plans = None  # a different GPU is a different plan
    return compare_plans(inp, weights_bytes, traffic, targets=targets, plans=plans, notes=notes, prices=prices,
                         today=today)
