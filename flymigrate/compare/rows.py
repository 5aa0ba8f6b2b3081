"""Rows, the recommendation and the sensitivity: each target's cost rows (its ``cost_rows`` hook) priced with
the queueing maths at the Deployment's instance counts, concurrency and idle timeout, plus the "stay on Fly"
reference row (not a target). Pure.

Break-even utilisation: the busy share of the day (request-seconds per day / 86400, i.e. requests x S / 86400)
at which keeping one instance always on costs the same as scale-to-zero -- against the same row's always-on
rate (RunPod active workers are cheaper per second than flex; Modal and Cloud Run charge the same rate, so
always-on is never cheaper there) and against the Fly reference price.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

from .. import gpus
from ..targets.base import CostRow, price_per_s, used_start
from .inputs import Inputs, Planned
from .prices import Prices, resolve_today
from .queueing import DAY_S, instances_needed, over_capacity, scale_to_zero_day, solve_break_even, warm_day

SCHEMA = "flymigrate/compare/v2"
REFERENCE_KEY = "fly"  # the "stay always-on at Fly's price" row: a reference, not a target
REFERENCE_SHORT = "always-on (Fly price)"


@dataclass(frozen=True)
class Row:
    key: str  # the target's row key (its cost_rows), or "fly" for the reference
    label: str
    target: str  # the registered target name, or "fly"
    offered: bool
    reason: str  # why this GPU, or why not offered
    gpu_name: str | None = None  # the Deployment's GPU id
    gpu_label: str | None = None
    gpu_count: int = 1
    vram_gb: int | None = None
    fits: str = "n/a"  # yes | no | likely | check | n/a
    fits_note: str = ""
    price_per_gpu_s: float | None = None
    price_basis: str | None = None
    price_source: str | None = None
    host_per_s: float = 0.0  # CPU + memory per instance-second
    rate_per_instance_s: float | None = None  # what one kept-up instance costs per second (GPUs + host)
    ondemand_rate_per_instance_s: float | None = None  # for overflow / scale-to-zero
    idle_timeout_s: float | None = None  # the idle timeout the maths uses (the Deployment's, else the platform's)
    monthly_scale_to_zero: float | None = None
    monthly_warm: float | None = None
    warm_instances: int = 0  # instances kept up (the Deployment's minimum; RunPod active: at least 1)
    billed_hours_per_day: float | None = None
    cold_starts_per_day: float | None = None
    break_even_own: float | None = None
    break_even_own_note: str = ""
    break_even_ref: float | None = None
    break_even_ref_note: str = ""
    cold_start_s: float | None = None
    cold_start_parts: tuple[tuple[str, float], ...] = ()
    effort: tuple[tuple[str, bool, str], ...] = ()  # (step, manual, note): the plan's step statuses
    notes: tuple[str, ...] = ()
    short_label: str = ""
    modes: tuple[str, ...] = ("scale-to-zero", "warm")
    deployed: bool = False  # this row prices the Deployment as planned (RunPod: flex when min = 0, else active)
    min_instances: int | None = None  # the Deployment's scaling
    max_instances: int | None = None
    concurrency: int | None = None  # requests per instance the maths uses (the Deployment's, or --concurrency)
    idle_timeout_deployed_s: float | None = None  # the Deployment's idle timeout (None = none configured)
    reference: bool = False
    blocked: str = ""  # the plan says this target cannot run the deployment as it is (and why)

    @property
    def manual_steps(self) -> tuple[str, ...]:
        return tuple(s for s, manual, _ in self.effort if manual)

    @property
    def scales_to_zero(self) -> bool:
        return "scale-to-zero" in self.modes

    @property
    def monthly(self) -> float | None:
        """The monthly cost of the Deployment as planned (warm when it keeps instances up, else scale-to-zero)."""
        if self.warm_instances >= 1 and self.monthly_warm is not None:
            return self.monthly_warm
        return self.monthly_scale_to_zero if self.warm_instances == 0 else None

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key, "label": self.label, "target": self.target, "offered": self.offered,
            "deployed": self.deployed, "reason": self.reason, "blocked": self.blocked or None,
            "gpu": {"name": self.gpu_name, "label": self.gpu_label, "count": self.gpu_count, "vram_gb": self.vram_gb},
            "scaling": {"min": self.min_instances, "max": self.max_instances, "concurrency": self.concurrency,
                        "idle_timeout_s": self.idle_timeout_deployed_s},
            "fits": self.fits, "fits_note": self.fits_note,
            "price_per_gpu_s": _r(self.price_per_gpu_s, 8), "price_basis": self.price_basis,
            "price_source": self.price_source,
            "host_per_s": _r(self.host_per_s, 8), "rate_per_instance_s": _r(self.rate_per_instance_s, 8),
            "idle_timeout_s": self.idle_timeout_s,
            "monthly_scale_to_zero": _r(self.monthly_scale_to_zero, 2), "monthly_warm": _r(self.monthly_warm, 2),
            "warm_instances": self.warm_instances,
            "billed_hours_per_day": _r(self.billed_hours_per_day, 3),
            "cold_starts_per_day": _r(self.cold_starts_per_day, 2),
            "break_even_own": _r(self.break_even_own, 4), "break_even_own_note": self.break_even_own_note,
            "break_even_ref": _r(self.break_even_ref, 4), "break_even_ref_note": self.break_even_ref_note,
            "cold_start_s": _r(self.cold_start_s, 1),
            "cold_start_parts": [{"what": w, "seconds": _r(s, 1)} for w, s in self.cold_start_parts],
            "manual_steps": list(self.manual_steps),
            "effort": [{"step": s, "manual": m, "note": n} for s, m, n in self.effort],
            "notes": list(self.notes),
        }


def _r(v: float | None, nd: int) -> float | None:
    return None if v is None else round(float(v), nd)


def share(u: float) -> str:
    if u >= 0.1:
        return f"{u:.0%}"
    if u >= 0.001:
        return f"{u:.1%}"
    return "<0.1%"


def money(v: float | None) -> str:
    if v is None:
        return "—"
    return f"${v:,.0f}" if v >= 100 else f"${v:,.2f}"


def _fits(inp: Inputs, vram_gb: int | None, count: int, mapping_fits: bool, prices: Prices) -> tuple[str, str]:
    if vram_gb is None:
        return "n/a", ""
    have = vram_gb * count
    if inp.weights_bytes is None:
        if mapping_fits:
            return "likely", (f"{have} GB of VRAM, at least what the Fly GPU had "
                              f"({gpus.FLY_GPU_KINDS[inp.gpu_kind] * inp.gpu_count} GB); weights size unknown")
        return "check", f"{have} GB of VRAM, less than on Fly; weights size unknown"
    factor = prices.common("vram_overhead_factor")
    need = inp.weights_bytes * factor / 1e9
    if need <= have:
        return "yes", f"needs ~{need:.1f} GB (weights x {factor:g}), has {have} GB"
    return "no", f"needs ~{need:.1f} GB (weights x {factor:g}), has only {have} GB"


def _cold_start(inp: Inputs, cr: CostRow, prices: Prices) -> tuple[float, tuple[tuple[str, float], ...]]:
    init = prices.common("engine_init_s")
    load = inp.load_bytes / (cr.store_mb_per_s * 1e6)
    size_txt = f"{inp.load_bytes / 1e9:.1f} GB" + ("" if inp.weights_bytes is not None else " (assumed)")
    parts = (("platform start", cr.platform_start_s), ("engine init", init),
             (f"load {size_txt} from {cr.store_label} at {cr.store_mb_per_s:g} MB/s", load))
    return cr.platform_start_s + init + load, parts


def _monthly(prices: Prices, per_day: float) -> float:
    return per_day * prices.hours_per_month / 24.0


def _be_note(u: float | None, own_same_rate: bool, what: str, S: float, H: float) -> str:
    at = ""
    if u is not None:
        at = f"{share(u)} of the day busy (~{u * DAY_S / S:,.0f} requests/day at {S:g} s)"
    if u is not None and own_same_rate:
        return (f"from {at}, scale-to-zero costs as much as one always-on instance (it rarely gets to stop), "
                "so keep one warm: same cost, no cold starts")
    if u is not None:
        return f"{what} is cheaper from {at}"
    if own_same_rate:
        return (f"scale-to-zero stays cheaper than always-on (same per-second rate) even with the GPU busy "
                f"all {H:g} busy h/day")
    return (f"{what} never gets cheaper with {H:g} busy h/day (scale-to-zero stays cheaper even with the "
            "GPU busy the whole busy window)")


def reference_rate(inp: Inputs, prices: Prices) -> float:
    return price_per_s(prices.platform(REFERENCE_KEY)["gpus"][inp.gpu_kind]) * inp.scale_for(REFERENCE_KEY) \
        * inp.gpu_count


def price_row(inp: Inputs, pl: Planned, cr: CostRow, prices: Prices, *, with_break_even: bool = True) -> Row:
    """One cost row of one target's Deployment, priced for the traffic."""
    W_dep = pl.min_instances
    deployed = cr.deployed_when == "always" or (cr.deployed_when == "warm") == (W_dep >= 1)
    base = dict(key=cr.key, label=cr.label, target=pl.target, short_label=cr.short_label, modes=cr.modes,
                deployed=deployed, gpu_name=pl.gpu, gpu_label=pl.gpu_label, gpu_count=pl.gpu_count,
                vram_gb=pl.vram_gb, effort=pl.effort, min_instances=pl.min_instances, max_instances=pl.max_instances,
                idle_timeout_deployed_s=pl.idle_timeout_s, concurrency=inp.concurrency_for(pl), blocked=pl.blocked)
    if not cr.offered:
        return Row(offered=False, reason=cr.reason or pl.reason, **base)  # type: ignore[arg-type]
    R, S, H = inp.requests_per_day, inp.seconds_per_request, inp.busy_hours
    P = inp.concurrency_for(pl)
    n = pl.gpu_count
    scale = inp.scale_for(cr.key)
    warm_gpu = (cr.warm_per_gpu_s or 0.0) * scale
    od_gpu = (cr.ondemand_per_gpu_s if cr.ondemand_per_gpu_s is not None else cr.warm_per_gpu_s or 0.0) * scale
    warm_rate, od_rate = warm_gpu * n + cr.host_per_s, od_gpu * n + cr.host_per_s
    idle = pl.idle_timeout_s if pl.idle_timeout_s is not None else (cr.default_idle_s or 0.0)
    W = max(cr.min_warm, W_dep)
    mx = max(pl.max_instances, W, 1)
    cold, parts = _cold_start(inp, cr, prices)
    fits, fnote = _fits(inp, pl.vram_gb, n, pl.mapping_fits, prices)
    s2z = billed = colds = None
    if "scale-to-zero" in cr.modes:
        billed, colds = scale_to_zero_day(R, S, H, P, idle, cold, mx)
        s2z = _monthly(prices, billed * od_rate)
    warm_m = None
    over = 0.0
    if "warm" in cr.modes and W >= 1:
        on, over = warm_day(R, S, H, P, idle, cold, W, mx)
        warm_m = _monthly(prices, on * warm_rate + over * od_rate)
    ref_rate = reference_rate(inp, prices)
    u_max = H / 24.0 * P  # what one instance can take in the busy window
    same = abs(warm_rate - od_rate) < 1e-15

    def excess_fn(always_on_rate: float):  # type: ignore[no-untyped-def]
        def excess(u: float) -> float:
            b, _ = scale_to_zero_day(u * DAY_S / S, S, H, P, idle, cold)
            return b * od_rate - DAY_S * always_on_rate
        return excess

    be_own = be_ref = None
    if with_break_even:
        be_own = solve_break_even(excess_fn(warm_rate), u_max)
        if "scale-to-zero" in cr.modes:
            be_ref = solve_break_even(excess_fn(ref_rate), u_max)
    own_what = "always-on" if same else "an instance kept up at the always-on rate"
    ref_note = (_be_note(be_ref, False, "an always-on GPU at Fly's price", S, H) if "scale-to-zero" in cr.modes
                else "n/a (always on)")
    notes = list(cr.notes)
    notes.append(f"idle timeout {idle:g} s" + (" (the deployment's)" if pl.idle_timeout_s is not None
                                               else f" (the platform's: {cr.idle_note})" if cr.idle_note else ""))
    kept = f"{W} instance(s) kept up" if "warm" in cr.modes else "scales to zero"
    notes.append(f"{kept}, at most {mx}, {P} request(s) at a time each" +
                 (" (--concurrency)" if inp.concurrency_override else " (the deployment's)"))
    if over_capacity(R, S, H, P, mx):
        notes.append(f"the traffic needs {instances_needed(R, S, H, P)} instances but the deployment allows at most "
                     f"{mx}: requests beyond that queue or fail (raise the maximum in the generated config)")
    notes.append(cr.platform_start_note)
    alts = f"; alternatives: {', '.join(pl.alternatives)}" if pl.alternatives else ""
    scales = "scale-to-zero" in cr.modes
    return Row(
        offered=True, reason=pl.reason + alts, fits=fits, fits_note=fnote,
        price_per_gpu_s=(warm_gpu if not scales else od_gpu), price_basis=cr.basis, price_source=cr.source,
        host_per_s=cr.host_per_s, rate_per_instance_s=(warm_rate if not scales else od_rate),
        ondemand_rate_per_instance_s=od_rate, idle_timeout_s=idle, monthly_scale_to_zero=s2z, monthly_warm=warm_m,
        warm_instances=W if "warm" in cr.modes else 0,
        billed_hours_per_day=None if billed is None else billed / 3600.0, cold_starts_per_day=colds,
        break_even_own=be_own, break_even_own_note=_be_note(be_own, same, own_what, S, H),
        break_even_ref=be_ref, break_even_ref_note=ref_note,
        cold_start_s=cold if scales or over else 0.0, cold_start_parts=parts if scales or over else (),
        notes=tuple(notes), **base)  # type: ignore[arg-type]


