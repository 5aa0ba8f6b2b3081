"""The neutral migration model: frozen dataclasses, no I/O, no vendor SDK.

Target-specific types never leak in here (kompose's lesson): targets translate *from* this model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # type checkers see the standard decorator
    from dataclasses import dataclass, field
else:  # start-up time: no exec per generated method (flymigrate/_dataclass.py)
    from ._dataclass import dataclass, field

Severity = Literal["error", "warning", "info"]
StepId = Literal["weights", "dockerfile", "secrets", "base_urls", "scaling"]
STEP_IDS: tuple[StepId, ...] = ("weights", "dockerfile", "secrets", "base_urls", "scaling")


@dataclass(frozen=True)
class Finding:
    """Something the user should know: a key that does not translate, a lossy mapping, a blocker."""

    severity: Severity
    code: str
    message: str
    where: str | None = None  # "fly.toml:12"
    step: StepId | None = None

    def to_json(self) -> dict[str, object]:
        return {"severity": self.severity, "code": self.code, "message": self.message, "where": self.where,
                "step": self.step}


class SecretValue:
    """A secret's value. It never prints itself: repr/str/format give a redacted marker.

    Call :meth:`reveal` at the one place the value must leave the process (an SDK call, a pipe).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        from .redact import remember

        remember(value)  # so the error boundary can scrub it from any message that quotes it by accident

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecretValue(<redacted>)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretValue) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("SecretValue", len(self._value)))

    def __reduce__(self):  # never pickled/serialised by accident
        raise TypeError("SecretValue cannot be pickled")


@dataclass(frozen=True)
class Secret:
    name: str
    value: SecretValue | None  # None: the name is known (fly secrets list) but the value was not exported
    where: str | None = None

    @property
    def has_value(self) -> bool:
        return self.value is not None


@dataclass(frozen=True)
class SecretsExport:
    path: str | None
    format: str  # env-dump | dotenv | fly-json
    secrets: tuple[Secret, ...] = ()
    dropped: tuple[str, ...] = ()  # names dropped (FLY_*, PATH, [env] duplicates...)
    findings: tuple[Finding, ...] = ()

    def names(self) -> list[str]:
        return [s.name for s in self.secrets]


@dataclass(frozen=True)
class GpuSpec:
    kind: str  # one of gpus.FLY_GPU_KINDS
    count: int = 1
    origin: str = "fly.toml"  # fly.toml | --gpu | size preset
    where: str | None = None


@dataclass(frozen=True)
class Vm:
    size: str | None = None
    cpu_kind: str | None = None
    cpus: int | None = None
    memory_mb: int | None = None
    gpu: GpuSpec | None = None
    processes: tuple[str, ...] = ()
    where: str | None = None


@dataclass(frozen=True)
class Mount:
    source: str
    destination: str
    initial_size_gb: float | None = None
    processes: tuple[str, ...] = ()
    where: str | None = None


@dataclass(frozen=True)
class Concurrency:
    type: str = "connections"  # connections | requests
    soft_limit: int | None = None
    hard_limit: int | None = None
    where: str | None = None


@dataclass(frozen=True)
class Check:
    type: str  # http | tcp
    path: str | None = None
    port: int | None = None
    interval_s: float | None = None
    timeout_s: float | None = None
    grace_period_s: float | None = None
    where: str | None = None


@dataclass(frozen=True)
class Port:
    port: int | None
    handlers: tuple[str, ...] = ()
    force_https: bool = False


@dataclass(frozen=True)
class Service:
    origin: str  # http_service | services
    internal_port: int | None
    protocol: str = "tcp"
    ports: tuple[Port, ...] = ()
    auto_stop: str = "off"  # off | stop | suspend (normalised from bool too)
    auto_stop_set: bool = False
    auto_start: bool = True
    min_machines_running: int = 0
    concurrency: Concurrency | None = None
    checks: tuple[Check, ...] = ()
    processes: tuple[str, ...] = ()
    where: str | None = None

    @property
    def has_tls(self) -> bool:
        if self.origin == "http_service":
            return True
        return any("tls" in p.handlers for p in self.ports)


@dataclass(frozen=True)
class FileInjection:
    guest_path: str
    local_path: str | None = None
    has_raw_value: bool = False
    secret_name: str | None = None
    processes: tuple[str, ...] = ()
    where: str | None = None


@dataclass(frozen=True)
class Build:
    image: str | None = None
    dockerfile: str | None = None
    args: tuple[tuple[str, str], ...] = ()
    build_target: str | None = None
    where: str | None = None
    # the build context's .dockerignore patterns (read next to fly.toml, or <Dockerfile>.dockerignore beside it)
    ignore: tuple[str, ...] = ()


@dataclass(frozen=True)
class FlyApp:
    """What fly.toml says, normalised the way flyctl normalises it."""

    config_path: str
    app: str | None = None
    primary_region: str | None = None
    kill_signal: str | None = None
    kill_timeout_s: float | None = None
    swap_size_mb: int | None = None
    build: Build = field(default_factory=Build)
    env: tuple[tuple[str, str], ...] = ()
    env_where: tuple[tuple[str, str], ...] = ()
    processes: tuple[tuple[str, str], ...] = ()
    vms: tuple[Vm, ...] = ()
    mounts: tuple[Mount, ...] = ()
    services: tuple[Service, ...] = ()
    files: tuple[FileInjection, ...] = ()
    experimental_cmd: tuple[str, ...] | None = None
    experimental_entrypoint: tuple[str, ...] | None = None
    release_command: str | None = None
    findings: tuple[Finding, ...] = ()

    @property
    def env_map(self) -> dict[str, str]:
        return dict(self.env)

    def env_line(self, name: str) -> str | None:
        return dict(self.env_where).get(name)

    @property
    def gpu(self) -> GpuSpec | None:
        for vm in self.vms:
            if vm.gpu is not None:
                return vm.gpu
        return None

    @property
    def memory_mb(self) -> int | None:
        for vm in self.vms:
            if vm.memory_mb:
                return vm.memory_mb
        return None

    @property
    def primary_service(self) -> Service | None:
        return self.services[0] if self.services else None


