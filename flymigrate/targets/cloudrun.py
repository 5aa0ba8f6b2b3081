"""Google Cloud Run (GPU): a Knative ``service.yaml``, GCS via Cloud Storage FUSE, Secret Manager refs."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from ..deployment import Deployment
from ..gpus import FLY_GPU_KINDS
from ..model import Finding, FlyApp, ScalingPlan, Service
from ..naming import slug
from .base import BaseTarget, CostRow, GeneratedFile, TargetGpu, VerifySpec
from .common import _ver, image_facts, read_fly_scaling

CLOUDRUN_MAX_CONCURRENCY = 1000
L4 = "nvidia-l4"
PRO6000 = "nvidia-rtx-pro-6000"
GPU_VRAM_GB = {L4: 24, PRO6000: 96}
# Regions that offer each GPU to *services* (cloud.google.com/run/docs/configuring/services/gpu and
# .../workerpools/gpu, read 2026-11; research/destinations.md C.3). asia-south1 (L4) and asia-south2 (RTX PRO 6000)
# are by invitation only and never chosen.
GPU_REGIONS = {L4: ("us-central1", "us-east4", "europe-west1", "europe-west4", "asia-southeast1"),
               PRO6000: ("us-central1", "europe-west4", "asia-southeast1")}
# Fly region -> Cloud Run regions, nearest first; the first that offers the chosen GPU wins
_US_EAST = ("us-east4", "us-central1", "europe-west1", "europe-west4")
_US = ("us-central1", "us-east4", "europe-west4", "asia-southeast1")
_EU_W = ("europe-west1", "europe-west4", "us-east4", "us-central1")
_EU = ("europe-west4", "europe-west1", "us-east4", "us-central1")
_ASIA = ("asia-southeast1", "us-central1", "europe-west4")
_CLOUDRUN_REGION = {**{r: _US_EAST for r in ("iad", "ewr", "bos", "yyz", "atl", "mia", "yul")},
                    **{r: _US for r in ("ord", "dfw", "den", "sjc", "lax", "sea", "phx", "qro", "gru", "scl")},
                    **{r: _EU_W for r in ("cdg", "lhr", "mad")},
                    **{r: _EU for r in ("ams", "fra", "waw", "arn", "otp", "jnb")},
                    **{r: _ASIA for r in ("sin", "nrt", "hkg", "syd", "bom")}}
# GPU quota starts at zero in every project; the services use no zonal redundancy (service.yaml annotation), whose
# quota is "Total Nvidia L4 GPU allocation without zonal redundancy, per project per region" (Cloud Run Admin API;
# metric run.googleapis.com/nvidia_l4_gpu_allocation_no_zonal_redundancy) -
# cloud.google.com/run/docs/configuring/services/gpu-zonal-redundancy "Request quota".
GPU_QUOTA = {L4: "Total Nvidia L4 GPU allocation without zonal redundancy, per project per region",
             PRO6000: "the RTX PRO 6000 quota without zonal redundancy (IAM & Admin > Quotas, service Cloud Run Admin "
                      "API, filter \"RTX Pro 6000\"; its exact name was not verified)"}
# Startup probe limits for services: failureThreshold x periodSeconds <= 240 s and initialDelaySeconds <= 240 s,
# additive (Cloud Run Probe reference: "Maximum value for startup probe is 240" for periodSeconds and
# initialDelaySeconds; the services' default TCP probe is 240 s x 1; PolicyEngine/policyengine-api#3764 met the
# 240 s cap on services and widened the window with initialDelaySeconds). Jobs allow 600 s (1800 s with a GPU), not
# services (cloud.google.com/run/docs/configuring/jobs/healthchecks).
PROBE_WINDOW_MAX_S = 240
PROBE_INITIAL_DELAY_MAX_S = 240
PROBE_PERIOD_S = 10


# Cloud Run's GPUs (one per instance): https://cloud.google.com/run/docs/configuring/services/gpu
# (research/destinations.md C). (id, label, VRAM GB)
_L4 = ("nvidia-l4", "NVIDIA L4 24 GB", 24)
_RTX_PRO = ("nvidia-rtx-pro-6000", "NVIDIA RTX PRO 6000 Blackwell 96 GB (Preview for services)", 96)


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
    # a rewritten client of a private service sends an identity token in X-Serverless-Authorization (leaving
    # Authorization to the app's own key; Cloud Run checks X-Serverless-Authorization when both are present:
    # cloud.google.com/run/docs/authenticating/service-to-service, GoogleCloudPlatform/cloud-run-proxy PR #25), read
    # from CLOUD_RUN_ID_TOKEN, a name flymigrate chooses (Google defines none); tokens expire after an hour
    verify_spec = VerifySpec(
        client_headers=(("X-Serverless-Authorization", "Bearer ", "CLOUD_RUN_ID_TOKEN"),),
        client_auth_private=True,
        client_env_note="`export CLOUD_RUN_ID_TOKEN=$(gcloud auth print-identity-token)`; it expires after an "
                        "hour: a long-running client fetches one with google.oauth2.id_token.fetch_id_token",
        auth="identity-token",
        auth_hint="pass --id-token, log in with `gcloud auth login`, or grant your account roles/run.invoker on "
                  "the service")

    def map_gpu(self, kind: str, count: int) -> TargetGpu:
        fly_vram = FLY_GPU_KINDS[kind]
        if count > 1:
            return TargetGpu(self.name, None, "not offered", None, count, False, True,
                             f"Cloud Run offers one GPU per instance; this app used {count} x {kind}. "
                             "Run it on Modal or RunPod, or change the app to fit one GPU")
        if fly_vram <= 24:
            gid, label, vram = _L4
            return TargetGpu(self.name, gid, label, vram, 1, True, False,
                             "L4 has the same 24 GB of VRAM (Ada, sm_89)", (_RTX_PRO[0],))
        gid, label, vram = _RTX_PRO
        return TargetGpu(self.name, gid, label, vram, 1, True, False,
                         f"Cloud Run has no {fly_vram} GB GPU; the only one with enough VRAM is the RTX PRO 6000 "
                         "(96 GB, Preview for services, needs >= 20 vCPU / 80 GiB). nvidia-l4 (24 GB) is cheaper "
                         "if the model fits in 24 GB", (_L4[0],))

    def cost_rows(self, dep: Deployment, prices: Any) -> list[CostRow]:
        """The GPU plus the instance's vCPU and memory (instance-based billing is required with a GPU): the
        Deployment's cpus / memory (service.yaml's), raised to the GPU's minimum."""
        rows = super().cost_rows(dep, prices)
        if not rows[0].offered:
            return rows
        sec = self.price_section(prices)
        entry = self.gpu_price(sec, rows[0].price_id or "")
        host = sec["host"]
        notes = []
        if entry.get("host_included"):
            host_s = 0.0
            notes.append(f"price is a proxy: {entry['note']}")
        else:
            vcpu = max(int(entry.get("min_vcpu", 0)), int(dep.cpus or 0))
            mem = max(float(entry.get("min_memory_gib", 0)), (dep.memory_mb or 0) / 1024.0)
            host_s = vcpu * float(host["per_vcpu_s"]) + mem * float(host["per_gib_s"])
            notes.append(f"host: {vcpu} vCPU + {mem:g} GiB billed with the GPU (${host_s * 3600:.3f}/h; the "
                         f"deployment asks {dep.cpus or 'no'} vCPU / {(dep.memory_mb or 0) / 1024:g} GiB, the minimum "
                         f"for {rows[0].price_id} is {entry.get('min_vcpu')} vCPU / {entry.get('min_memory_gib')} GiB)")
        notes.append(sec["quota_note"])
        return [replace(rows[0], host_per_s=host_s, notes=tuple(notes))]

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
        if concurrency is None:  # no [http_service] at all (a service with no setting has Fly's default)
            concurrency = 4
            notes.append("no HTTP service on Fly -> containerConcurrency 4 (Cloud Run's default of 80 would "
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
            # the weights are already in the cache layout: no Hub calls, and huggingface_hub writes no
            # `.locks` / blobs beside them in offline mode (huggingface_hub file_download: local_files_only)
            add["HF_HUB_OFFLINE"] = "1"
            hf_offline = True
        dep = self.with_env(dep, add, "platform (Cloud Run: the weights are already on the mounted bucket)",
                            drop=("PORT",))
        notes = list(dep.notes)
        blockers: list[str] = []
        gpu, label, reason = choose_gpu(dep, app, blockers, notes)
        if gpu is None and dep.gpu and blockers:  # a GPU was needed and none can run the image
            label, reason = "none the image can run on (BLOCKED)", blockers[0]
        cuda = image_facts(dep.dockerfile_text, dep.registry_image).cuda
        if gpu == L4 and cuda and _ver(cuda) >= (13,):
            # the L4's driver is 535.x (CUDA 12.2); CUDA 13 needs the 580 driver the RTX PRO 6000 has
            # (cloud.google.com/run/docs/configuring/services/gpu "Supported GPU types")
            blockers.append(f"the image is built on CUDA {cuda} and the L4's driver (535, CUDA 12.2) cannot run "
                            f"CUDA 13: use a CUDA 12.x base (12.8 runs on both GPUs), or --gpu-type {PRO6000}")
        region = choose_region(dep.region, app.primary_region, gpu, blockers)
        if gpu:
            notes.append(f"GPU quota is zero by default: request \"{GPU_QUOTA[gpu]}\" in {region} before deploying")
        if dep.startup_timeout_s > PROBE_WINDOW_MAX_S + PROBE_INITIAL_DELAY_MAX_S:
            notes.append(f"Cloud Run gives a service at most {PROBE_WINDOW_MAX_S + PROBE_INITIAL_DELAY_MAX_S} s to pass "
                         f"its startup probe (initialDelaySeconds <= {PROBE_INITIAL_DELAY_MAX_S} + failureThreshold x "
                         f"periodSeconds <= {PROBE_WINDOW_MAX_S}); the app was given {dep.startup_timeout_s} s. "
                         "A model that loads slower is restarted: keep minScale >= 1 or load faster")
        auth = None if dep.public else (
            "X-Serverless-Authorization: Bearer $(gcloud auth print-identity-token) (the service is private; "
            "Authorization stays for the app's own key)")
        return replace(dep, hf_offline=hf_offline, region=region, gpu=gpu, gpu_label=label or dep.gpu_label,
                       gpu_reason=reason or dep.gpu_reason, blockers=tuple(dep.blockers) + tuple(blockers),
                       notes=tuple(dict.fromkeys(notes)), auth_header=auth)

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
        return ("Reference each secret from Secret Manager (secretKeyRef) in service.yaml; `apply --deploy` creates "
                "them with gcloud (values on stdin); create-secrets.sh does the same by hand, from the export or a folder")

    def secrets_manual(self, dep: Deployment) -> list[str]:
        from .cloudrun_files import secret_id

        return [f"{n} -> Secret Manager secret {secret_id(dep, n)!r}" for n in dep.secret_names]

    def secrets_apply(self, ctx: Any, preview: Any) -> str:
        return ctx.write_files(preview)

    def deploy_commands(self, dep: Deployment) -> list[str]:
        cmds = [" ".join(self._deploy_argv(dep))]
        if dep.secret_names:
            cmds.insert(0, "./create-secrets.sh < EXPORT   (or: ./create-secrets.sh DIR, one file per secret)")
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
        if ctx.dep.blockers:
            from ..errors import UserError

            raise UserError("Cloud Run cannot run this deployment as planned: " + " ".join(ctx.dep.blockers))
        _create_secrets(ctx)
        ctx.run_command(self._deploy_argv(ctx.dep))
        url = ctx.run_command(["gcloud", "run", "services", "describe", ctx.dep.slug, "--region",
                               ctx.dep.region or "us-central1", "--format", "value(status.url)"]).strip()
        return url or None


def gcloud_secret_commands(secret: str, exists: bool) -> list[str]:
    """The gcloud argv that stores a new version of ``secret`` from stdin (the value is never in argv)."""
    if exists:
        return ["gcloud", "secrets", "versions", "add", secret, "--data-file=-"]
    return ["gcloud", "secrets", "create", secret, "--replication-policy=automatic", "--data-file=-"]


def create_secrets(values: dict[str, str], ids: dict[str, str], *, cwd: Any = None) -> list[str]:
    """Create or update each Secret Manager secret with gcloud, the value on its stdin as exact UTF-8 bytes - the
    string flymigrate's own parser (parse/secrets.py) read, so multi-line values, quotes and a BOM-prefixed file
    arrive unchanged; no shell and no second parser in between. Returns the secret ids written."""
    import subprocess

    from ..errors import RemoteError, UserError
    from ..redact import scrub_values

    done = []
    for name, value in values.items():
        sid = ids[name]
        try:
            probe = subprocess.run(["gcloud", "secrets", "describe", sid], cwd=cwd, capture_output=True,
                                   stdin=subprocess.DEVNULL, check=False, timeout=120)
        except FileNotFoundError:
            raise UserError("`gcloud` is not on PATH: install the Google Cloud CLI and log in (`gcloud auth login`), "
                            "or create the secrets with ./create-secrets.sh DIR.") from None
        argv = gcloud_secret_commands(sid, probe.returncode == 0)
        proc = subprocess.run(argv, input=value.encode("utf-8"), cwd=cwd, capture_output=True, check=False,
                              timeout=600)
        if proc.returncode != 0:
            err = scrub_values(proc.stderr.decode("utf-8", "replace"), list(values.values()))
            raise RemoteError(f"`{' '.join(argv)}` failed (exit {proc.returncode}): {err[-500:]}")
        done.append(sid)
    return done


def _create_secrets(ctx: Any) -> None:
    """Create the service's secrets in Secret Manager (apply --deploy), values on gcloud's stdin."""
    from ..errors import UserError
    from .cloudrun_files import secret_id

    values, missing = ctx.secret_values()
    if not ctx.dep.secret_names:
        return
    if missing:
        raise UserError("cannot deploy: no value for " + ", ".join(missing) + " (the service references them).",
                        hint="Add them to a .env file passed with --secrets.")
    ids = {n: secret_id(ctx.dep, n) for n in ctx.dep.secret_names}
    ctx.emit("progress", "deploy", f"creating {len(ids)} Secret Manager secret(s) with gcloud (values on stdin)")
    create_secrets({k: v.reveal() for k, v in values.items() if k in ids}, ids, cwd=ctx.out_dir)


# ---- GPU choice: the model's size decides L4 vs RTX PRO 6000, the image's stack decides whether Blackwell can run it
_PARAMS_RE = re.compile(r"(?i)(?<![\d.])(\d+(?:\.\d+)?)\s*([bm])(?![a-z])")
_WHISPER_GB = {"tiny": 0.2, "base": 0.3, "small": 1.0, "medium": 3.1, "large": 3.1, "turbo": 1.6, "distil": 1.6}
L4_FIT_GB = 20.0  # weights up to ~20 GB leave vLLM's default 0.9 x 24 GB room for the KV cache and activations


def estimate_weights_gb(dep: Deployment) -> tuple[float | None, str]:
    """(GB of weights, how it was estimated): from the model name's parameter count, else the weights' size the plan
    knows when it is small enough to decide (it is the volume's size, an upper bound). None = cannot tell."""
    names = [n for n in (dep.layout.hf_repo, dep.weights_source, *(dep.command or ()), *dict(dep.env).values()) if n]
    for n in names:
        low = n.lower()
        if "whisper" in low:
            for k, gb in _WHISPER_GB.items():
                if k in low:
                    return gb, f"whisper {k} (~{gb} GB)"
        m = _PARAMS_RE.search(n.rsplit("/", 1)[-1])
        if m:
            params = float(m.group(1)) * (1e9 if m.group(2).lower() == "b" else 1e6)
            if params < 1e8:
                continue
            bpp = 0.55 if re.search(r"(?i)awq|gptq|int4|4bit|q4|nf4", low) else \
                1.05 if re.search(r"(?i)int8|8bit|fp8|q8", low) else 2.0
            gb = params * bpp / 1e9
            return gb, f"{m.group(0)} parameters in {n!r} at {bpp:g} byte(s) each (~{gb:.0f} GB)"
    if dep.weights_size_bytes and dep.weights_size_bytes / 1e9 <= L4_FIT_GB:
        gb = dep.weights_size_bytes / 1e9
        return gb, f"at most {gb:.1f} GB of weights (the volume's size)"
    return None, ""


def blackwell_stack(dep: Deployment) -> tuple[bool | None, str]:
    """Can the image run on Blackwell (sm_120; needs CUDA >= 12.8 builds)? (yes/no/unknown, why).

    Older stacks fail with "no kernel image is available for execution on the device" (vllm-project/vllm#20522,
    #18995, #14452): vLLM's CUDA 12.8 / Blackwell builds start with 0.9, PyTorch's with 2.7 (its first cu128 wheels),
    ollama's releases up to 0.5.7 predate CUDA 12.8 (ollama/ollama#8521)."""
    f = image_facts(dep.dockerfile_text, dep.registry_image)
    v = f.version
    checks = (("vllm", (0, 9), "vLLM"), ("torch", (2, 7), "torch"), ("ollama", (0, 5, 8), "ollama"),
              ("sglang", (0, 4, 6), "SGLang"))
    for pkg, need, name in checks:
        have = v(pkg)
        if have:
            if _ver(have) < need:
                return False, f"{name} {have} (Blackwell builds from {'.'.join(map(str, need))})"
            return True, f"{name} {have}"
    if f.cuda:
        if _ver(f.cuda) < (12, 8):
            return False, f"a CUDA {f.cuda} base ({f.base}; Blackwell needs CUDA >= 12.8)"
        return True, f"a CUDA {f.cuda} base"
    base = (f.base or "").lower()
    if re.search(r"(vllm/vllm-openai|ollama/ollama)(:latest)?$", base):
        return True, f"{f.base} (unpinned: current releases support Blackwell; pin a version)"
    return None, f"the image ({f.base or 'unknown'}) pins no vLLM / torch / ollama / CUDA version flymigrate can read"


def choose_gpu(dep: Deployment, app: FlyApp, blockers: list[str], notes: list[str]) -> tuple[str | None, str, str]:
    """The Cloud Run GPU for this deployment: (id, label, why). Appends to ``blockers`` what makes it unrunnable."""
    fix = ("use an image built for CUDA >= 12.8 (vllm/vllm-openai >= 0.9, torch >= 2.7, a recent ollama, an "
           "nvidia/cuda:12.8+ base), or deploy to Modal / RunPod, which offer the GPU the app had")
    if dep.gpu_type_override:
        g = dep.gpu_type_override
        if g not in GPU_VRAM_GB:
            blockers.append(f"--gpu-type {g!r} is not a Cloud Run GPU; use one of {', '.join(GPU_VRAM_GB)}")
            return None, "", ""
        if g == PRO6000:
            ok, why = blackwell_stack(dep)
            if ok is False:
                blockers.append(f"--gpu-type {PRO6000} is Blackwell (sm_120) and the image cannot run on it: {why}. "
                                f"Fix: {fix}")
        return g, _label(g), "chosen with --gpu-type"
    if not dep.gpu:  # no GPU, or the planner already blocked it (e.g. 2 GPUs)
        return dep.gpu, "", ""
    gb, how = estimate_weights_gb(dep)
    fly_vram = next((FLY_GPU_KINDS.get(vm.gpu.kind or "", 0) for vm in app.vms if vm.gpu is not None), 0)
    if fly_vram and fly_vram <= 24:
        return L4, _label(L4), f"the app ran on a {fly_vram} GB GPU on Fly; the L4 has 24 GB (Ada, sm_89)"
    if gb is not None and gb <= L4_FIT_GB:
        return L4, _label(L4), f"the model fits in the L4's 24 GB: {how}"
    ok, why = blackwell_stack(dep)
    size = how if gb is not None else "flymigrate cannot tell the model's size (no weights size, no parameter count " \
        "in the model name)"
    if ok:
        return PRO6000, _label(PRO6000), f"{size}; the only larger GPU is the RTX PRO 6000 (Blackwell), and the " \
            f"image supports it: {why}"
    if ok is False:
        blockers.append(f"Cloud Run's only GPU above 24 GB is the RTX PRO 6000 (Blackwell, sm_120), and the image "
                        f"cannot run on it: {why}. {size}. Fix: {fix}" +
                        ("; or pass --gpu-type nvidia-l4 if the model fits in 24 GB" if gb is None else ""))
    else:
        blockers.append(f"Cloud Run's only GPU above 24 GB is the RTX PRO 6000 (Blackwell, sm_120, CUDA >= 12.8), and "
                        f"{why}. {size}. Pass --gpu-type {PRO6000} if the image is built for CUDA >= 12.8, "
                        f"--gpu-type {L4} if the model fits in 24 GB, or {fix}")
    return None, "", ""


def _label(g: str) -> str:
    return {L4: "NVIDIA L4 24 GB (Ada, sm_89)", PRO6000: "NVIDIA RTX PRO 6000 Blackwell 96 GB (sm_120; Preview for "
            "services, >= 20 vCPU / 80 GiB)"}[g]


def choose_region(asked: str | None, fly_region: str | None, gpu: str | None, blockers: list[str]) -> str:
    if asked:
        if gpu and asked not in GPU_REGIONS[gpu]:
            blockers.append(f"region {asked} does not offer {gpu} to Cloud Run services; use one of "
                            f"{', '.join(GPU_REGIONS[gpu])} (--region)")
        return asked
    prefs = _CLOUDRUN_REGION.get((fly_region or "").lower(), _US)
    if gpu:
        return next(r for r in prefs + GPU_REGIONS[gpu] if r in GPU_REGIONS[gpu])
    return prefs[0]


TARGET = CloudRunTarget()