def reference_row(inp: Inputs, prices: Prices) -> Row:
    plat = prices.platform(REFERENCE_KEY)
    R, S, H, P, W = inp.requests_per_day, inp.seconds_per_request, inp.busy_hours, inp.concurrency, inp.warm_instances
    n = max(1, W, instances_needed(R, S, H, P))
    fly_vram = gpus.FLY_GPU_KINDS[inp.gpu_kind]
    fstart, ftext = used_start(plat)
    entry = plat["gpus"][inp.gpu_kind]
    ref_rate = reference_rate(inp, prices)
    fits = "yes" if inp.weights_bytes is None or inp.weights_bytes * prices.common(
        "vram_overhead_factor") / 1e9 <= fly_vram * inp.gpu_count else "no"
    return Row(REFERENCE_KEY, plat["label"], REFERENCE_KEY, True, plat["note"], inp.gpu_kind,
               f"Fly {inp.gpu_kind} ({fly_vram} GB)", inp.gpu_count, fly_vram, fits, "the GPU the app ran on",
               price_per_s(entry) * inp.scale_for(REFERENCE_KEY), entry["basis"], entry["source"], 0.0, ref_rate,
               monthly_warm=_monthly(prices, n * DAY_S * ref_rate), warm_instances=n,
               break_even_own_note="reference", break_even_ref_note="reference", cold_start_s=0.0,
               notes=(f"{n} GPU machine(s) on 24/7; cold start on Fly was {ftext} ({fstart:g} s)",),
               short_label=REFERENCE_SHORT, modes=("warm",), reference=True)


