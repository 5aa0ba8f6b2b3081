"""What the comparison prices: each target's Deployment as the planner decided it (:class:`Planned`), and the
traffic (:class:`Traffic`, filled from fly.toml and the plans when the user gives none, every derivation stated).

Nothing here decides a fact of a deployment: the GPU id and count, min / max instances, concurrency, idle
timeout, cpus / memory and the step statuses are read from ``plan.deployment`` and ``plan.steps``.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import TYPE_CHECKING, Any

from .. import gpus
from ..errors import UserError
from ..model import GpuSpec

if TYPE_CHECKING:  # type checkers see the standard decorator
    from dataclasses import dataclass
else:  # start-up time: no exec per generated method (flymigrate/_dataclass.py)
    from .._dataclass import dataclass

if TYPE_CHECKING:
    from ..model import Plan
    from ..planner import PlanInputs
    from ..targets.base import CostRow
    from .prices import Prices

# Defaults when neither the user nor fly.toml says anything about traffic.
DEFAULT_SECONDS_PER_REQUEST = 2.0
DEFAULT_STEADY_UTILISATION = 0.25  # warm machines: traffic fills 25% of their capacity, all day
DEFAULT_ONDEMAND_REQUESTS = 200.0  # scale-to-zero apps: occasional traffic
DEFAULT_ONDEMAND_BUSY_HOURS = 8.0


@dataclass(frozen=True)
class Traffic:
    """What the user told us; ``None`` = derive from fly.toml."""

    requests_per_day: float | None = None
    seconds_per_request: float | None = None
    busy_hours: float | None = None
    concurrency: int | None = None  # requests one GPU instance serves at once


@dataclass(frozen=True)
class Planned:
    """One target's Deployment, as compare prices it: read from the plan, never decided here."""

    target: str
    label: str
    gpu: str | None  # Deployment.gpu (the target's id; None = not offered / blocked)
    gpu_label: str
    gpu_count: int
    vram_gb: int | None  # per GPU (the planner's mapping)
    mapping_fits: bool
    reason: str  # why this GPU (or why none)
    alternatives: tuple[str, ...]
    min_instances: int
    max_instances: int
    concurrency: int | None  # the Deployment's requests per instance (None = unlimited)
    idle_timeout_s: float | None  # None = none configured (always on, or fixed by the platform)
    cpus: int | None
    memory_mb: int | None
    steps: tuple[tuple[str, str, str], ...]  # (step id, status, summary): the planner's
    costs: tuple[CostRow, ...]  # the target's cost inputs for this Deployment
    blocked: str = ""  # the Deployment's first blocker: priced, but never recommended

    @property
    def effort(self) -> tuple[tuple[str, bool, str], ...]:
        """(step, manual?, note) from the plan's step statuses: manual = needs you (manual or blocked)."""
        return tuple((sid, status in ("manual", "blocked"), summary) for sid, status, summary in self.steps)

    @cached_property
    def manual_count(self) -> int:
        """How many steps need you (the sensitivity's tie-break asks ~1000 times per comparison)."""
        return sum(1 for _, manual, _ in self.effort if manual)


def deployment_concurrency(plan: Plan) -> int | None:
    sc = plan.deployment.scaling if plan.deployment is not None else None  # type: ignore[attr-defined]
    if sc is None:
        return None
    return sc.max_concurrency or sc.target_concurrency