@dataclass(frozen=True)
class DockerInstruction:
    line: int  # 1-based first line
    end_line: int
    keyword: str  # upper-case: FROM RUN CMD ...
    args: str  # the instruction text after the keyword, continuation lines joined


@dataclass(frozen=True)
class Dockerfile:
    path: str
    text: str
    instructions: tuple[DockerInstruction, ...] = ()

    def base_images(self) -> list[str]:
        """FROM images in order, with ``ARG`` defaults declared before them substituted (``FROM ${BASE}``)."""
        import re

        args: dict[str, str] = {}
        out = []
        seen_from = False
        for ins in self.instructions:
            if ins.keyword == "ARG" and not seen_from:
                name, _, default = ins.args.partition("=")
                args[name.strip()] = default.strip().strip("\"'")
            if ins.keyword == "FROM":
                seen_from = True
                toks = [t for t in ins.args.split() if not t.startswith("--")]
                if toks:
                    out.append(re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: args.get(m.group(1), m.group(0)),
                                      toks[0]))
        return out


@dataclass(frozen=True)
class BaseUrlHit:
    path: str  # relative to the scan root, posix
    line: int
    column: int
    old: str  # the matched URL / host text
    kind: str  # fly.dev | flycast | internal | fdaa | 6pn
    new: str | None = None


@dataclass(frozen=True)
class WeightsSource:
    kind: str  # hf | fly-volume | tigris | baked | ollama | local | unknown
    url: str | None  # a transfer URL (hf://..., fly-volume://..., s3://...) when known
    description: str
    size_bytes: int | None = None
    where: str | None = None


# ---- the plan ---------------------------------------------------------------------------------------

StepStatus = Literal["ready", "manual", "blocked", "nothing_to_do"]


@dataclass(frozen=True)
class Step:
    id: StepId
    title: str
    status: StepStatus
    summary: str
    changes: tuple[str, ...] = ()  # what will change
    needs: tuple[str, ...] = ()  # what it needs from the user
    cannot: tuple[str, ...] = ()  # what cannot translate
    manual_checks: tuple[str, ...] = ()


@dataclass(frozen=True)
class WeightsPlan:
    sources: tuple[WeightsSource, ...]  # everything found, best first
    chosen: WeightsSource | None
    destination_url: str | None  # transfer URL on the target
    mount_path: str | None  # where the app expects the weights
    env: tuple[tuple[str, str], ...] = ()  # env vars pointing the app at the mounted weights
    size_bytes: int | None = None


@dataclass(frozen=True)
class DockerIssue:
    kind: str  # driver-shim | fly-entrypoint-d | fly-env | ipv6-bind | baked-weights | no-cuda | files | cmd | processes | port | registry
    message: str
    where: str | None = None
    line: int | None = None
    fix: str = ""
    auto: bool = True  # apply's rewrite carries `fix` out (checked by running it); False: fix it by hand


@dataclass(frozen=True)
class ScalingPlan:
    min: int
    max: int
    idle_timeout_s: int | None
    max_concurrency: int | None
    target_concurrency: int | None
    config: tuple[tuple[str, object], ...] = ()  # the target's own parameter names and values
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SecretPlan:
    name: str
    has_value: bool
    target_ref: str
    where: str | None = None


@dataclass(frozen=True)
class Plan:
    app: str | None
    target: str
    steps: tuple[Step, ...]
    gpu: dict[str, object] | None
    scaling: ScalingPlan | None
    secrets: tuple[SecretPlan, ...]
    base_urls: tuple[BaseUrlHit, ...]
    other_fly_urls: tuple[BaseUrlHit, ...]
    findings: tuple[Finding, ...]
    weights: WeightsPlan
    docker_issues: tuple[DockerIssue, ...]
    base_url: str  # the new base URL, or a clearly marked placeholder
    base_url_is_placeholder: bool
    inputs: tuple[tuple[str, str], ...] = ()  # what was read: fly.toml, Dockerfile, secrets, code roots
    comparison: object | None = None  # flymigrate.compare.Comparison (cost and cold start), when it applies
    deployment: Any = None  # flymigrate.deployment.Deployment: the whole of what will run on the target

    def step(self, sid: str) -> Step:
        for s in self.steps:
            if s.id == sid:
                return s
        raise KeyError(sid)

    @property
    def weights_destination(self) -> str | None:
        """Where the weights go: the Deployment's destination (what apply writes), read by every view."""
        return self.deployment.weights_dest if self.deployment is not None else self.weights.destination_url

    @property
    def weights_mount_path(self) -> str | None:
        """Where the app reads the weights on the target: the Deployment's mount path."""
        return self.deployment.layout.mount_path if self.deployment is not None else self.weights.mount_path