def build_rows(inp: Inputs, prices: Prices, *, with_break_even: bool = True) -> list[Row]:
    rows = [price_row(inp, pl, cr, prices, with_break_even=with_break_even) for pl in inp.planned for cr in pl.costs]
    rows.append(reference_row(inp, prices))
    return rows


# ----------------------------------------------------------------------------------------------- decision


@dataclass(frozen=True)
class Option:
    key: str
    mode: str  # scale-to-zero | warm
    monthly: float
    manual: int
    cold_start_s: float
    order: int


def options(rows: list[Row]) -> list[Option]:
    """Each row that can run the app, at the cost of its deployment as planned (warm when the plan keeps
    instances up, else scale-to-zero; rows that only keep instances up, like RunPod active, always warm)."""
    opts = []
    for i, r in enumerate(rows):
        if r.reference or not r.offered or r.fits == "no" or r.blocked:
            continue
        if not r.scales_to_zero:
            cost, mode = r.monthly_warm, "warm"
        elif (r.min_instances or 0) >= 1:
            if "warm" not in r.modes:
                continue  # it cannot keep instances up: another row of the target prices that
            cost, mode = r.monthly_warm, "warm"
        else:
            cost, mode = r.monthly_scale_to_zero, "scale-to-zero"
        if cost is None:
            continue
        cs = 0.0 if mode == "warm" and r.scales_to_zero else (r.cold_start_s or 0.0)
        opts.append(Option(r.key, mode, cost, len(r.manual_steps), cs, i))
    opts.sort(key=lambda o: (round(o.monthly, 6), o.manual, o.cold_start_s, o.order))
    return opts


