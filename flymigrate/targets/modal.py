"""Modal: a generated ``modal_app.py`` (``@app.function`` + ``@modal.web_server``), Volumes, Secrets."""

from __future__ import annotations

import re

from ..gpus import TargetGpu, map_gpu
from ..model import Finding, FlyApp, ScalingPlan, Service
from .common import FLY_IDLE_EQUIVALENT_S, read_fly_scaling


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "app"


class ModalTarget:
    name = "modal"
    label = "Modal"
    weights_mount_root = None

    def map_gpu(self, kind: str, count: int) -> TargetGpu:
        return map_gpu("modal", kind, count)

    def scaling(self, app: FlyApp, svc: Service | None, max_guess: int) -> tuple[ScalingPlan, list[Finding]]:
        fs, findings = read_fly_scaling(svc, max_guess)
        notes: list[str] = []
        mx = fs.max_guess
        if fs.always_on:
            mn = mx = max(fs.min_running, mx) if fs.min_running else mx
            idle = None
            notes.append(f"auto_stop off -> min_containers = max_containers = {mx} (always warm, billed always)")
        else:
            mn = fs.min_running
            idle = FLY_IDLE_EQUIVALENT_S
            notes.append(f"auto_stop {'suspend' if fs.suspend else 'stop'} -> scaledown_window = {idle} s "
                         "(Fly stopped idle machines after a few minutes; Modal's default is 60 s)")
        if fs.suspend:
            findings.append(Finding("warning", "suspend", "auto_stop_machines = \"suspend\" has no direct Modal "
                                    "equivalent (and Fly never suspended GPU machines); the nearest is "
                                    "enable_memory_snapshot=True to cut restarts, which is added commented out.",
                                    fs.where, "scaling"))
        config: list[tuple[str, object]] = [("min_containers", mn), ("max_containers", mx)]
        if idle is not None:
            config.append(("scaledown_window", idle))
        max_inputs = fs.hard
        target_inputs = fs.soft if fs.soft and (fs.hard is None or fs.soft < fs.hard) else None
        if max_inputs or target_inputs:
            config.append(("concurrent.max_inputs", max_inputs or target_inputs))
            if target_inputs and max_inputs:
                config.append(("concurrent.target_inputs", target_inputs))
        if fs.ctype == "connections":
            findings.append(Finding("warning", "connections-vs-inputs", "Fly counted concurrent *connections*; "
                                    "@modal.concurrent counts concurrent requests (inputs). Streaming and WebSocket "
                                    "clients hold one input each for their whole duration.", fs.concurrency_where,
                                    "scaling"))
        if fs.hard is None and fs.soft:
            notes.append(f"no hard_limit on Fly -> @modal.concurrent(max_inputs={fs.soft}) from soft_limit")
        return ScalingPlan(mn, mx, idle, max_inputs or target_inputs, target_inputs, tuple(config),
                           tuple(notes)), findings

    def weights_destination(self, app_name: str) -> str:
        return f"modal-volume://{self.volume_name(app_name)}/"

    def volume_name(self, app_name: str) -> str:
        return f"flymigrate-{slug(app_name)}-weights"

    def secret_name(self, app_name: str) -> str:
        return f"flymigrate-{slug(app_name)}-secrets"

    def secret_ref(self, app_name: str, name: str) -> str:
        return f"modal.Secret.from_name({self.secret_name(app_name)!r}) -> ${name}"

    def placeholder_url(self, app_name: str) -> str:
        return f"https://<workspace>--flymigrate-{slug(app_name)}-serve.modal.run"


TARGET = ModalTarget()
