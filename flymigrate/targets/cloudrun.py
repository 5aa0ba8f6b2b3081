"""Google Cloud Run (GPU): a Knative ``service.yaml``, GCS via Cloud Storage FUSE, Secret Manager refs."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..deployment import Deployment
from ..gpus import TargetGpu, map_gpu
from ..model import Finding, FlyApp, ScalingPlan, Service
from ..naming import slug
from .base import BaseTarget, GeneratedFile, VerifySpec
from .common import read_fly_scaling

CLOUDRUN_MAX_CONCURRENCY = 1000
# Fly region -> nearest Cloud Run GPU region (L4 regions, research/destinations.md C.3)
_CLOUDRUN_REGION = {"ord": "us-central1", "iad": "us-east4", "ewr": "us-east4", "bos": "us-east4", "dfw": "us-central1",
                    "sjc": "us-central1", "lax": "us-central1", "sea": "us-central1", "ams": "europe-west4",
                    "fra": "europe-west4", "cdg": "europe-west1", "lhr": "europe-west1", "sin": "asia-southeast1"}


class CloudRunTarget(BaseTarget):
    name = "cloudrun"
    label = "Google Cloud Run"
    short_label = "Cloud Run"
    config_language = "yaml"
    cpu_form = "a plain Cloud Run service (no GPU annotation)"
    compare_row = "cloudrun"
    weights_fields = ("from", "bucket")
    blurb = "Knative services on Google Cloud with one GPU per instance; Cloud Storage for weights"
    weights_mount_root = None
    # private services need an identity token; X-Serverless-Authorization carries it and leaves Authorization to
    # the app (cloud.google.com/run/docs/authenticating/service-to-service)
    verify_spec = VerifySpec(
        auth="identity-token",
        auth_hint="pass --id-token, log in with `gcloud auth login`, or grant your account roles/run.invoker on "
                  "the service")

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

    def image_placeholder(self, s: str) -> str:
        return f"<REGION>-docker.pkg.dev/<PROJECT>/<REPOSITORY>/{s}:latest"

    # ---- the deployment
    def finalize(self, dep: Deployment, app: FlyApp) -> Deployment:
        # PORT is reserved: Cloud Run sets it to containerPort
        add: dict[str, str] = {}
        hf_offline = False
        if dep.layout.kind == "hf-cache" and "HF_HUB_OFFLINE" not in dict(dep.env):
            add["HF_HUB_OFFLINE"] = "1"
            hf_offline = True
        dep = self.with_env(dep, add, "platform (Cloud Run: weights are on a read-only mount)", drop=("PORT",))
        region = dep.region or _CLOUDRUN_REGION.get((app.primary_region or "").lower(), "us-central1")
        return replace(dep, hf_offline=hf_offline, region=region)

    def render(self, dep: Deployment, *, dockerfile_rel: str | None = None,
               context_rel: str | None = None) -> list[GeneratedFile]:
        from .cloudrun_files import render_create_secrets, render_service_yaml

        out = [GeneratedFile("service.yaml", render_service_yaml(dep))]
        if dep.secret_names:
            out.append(GeneratedFile("create-secrets.sh", render_create_secrets(dep), 0o755, "secrets"))
        return out

    def plan_notes(self, dep: Deployment) -> dict[str, list[str]]:
        return {"dockerfile": [f"Cloud Run sends the port in PORT; the service is configured with containerPort "
                               f"{dep.port} so the server keeps its port"]}

    def weights_needs(self) -> list[str]:
        return ["a GCS bucket name (--bucket; replaces <BUCKET>) and Application Default Credentials"]

    def weights_option_hint(self) -> str:
        return "--bucket NAME (the GCS bucket for the weights)"

    def secrets_summary(self, dep: Deployment, n_values: int) -> str:
        return ("Reference each secret from Secret Manager (secretKeyRef) in service.yaml and write "
                "create-secrets.sh, which creates them reading the values from the export on stdin")

    def secrets_manual(self, dep: Deployment) -> list[str]:
        from .cloudrun_files import secret_id

        return [f"{n} -> Secret Manager secret {secret_id(dep, n)!r}" for n in dep.secret_names]

    def secrets_apply(self, ctx: Any, preview: Any) -> str:
        return ctx.write_files(preview)

    def deploy_commands(self, dep: Deployment) -> list[str]:
        cmds = [" ".join(self._deploy_argv(dep))]
        if dep.secret_names:
            cmds.insert(0, "./create-secrets.sh < (the export's values, on stdin)")
        return cmds

    @staticmethod
    def _deploy_argv(dep: Deployment) -> list[str]:
        return ["gcloud", "run", "services", "replace", "service.yaml", "--region", dep.region or "us-central1"]

    def credentials(self, step: str) -> tuple[str, ...]:
        return ("gcloud on PATH, logged in (`gcloud auth login`) with a default project",) if step == "deploy" else ()

    def credentials_missing(self, step: str, env: dict[str, str]) -> str | None:
        import shutil

        if step == "deploy" and shutil.which("gcloud", path=env.get("PATH")) is None:
            return "gcloud is not on PATH; install the Google Cloud SDK and log in (`gcloud auth login`)."
        return None

    def deploy(self, ctx: Any) -> str | None:
        _create_secrets(ctx)
        ctx.run_command(self._deploy_argv(ctx.dep))
        url = ctx.run_command(["gcloud", "run", "services", "describe", ctx.dep.slug, "--region",
                               ctx.dep.region or "us-central1", "--format", "value(status.url)"]).strip()
        return url or None


def _create_secrets(ctx: Any) -> None:
    """Run create-secrets.sh, feeding NAME=VALUE lines on its stdin (a pipe: values never touch argv)."""
    import subprocess

    from ..errors import RemoteError, UserError
    from ..redact import scrub_values

    values, missing = ctx.secret_values()
    script = ctx.out_dir / "create-secrets.sh"
    if not values or not script.exists():
        return
    if missing:
        raise UserError("cannot deploy: no value for " + ", ".join(missing) + " (the service references them).",
                        hint="Add them to a .env file passed with --secrets.")
    lines = []
    for k, v in values.items():
        raw = v.reveal()
        if "\n" in raw:
            raise UserError(f"the value of {k} spans lines; create it yourself: gcloud secrets create ... "
                            "--data-file=FILE, then re-run.")
        lines.append(f"{k}={raw}")
    ctx.emit("progress", "deploy", "running: ./create-secrets.sh < (the export's values, on stdin)")
    proc = subprocess.run(["bash", str(script)], input="\n".join(lines) + "\n", cwd=ctx.out_dir,
                          capture_output=True, check=False, text=True, timeout=600)
    if proc.returncode != 0:
        raise RemoteError(f"create-secrets.sh failed (exit {proc.returncode}): "
                          f"{scrub_values(proc.stderr, [v.reveal() for v in values.values()])}")


TARGET = CloudRunTarget()
