"""Google Cloud Run (GPU): a Knative ``service.yaml``, GCS via Cloud Storage FUSE, Secret Manager refs."""

from __future__ import annotations

from ..gpus import TargetGpu, map_gpu
from ..model import Finding, FlyApp, ScalingPlan, Service
from .common import read_fly_scaling
from .modal import slug

CLOUDRUN_MAX_CONCURRENCY = 1000


class CloudRunTarget:
    name = "cloudrun"
    label = "Google Cloud Run"
    weights_mount_root = None

    def map_gpu(self, kind: str, count: int) -> TargetGpu:
        return map_gpu("cloudrun", kind, count)

    def scaling(self, app: FlyApp, svc: Service | None, max_guess: int) -> tuple[ScalingPlan, list[Finding]]:
        fs, findings = read_fly_scaling(svc, max_guess)
        notes: list[str] = []
        mx = fs.max_guess
        mn = mx if fs.always_on else fs.min_running
        if fs.always_on:
            notes.append(f"auto_stop off -> minScale = maxScale = {mx} (billed always)")
        else:
            findings.append(Finding("warning", "idle-timeout-fixed", "Cloud Run's idle timeout is not configurable "
                                    "(about 10-15 minutes observed for GPU instances, billed while idle); Fly "
                                    "stopped idle machines after a few minutes.", fs.where, "scaling"))
        concurrency = fs.hard or fs.soft
        if concurrency and concurrency > CLOUDRUN_MAX_CONCURRENCY:
            findings.append(Finding("warning", "concurrency-cap", f"concurrency {concurrency} is above Cloud Run's "
                                    f"maximum of {CLOUDRUN_MAX_CONCURRENCY}; capped.", fs.concurrency_where,
                                    "scaling"))
            concurrency = CLOUDRUN_MAX_CONCURRENCY
        if concurrency is None:
            concurrency = 4
            notes.append("no concurrency limit on Fly -> containerConcurrency 4 (Cloud Run's default of 80 would "
                         "overload one GPU)")
        if fs.soft and fs.hard and fs.soft < fs.hard:
            findings.append(Finding("info", "soft-limit-dropped", f"soft_limit {fs.soft} has no Cloud Run "
                                    "equivalent (only a hard containerConcurrency); dropped.", fs.concurrency_where,
                                    "scaling"))
        if fs.suspend:
            findings.append(Finding("warning", "suspend", "auto_stop_machines = \"suspend\" has no Cloud Run "
                                    "equivalent; instances scale to zero normally.", fs.where, "scaling"))
        if fs.ctype == "connections":
            findings.append(Finding("warning", "connections-vs-requests", "Fly counted connections; Cloud Run's "
                                    "containerConcurrency counts requests.", fs.concurrency_where, "scaling"))
        config: list[tuple[str, object]] = [
            ("autoscaling.knative.dev/minScale", mn), ("autoscaling.knative.dev/maxScale", mx),
            ("containerConcurrency", concurrency), ("run.googleapis.com/cpu-throttling", False),
        ]
        return ScalingPlan(mn, mx, None, concurrency, None, tuple(config), tuple(notes)), findings

    def weights_destination(self, app_name: str) -> str:
        return f"gs://<BUCKET>/{slug(app_name)}/"

    def secret_ref(self, app_name: str, name: str) -> str:
        return f"secretKeyRef: {slug(app_name)}-{slug(name)}:latest"

    def placeholder_url(self, app_name: str) -> str:
        return f"https://{slug(app_name)}-<PROJECT_NUMBER>.<REGION>.run.app"


TARGET = CloudRunTarget()