def best_key(inp: Inputs, prices: Prices) -> str | None:
    opts = options(build_rows(inp, prices, with_break_even=False))
    return opts[0].key if opts else None


@dataclass(frozen=True)
class Alternative:
    """A larger GPU configuration that fits when the planned one does not (``--gpu`` re-plans with it)."""

    row: Row
    gpu_arg: str  # KIND:N for --gpu
    monthly: float
    mode: str

    def to_json(self) -> dict[str, Any]:
        return {"gpu_arg": self.gpu_arg, "monthly": _r(self.monthly, 2), "mode": self.mode, "row": self.row.to_json()}


@dataclass(frozen=True)
class Recommendation:
    key: str | None
    mode: str | None
    monthly: float | None
    text: str


@dataclass(frozen=True)
class Sensitivity:
    input: str  # requests_per_day | seconds_per_request | busy_hours | concurrency | weights | price
    label: str
    base: float
    down: tuple[float, str] | None  # (threshold value, new winner) going down, or None
    up: tuple[float, str] | None
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"input": self.input, "label": self.label, "base": _r(self.base, 6),
                "down": None if self.down is None else {"value": _r(self.down[0], 6), "winner": self.down[1]},
                "up": None if self.up is None else {"value": _r(self.up[0], 6), "winner": self.up[1]},
                "text": self.text}


