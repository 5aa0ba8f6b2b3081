"""Targets: one module per platform, behind one :class:`Target` protocol. The registry is the only list of them.

A target is a pure translator from the neutral model to one platform (GPU choice, scaling translation, weights
destination and layout, secrets and env rules, URL shape and auth, the files it renders) plus the deploy calls
its executor makes (vendor SDKs imported lazily, inside those calls). Everything that lists targets - CLI choices,
compare rows, TUI tables, checklist sections, help text - asks :func:`names` / :func:`get_target`. A new target is
one module plus one :func:`register` call (``_BUILTIN`` for the bundled ones); nothing outside ``targets/`` names
a target.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..deployment import Deployment
    from .base import CostRow, TargetGpu
    from ..model import Finding, FlyApp, ScalingPlan, Service


class Target(Protocol):
    name: str  # the CLI name (--to NAME)
    label: str  # human name
    blurb: str  # one line: what it is, for help text and the TUI's target choice
    weights_mount_root: str | None  # where the platform mounts the weights store (RunPod: /runpod-volume)

    # ---- translation (pure)
    def map_gpu(self, kind: str, count: int) -> TargetGpu: ...

    def scaling(self, app: FlyApp, svc: Service | None, max_guess: int) -> tuple[ScalingPlan, list[Finding]]: ...

    def weights_destination(self, app_name: str) -> str: ...

    def secret_ref(self, app_name: str, name: str) -> str: ...

    def placeholder_url(self, app_name: str) -> str: ...

    def image_placeholder(self, slug: str) -> str: ...

    def finalize(self, dep: Deployment, app: FlyApp) -> Deployment: ...

    def render(self, dep: Deployment, *, dockerfile_rel: str | None, context_rel: str | None
               ) -> list[tuple[str, str, int | None]]: ...

    # ---- what the plan says (pure)
    def plan_notes(self, dep: Deployment) -> dict[str, list[str]]: ...

    def weights_needs(self) -> list[str]: ...

    # ---- cost inputs (pure): what ``compare`` prices, one row per billing model of the Deployment
    def cost_rows(self, dep: Deployment, prices: Any) -> list[CostRow]: ...

    def weights_blocking(self, dep: Deployment) -> list[str]: ...

    def secrets_summary(self, dep: Deployment, n_values: int) -> str: ...

    # ---- executing (apply); may import the vendor SDK lazily
    def secrets_apply(self, ctx: Any, preview: Any) -> str: ...

    def deploy_commands(self, dep: Deployment) -> list[str]: ...

    def deploy(self, ctx: Any) -> str | None: ...


_BUILTIN = {"modal": "flymigrate.targets.modal", "runpod": "flymigrate.targets.runpod",
            "cloudrun": "flymigrate.targets.cloudrun"}
_REGISTRY: dict[str, str | Callable[[], Target]] = dict(_BUILTIN)
_LOADED: dict[str, Target] = {}


def register(name: str, target: str | Target | Callable[[], Target]) -> None:
    """Add a target: a module path holding ``TARGET``, a Target object, or a factory returning one."""
    if isinstance(target, str) or callable(target) and not hasattr(target, "name"):
        _REGISTRY[name] = target  # type: ignore[assignment]
    else:
        _REGISTRY[name] = lambda t=target: t  # type: ignore[misc]
    _LOADED.pop(name, None)


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)
    _LOADED.pop(name, None)


def get_target(name: str) -> Target:
    t = _LOADED.get(name)
    if t is None:
        src = _REGISTRY[name]
        t = importlib.import_module(src).TARGET if isinstance(src, str) else src()
        _LOADED[name] = t
    return t


def names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def is_target(name: str) -> bool:
    return name in _REGISTRY


class _LiveNames(tuple):  # type: ignore[type-arg]
    """The registered target names, read from the registry at each use (a target registered later shows up)."""

    def __new__(cls) -> _LiveNames:
        return super().__new__(cls)

    def _t(self) -> tuple[str, ...]:
        return names()

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._t())

    def __len__(self) -> int:
        return len(self._t())

    def __getitem__(self, i):  # type: ignore[no-untyped-def]
        return self._t()[i]

    def __contains__(self, x: object) -> bool:
        return x in self._t()

    def __repr__(self) -> str:
        return repr(self._t())

    def index(self, x, *a):  # type: ignore[no-untyped-def]
        return self._t().index(x, *a)


class _AttrMap:
    """name -> an attribute of that target (``labels["modal"] == "Modal"``), read live from the registry."""

    def __init__(self, attr: str, default: Any = None) -> None:
        self.attr, self.default = attr, default

    def __getitem__(self, name: str) -> Any:
        t = get_target(name)
        v = getattr(t, self.attr, self.default)
        return v if v is not None else (t.label if self.attr == "short_label" else v)

    def get(self, name: str, default: Any = None) -> Any:
        return self[name] if is_target(name) else default


TARGETS = _LiveNames()
LABELS = _AttrMap("label")
SHORT_LABELS = _AttrMap("short_label")
