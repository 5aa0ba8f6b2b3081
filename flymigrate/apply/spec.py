"""Plan + inputs + options -> one neutral :class:`ServiceSpec` the target file renderers read. Pure.

Weights layout (a decision): when the source is a Hugging
Face repo and the app reads a Hugging Face cache (``HF_HOME`` / ``HF_HUB_CACHE`` / a mount that *is* a cache
dir), the files are laid out as that cache (``hub/models--ORG--NAME/snapshots/<sha>/...`` + ``refs/main``).
The app then runs unchanged: it still asks for ``ORG/NAME`` (so e.g. vLLM's served model name, which clients send,
stays the same) and the Hub library finds every file locally. Pointing a model env var at a flat copy instead
would change that name and break clients. Anything else is copied flat to where the app reads it.
"""

from __future__ import annotations

import math
import posixpath
import re
from dataclasses import dataclass, field

from ..model import FlyApp, Plan, ScalingPlan
from ..scan import find_in_text, rewrite_url
from ..targets.modal import slug
from .rewrite import RewriteContext, effective_command, fix_env_value, rewrite_dockerfile, thin_dockerfile

DEFAULT_STARTUP_S = 1200  # model servers load tens of GB before they answer; 20 min like the research examples
HF_DEFAULT_HOME = "/root/.cache/huggingface"
# (ENTRYPOINT, CMD) of upstream images the corpus deploys as [build] image
KNOWN_IMAGE_COMMANDS: tuple[tuple[str, tuple[tuple[str, ...], tuple[str, ...]]], ...] = (
    ("ollama/ollama", (("/bin/ollama",), ("serve",))),
    ("vllm/vllm-openai", (("python3", "-m", "vllm.entrypoints.openai.api_server"), ())),
    ("ghcr.io/huggingface/text-generation-inference", (("text-generation-launcher",), ())),
)
PYTHON_IMAGE_HINTS = ("python", "pytorch", "vllm", "huggingface", "cog", "jupyter", "colab", "tensorflow")


@dataclass(frozen=True)
class WeightsLayout:
    kind: str  # hf-cache | flat | none
    mount_path: str | None  # where the volume is mounted in the container (the app's path)
    subdir: str  # path inside the destination (posix, no leading/trailing slash; "" = root)
    hf_repo: str | None = None  # ORG/NAME for hf-cache
    note: str = ""


@dataclass(frozen=True)
class ApplyOptions:
    """What ``flymigrate apply`` was asked to do (everything but the plan)."""

    target: str
    yes: bool = False
    dry_run: bool = False
    only: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    weights_from: str | None = None
    base_url: str | None = None
    out_dir: str | None = None  # where generated files go (default: the app folder)
    deploy: bool = False
    volume_id: str | None = None
    datacenter: str | None = None
    bucket: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    image: str | None = None
    state_dir: str | None = None  # transfer journals (default: the global state dir)


@dataclass(frozen=True)
class ServiceSpec:
    app_name: str
    slug: str
    target: str
    port: int
    health_path: str | None
    startup_timeout_s: int
    env: tuple[tuple[str, str], ...]
    secret_names: tuple[str, ...]
    secret_refs: tuple[tuple[str, str], ...]
    gpu: str | None
    gpu_count: int
    scaling: ScalingPlan | None
    layout: WeightsLayout
    weights_dest: str | None  # transfer URL of the destination root (placeholders filled when known)
    # image
    dockerfile_text: str | None  # the rewritten (or thin) Dockerfile, None when the registry image is used as is
    dockerfile_name: str | None  # its file name next to the app (Dockerfile or Dockerfile.flymigrate)
    dockerfile_is_thin: bool
    registry_image: str | None
    image_ref: str  # what Cloud Run / RunPod pull (placeholder when it must be built and pushed)
    command: tuple[str, ...] | None  # the server command (Modal launches it in @modal.web_server)
    add_python: str | None
    cpus: int | None
    memory_mb: int | None
    region: str | None
    volume_name: str | None  # Modal volume
    bucket: str | None
    volume_id: str | None
    datacenter: str | None
    hf_offline: bool
    notes: tuple[str, ...] = field(default_factory=tuple)


def hub_dir(env: dict[str, str]) -> str | None:
    for k in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_CACHE"):
        if env.get(k):
            return env[k].rstrip("/")
    if env.get("HF_HOME"):
        return env["HF_HOME"].rstrip("/") + "/hub"
    return None


