"""Which target, for *this* app? A pure, deterministic cost and cold-start model.

Inputs: a :class:`~flymigrate.model.FlyApp`, the weights size in bytes (``None`` when unknown) and
:class:`Traffic` (requests/day, seconds/request, busy hours/day, per-instance concurrency). Missing traffic
figures are derived from fly.toml and stated as assumptions. Figures (prices, idle timeouts, cold starts,
weight-load throughput) come from ``flymigrate/data/prices.toml``, read by :func:`load_prices` -- the only
I/O in this module. No vendor SDK.

The model, per day (then x hours_per_month / 24)::

    window = busy_hours x 3600               requests arrive at random (Poisson) inside the busy window
    lam    = requests / window
    work   = requests x S / P                instance-seconds spent serving (P requests share one instance)
    idle   = requests x e^(-lam S) x (1 - e^(-lam T)) / lam
                                             billed idle tail: after a request the instance stays up until
                                             the next arrival or the idle timeout T, whichever comes first
    colds  = requests x e^(-lam (S + T))     arrivals that find no warm instance; at least 1/day when the
                                             quiet part of the day is longer than T
    billed = work + idle + colds x cold_start_s   (start-up is billed on Modal, RunPod and Cloud Run)
             capped at keeping the needed instances up all day

Warm capacity (w instances kept up, implied by ``min_machines_running`` / ``auto_stop_machines = off``):
w x 86400 s at the always-on rate, plus work beyond w x window at the on-demand rate with one cold start and
one idle tail per extra instance.

Break-even utilisation: the busy share of the day (request-seconds per day / 86400, i.e. requests x S / 86400)
at which keeping one instance always on costs the same as scale-to-zero -- against the same platform's always-on
rate (RunPod active workers are cheaper per second than flex; Modal and Cloud Run charge the same rate, so
always-on is never cheaper there) and against the Fly reference price.

Public API (embedded by ``plan`` and the TUI target screen)::

    compare_app(app, weights_bytes, traffic, *, gpu=None, prices=None, today=None) -> Comparison
    render(comparison, fmt) -> str          # fmt: "text" | "markdown" | "json" | "rich"
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # type checkers see the standard decorator
    from dataclasses import dataclass, field
else:  # start-up time: no exec per generated method (flymigrate/_dataclass.py)
    from ._dataclass import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from . import gpus
from .errors import UserError
from .model import STEP_IDS, FlyApp, GpuSpec

SCHEMA = "flymigrate/compare/v1"
ROW_KEYS: tuple[str, ...] = ("modal", "runpod-flex", "runpod-active", "cloudrun", "fly")
TARGETS_OF_ROWS = {"modal": "modal", "runpod-flex": "runpod", "runpod-active": "runpod", "cloudrun": "cloudrun",
                   "fly": "fly"}
DAY_S = 86400.0

# Defaults when neither the user nor fly.toml says anything about traffic.
DEFAULT_SECONDS_PER_REQUEST = 2.0
DEFAULT_STEADY_UTILISATION = 0.25  # warm machines: traffic fills 25% of their capacity, all day
DEFAULT_ONDEMAND_REQUESTS = 200.0  # scale-to-zero apps: occasional traffic
DEFAULT_ONDEMAND_BUSY_HOURS = 8.0
DEFAULT_FLY_CPUS = 8  # Fly GPU presets: performance-8x
DEFAULT_FLY_MEMORY_GIB = 32.0


# ----------------------------------------------------------------------------------------------- data


@dataclass(frozen=True, eq=False)
class Prices:
    """The parsed data file."""

    data: dict[str, Any]
    path: str

    @property
    def data_date(self) -> date:
        """The oldest ``read_on`` in the file: the date the whole comparison is as good as."""
        dates = list(_walk_dates(self.data))
        if not dates:
            raise UserError(f"{self.path}: no read_on dates in the price data.")
        return min(dates)

    @property
    def stale_after_days(self) -> int:
        return int(self.data["meta"].get("stale_after_days", 90))

    @property
    def hours_per_month(self) -> float:
        return float(self.data["meta"]["hours_per_month"]["value"])

    def platform(self, target: str) -> dict[str, Any]:
        return self.data[target]

    def common(self, name: str) -> float:
        return float(self.data["common"][name]["value"])


def _walk_dates(node: Any):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "read_on":
                if not isinstance(v, date):
                    raise UserError(f"price data: read_on must be a date (YYYY-MM-DD), got {v!r}.")
                yield v
            else:
                yield from _walk_dates(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk_dates(v)


def default_prices_path() -> Path:
    return Path(__file__).resolve().parent / "data" / "prices.toml"


def load_prices(path: str | os.PathLike[str] | None = None) -> Prices:
    """Read and check the price data file (the only I/O in this module)."""
    import tomllib

    p = Path(path) if path is not None else default_prices_path()
    try:
        with open(p, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as err:
        raise UserError(f"cannot read the price data file {p}: {err.strerror or err}.") from err
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"{p}: not valid TOML: {err}.") from err
    schema = data.get("meta", {}).get("schema")
    if schema != "flymigrate/prices/v1":
        raise UserError(f"{p}: unknown price data schema {schema!r} (expected flymigrate/prices/v1).")
    for t in ("modal", "runpod", "cloudrun", "fly", "common"):
        if t not in data:
            raise UserError(f"{p}: the [{t}] section is missing.")
    prices = Prices(data, str(p))
    _ = prices.data_date  # validates every read_on
    return prices


def resolve_today(today: date | None = None) -> date:
    """``today`` if given, else ``FLYMIGRATE_TODAY`` (YYYY-MM-DD, for stable golden output), else the clock."""
    if today is not None:
        return today
    env = os.environ.get("FLYMIGRATE_TODAY")
    if env:
        try:
            return date.fromisoformat(env.strip())
        except ValueError as err:
            raise UserError(f"FLYMIGRATE_TODAY={env!r} is not a date (YYYY-MM-DD).") from err
    return date.today()


# ----------------------------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Traffic:
    """What the user told us; ``None`` = derive from fly.toml."""

    requests_per_day: float | None = None
    seconds_per_request: float | None = None
    busy_hours: float | None = None
    concurrency: int | None = None  # requests one GPU instance serves at once


@dataclass(frozen=True)
class Inputs:
    """Everything the cost model uses, resolved (user value, fly.toml-derived, or default)."""

    app_name: str | None
    gpu_kind: str
    gpu_count: int
    gpu_origin: str
    weights_bytes: int | None  # known size (None = unknown)
    load_bytes: float  # what the cold-start model loads (known size, or the assumption)
    requests_per_day: float
    seconds_per_request: float
    busy_hours: float
    concurrency: int
    warm_instances: int  # kept running by the Fly config
    fly_cpus: int
    fly_memory_gib: float
    given: tuple[str, ...] = ()  # which traffic inputs the user gave
    assumptions: tuple[str, ...] = ()
    price_scale: tuple[tuple[str, float], ...] = ()  # sensitivity probes: row key -> price multiplier
    only: tuple[str, ...] = ()  # targets to compare (--to); empty = all
    idle_s: tuple[tuple[str, float], ...] = ()  # idle timeouts the migration configures (platform -> s)

    def scale_for(self, key: str) -> float:
        return dict(self.price_scale).get(key, 1.0)

    def idle_for(self, platform: str, plat: dict[str, Any]) -> float:
        """The idle timeout `apply` writes into the target's config, else the platform's default."""
        return dict(self.idle_s).get(platform, float(plat["idle_timeout"]["used_s"]))


def _check_positive(name: str, value: float | None, *, allow_zero: bool = False) -> None:
    if value is None:
        return
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        raise UserError(f"{name} must be a finite number, got {value!r}.")
    if value < 0 or (value == 0 and not allow_zero):
        raise UserError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}.")


def _configured_idle(app: FlyApp) -> tuple[tuple[tuple[str, float], ...], str]:
    """The idle timeouts `plan`/`apply` configure for this app (the same translators), so that the
    comparison prices the configuration the migration actually writes."""
    from .targets import get_target

    svc = app.primary_service
    out: list[tuple[str, float]] = []
    for t in ("modal", "runpod"):
        sp, _ = get_target(t).scaling(app, svc, 1 if app.mounts else 2)
        if sp.idle_timeout_s:
            out.append((t, float(sp.idle_timeout_s)))
    if not out:
        return (), ""
    return tuple(out), ("idle timeout as flymigrate configures it for this app: "
                        + ", ".join(f"{'Modal scaledown_window' if t == 'modal' else 'RunPod idleTimeout'} {v:g} s"
                                    for t, v in out)
                        + " (Fly stopped idle machines after a few minutes; the platforms' defaults are shorter).")


def resolve_inputs(app: FlyApp, weights_bytes: int | None, traffic: Traffic, prices: Prices,
                   gpu: GpuSpec | None = None, targets: tuple[str, ...] | list[str] | None = None,
                   notes: tuple[str, ...] | list[str] = ()) -> Inputs:
    """Fill the traffic the user did not give from fly.toml, and say so."""
    spec = gpu or app.gpu
    if spec is None:
        raise UserError("fly.toml has no GPU (no gpu_kind and no GPU vm.size), so there is nothing to compare.",
                        where=app.config_path, hint="Pass --gpu KIND[:N], e.g. --gpu a10 or --gpu l40s:2.")
    kind, _ = gpus.normalise_gpu_kind(spec.kind)
    if kind is None:
        raise UserError(f"unknown GPU kind {spec.kind!r}; Fly's kinds are {', '.join(gpus.FLY_GPU_KINDS)}.",
                        where=spec.where)
    if spec.count < 1:
        raise UserError(f"GPU count must be at least 1, got {spec.count}.", where=spec.where)
    _check_positive("--requests-per-day", traffic.requests_per_day, allow_zero=True)
    _check_positive("--seconds-per-request", traffic.seconds_per_request)
    _check_positive("--busy-hours", traffic.busy_hours)
    _check_positive("--concurrency", traffic.concurrency)
    _check_positive("weights size", weights_bytes)
    if traffic.busy_hours is not None and traffic.busy_hours > 24:
        raise UserError(f"--busy-hours is hours per day (at most 24), got {traffic.busy_hours:g}.")

    only = tuple(targets or ())
    for t in only:
        if t not in ("modal", "runpod", "cloudrun"):
            raise UserError(f"unknown target {t!r}: use modal, runpod or cloudrun.")
    extra_notes = list(notes)
    notes = []
    given: list[str] = []
    svc = app.primary_service

    # warm capacity implied by the config
    if svc is None:
        warm = 1
        notes.append("fly.toml has no [http_service] / [[services]], so Fly's proxy never stopped the Machine: "
                     "1 instance kept warm is assumed.")
    elif svc.auto_stop == "off":
        warm = max(1, svc.min_machines_running)
        how = "auto_stop_machines = \"off\"" if svc.auto_stop_set else "auto_stop_machines unset (= \"off\")"
        notes.append(f"{how}: the Machines stayed running, so {warm} warm instance(s) are assumed "
                     "(max(1, min_machines_running); the machine count itself is not in fly.toml).")
    elif svc.min_machines_running > 0:
        warm = svc.min_machines_running
        notes.append(f"min_machines_running = {warm}: {warm} warm instance(s) kept, the rest scale to zero.")
    else:
        warm = 0
        notes.append(f"auto_stop_machines = \"{svc.auto_stop}\" and min_machines_running = 0: the app scaled to "
                     "zero on Fly, so no warm capacity is assumed.")

    # per-instance concurrency
    if traffic.concurrency is not None:
        conc = int(traffic.concurrency)
        given.append("concurrency")
    elif svc is not None and svc.concurrency is not None and (svc.concurrency.soft_limit or svc.concurrency.hard_limit):
        c = svc.concurrency
        conc = int(c.soft_limit or c.hard_limit or 1)
        which = "soft_limit" if c.soft_limit else "hard_limit"
        extra = (" (type = \"connections\": each connection is counted as one request in flight)"
                 if c.type == "connections" else "")
        notes.append(f"concurrency {which} = {conc}: one GPU instance serves up to {conc} requests at once, and "
                     f"seconds/request is the time one request takes at that load{extra}.")
    else:
        conc = 1
        notes.append("no concurrency limits in fly.toml: one request at a time per GPU instance.")

    # seconds per request
    if traffic.seconds_per_request is not None:
        spr = float(traffic.seconds_per_request)
        given.append("seconds_per_request")
    else:
        spr = DEFAULT_SECONDS_PER_REQUEST
        notes.append(f"seconds/request = {spr:g} (default; pass --seconds-per-request).")

    # busy hours and requests per day
    steady = warm > 0
    if traffic.busy_hours is not None:
        busy = float(traffic.busy_hours)
        given.append("busy_hours")
    else:
        busy = 24.0 if steady else DEFAULT_ONDEMAND_BUSY_HOURS
        why = ("warm Machines imply steady traffic" if steady
               else "a scale-to-zero app implies traffic in part of the day")
        notes.append(f"busy hours/day = {busy:g} ({why}; pass --busy-hours).")
    if traffic.requests_per_day is not None:
        rpd = float(traffic.requests_per_day)
        given.append("requests_per_day")
    elif steady:
        rpd = DEFAULT_STEADY_UTILISATION * warm * busy * 3600.0 * conc / spr
        notes.append(f"requests/day = {rpd:,.0f}: the {warm} warm instance(s) {DEFAULT_STEADY_UTILISATION:.0%} busy "
                     f"during {busy:g} h ({DEFAULT_STEADY_UTILISATION:g} x {warm} x {busy:g} h x 3600 x "
                     f"{conc} / {spr:g} s; pass --requests-per-day).")
    else:
        rpd = DEFAULT_ONDEMAND_REQUESTS
        notes.append(f"requests/day = {rpd:,.0f} (default for a scale-to-zero app; pass --requests-per-day).")

    # weights
    fly_vram = gpus.FLY_GPU_KINDS[kind]
    if weights_bytes is not None:
        load = float(weights_bytes)
    else:
        frac = prices.common("unknown_weights_vram_fraction")
        load = frac * fly_vram * 1e9 * spec.count
        notes.append(f"weights size unknown: cold starts assume {load / 1e9:.1f} GB of weights ({frac:.0%} of the "
                     f"Fly GPU's {fly_vram * spec.count} GB); VRAM fit is judged from the GPU mapping only "
                     "(pass --weights-gb).")

    # the Fly VM's CPU / memory (Cloud Run bills them)
    cpus, mem_gib = DEFAULT_FLY_CPUS, DEFAULT_FLY_MEMORY_GIB
    for vm in app.vms:
        if vm.gpu is not None:
            cpus = vm.cpus or cpus
            mem_gib = (vm.memory_mb / 1024.0) if vm.memory_mb else mem_gib
            break
    notes.extend(extra_notes)
    notes.append(f"month = {prices.hours_per_month:g} h.")

    idle_s, idle_note = _configured_idle(app)
    if idle_note:
        notes.append(idle_note)
    return Inputs(app_name=app.app, gpu_kind=kind, gpu_count=int(spec.count), gpu_origin=spec.origin,
                  weights_bytes=weights_bytes, load_bytes=load, requests_per_day=rpd, seconds_per_request=spr,
                  busy_hours=busy, concurrency=max(1, conc), warm_instances=warm, fly_cpus=int(cpus),
                  fly_memory_gib=float(mem_gib), given=tuple(given), assumptions=tuple(notes), only=only,
                  idle_s=idle_s)


# ----------------------------------------------------------------------------------------------- model


def scale_to_zero_day(requests: float, seconds: float, busy_hours: float, concurrency: int, idle_s: float,
                      cold_start_s: float) -> tuple[float, float]:
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
    return min(billed, needed * DAY_S), colds


def warm_day(requests: float, seconds: float, busy_hours: float, concurrency: int, idle_s: float,
             cold_start_s: float, warm: int) -> tuple[float, float]:
    """(always-on instance-seconds, on-demand overflow instance-seconds) per day with ``warm`` instances kept."""
    window = busy_hours * 3600.0
    work = requests * seconds / concurrency
    overflow = max(0.0, work - warm * window)
    if overflow <= 0:
        return warm * DAY_S, 0.0
    extra = math.ceil(overflow / window - 1e-9)
    return warm * DAY_S, overflow + extra * (cold_start_s + idle_s)


def instances_needed(requests: float, seconds: float, busy_hours: float, concurrency: int) -> int:
    work = requests * seconds / concurrency
    return max(1, math.ceil(work / (busy_hours * 3600.0) - 1e-9))


def solve_break_even(excess, u_max: float, steps: int = 200) -> float | None:
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


# ----------------------------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class Row:
    key: str  # modal | runpod-flex | runpod-active | cloudrun | fly
    label: str
    target: str  # modal | runpod | cloudrun | fly
    offered: bool
    reason: str  # why this GPU, or why not offered
    gpu_name: str | None = None
    gpu_label: str | None = None
    gpu_count: int = 1
    vram_gb: int | None = None
    fits: str = "n/a"  # yes | no | likely | n/a
    fits_note: str = ""
    price_per_gpu_s: float | None = None
    price_basis: str | None = None
    price_source: str | None = None
    host_per_s: float = 0.0  # CPU + memory per instance-second (Cloud Run, Modal)
    rate_per_instance_s: float | None = None  # what one instance costs per second (GPUs + host)
    ondemand_rate_per_instance_s: float | None = None  # for overflow / scale-to-zero (RunPod active: flex rate)
    idle_timeout_s: float | None = None
    monthly_scale_to_zero: float | None = None
    monthly_warm: float | None = None
    warm_instances: int = 0
    billed_hours_per_day: float | None = None
    cold_starts_per_day: float | None = None
    break_even_own: float | None = None
    break_even_own_note: str = ""
    break_even_ref: float | None = None
    break_even_ref_note: str = ""
    cold_start_s: float | None = None
    cold_start_parts: tuple[tuple[str, float], ...] = ()
    effort: tuple[tuple[str, bool, str], ...] = ()  # (step, manual, note)
    notes: tuple[str, ...] = ()

    @property
    def manual_steps(self) -> tuple[str, ...]:
        return tuple(s for s, manual, _ in self.effort if manual)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key, "label": self.label, "target": self.target, "offered": self.offered,
            "reason": self.reason,
            "gpu": {"name": self.gpu_name, "label": self.gpu_label, "count": self.gpu_count, "vram_gb": self.vram_gb},
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


def _price_per_s(entry: dict[str, Any], key_s: str = "per_gpu_s", key_h: str = "per_gpu_hour") -> float:
    if key_s in entry:
        return float(entry[key_s])
    return float(entry[key_h]) / 3600.0


def _used_start(plat: dict[str, Any]) -> tuple[float, str]:
    for f in plat.get("platform_start", []):
        if f.get("used"):
            return float(f["value_s"]), str(f["text"])
    raise UserError("price data: a platform has no platform_start entry with used = true.")


def _start_note(plat: dict[str, Any]) -> str:
    figs = plat.get("platform_start", [])
    used = [f for f in figs if f.get("used")]
    other = [f for f in figs if not f.get("used")]
    txt = "; ".join(f"{float(f['value_s']):g} s {f['basis']} ({f['text']}; {f['source']})" for f in used)
    if other:
        txt += " -- not used: " + "; ".join(f"{float(f['value_s']):g} s {f['basis']} ({f['text']})" for f in other)
    return f"platform start used: {txt}"


def _effort(plat: dict[str, Any]) -> tuple[tuple[str, bool, str], ...]:
    eff = plat.get("effort", {})
    return tuple((s, bool(eff.get(s, {}).get("manual", False)), str(eff.get(s, {}).get("note", ""))) for s in STEP_IDS)


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


def _cold_start(inp: Inputs, plat: dict[str, Any], prices: Prices) -> tuple[float, tuple[tuple[str, float], ...]]:
    start, text = _used_start(plat)
    init = prices.common("engine_init_s")
    store = plat["weights_store"]
    load = inp.load_bytes / (float(store["mb_per_s"]) * 1e6)
    size_txt = f"{inp.load_bytes / 1e9:.1f} GB" + ("" if inp.weights_bytes is not None else " (assumed)")
    parts = (("platform start", start), ("engine init", init),
             (f"load {size_txt} from {store['label']} at {float(store['mb_per_s']):g} MB/s", load))
    return start + init + load, parts


def _monthly(prices: Prices, per_day: float) -> float:
    return per_day * prices.hours_per_month / 24.0


def _rows(inp: Inputs, prices: Prices, *, with_break_even: bool = True) -> list[Row]:
    rows: list[Row] = []
    R, S, H, P, W = inp.requests_per_day, inp.seconds_per_request, inp.busy_hours, inp.concurrency, inp.warm_instances
    fly_price = _price_per_s(prices.platform("fly")["gpus"][inp.gpu_kind]) * inp.scale_for("fly")
    ref_rate = fly_price * inp.gpu_count
    u_max = H / 24.0 * P  # what one instance can take in the busy window

    def excess_fn(rate_s2z: float, idle: float, cold: float, always_on_rate: float):
        def excess(u: float) -> float:
            req = u * DAY_S / S
            billed, _ = scale_to_zero_day(req, S, H, P, idle, cold)
            return billed * rate_s2z - DAY_S * always_on_rate
        return excess

    def be_note(u: float | None, own_same_rate: bool, what: str) -> str:
        if u is not None:
            at = f"{_share(u)} of the day busy (~{u * DAY_S / S:,.0f} requests/day at {S:g} s)"
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

    # ---- Modal
    plat = prices.platform("modal")
    tg = gpus.map_gpu("modal", inp.gpu_kind, inp.gpu_count)
    effort = _effort(plat)
    if tg.blocked:
        rows.append(Row("modal", plat["label"], "modal", False, tg.reason, tg.name, tg.label, tg.count, tg.vram_gb,
                        effort=effort))
    else:
        gid = (tg.name or "").split(":")[0]
        entry = plat["gpus"][gid]
        gprice = _price_per_s(entry) * inp.scale_for("modal")
        host = plat["host"]
        host_s = float(host["cores"]) * float(host["per_core_s"]) + float(host["memory_gib"]) * float(host["per_gib_s"])
        rate = gprice * tg.count + host_s
        idle = inp.idle_for("modal", plat)
        cold, parts = _cold_start(inp, plat, prices)
        billed, colds = scale_to_zero_day(R, S, H, P, idle, cold)
        fits, fnote = _fits(inp, tg.vram_gb, tg.count, tg.fits, prices)
        warm_m = None
        if W > 0:
            on, over = warm_day(R, S, H, P, idle, cold, W)
            warm_m = _monthly(prices, (on + over) * rate)
        be_own = be_ref = None
        if with_break_even:
            be_own = solve_break_even(excess_fn(rate, idle, cold, rate), u_max)
            be_ref = solve_break_even(excess_fn(rate, idle, cold, ref_rate), u_max)
        rows.append(Row(
            "modal", plat["label"], "modal", True, tg.reason, tg.name, tg.label, tg.count, tg.vram_gb, fits, fnote,
            gprice, entry["basis"], entry["source"], host_s, rate, rate, idle, _monthly(prices, billed * rate), warm_m,
            W, billed / 3600.0, colds, be_own, be_note(be_own, True, "always-on"), be_ref,
            be_note(be_ref, False, "an always-on GPU at Fly's price"), cold, parts, effort,
            (f"host: {host['note']} (${host_s * 3600:.3f}/h)", f"idle timeout {idle:g} s ({plat['idle_timeout']['knob']})",
             _start_note(plat))))

    # ---- RunPod (flex and active)
    plat = prices.platform("runpod")
    tg = gpus.map_gpu("runpod", inp.gpu_kind, inp.gpu_count)
    effort = _effort(plat)
    if tg.blocked:
        for key, lab in (("runpod-flex", "flex workers"), ("runpod-active", "active workers")):
            rows.append(Row(key, f"{plat['label']} ({lab})", "runpod", False, tg.reason, tg.name, tg.label, tg.count,
                            tg.vram_gb, effort=effort))
    else:
        entry = plat["gpus"][tg.name]
        flex = float(entry["flex_per_gpu_s"]) * inp.scale_for("runpod-flex")
        active = float(entry["active_per_gpu_s"]) * inp.scale_for("runpod-active")
        flex_rate, active_rate = flex * tg.count, active * tg.count
        idle = inp.idle_for("runpod", plat)
        cold, parts = _cold_start(inp, plat, prices)
        fits, fnote = _fits(inp, tg.vram_gb, tg.count, tg.fits, prices)
        billed, colds = scale_to_zero_day(R, S, H, P, idle, cold)
        be_own = be_ref = None
        if with_break_even:
            be_own = solve_break_even(excess_fn(flex_rate, idle, cold, active_rate), u_max)
            be_ref = solve_break_even(excess_fn(flex_rate, idle, cold, ref_rate), u_max)
        alts = f"; alternatives: {', '.join(tg.alternatives)}" if tg.alternatives else ""
        rows.append(Row(
            "runpod-flex", f"{plat['label']} (flex)", "runpod", True, tg.reason + alts, tg.name, tg.label, tg.count,
            tg.vram_gb, fits, fnote, flex, entry["basis"], entry["source"], 0.0, flex_rate, flex_rate, idle,
            _monthly(prices, billed * flex_rate), None, 0, billed / 3600.0, colds, be_own,
            be_note(be_own, False, "an active worker"), be_ref, be_note(be_ref, False, "an always-on GPU at Fly's price"),
            cold, parts, effort,
            ("warm workers on RunPod are active workers: see the active row",
             f"secrets: {plat['secrets_api_disagreement']}",
             f"idle timeout {idle:g} s ({plat['idle_timeout']['knob']}; {plat['idle_timeout'].get('note', '')})",
             _start_note(plat))))
        w = max(1, W)
        on, over = warm_day(R, S, H, P, idle, cold, w)
        rows.append(Row(
            "runpod-active", f"{plat['label']} (active)", "runpod", True, tg.reason + alts, tg.name, tg.label,
            tg.count, tg.vram_gb, fits, fnote, active, entry["basis"], entry["source"], 0.0, active_rate, flex_rate,
            idle, None, _monthly(prices, on * active_rate + over * flex_rate), w, None, None, be_own,
            be_note(be_own, False, "an active worker"), None, "n/a (always on)", 0.0 if over == 0 else cold,
            parts if over else (), effort,
            (f"workersMin = {w} active worker(s) billed 24/7 at the active rate; load above them runs on flex "
             "workers",)))

    # ---- Cloud Run
    plat = prices.platform("cloudrun")
    tg = gpus.map_gpu("cloudrun", inp.gpu_kind, inp.gpu_count)
    effort = _effort(plat)
    if tg.blocked:
        rows.append(Row("cloudrun", plat["label"], "cloudrun", False, tg.reason, tg.name, tg.label, tg.count,
                        tg.vram_gb, effort=effort))
    else:
        name, label, vram, reason = tg.name, tg.label, tg.vram_gb, tg.reason
        l4 = plat["gpus"]["nvidia-l4"]
        factor = prices.common("vram_overhead_factor")
        if (name != "nvidia-l4" and inp.weights_bytes is not None and "nvidia-l4" in tg.alternatives
                and inp.weights_bytes * factor / 1e9 <= 24):
            name, label, vram = "nvidia-l4", "NVIDIA L4 24 GB", 24
            reason = (f"the model needs ~{inp.weights_bytes * factor / 1e9:.1f} GB, so the cheaper nvidia-l4 (24 GB) "
                      f"fits instead of the RTX PRO 6000 ({tg.reason})")
        entry = plat["gpus"][name] if name in plat["gpus"] else l4
        gprice = _price_per_s(entry) * inp.scale_for("cloudrun")
        host = plat["host"]
        notes = []
        if entry.get("host_included"):
            host_s = 0.0
            notes.append(f"price is a proxy: {entry['note']}")
        else:
            vcpu = max(int(entry.get("min_vcpu", 0)), inp.fly_cpus)
            mem = max(float(entry.get("min_memory_gib", 0)), inp.fly_memory_gib)
            host_s = vcpu * float(host["per_vcpu_s"]) + mem * float(host["per_gib_s"])
            notes.append(f"host: {vcpu} vCPU + {mem:g} GiB billed with the GPU (${host_s * 3600:.3f}/h; "
                         f"minimum for {name} is {entry.get('min_vcpu')} vCPU / {entry.get('min_memory_gib')} GiB)")
        rate = gprice + host_s
        idle = inp.idle_for("cloudrun", plat)
        cold, parts = _cold_start(inp, plat, prices)
        billed, colds = scale_to_zero_day(R, S, H, P, idle, cold)
        fits, fnote = _fits(inp, vram, 1, True, prices)
        warm_m = None
        if W > 0:
            on, over = warm_day(R, S, H, P, idle, cold, W)
            warm_m = _monthly(prices, (on + over) * rate)
        be_own = be_ref = None
        if with_break_even:
            be_own = solve_break_even(excess_fn(rate, idle, cold, rate), u_max)
            be_ref = solve_break_even(excess_fn(rate, idle, cold, ref_rate), u_max)
        notes.append(f"idle timeout {idle:g} s ({plat['idle_timeout']['note']})")
        notes.append(plat["quota_note"])
        notes.append(_start_note(plat))
        rows.append(Row(
            "cloudrun", plat["label"], "cloudrun", True, reason, name, label, 1, vram, fits, fnote, gprice,
            entry["basis"], entry["source"], host_s, rate, rate, idle, _monthly(prices, billed * rate), warm_m, W,
            billed / 3600.0, colds, be_own, be_note(be_own, True, "always-on"), be_ref,
            be_note(be_ref, False, "an always-on GPU at Fly's price"), cold, parts, effort, tuple(notes)))

    # ---- reference: stay always-on at Fly's price
    plat = prices.platform("fly")
    n = max(1, W, instances_needed(R, S, H, P))
    fly_vram = gpus.FLY_GPU_KINDS[inp.gpu_kind]
    fstart, ftext = _used_start(plat)
    rows.append(Row(
        "fly", plat["label"], "fly", True, plat["note"], inp.gpu_kind, f"Fly {inp.gpu_kind} ({fly_vram} GB)",
        inp.gpu_count, fly_vram, "yes" if inp.weights_bytes is None or inp.weights_bytes * prices.common(
            "vram_overhead_factor") / 1e9 <= fly_vram * inp.gpu_count else "no", "the GPU the app ran on",
        fly_price, plat["gpus"][inp.gpu_kind]["basis"], plat["gpus"][inp.gpu_kind]["source"], 0.0, ref_rate,
        None, None, None, _monthly(prices, n * DAY_S * ref_rate), n, None, None, None, "reference", None, "reference",
        0.0, (), (), (f"{n} GPU machine(s) on 24/7; cold start on Fly was {ftext} ({fstart:g} s)",)))
    if inp.only:
        rows = [r for r in rows if r.target in inp.only or r.key == "fly"]
    return rows


# ----------------------------------------------------------------------------------------------- decision


@dataclass(frozen=True)
class Option:
    key: str
    mode: str  # scale-to-zero | warm
    monthly: float
    manual: int
    cold_start_s: float


def _options(rows: list[Row], inp: Inputs) -> list[Option]:
    warm_mode = inp.warm_instances >= 1
    opts = []
    for r in rows:
        if r.key == "fly" or not r.offered or r.fits == "no":
            continue
        if r.key == "runpod-active":
            cost, mode = r.monthly_warm, "warm"
        elif warm_mode:
            cost, mode = r.monthly_warm, "warm"
        else:
            cost, mode = r.monthly_scale_to_zero, "scale-to-zero"
        if cost is None:
            continue
        cs = 0.0 if mode == "warm" and r.key != "runpod-active" else (r.cold_start_s or 0.0)
        opts.append(Option(r.key, mode, cost, len(r.manual_steps), cs))
    opts.sort(key=lambda o: (round(o.monthly, 6), o.manual, o.cold_start_s, ROW_KEYS.index(o.key)))
    return opts


def _best(inp: Inputs, prices: Prices) -> str | None:
    opts = _options(_rows(inp, prices, with_break_even=False), inp)
    return opts[0].key if opts else None


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


_FACTORS_UP = tuple(1.1 ** k for k in range(1, 25))  # up to ~x9.8
_FACTORS_DOWN = tuple(1 / f for f in _FACTORS_UP)


def _flip(inp: Inputs, prices: Prices, base_best: str, make, factors, lo_lim: float, hi_lim: float,
          integer: bool = False) -> tuple[float, str] | None:
    """Walk factors away from 1 until the winner changes; refine by bisection. Returns (factor, new winner)."""
    prev = 1.0
    for f in factors:
        if f < lo_lim or f > hi_lim:
            break
        w = _best(make(f), prices)
        if w != base_best:
            a, b = prev, f
            for _ in range(30):
                mid = math.sqrt(a * b)
                if _best(make(mid), prices) != base_best:
                    b = mid
                else:
                    a = mid
            return b, _best(make(b), prices) or "none"
        prev = f
    return None


def sensitivity(inp: Inputs, prices: Prices, best: str) -> tuple[Sensitivity, ...]:
    labels = {k: _label_short(k) + " wins" for k in ROW_KEYS}
    labels["none"] = "no option fits"
    out: list[Sensitivity] = []

    def line(name: str, label: str, base: float, fmt, make, lo: float, hi: float, integer: bool = False,
             show_factor: bool = True) -> None:
        down = _flip(inp, prices, best, make, _FACTORS_DOWN, lo, hi, integer)
        up = _flip(inp, prices, best, make, _FACTORS_UP, lo, hi, integer)
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

    R, S, H, P = inp.requests_per_day, inp.seconds_per_request, inp.busy_hours, inp.concurrency
    if R > 0:
        line("requests_per_day", "requests/day", R, lambda v: f"{v:,.0f}",
             lambda f: replace(inp, requests_per_day=R * f), 0.0, math.inf)
    line("seconds_per_request", "seconds/request", S, lambda v: f"{v:.3g} s",
         lambda f: replace(inp, seconds_per_request=S * f), 0.0, math.inf)
    line("busy_hours", "busy hours/day", H, lambda v: f"{v:.3g} h",
         lambda f: replace(inp, busy_hours=min(24.0, H * f)), 0.25 / H, 24.0 / H)
    line("concurrency", "concurrency", float(P), lambda v: f"{v:.0f}",
         lambda f: replace(inp, concurrency=max(1, round(P * f))), 1.0 / P, math.inf, integer=True)
    line("weights", "weights size" + ("" if inp.weights_bytes is not None else " (assumed)"), inp.load_bytes / 1e9,
         lambda v: f"{v:.3g} GB",
         lambda f: replace(inp, load_bytes=inp.load_bytes * f,
                           weights_bytes=None if inp.weights_bytes is None else int(inp.weights_bytes * f)),
         0.0, math.inf)
    line("price", f"{_label_short(best)} price", 1.0, lambda v: f"{(v - 1) * 100:+.0f}%",
         lambda f: replace(inp, price_scale=((best, f),)), 0.0, math.inf, show_factor=False)
    return tuple(out)


def _label_short(key: str) -> str:
    return {"modal": "Modal", "runpod-flex": "RunPod flex", "runpod-active": "RunPod active",
            "cloudrun": "Cloud Run", "fly": "always-on (Fly price)"}[key]


# ----------------------------------------------------------------------------------------------- result


@dataclass(frozen=True)
class Recommendation:
    key: str | None
    mode: str | None
    monthly: float | None
    text: str


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
            "sensitivity": [s.to_json() for s in self.sensitivity],
            "warnings": list(self.warnings),
        }


def _money(v: float | None) -> str:
    if v is None:
        return "—"
    return f"${v:,.0f}" if v >= 100 else f"${v:,.2f}"


def _recommend(inp: Inputs, rows: list[Row]) -> Recommendation:
    opts = _options(rows, inp)
    by = {r.key: r for r in rows}
    if not opts:
        return Recommendation(None, None, None, "No target can run this app as configured: see the reasons in the "
                              "table (not offered, or the model does not fit).")
    best, rb = opts[0], by[opts[0].key]
    where = f"{_label_short(best.key)} on {rb.gpu_label}"
    mode_txt = (f"with {rb.warm_instances} always-on worker(s)" if best.key == "runpod-active"
                else ("scaling to zero" if best.mode == "scale-to-zero"
                      else f"with {inp.warm_instances} warm instance(s), as on Fly"))
    parts = [f"Recommended: {where}, {mode_txt}, at about {_money(best.monthly)}/month."]
    traffic = (f"{inp.requests_per_day:,.0f} requests/day x {inp.seconds_per_request:g} s in {inp.busy_hours:g} busy "
               f"h/day, {inp.concurrency} at a time")
    if len(opts) > 1:
        nxt = opts[1]
        if nxt.monthly - best.monthly < 0.005:
            parts.append(f"For {traffic} it costs the same as {_label_short(nxt.key)} and wins on fewer manual "
                         "steps or a shorter cold start.")
        else:
            pct = (nxt.monthly / best.monthly - 1) * 100 if best.monthly > 0 else math.inf
            more = f"{pct:.0f}% more" if math.isfinite(pct) else "more"
            close = " (a close call: effort and cold starts may matter more than cost)" if pct < 10 else ""
            parts.append(f"It is the cheapest option that fits for {traffic}; next is {_label_short(nxt.key)} at "
                         f"{_money(nxt.monthly)}/month ({more}){close}.")
    else:
        parts.append(f"It is the only option that can run this app for {traffic}.")
    if best.mode == "scale-to-zero" or best.key == "runpod-active":
        if best.key == "runpod-active":
            parts.append("Active workers never cold-start.")
        else:
            share = (rb.cold_starts_per_day or 0) / inp.requests_per_day if inp.requests_per_day else 0.0
            parts.append(f"Expect about {rb.cold_start_s:.0f} s of cold start for ~{share:.0%} of requests "
                         f"({rb.cold_starts_per_day:.0f} a day with its {rb.idle_timeout_s:g} s idle timeout).")
            if share > 0.25:
                parts.append("That many cold starts is a latency cost the price does not show: a longer idle timeout "
                             "or one warm instance trades money for it (see the Warm and break-even columns).")
    else:
        s2z = rb.monthly_scale_to_zero
        if s2z is not None:
            parts.append(f"Letting it scale to zero instead would cost {_money(s2z)}/month but add ~"
                         f"{rb.cold_start_s:.0f} s cold starts.")
    if inp.warm_instances >= 1:
        cands = [r for r in rows if r.key != "fly" and r.offered and r.fits != "no"
                 and r.monthly_scale_to_zero is not None]
        cheap = min(cands, key=lambda r: (round(r.monthly_scale_to_zero or 0, 6), ROW_KEYS.index(r.key)), default=None)
        if cheap is not None and cheap.key != best.key and (cheap.monthly_scale_to_zero or 0) < best.monthly:
            parts.append(f"If cold starts are acceptable, scaling to zero on {_label_short(cheap.key)} would cost "
                         f"{_money(cheap.monthly_scale_to_zero)}/month (~{cheap.cold_start_s:.0f} s cold starts).")
    manual = rb.manual_steps
    parts.append("Manual steps there: " + (", ".join(manual) if manual else "none") + ".")
    if rb.fits == "likely":
        parts.append("The VRAM fit is assumed because the weights size is unknown.")
    if rb.price_basis in ("recollection", "proxy"):
        parts.append("Its price is unverified (see the warning above): check it before committing.")
    ref = by.get("fly")
    if ref is not None and ref.monthly_warm is not None:
        parts.append(f"For reference, keeping the same GPU always on at Fly's old price cost "
                     f"{_money(ref.monthly_warm)}/month.")
    return Recommendation(best.key, best.mode, best.monthly, " ".join(parts))


def compare_inputs(inp: Inputs, prices: Prices, *, today: date | None = None) -> Comparison:
    rows = _rows(inp, prices)
    rec = _recommend(inp, rows)
    sens = sensitivity(inp, prices, rec.key) if rec.key else ()
    today = resolve_today(today)
    warnings: list[str] = []
    ddate = prices.data_date
    age = (today - ddate).days
    if age > prices.stale_after_days:
        warnings.append(f"The price data is from {ddate.isoformat()}, {age} days ago (over {prices.stale_after_days}): "
                        "prices and cold starts change often; update flymigrate/data/prices.toml before relying on "
                        "these numbers.")
    for r in rows:
        if r.offered and r.price_basis in ("recollection", "proxy") and r.key != "fly":
            warnings.append(f"{r.label}: the {(r.gpu_name or '').split(':')[0]} price is a {r.price_basis}, "
                            "not a quoted price.")
    return Comparison(inp, tuple(rows), rec, sens, ddate, today, prices.stale_after_days, prices.path,
                      tuple(warnings))


def compare_app(app: FlyApp, weights_bytes: int | None, traffic: Traffic | None = None, *,
                gpu: GpuSpec | None = None, targets: tuple[str, ...] | list[str] | None = None,
                notes: tuple[str, ...] | list[str] = (), prices: Prices | None = None,
                today: date | None = None) -> Comparison:
    """The comparison for ``app`` (see the module doc).

    ``gpu`` overrides the app's GPU (``--gpu``); ``targets`` limits the options (``--to``; the Fly reference row
    is always shown); ``notes`` are extra assumptions to state; ``today`` defaults to ``FLYMIGRATE_TODAY`` or the
    clock (it only decides the staleness warning).
    """
    prices = prices or load_prices()
    inp = resolve_inputs(app, weights_bytes, traffic or Traffic(), prices, gpu, targets, notes)
    return compare_inputs(inp, prices, today=today)


# ----------------------------------------------------------------------------------------------- render

_HEADERS = ("Option", "GPU", "Fits", "$/GPU-s", "Scale-to-zero", "Warm", "Break-even (own / vs Fly)",
            "Cold start", "Manual steps")


def _share(u: float) -> str:
    if u >= 0.1:
        return f"{u:.0%}"
    if u >= 0.001:
        return f"{u:.1%}"
    return "<0.1%"


def _pct(u: float | None, note: str) -> str:
    if u is not None:
        return _share(u)
    if note.startswith("scale-to-zero stays cheaper"):
        return "never"
    if note in ("reference", "n/a (always on)"):
        return "—"
    return "none"


def _cells(r: Row, c: Comparison) -> list[str]:
    gpu = "—"
    if r.gpu_name:
        gpu = r.gpu_name.split(":")[0] + (f" x{r.gpu_count}" if r.gpu_count > 1 else "")
        if r.vram_gb:
            gpu += f" ({r.vram_gb} GB" + (" each)" if r.gpu_count > 1 else ")")
    if not r.offered:
        return [r.label, gpu, "—", "not offered", "—", "—", "—", "—", "—"]
    price = "—" if r.price_per_gpu_s is None else f"{r.price_per_gpu_s:.6f}" + ("≈" if r.price_basis == "proxy" else "")
    warm = _money(r.monthly_warm) + (f" ({r.warm_instances} on)" if r.monthly_warm is not None else "")
    if r.key == "fly":
        be = "—"
    elif r.key == "runpod-active":
        be = f"{_pct(r.break_even_own, r.break_even_own_note)} / —"
    else:
        be = f"{_pct(r.break_even_own, r.break_even_own_note)} / {_pct(r.break_even_ref, r.break_even_ref_note)}"
    cs = "—" if r.key == "fly" else ("0 s" if r.cold_start_s == 0 else f"{r.cold_start_s:.0f} s")
    manual = "—" if r.key == "fly" else (", ".join(r.manual_steps) or "none")
    return [r.label, gpu, r.fits, price, _money(r.monthly_scale_to_zero) + "/mo" if r.monthly_scale_to_zero is not None
            else "—", warm + "/mo" if r.monthly_warm is not None else "—", be, cs, manual]


_BASIS_WORDS = {"recollection": "unverified", "proxy": "estimated from a similar offer", "vendor-docs": "vendor docs",
                "3rd-party": "third-party", "assumption": "assumed", "measured": "measured"}


def _user_source(src: str | None) -> str:
    """A data source as the user reads it: the page or site, without the research notes it was traced through."""
    import re

    s = re.sub(r"\s*[\(\[][^()\[\]]*research/[^()\[\]]*[\)\]]", "", src or "")
    s = re.sub(r"\s*\bvia research/\S+(?: [A-Z0-9.]+\b)?", "", s)
    return s.strip(" ;,") or "the bundled price data"


def _shown_warnings(c: Comparison) -> list[str]:
    """The warnings in user terms: an unverified or estimated price says when and where it was read."""
    out = []
    for w in c.warnings:
        row = next((r for r in c.rows if r.price_basis in ("recollection", "proxy") and w.startswith(f"{r.label}: ")),
                   None)
        if row is None or row.price_per_gpu_s is None:
            out.append(w)
            continue
        what = "unverified price" if row.price_basis == "recollection" else "estimated price (no published one)"
        out.append(f"{row.label}: {what} for the {(row.gpu_name or '').split(':')[0]} "
                   f"(${row.price_per_gpu_s * 3600:.2f}/h), read on {c.data_date.isoformat()} from "
                   f"{_user_source(row.price_source)}; check it before relying on it.")
    return out


def _header_lines(c: Comparison) -> list[str]:
    i = c.inputs
    name = i.app_name or "(unnamed app)"
    w = "unknown" if i.weights_bytes is None else f"{i.weights_bytes / 1e9:.1f} GB"
    lines = [f"Target comparison for {name}: Fly GPU {i.gpu_kind} x{i.gpu_count} ({i.gpu_origin}), weights {w}",
             f"Prices and cold-start data as of {c.data_date.isoformat()} ({c.age_days} days old; "
             f"{Path(c.data_path).name})."]
    return lines


def _traffic_line(c: Comparison) -> str:
    i = c.inputs
    return (f"Traffic: {i.requests_per_day:,.0f} requests/day, {i.seconds_per_request:g} s each, {i.busy_hours:g} busy "
            f"h/day, {i.concurrency} at a time per GPU instance; warm capacity implied by fly.toml: "
            f"{i.warm_instances} instance(s). Given by you: "
            f"{', '.join('--' + g.replace('_', '-') for g in i.given) or 'nothing'}.")


def _details(c: Comparison) -> list[tuple[str, list[str]]]:
    out = []
    for r in c.rows:
        lines = [r.reason]
        if r.offered:
            if r.fits_note:
                lines.append(f"fit: {r.fits_note}")
            if r.price_per_gpu_s is not None:
                lines.append(f"price: ${r.price_per_gpu_s:.6f}/GPU-s (${r.price_per_gpu_s * 3600:.2f}/h), "
                             f"{_BASIS_WORDS.get(r.price_basis, r.price_basis)}: {_user_source(r.price_source)}")
            if r.key != "fly":
                if r.cold_start_parts:
                    lines.append("cold start: " + " + ".join(f"{w} {s:.0f} s" for w, s in r.cold_start_parts))
                if r.billed_hours_per_day is not None:
                    lines.append(f"scale-to-zero: {r.billed_hours_per_day:.2f} billed h/day, "
                                 f"{r.cold_starts_per_day:.1f} cold starts/day")
                lines.append(f"break-even: {r.break_even_own_note}"
                             + ("" if r.key == "runpod-active" else f"; vs Fly: {r.break_even_ref_note}"))
            lines.extend(_user_source(n) for n in r.notes)
            for step, manual, note in r.effort:
                if manual:
                    lines.append(f"manual {step}: {note}")
        out.append((r.label, lines))
    return out


def _plain_table(headers: tuple[str, ...] | list[str], body: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(row[k]) for row in body)) for k, h in enumerate(headers)]
    fmt = lambda cells: "  ".join(c.ljust(widths[k]) for k, c in enumerate(cells)).rstrip()  # noqa: E731
    return [fmt(list(headers)), fmt(["-" * w for w in widths]), *(fmt(row) for row in body)]


def _render_text(c: Comparison, details: bool = True, width: int | None = None) -> str:
    from .textfmt import DEFAULT_WIDTH, table_or_list, wrap, wrap_all

    width = width or DEFAULT_WIDTH
    out = _header_lines(c)
    for w in _shown_warnings(c):
        out += wrap(f"WARNING: {w}", width, extra_indent=9)
    out.append("")
    out.append(_traffic_line(c))
    out.append("Assumptions:")
    out.extend(f"  - {a}" for a in c.inputs.assumptions)
    out.append("")
    out = wrap_all(out, width)
    out.extend(table_or_list(_HEADERS, [_cells(r, c) for r in c.rows], width))
    out.append("")
    out.append(c.recommendation.text)
    out.append("")
    out.append("Sensitivity (which input would change the answer; each varied alone, x0.1 to x10):")
    out.extend(f"  - {s.text}" for s in c.sensitivity)
    if not c.sensitivity:
        out.append("  - (no recommendation, nothing to test)")
    if details:
        out.append("")
        out.append("Details:")
        for label, lines in _details(c):
            out.append(f"  {label}")
            out.extend(f"    - {ln}" for ln in lines)
    return "\n".join(wrap_all(out, width)) + "\n"


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("<", "\\<")  # a bare <placeholder> would vanish as an HTML tag


def _render_markdown(c: Comparison, details: bool = True, heading_level: int = 2) -> str:
    head = _header_lines(c)
    out = [f"{'#' * heading_level} {head[0]}", "", head[1], ""]
    for w in _shown_warnings(c):
        out.append(f"> **Warning:** {_md_escape(w)}")
    if c.warnings:
        out.append("")
    out.append(_traffic_line(c))
    out.append("")
    out.append("Assumptions:")
    out.append("")
    out.extend(f"- {a}" for a in c.inputs.assumptions)
    out.append("")
    out.append("| " + " | ".join(_HEADERS) + " |")
    out.append("|" + "|".join("---" for _ in _HEADERS) + "|")
    for r in c.rows:
        out.append("| " + " | ".join(_md_escape(x) for x in _cells(r, c)) + " |")
    out.append("")
    out.append(f"**Recommendation.** {c.recommendation.text}")
    out.append("")
    out.append("**Sensitivity** (each input varied alone, x0.1 to x10):")
    out.append("")
    out.extend(f"- {s.text}" for s in c.sensitivity)
    if not details:
        return "\n".join(out) + "\n"
    out.append("")
    out.append("<details><summary>Details per option</summary>")
    out.append("")
    for label, lines in _details(c):
        out.append(f"**{label}**")
        out.append("")
        out.extend(f"- {ln}" for ln in lines)
        out.append("")
    out.append("</details>")
    return "\n".join(out) + "\n"


def _render_rich(c: Comparison, width: int | None = None, color: bool = True) -> str:
    import io

    from rich.console import Console
    from rich.table import Table

    import shutil

    buf = io.StringIO()
    con = Console(file=buf, width=width or shutil.get_terminal_size((160, 40)).columns, force_terminal=color, color_system="standard" if color else None,
                  highlight=False)
    head = _header_lines(c)
    con.print(f"[bold]{head[0]}[/bold]")
    con.print(head[1], markup=False)
    for w in _shown_warnings(c):
        con.print(f"[bold yellow]WARNING:[/bold yellow] {w}")
    con.print(_traffic_line(c), markup=False)
    for a in c.inputs.assumptions:
        con.print(f"  - {a}", markup=False)
    t = Table(show_lines=False)
    for h in _HEADERS:
        t.add_column(h, overflow="fold")
    for r in c.rows:
        style = "bold green" if r.key == c.recommendation.key else ("dim" if not r.offered or r.key == "fly" else None)
        t.add_row(*_cells(r, c), style=style)
    con.print(t)
    con.print(f"[bold]{c.recommendation.text}[/bold]", markup=True)
    con.print("Sensitivity (each input varied alone, x0.1 to x10):")
    for s in c.sensitivity:
        con.print(f"  - {s.text}", markup=False)
    return buf.getvalue()


def render(comparison: Comparison, fmt: str = "text", *, details: bool = True, heading_level: int = 2,
           width: int | None = None) -> str:
    """Render as ``text`` (plain), ``markdown``, ``json`` (schema flymigrate/compare/v1) or ``rich`` (ANSI).

    ``details=False`` drops the per-option details (for embedding as a section of ``plan``); ``heading_level``
    sets the markdown heading depth.
    """
    if fmt == "json":
        return json.dumps(comparison.to_json(), indent=2, ensure_ascii=False) + "\n"
    if fmt == "markdown":
        return _render_markdown(comparison, details, heading_level)
    if fmt == "text":
        return _render_text(comparison, details, width)
    if fmt == "rich":
        return _render_rich(comparison)
    raise UserError(f"unknown format {fmt!r}: use text, markdown or json.")
