"""Defaults shared by the bundled targets (a target may override any of them)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # type checkers see the standard decorator
    from dataclasses import dataclass
else:  # start-up time: no exec per generated method (flymigrate/_dataclass.py)
    from .._dataclass import dataclass

if TYPE_CHECKING:
    from ..deployment import Deployment
    from ..model import Finding, FlyApp


@dataclass(frozen=True)
class TargetGpu:
    """What a target would run a Fly GPU on (its ``map_gpu`` answer)."""

    target: str
    name: str | None  # the target's own identifier (Modal gpu=, RunPod pool id, Cloud Run accelerator); None = not offered
    label: str  # human name
    vram_gb: int | None
    count: int
    fits: bool  # VRAM per GPU >= Fly's and the count is possible
    blocked: bool  # the target cannot run this at all
    reason: str  # why this choice (always filled: it is shown in the plan)
    alternatives: tuple[str, ...] = ()


@dataclass(frozen=True)
class CostRow:
    """One way of running a Deployment on a target, as ``compare`` prices it (the target's cost inputs).

    ``compare`` owns the maths (queueing, cold starts, break-even); the target says what one instance of its
    Deployment costs per second and how it starts. Figures come from the target's section of the price data
    (``flymigrate/data/prices.toml``), each with its source."""

    key: str  # the row key, unique across targets ("runpod-flex")
    label: str  # "RunPod Serverless (flex)"
    short_label: str  # "RunPod flex" (recommendation text)
    offered: bool = True
    reason: str = ""  # why not offered (or "" when offered)
    price_id: str | None = None  # the GPU id the price is for (without a count suffix)
    warm_per_gpu_s: float | None = None  # $/GPU-second for an instance kept up (min instances)
    ondemand_per_gpu_s: float | None = None  # $/GPU-second when started on demand (scale-to-zero, overflow)
    basis: str | None = None  # vendor-docs | 3rd-party | recollection | proxy | assumption | measured
    source: str | None = None
    host_per_s: float = 0.0  # CPU + memory per instance-second billed on top of the GPUs
    modes: tuple[str, ...] = ("scale-to-zero", "warm")  # which billing modes this row offers
    min_warm: int = 0  # at least this many kept up whatever the Deployment says (RunPod active: 1)
    deployed_when: str = "always"  # always | warm | scale-to-zero: the row *is* the Deployment in that case
    default_idle_s: float | None = None  # idle timeout when the Deployment sets none (the platform's own)
    idle_note: str = ""
    platform_start_s: float = 0.0
    platform_start_note: str = ""
    store_label: str = "the weights store"
    store_mb_per_s: float = 200.0
    notes: tuple[str, ...] = ()


def price_per_s(entry: dict[str, Any], key_s: str = "per_gpu_s", key_h: str = "per_gpu_hour") -> float:
    """A price entry of the data file in $/s (``per_gpu_s``, else ``per_gpu_hour`` / 3600)."""
    if key_s in entry:
        return float(entry[key_s])
    return float(entry[key_h]) / 3600.0


def used_start(section: dict[str, Any]) -> tuple[float, str]:
    """The ``platform_start`` figure marked ``used = true`` (where sources disagree, the data file picks one)."""
    from ..errors import UserError

    for f in section.get("platform_start", []):
        if f.get("used"):
            return float(f["value_s"]), str(f["text"])
    raise UserError("price data: a platform has no platform_start entry with used = true.")


def start_note(section: dict[str, Any]) -> str:
    figs = section.get("platform_start", [])
    used = [f for f in figs if f.get("used")]
    other = [f for f in figs if not f.get("used")]
    txt = "; ".join(f"{float(f['value_s']):g} s {f['basis']} ({f['text']}; {f['source']})" for f in used)
    if other:
        txt += " -- not used: " + "; ".join(f"{float(f['value_s']):g} s {f['basis']} ({f['text']})" for f in other)
    return f"platform start used: {txt}"


def section_row(section: dict[str, Any], **kw: Any) -> CostRow:
    """A :class:`CostRow` with the platform facts every row shares filled from the target's price section
    (platform start, weights store, default idle timeout); ``kw`` gives the rest."""
    start, _ = used_start(section)
    store = section.get("weights_store", {})
    idle = section.get("idle_timeout", {})
    base: dict[str, Any] = dict(
        platform_start_s=start, platform_start_note=start_note(section),
        store_label=str(store.get("label", "the weights store")), store_mb_per_s=float(store.get("mb_per_s", 200)),
        default_idle_s=float(idle["used_s"]) if "used_s" in idle else None,
        idle_note=str(idle.get("knob", "")) + (f"; {idle['note']}" if idle.get("note") else ""))
    base.update(kw)
    return CostRow(**base)


def not_offered(key: str, label: str, short_label: str, reason: str) -> CostRow:
    return CostRow(key, label, short_label, offered=False, reason=reason)


@dataclass(frozen=True)
class GeneratedFile:
    """A file a target renders from the Deployment, and the apply step that writes it."""

    name: str
    text: str
    mode: int | None = None
    step: str = "scaling"


@dataclass(frozen=True)
class VerifySpec:
    """How a deployed endpoint on this target is reached and probed (read by ``flymigrate verify``, which
    implements the mechanisms: auth schemes, readiness waiting, checks)."""

    # auth scheme: "platform-bearer" (a platform API key as Bearer in Authorization: the app's own key cannot
    # share the header), "header-pair" (two headers from an id/secret pair), "identity-token" (an OIDC identity
    # token, in X-Serverless-Authorization when the app's own key uses Authorization), "none"
    auth: str = "none"
    key_env: tuple[str, ...] = ()  # platform-bearer: where the key is read from
    pair_env: tuple[tuple[str, str], ...] = ()  # header-pair: (id var, secret var) pairs, first complete one wins
    pair_headers: tuple[str, str] = ("", "")
    auth_hint: str = "check the app's key"
    health_route: str | None = None  # a route the platform itself answers for every endpoint (RunPod LB: /ping)
    health_ready_status: int = 200
    no_worker_status: int | None = None  # the platform's "no worker became ready in time" status (retried)
    wrong_url: tuple[str, str, str, str] | None = None  # (host, path prefix, what it is, the fix)
    # what a rewritten client sends (flymigrate.requestauth adds it where clients call the app): (header, value
    # prefix, env var the value is read from by name); sent only to a private deployment when client_auth_private
    client_headers: tuple[tuple[str, str, str], ...] = ()
    client_auth_private: bool = False
    client_env_note: str = ""  # how the user fills those env vars where the clients run (shown in the plan's needs)


class BaseTarget:
    name = "base"
    label = "base"
    short_label: str | None = None
    compare_row: str | None = None  # the compare row that prices this target (scale-to-zero mode)
    price_key: str | None = None  # this target's section of the price data (default: its name)
    weights_fields: tuple[str, ...] = ("from",)  # what the TUI's weights dialog asks for
    verify_spec = VerifySpec()
    config_language = "json"  # how the generated config spells values (true/false): json | yaml | python
    cpu_form = "a CPU deployment"  # what a CPU-only app becomes here
    blurb = ""
    weights_mount_root: str | None = None

    def image_placeholder(self, slug: str) -> str:
        return f"<REGISTRY>/{slug}:latest"

    def finalize(self, dep: Deployment, app: FlyApp) -> Deployment:
        return dep

    def app_auth_collision(self, public: bool) -> str:
        """Why the server's own key check in ``Authorization`` must go on this target ("" = it may stay): the
        platform's gateway takes its own key in that same header. Modal's proxy auth uses Modal-Key /
        Modal-Secret and Cloud Run's identity token travels in X-Serverless-Authorization, so only RunPod says
        yes. The Deployment asks once (``build_deployment``); ``rules.APP_KEY`` carries it out."""
        return ""

    def render(self, dep: Deployment, *, dockerfile_rel: str | None = None,
               context_rel: str | None = None) -> list[GeneratedFile]:
        return []

    def findings(self, dep: Deployment, app: FlyApp) -> list[Finding]:
        """Findings only the target can see once the Deployment is decided (the planner adds them to the plan)."""
        return []

    def client_auth(self, dep: Deployment) -> tuple[tuple[str, str, str], ...]:
        """The headers clients of ``dep`` must send (from ``verify_spec``): none for a public deployment on a platform
        whose auth is only for private ones, none for an app with no HTTP service."""
        spec = self.verify_spec
        if not spec.client_headers or not dep.serves_http or (spec.client_auth_private and dep.public):
            return ()
        return spec.client_headers

    def plan_notes(self, dep: Deployment) -> dict[str, list[str]]:
        """Per step id, lines the plan shows as "will change" that come from the platform itself."""
        return {}

    def weights_needs(self) -> list[str]:
        return []

    def weights_blocking(self, dep: Deployment) -> list[str]:
        return []

    def weights_option_hint(self) -> str:
        return "a destination"

    def secrets_summary(self, dep: Deployment, n_values: int) -> str:
        return f"Create {len(dep.secret_names)} secret(s) on {self.label}."

    def secrets_apply(self, ctx: Any, preview: Any) -> str:
        return "nothing to do"

    def secrets_manual(self, dep: Deployment) -> list[str]:
        return []

    def deploy_commands(self, dep: Deployment) -> list[str]:
        return []

    def credentials(self, step: str) -> tuple[str, ...]:
        """What a step needs configured on this machine (shown in the plan's needs), e.g. a token's env names."""
        return ()

    def credentials_missing(self, step: str, env: dict[str, str]) -> str | None:
        """Why a step cannot run on this machine for want of a credential (None: it can). Checked by apply before
        the step runs: the step is then blocked (exit 2) and the steps that need nothing remote still run."""
        return None

    def deploy(self, ctx: Any) -> str | None:
        return None

    # ---- cost inputs (compare prices the Deployment through these)
    def price_section(self, prices: Any) -> dict[str, Any]:
        """This target's section of the price data; a clear error when the data file has none."""
        from ..errors import UserError

        key = self.price_key or self.name
        sec = prices.data.get(key)
        if not isinstance(sec, dict):
            raise UserError(f"{prices.path}: no [{key}] section, so {self.label} cannot be priced.",
                            hint=f"Add the [{key}] prices (gpus, platform_start, weights_store) to the data file.")
        return sec

    def gpu_price(self, section: dict[str, Any], gpu_id: str) -> dict[str, Any]:
        from ..errors import UserError

        entry = section.get("gpus", {}).get(gpu_id)
        if entry is None:
            raise UserError(f"price data: no price for {self.label} GPU {gpu_id!r} "
                            f"(add [{self.price_key or self.name}.gpus.\"{gpu_id}\"]).")
        return entry

    def cost_rows(self, dep: Deployment, prices: Any) -> list[CostRow]:
        """What running ``dep`` costs: one row per billing model (RunPod: flex and active workers).

        The default prices ``dep.gpu`` x ``dep.gpu_count`` from ``[<price_key>.gpus.<id>]`` (``per_gpu_hour`` or
        ``per_gpu_s``) with no host charge."""
        short = self.short_label or self.label
        if not dep.gpu:
            return [not_offered(self.name, self.label, short, dep.gpu_reason or "no GPU to run this app on")]
        sec = self.price_section(prices)
        gid = dep.gpu.split(":")[0]
        entry = self.gpu_price(sec, gid)
        p = price_per_s(entry)
        return [section_row(sec, key=self.name, label=str(sec.get("label", self.label)), short_label=short,
                            price_id=gid, warm_per_gpu_s=p, ondemand_per_gpu_s=p, basis=entry.get("basis"),
                            source=entry.get("source"))]

    @staticmethod
    def with_env(dep: Deployment, add: dict[str, str], origin: str, drop: tuple[str, ...] = ()) -> Deployment:
        env = {k: v for k, v in dep.env if k not in drop}
        env.update(add)
        origins = {k: v for k, v in dep.env_origins if k not in drop}
        origins.update({k: origin for k in add})
        return replace(dep, env=tuple(sorted(env.items())), env_origins=tuple(sorted(origins.items())))