def _under(path: str, root: str) -> str | None:
    p = posixpath.normpath(path)
    r = posixpath.normpath(root)
    if p == r:
        return ""
    if p.startswith(r.rstrip("/") + "/"):
        return p[len(r.rstrip("/")) + 1:]
    return None


def weights_layout(app: FlyApp, plan: Plan, source_url: str | None) -> WeightsLayout:
    env = app.env_map
    mount = plan.weights.mount_path
    if source_url and source_url.startswith("hf://"):
        repo = source_url[5:].split("@", 1)[0].strip("/")
        hub = hub_dir(env)
        if mount is None:
            # no Fly volume: the app downloaded into its default cache at start; mount the volume there
            home = env.get("HF_HOME", HF_DEFAULT_HOME).rstrip("/")
            mount = home
            hub = hub or home + "/hub"
        elif hub is None and ("huggingface" in mount or mount.rstrip("/").endswith("/hub")):
            hub = mount.rstrip("/") if mount.rstrip("/").endswith("/hub") else mount.rstrip("/") + "/hub"
        rel = _under(hub, mount) if hub else None
        if rel is not None:
            sub = "/".join(p for p in (rel, "models--" + repo.replace("/", "--")) if p)
            return WeightsLayout("hf-cache", mount, sub, repo,
                                 f"laid out as the Hugging Face cache under {hub} (the app is unchanged)")
        return WeightsLayout("flat", mount, "", repo, f"copied flat to {mount}: point the app at that folder")
    if mount is None and not source_url:
        return WeightsLayout("none", None, "")
    if mount is None:
        mount = "/models"
    sub = ""
    for k, v in app.env:
        rel = _under(v, mount) if v.startswith("/") else None
        if rel and k in ("MODEL_DIR", "MODELS_DIR", "MODEL_PATH", "MODELS_PATH", "WEIGHTS_DIR", "CHECKPOINT_DIR"):
            sub = rel
            break
    return WeightsLayout("flat", mount, sub, None, f"copied to {posixpath.join(mount, sub) if sub else mount}")


def fill_destination(url: str | None, opts: ApplyOptions) -> str | None:
    if url is None:
        return None
    if "<VOLUME_ID>" in url and opts.volume_id:
        url = url.replace("<VOLUME_ID>", opts.volume_id)
    if "<BUCKET>" in url and opts.bucket:
        url = url.replace("<BUCKET>", opts.bucket)
    return url


def _rewrite_env_urls(value: str, app_name: str | None, new_base: str | None) -> str:
    if not new_base:
        return value
    hits, _ = find_in_text(value, app_name, "[env]")
    for h in sorted((h for h in hits if h.kind != "fdaa"), key=lambda h: -len(h.old)):
        value = value.replace(h.old, rewrite_url(h.old, new_base))
    return value