def planned_from(plan: Plan, target: Any, prices: Prices, dep: Any = None) -> Planned:
    """Read one target's plan: its Deployment (``dep`` overrides it, for the larger-GPU options) and steps."""
    from ..targets.base import CostRow

    dep = dep if dep is not None else plan.deployment  # type: ignore[attr-defined]
    try:
        costs = tuple(target.cost_rows(dep, prices))
    except UserError as exc:  # e.g. a registered target with no prices in the data file: shown, not fatal
        short = getattr(target, "short_label", None) or target.label
        costs = (CostRow(target.name, target.label, short, offered=False,
                         reason=f"cannot be priced: {exc}"),)
    g = plan.gpu or {}
    sc = dep.scaling
    vram = g.get("target_vram_gb")
    return Planned(
        target=target.name, label=target.label, gpu=dep.gpu, gpu_label=dep.gpu_label or str(g.get("target_label") or ""),
        gpu_count=int(dep.gpu_count or 1), vram_gb=int(vram) if vram else None, mapping_fits=bool(g.get("fits")),
        reason=dep.gpu_reason or str(g.get("reason") or ""), alternatives=tuple(g.get("alternatives") or ()),
        min_instances=int(sc.min) if sc else 0, max_instances=int(sc.max) if sc else 1,
        concurrency=(sc.max_concurrency or sc.target_concurrency) if sc else None,
        idle_timeout_s=float(sc.idle_timeout_s) if sc and sc.idle_timeout_s is not None else None,
        cpus=dep.cpus, memory_mb=dep.memory_mb,
        steps=tuple((s.id, s.status, s.summary) for s in plan.steps),
        costs=costs, blocked=(dep.blockers[0] if dep.blockers else ""),
    )


@dataclass(frozen=True)
class Inputs:
    """Everything the cost model uses, resolved (user value, fly.toml / plan-derived, or default)."""

    app_name: str | None
    gpu_kind: str
    gpu_count: int
    gpu_origin: str
    weights_bytes: int | None  # known size (None = unknown)
    load_bytes: float  # what the cold-start model loads (known size, or the assumption)
    requests_per_day: float
    seconds_per_request: float
    busy_hours: float
    concurrency: int  # the traffic's: requests one instance serves at once (yours, else fly.toml's)
    warm_instances: int  # kept running on Fly (the plans' minimum): the reference row and the traffic default
    fly_cpus: int = 0
    fly_memory_gib: float = 0.0
    given: tuple[str, ...] = ()  # which traffic inputs the user gave
    assumptions: tuple[str, ...] = ()
    price_scale: tuple[tuple[str, float], ...] = ()  # sensitivity probes: row key -> price multiplier
    only: tuple[str, ...] = ()  # targets compared (--to); empty = all registered
    planned: tuple[Planned, ...] = ()
    concurrency_override: int | None = None  # every option at this concurrency (--concurrency, sensitivity)

    def scale_for(self, key: str) -> float:
        for k, v in reversed(self.price_scale):  # the last one wins, as dict(price_scale) would have it
            if k == key:
                return v
        return 1.0

    def concurrency_for(self, p: Planned) -> int:
        """Requests one instance of ``p`` serves at once: --concurrency, else the Deployment's, else 1."""
        return max(1, int(self.concurrency_override or p.concurrency or 1))


def _check_positive(name: str, value: float | None, *, allow_zero: bool = False) -> None:
    if value is None:
        return
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        raise UserError(f"{name} must be a finite number, got {value!r}.")
    if value < 0 or (value == 0 and not allow_zero):
        raise UserError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}.")


def check_traffic(traffic: Traffic, weights_bytes: int | None) -> None:
    _check_positive("--requests-per-day", traffic.requests_per_day, allow_zero=True)
    _check_positive("--seconds-per-request", traffic.seconds_per_request)
    _check_positive("--busy-hours", traffic.busy_hours)
    _check_positive("--concurrency", traffic.concurrency)
    _check_positive("weights size", weights_bytes)
    if traffic.busy_hours is not None and traffic.busy_hours > 24:
        raise UserError(f"--busy-hours is hours per day (at most 24), got {traffic.busy_hours:g}.")


