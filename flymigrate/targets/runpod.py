"""RunPod Serverless: an endpoint + template spec (load-balancing worker), network volume, secret refs."""

from __future__ import annotations

from ..gpus import TargetGpu, map_gpu
from ..model import Finding, FlyApp, ScalingPlan, Service
from .common import FLY_IDLE_EQUIVALENT_S, read_fly_scaling
from .modal import slug


class RunPodTarget:
    name = "runpod"
    label = "RunPod Serverless"
    weights_mount_root = "/runpod-volume"

    def map_gpu(self, kind: str, count: int) -> TargetGpu:
        return map_gpu("runpod", kind, count)

    def scaling(self, app: FlyApp, svc: Service | None, max_guess: int) -> tuple[ScalingPlan, list[Finding]]:
        fs, findings = read_fly_scaling(svc, max_guess)
        notes: list[str] = []
        mx = fs.max_guess
        if fs.always_on:
            mn = mx
            idle = None
            notes.append(f"auto_stop off -> workersMin = workersMax = {mx} (active workers, billed always at the "
                         "active rate)")
        else:
            mn = fs.min_running
            idle = FLY_IDLE_EQUIVALENT_S
            notes.append(f"auto_stop -> idleTimeout = {idle} s (RunPod's console default is 5 s: cheaper, but "
                         "almost every request after a pause would be a cold start)")
        config: list[tuple[str, object]] = [("workersMin", mn), ("workersMax", mx)]
        if idle is not None:
            config.append(("idleTimeout", idle))
        if fs.soft:
            config += [("scalerType", "REQUEST_COUNT"), ("scalerValue", fs.soft)]
            notes.append(f"soft_limit {fs.soft} -> scalerType REQUEST_COUNT, scalerValue {fs.soft}")
        else:
            config += [("scalerType", "QUEUE_DELAY"), ("scalerValue", 4)]
        config.append(("flashboot", True))
        if fs.suspend:
            findings.append(Finding("info", "suspend", "auto_stop_machines = \"suspend\" -> flashboot (on by "
                                    "default): RunPod's nearest equivalent.", fs.where, "scaling"))
        if fs.hard:
            findings.append(Finding("warning", "hard-limit-server-side", f"hard_limit {fs.hard} has no RunPod "
                                    "endpoint setting: enforce it in the server (e.g. vLLM --max-num-seqs, a "
                                    "semaphore); it is passed to the worker as MAX_CONCURRENCY.",
                                    fs.concurrency_where, "scaling"))
        if fs.ctype == "connections":
            findings.append(Finding("warning", "connections-vs-requests", "Fly counted connections; RunPod scales "
                                    "on requests. Long streaming responses count as one request each.",
                                    fs.concurrency_where, "scaling"))
        return ScalingPlan(mn, mx, idle, fs.hard, fs.soft, tuple(config), tuple(notes)), findings

    def weights_destination(self, app_name: str) -> str:
        return f"runpod-volume://<VOLUME_ID>/{slug(app_name)}/"

    def secret_ref(self, app_name: str, name: str) -> str:
        return "{{ RUNPOD_SECRET_" + name + " }}"

    def placeholder_url(self, app_name: str) -> str:
        return "https://<ENDPOINT_ID>.api.runpod.ai"


TARGET = RunPodTarget()