def short_labels(rows: list[Row] | tuple[Row, ...]) -> dict[str, str]:
    return {r.key: r.short_label or r.label for r in rows}


def recommend(inp: Inputs, rows: list[Row], alternatives: tuple[Alternative, ...] = ()) -> Recommendation:
    opts = options(rows)
    by = {r.key: r for r in rows}
    lab = short_labels(rows)
    if not opts:
        if alternatives:
            a = alternatives[0]
            parts = [f"The planned GPUs are too small for this model ({_need_text(rows)}). It fits on more or "
                     f"larger GPUs: {lab.get(a.row.key, a.row.key)} on {a.row.gpu_count} x "
                     f"{(a.row.gpu_name or '').split(':')[0]} at about {money(a.monthly)}/month is the cheapest "
                     f"(plan it with --gpu {a.gpu_arg})."]
            rest = [f"{lab.get(x.row.key, x.row.key)} {x.row.gpu_count} x {(x.row.gpu_name or '').split(':')[0]} "
                    f"{money(x.monthly)}/month (--gpu {x.gpu_arg})" for x in alternatives[1:]]
            if rest:
                parts.append("Other options that fit: " + "; ".join(rest) + ".")
            return Recommendation(None, None, None, " ".join(parts))
        return Recommendation(None, None, None, "No target can run this app as configured: see the reasons in the "
                              "table (not offered, or the model does not fit).")
    best, rb = opts[0], by[opts[0].key]
    where = f"{lab[best.key]} on {rb.gpu_label}"
    if not rb.scales_to_zero:
        mode_txt = f"with {rb.warm_instances} always-on worker(s)"
    elif best.mode == "scale-to-zero":
        mode_txt = "scaling to zero"
    else:
        mode_txt = f"with {rb.warm_instances} warm instance(s), as the plan keeps them"
    parts = [f"Recommended: {where}, {mode_txt}, at about {money(best.monthly)}/month."]
    traffic = (f"{inp.requests_per_day:,.0f} requests/day x {inp.seconds_per_request:g} s in {inp.busy_hours:g} busy "
               f"h/day, {rb.concurrency} at a time")
    if len(opts) > 1:
        nxt = opts[1]
        if nxt.monthly - best.monthly < 0.005:
            parts.append(f"For {traffic} it costs the same as {lab[nxt.key]} and wins on fewer manual "
                         "steps or a shorter cold start.")
        else:
            pct = (nxt.monthly / best.monthly - 1) * 100 if best.monthly > 0 else math.inf
            more = f"{pct:.0f}% more" if math.isfinite(pct) else "more"
            close = " (a close call: effort and cold starts may matter more than cost)" if pct < 10 else ""
            parts.append(f"It is the cheapest option that fits for {traffic}; next is {lab[nxt.key]} at "
                         f"{money(nxt.monthly)}/month ({more}){close}.")
    else:
        parts.append(f"It is the only option that can run this app for {traffic}.")
    if best.mode == "scale-to-zero" or not rb.scales_to_zero:
        if not rb.scales_to_zero:
            parts.append("Instances kept up never cold-start.")
        else:
            sh = (rb.cold_starts_per_day or 0) / inp.requests_per_day if inp.requests_per_day else 0.0
            parts.append(f"Expect about {rb.cold_start_s:.0f} s of cold start for ~{sh:.0%} of requests "
                         f"({rb.cold_starts_per_day:.0f} a day with its {rb.idle_timeout_s:g} s idle timeout).")
            if sh > 0.25:
                parts.append("That many cold starts is a latency cost the price does not show: a longer idle timeout "
                             "or one warm instance trades money for it (see the Warm and break-even columns).")
    else:
        s2z = rb.monthly_scale_to_zero
        if s2z is not None:
            parts.append(f"Letting it scale to zero instead would cost {money(s2z)}/month but add ~"
                         f"{rb.cold_start_s:.0f} s cold starts.")
    if (rb.min_instances or 0) >= 1:
        cands = [r for r in rows if not r.reference and r.offered and r.fits != "no"
                 and r.monthly_scale_to_zero is not None]
        cheap = min(cands, key=lambda r: (round(r.monthly_scale_to_zero or 0, 6), rows.index(r)), default=None)
        if cheap is not None and cheap.key != best.key and (cheap.monthly_scale_to_zero or 0) < best.monthly:
            parts.append(f"If cold starts are acceptable, scaling to zero on {lab[cheap.key]} would cost "
                         f"{money(cheap.monthly_scale_to_zero)}/month (~{cheap.cold_start_s:.0f} s cold starts).")
    manual = rb.manual_steps
    parts.append("Steps that need you there (from the plan): " + (", ".join(manual) if manual else "none") + ".")
    if rb.fits == "likely":
        parts.append("The VRAM fit is assumed because the weights size is unknown.")
    if rb.price_basis in ("recollection", "proxy"):
        parts.append("Its price is unverified (see the warning above): check it before committing.")
    ref = by.get(REFERENCE_KEY)
    if ref is not None and ref.monthly_warm is not None:
        parts.append(f"For reference, keeping the same GPU always on at Fly's old price cost "
                     f"{money(ref.monthly_warm)}/month.")
    return Recommendation(best.key, best.mode, best.monthly, " ".join(parts))