def resolve_gpu_spec(inp: PlanInputs) -> GpuSpec:
    """The Fly GPU the plans map (the planner's :func:`~flymigrate.planner.resolve_gpu`: --gpu, fly.toml, then
    the README / Makefile / CI hints); a clear error when there is none."""
    from ..planner import resolve_gpu

    spec, _ = resolve_gpu(inp)
    if spec is None:
        raise UserError("fly.toml has no GPU (no gpu_kind and no GPU vm.size), so there is nothing to compare.",
                        where=inp.app.config_path, hint="Pass --gpu KIND[:N], e.g. --gpu a10 or --gpu l40s:2.")
    kind, _ = gpus.normalise_gpu_kind(spec.kind)
    if kind is None:
        raise UserError(f"unknown GPU kind {spec.kind!r}; Fly's kinds are {', '.join(gpus.FLY_GPU_KINDS)}.",
                        where=spec.where)
    if spec.count < 1:
        raise UserError(f"GPU count must be at least 1, got {spec.count}.", where=spec.where)
    return GpuSpec(kind, spec.count, spec.origin, spec.where)


def _given(traffic: Traffic, name: str, given: list[str]) -> float | None:
    """The traffic input ``name`` as the user gave it (noted in ``given``), or None: it is then derived."""
    value = getattr(traffic, name)
    if value is None:
        return None
    given.append(name)
    return float(value)