def build_spec(plan: Plan, app: FlyApp, dockerfile_text: str | None, opts: ApplyOptions,
               *, weights_source: str | None, base_url: str | None) -> ServiceSpec:
    target = plan.target
    app_name = app.app or "app"
    s = slug(app_name)
    svc = app.primary_service
    port = svc.internal_port if svc and svc.internal_port else int(app.env_map.get("PORT", "8080") or 8080)
    health = None
    grace = 0.0
    if svc:
        for c in svc.checks:
            if c.type == "http" and c.path and health is None:
                health = c.path
            grace = max(grace, c.grace_period_s or 0)
    startup = max(DEFAULT_STARTUP_S, math.ceil(grace))
    layout = weights_layout(app, plan, weights_source)
    notes: list[str] = []
    runpod_mount = f"/runpod-volume/{s}" if target == "runpod" else None
    ctx = RewriteContext(app, target, s, drop_baked=bool(weights_source), mount_path=layout.mount_path,
                         runpod_mount=runpod_mount)
    uses_gpu = plan.gpu is not None
    df_text = None
    df_name = None
    thin = False
    reg = None
    if dockerfile_text is not None:
        df_text = rewrite_dockerfile(dockerfile_text, ctx, uses_gpu=uses_gpu)
        df_name = "Dockerfile"
    elif app.build.image:
        t = thin_dockerfile(app.build.image, ctx)
        if t is not None:
            df_text, df_name, thin = t, "Dockerfile", True
        else:
            reg = app.build.image
    notes += ctx.notes
    # the command the server runs (Modal starts it itself): the image's ENTRYPOINT + CMD, Docker's rules
    ep, cmd = effective_command(df_text)
    if app.build.image and (thin or reg is not None):
        known = next((k for img, k in KNOWN_IMAGE_COMMANDS if app.build.image.startswith(img)), None)
        if known is not None and ep is None:  # FROM <image> keeps its ENTRYPOINT, and its CMD unless we set one
            ep = list(known[0])
            cmd = cmd if cmd is not None else list(known[1])
    command = tuple((ep or []) + (cmd or [])) or None
    # env: [env], IPv6 binds fixed, weights re-pointed, Fly URLs rewritten once the new URL is known
    env: dict[str, str] = {}
    for k, v in app.env:
        env[k] = _rewrite_env_urls(fix_env_value(v), app.app, base_url)
    for k, v in plan.weights.env:
        env[k] = v
    if target == "runpod":
        env["PORT"] = str(port)
        env["PORT_HEALTH"] = str(port)
    if target == "cloudrun":
        env.pop("PORT", None)  # reserved: Cloud Run sets it to containerPort
    hf_offline = False
    if target == "cloudrun" and layout.kind == "hf-cache":
        env.setdefault("HF_HUB_OFFLINE", "1")
        hf_offline = True
    if layout.kind == "hf-cache" and plan.weights.mount_path is None and "HF_HOME" not in env:
        env["HF_HOME"] = layout.mount_path or HF_DEFAULT_HOME
    secret_names = tuple(sp.name for sp in plan.secrets)
    refs = tuple((sp.name, sp.target_ref) for sp in plan.secrets)
    # image reference for platforms that pull a pushed image
    if opts.image:
        image_ref = opts.image
    elif reg and not reg.startswith("registry.fly.io/"):
        image_ref = reg
    elif target == "cloudrun":
        image_ref = f"<REGION>-docker.pkg.dev/<PROJECT>/<REPOSITORY>/{s}:latest"
    else:
        image_ref = f"<REGISTRY>/{s}:latest"
    # Python for Modal's runtime
    add_python = None
    if target == "modal":
        text = (df_text or "") + " " + (reg or "")
        if not any(h in text.lower() for h in PYTHON_IMAGE_HINTS):
            add_python = "3.11"
    gpu = plan.gpu.get("target_gpu") if plan.gpu and not plan.gpu.get("blocked") else None
    count = int(plan.gpu.get("count", 1)) if plan.gpu else 0
    cpus = next((vm.cpus for vm in app.vms if vm.cpus), None)
    dest = fill_destination(plan.weights.destination_url, opts)
    if dest is None and weights_source:
        from ..targets import get_target

        dest = fill_destination(get_target(target).weights_destination(app_name), opts)
    return ServiceSpec(
        app_name=app_name, slug=s, target=target, port=port, health_path=health, startup_timeout_s=startup,
        env=tuple(sorted(env.items())), secret_names=secret_names, secret_refs=refs, gpu=gpu, gpu_count=count,
        scaling=plan.scaling, layout=layout, weights_dest=dest, dockerfile_text=df_text, dockerfile_name=df_name,
        dockerfile_is_thin=thin, registry_image=reg, image_ref=image_ref,
        command=command, add_python=add_python, cpus=cpus, memory_mb=app.memory_mb,
        region=opts.region or _region_for(target, app.primary_region), volume_name=f"flymigrate-{s}-weights",
        bucket=opts.bucket, volume_id=opts.volume_id, datacenter=opts.datacenter, hf_offline=hf_offline,
        notes=tuple(dict.fromkeys(notes)),
    )


# Fly region -> nearest Cloud Run GPU region (L4 regions, research/destinations.md C.3)
_CLOUDRUN_REGION = {"ord": "us-central1", "iad": "us-east4", "ewr": "us-east4", "bos": "us-east4", "dfw": "us-central1",
                    "sjc": "us-central1", "lax": "us-central1", "sea": "us-central1", "ams": "europe-west4",
                    "fra": "europe-west4", "cdg": "europe-west1", "lhr": "europe-west1", "sin": "asia-southeast1"}


def _region_for(target: str, fly_region: str | None) -> str | None:
    if target == "cloudrun":
        return _CLOUDRUN_REGION.get((fly_region or "").lower(), "us-central1")
    return None


def env_has_placeholder(value: str) -> bool:
    return bool(re.search(r"<[A-Z_]+>", value))