def _need_text(rows: list[Row]) -> str:
    need = next((r.fits_note for r in rows if r.fits == "no" and not r.reference), "")
    have = max(((r.vram_gb or 0) * r.gpu_count for r in rows if r.offered and not r.reference), default=0)
    return f"{need.split(',')[0] if need else 'it needs more VRAM'}; the plans give at most {have} GB"


_FACTORS_UP = tuple(1.1 ** k for k in range(1, 25))  # up to ~x9.8
_FACTORS_DOWN = tuple(1 / f for f in _FACTORS_UP)


def _flip(prices: Prices, base_best: str, make, factors, lo_lim: float, hi_lim: float  # type: ignore[no-untyped-def]
          ) -> tuple[float, str] | None:
    """Walk factors away from 1 until the winner changes; refine by bisection. Returns (factor, new winner)."""
    prev = 1.0
    for f in factors:
        if f < lo_lim or f > hi_lim:
            break
        w = best_key(make(f), prices)
        if w != base_best:
            a, b = prev, f
            for _ in range(30):
                mid = math.sqrt(a * b)
                if best_key(make(mid), prices) != base_best:
                    b = mid
                else:
                    a = mid
            return b, best_key(make(b), prices) or "none"
        prev = f
    return None


def sensitivity(inp: Inputs, prices: Prices, best: str, rows: list[Row]) -> tuple[Sensitivity, ...]:
    labels = {k: v + " wins" for k, v in short_labels(rows).items()}
    labels["none"] = "no option fits"
    out: list[Sensitivity] = []

    def line(name: str, label: str, base: float, fmt, make, lo: float, hi: float,  # type: ignore[no-untyped-def]
             integer: bool = False, show_factor: bool = True) -> None:
        down = _flip(prices, best, make, _FACTORS_DOWN, lo, hi)
        up = _flip(prices, best, make, _FACTORS_UP, lo, hi)
        dv = None if down is None else (base * down[0], down[1])
        uv = None if up is None else (base * up[0], up[1])
        if integer:
            dv = None if dv is None else (math.floor(dv[0]), dv[1])
            uv = None if uv is None else (math.ceil(uv[0]), uv[1])
        bits = []
        for word, v in (("below", dv), ("above", uv)):
            if v is not None:
                factor = f" (x{v[0] / base:.2g})" if show_factor else ""
                bits.append(f"{word} {fmt(v[0])}{factor} {labels[v[1]]}")
        now = "" if name == "price" else f" (now {fmt(base)})"
        text = f"{label}{now}: " + ("; ".join(bits) if bits else "no change between x0.1 and x10")
        out.append(Sensitivity(name, label, base, dv, uv, text))

    R, S, H = inp.requests_per_day, inp.seconds_per_request, inp.busy_hours
    brow = next(r for r in rows if r.key == best)
    P = int(brow.concurrency or 1)
    if R > 0:
        line("requests_per_day", "requests/day", R, lambda v: f"{v:,.0f}",
             lambda f: replace(inp, requests_per_day=R * f), 0.0, math.inf)
    line("seconds_per_request", "seconds/request", S, lambda v: f"{v:.3g} s",
         lambda f: replace(inp, seconds_per_request=S * f), 0.0, math.inf)
    line("busy_hours", "busy hours/day", H, lambda v: f"{v:.3g} h",
         lambda f: replace(inp, busy_hours=min(24.0, H * f)), 0.25 / H, 24.0 / H)
    line("concurrency", "concurrency (every option)", float(P), lambda v: f"{v:.0f}",
         lambda f: replace(inp, concurrency_override=max(1, round(P * f))), 1.0 / P, math.inf, integer=True)
    line("weights", "weights size" + ("" if inp.weights_bytes is not None else " (assumed)"), inp.load_bytes / 1e9,
         lambda v: f"{v:.3g} GB",
         lambda f: replace(inp, load_bytes=inp.load_bytes * f,
                           weights_bytes=None if inp.weights_bytes is None else int(inp.weights_bytes * f)),
         0.0, math.inf)
    line("price", f"{short_labels(rows)[best]} price", 1.0, lambda v: f"{(v - 1) * 100:+.0f}%",
         lambda f: replace(inp, price_scale=((best, f),)), 0.0, math.inf, show_factor=False)
    return tuple(out)


