"""Targets are pure translators from the neutral model to one platform's concepts.

One module per target behind the :class:`Target` protocol; a new target is one file plus one line in
``_REGISTRY``. No vendor SDK is imported here (generated code and configs are text).
"""

from __future__ import annotations

import importlib
from typing import Protocol

from ..gpus import TargetGpu
from ..model import Finding, FlyApp, ScalingPlan, Service


class Target(Protocol):
    name: str
    label: str
    weights_mount_root: str | None  # where the platform mounts the weights store (RunPod: /runpod-volume)

    def map_gpu(self, kind: str, count: int) -> TargetGpu: ...

    def scaling(self, app: FlyApp, svc: Service | None, max_guess: int) -> tuple[ScalingPlan, list[Finding]]: ...

    def weights_destination(self, app_name: str) -> str: ...

    def secret_ref(self, app_name: str, name: str) -> str: ...

    def placeholder_url(self, app_name: str) -> str: ...


_REGISTRY = {"modal": "flymigrate.targets.modal", "runpod": "flymigrate.targets.runpod",
             "cloudrun": "flymigrate.targets.cloudrun"}


def get_target(name: str) -> Target:
    return importlib.import_module(_REGISTRY[name]).TARGET  # type: ignore[no-any-return]


def names() -> tuple[str, ...]:
    return tuple(_REGISTRY)