def resolve_inputs(inp: PlanInputs, plans: dict[str, Plan], weights_bytes: int | None, traffic: Traffic,
                   prices: Prices, notes: tuple[str, ...] | list[str] = ()) -> Inputs:
    """Fill the traffic the user did not give from fly.toml and the plans, and say so."""
    from ..targets import get_target

    check_traffic(traffic, weights_bytes)
    spec = resolve_gpu_spec(inp)
    app = inp.app
    planned = tuple(planned_from(p, get_target(t), prices) for t, p in plans.items())
    out: list[str] = []
    given: list[str] = []
    if spec.origin not in ("fly.toml", "--gpu") and app.gpu is None and inp.gpu_override is None:
        out.append(f"GPU {spec.kind} x{spec.count} from {spec.where or spec.origin} ({spec.origin}): fly.toml sets "
                   "none; the plans use it too (confirm with --gpu).")
    svc = app.primary_service

    # warm capacity: what the plans keep up (their minimum), from fly.toml's auto_stop / min_machines_running
    mins = sorted({p.min_instances for p in planned})
    warm = max(mins) if mins else 0
    if svc is None:
        why = "fly.toml has no [http_service] / [[services]], so Fly's proxy never stopped the Machine"
    elif svc.auto_stop == "off":
        why = ("auto_stop_machines = \"off\"" if svc.auto_stop_set else "auto_stop_machines unset (= \"off\")") + \
            ": the Machines stayed running"
    elif svc.min_machines_running > 0:
        why = f"min_machines_running = {svc.min_machines_running}: those stayed running, the rest scaled to zero"
    else:
        why = f"auto_stop_machines = \"{svc.auto_stop}\" and min_machines_running = 0: the app scaled to zero on Fly"
    per = ", ".join(f"{p.label} {p.min_instances}-{p.max_instances}" for p in planned)
    out.append(f"{why}; the plans keep {warm} instance(s) warm (min-max per target: {per}); the machine count "
               "itself is not in fly.toml.")

    # the traffic's concurrency (what one Fly machine took); each option is priced at its Deployment's
    given_conc = _given(traffic, "concurrency", given)
    if given_conc is not None:
        conc = int(given_conc)
    elif svc is not None and svc.concurrency is not None and (svc.concurrency.soft_limit or svc.concurrency.hard_limit):
        c = svc.concurrency
        conc = int(c.soft_limit or c.hard_limit or 1)
        which = "soft_limit" if c.soft_limit else "hard_limit"
        extra = (" (type = \"connections\": each connection is counted as one request in flight)"
                 if c.type == "connections" else "")
        out.append(f"concurrency {which} = {conc}: the traffic is sized on one machine serving {conc} requests at "
                   f"once{extra}.")
    elif svc is not None:
        from ..targets.common import FLY_DEFAULT_CONCURRENCY_TYPE, FLY_DEFAULT_SOFT_LIMIT

        conc = FLY_DEFAULT_SOFT_LIMIT
        out.append(f"fly.toml sets no concurrency, so Fly applied its default (type \"{FLY_DEFAULT_CONCURRENCY_TYPE}\", "
                   f"soft_limit {conc}): the traffic is sized on one machine serving {conc} requests at once.")
    else:
        conc = 1
        out.append("fly.toml has no HTTP service: the traffic is sized on one request at a time per machine.")
    if traffic.concurrency is None:
        per_c = ", ".join(f"{p.label} {p.concurrency or 'unlimited (priced as 1)'}" for p in planned)
        out.append(f"each option is priced at its deployment's concurrency per instance ({per_c}); seconds/request "
                   "is the time one request takes at that load.")

    spr = _given(traffic, "seconds_per_request", given)
    if spr is None:
        spr = DEFAULT_SECONDS_PER_REQUEST
        out.append(f"seconds/request = {spr:g} (default; pass --seconds-per-request).")

    steady = warm > 0
    busy = _given(traffic, "busy_hours", given)
    if busy is None:
        busy = 24.0 if steady else DEFAULT_ONDEMAND_BUSY_HOURS
        how = ("warm instances imply steady traffic" if steady
               else "a scale-to-zero app implies traffic in part of the day")
        out.append(f"busy hours/day = {busy:g} ({how}; pass --busy-hours).")
    rpd = _given(traffic, "requests_per_day", given)
    if rpd is None and steady:
        rpd = DEFAULT_STEADY_UTILISATION * warm * busy * 3600.0 * conc / spr
        out.append(f"requests/day = {rpd:,.0f}: the {warm} warm instance(s) {DEFAULT_STEADY_UTILISATION:.0%} busy "
                   f"during {busy:g} h ({DEFAULT_STEADY_UTILISATION:g} x {warm} x {busy:g} h x 3600 x "
                   f"{conc} / {spr:g} s; pass --requests-per-day).")
    elif rpd is None:
        rpd = DEFAULT_ONDEMAND_REQUESTS
        out.append(f"requests/day = {rpd:,.0f} (default for a scale-to-zero app; pass --requests-per-day).")

    fly_vram = gpus.FLY_GPU_KINDS[spec.kind]
    if weights_bytes is not None:
        load = float(weights_bytes)
    else:
        frac = prices.common("unknown_weights_vram_fraction")
        load = frac * fly_vram * 1e9 * spec.count
        out.append(f"weights size unknown: cold starts assume {load / 1e9:.1f} GB of weights ({frac:.0%} of the "
                   f"Fly GPU's {fly_vram * spec.count} GB); VRAM fit is judged from the GPU mapping only "
                   "(pass --weights-gb).")
    idles = [f"{p.label} {p.idle_timeout_s:g} s" for p in planned if p.idle_timeout_s is not None]
    if idles:
        out.append("idle timeout as the plans configure it: " + ", ".join(idles) + " (Fly stopped idle machines "
                   "after a few minutes; the platforms' defaults are shorter).")
    out.extend(notes)
    out.append(f"month = {prices.hours_per_month:g} h.")
    gpu_vm = next((vm for vm in app.vms if vm.gpu is not None), None)
    return Inputs(app_name=app.app, gpu_kind=spec.kind, gpu_count=int(spec.count), gpu_origin=spec.origin,
                  weights_bytes=weights_bytes, load_bytes=load, requests_per_day=rpd, seconds_per_request=spr,
                  busy_hours=busy, concurrency=max(1, conc), warm_instances=warm,
                  fly_cpus=int(gpu_vm.cpus or 0) if gpu_vm else 0,
                  fly_memory_gib=(gpu_vm.memory_mb or 0) / 1024.0 if gpu_vm else 0.0,
                  given=tuple(given), assumptions=tuple(out), only=tuple(plans), planned=planned,
                  concurrency_override=int(traffic.concurrency) if traffic.concurrency is not None else None)