# ----------------------------------------------------------------------------------------------- result


@dataclass(frozen=True)
class Comparison:
    inputs: Inputs
    rows: tuple[Row, ...]
    recommendation: Recommendation
    sensitivity: tuple[Sensitivity, ...]
    data_date: date
    today: date
    stale_after_days: int
    data_path: str
    warnings: tuple[str, ...] = field(default=())
    alternatives: tuple[Alternative, ...] = ()

    @property
    def age_days(self) -> int:
        return (self.today - self.data_date).days

    @property
    def stale(self) -> bool:
        return self.age_days > self.stale_after_days

    def row(self, key: str) -> Row:
        for r in self.rows:
            if r.key == key:
                return r
        raise KeyError(key)

    def row_for(self, target: str) -> Row:
        """The row that prices ``target``'s Deployment as planned (RunPod: flex when it scales to zero, else
        active workers)."""
        for r in self.rows:
            if r.target == target and r.deployed:
                return r
        raise KeyError(target)

    def to_json(self) -> dict[str, Any]:
        i = self.inputs
        return {
            "schema": SCHEMA,
            "app": i.app_name,
            "gpu": {"kind": i.gpu_kind, "count": i.gpu_count, "origin": i.gpu_origin},
            "weights_bytes": i.weights_bytes,
            "data": {"date": self.data_date.isoformat(), "today": self.today.isoformat(), "age_days": self.age_days,
                     "stale": self.stale, "stale_after_days": self.stale_after_days,
                     "file": Path(self.data_path).name},
            "traffic": {"requests_per_day": _r(i.requests_per_day, 3), "seconds_per_request": i.seconds_per_request,
                        "busy_hours": i.busy_hours, "concurrency": i.concurrency,
                        "warm_instances": i.warm_instances, "given": list(i.given)},
            "assumptions": list(i.assumptions),
            "rows": [r.to_json() for r in self.rows],
            "recommendation": {"key": self.recommendation.key, "mode": self.recommendation.mode,
                               "monthly": _r(self.recommendation.monthly, 2), "text": self.recommendation.text},
            "alternatives": [a.to_json() for a in self.alternatives],
            "sensitivity": [s.to_json() for s in self.sensitivity],
            "warnings": list(self.warnings),
        }


def compare_inputs(inp: Inputs, prices: Prices, *, today: date | None = None,
                   alternatives: tuple[Alternative, ...] = ()) -> Comparison:
    rows = build_rows(inp, prices)
    rec = recommend(inp, rows, alternatives)
    sens = sensitivity(inp, prices, rec.key, rows) if rec.key else ()
    today = resolve_today(today)
    warnings: list[str] = []
    ddate = prices.data_date
    age = (today - ddate).days
    if age > prices.stale_after_days:
        warnings.append(f"The price data is from {ddate.isoformat()}, {age} days ago (over {prices.stale_after_days}): "
                        "prices and cold starts change often; update flymigrate/data/prices.toml before relying on "
                        "these numbers.")
    for r in rows:
        if r.offered and r.price_basis in ("recollection", "proxy") and not r.reference:
            warnings.append(f"{r.label}: the {(r.gpu_name or '').split(':')[0]} price is a {r.price_basis}, "
                            "not a quoted price.")
    return Comparison(inp, tuple(rows), rec, sens, ddate, today, prices.stale_after_days, prices.path,
                      tuple(warnings), alternatives)
