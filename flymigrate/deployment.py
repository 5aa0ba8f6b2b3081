"""The Deployment: the whole of what will run on the target, decided once by the planner.

``plan`` prints it, ``apply`` renders and executes exactly it (``Target.render(dep)`` gives the files,
``Target.deploy`` the calls), ``compare`` prices it, the TUI shows it and ``verify`` checks it. Nothing
downstream decides a fact of the deployment again (issue 12: "a fact decided in two places will drift").

Pure: no I/O, no vendor SDK.

Weights layout (a decision): when the source is a Hugging Face repo and the app reads a Hugging Face cache
(``HF_HOME`` / ``HF_HUB_CACHE`` / a mount that *is* a cache dir), the files are laid out as that cache
(``hub/models--ORG--NAME/snapshots/<sha>/...`` + ``refs/main``). The app then runs unchanged: it still asks for
``ORG/NAME`` (so e.g. vLLM's served model name, which clients send, stays the same) and the Hub library finds
every file locally. Pointing a model env var at a flat copy instead would change that name and break clients.
Anything else is copied flat to where the app reads it.
"""

from __future__ import annotations

import math
import posixpath
import re
from dataclasses import replace

from .model import FlyApp, Plan, ScalingPlan
from .naming import slug
from .scan import apply_hits, find_in_text
from .servers import WeightsLookup, find_lookup, image_env

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # type checkers see the standard decorator
    from dataclasses import dataclass, field
else:  # start-up time: no exec per generated method (flymigrate/_dataclass.py)
    from ._dataclass import dataclass, field

DEFAULT_STARTUP_S = 1200  # model servers load tens of GB before they answer; 20 min like the research examples
HF_DEFAULT_HOME = "/root/.cache/huggingface"
# (ENTRYPOINT, CMD) of upstream images the corpus deploys as [build] image
KNOWN_IMAGE_COMMANDS: tuple[tuple[str, tuple[tuple[str, ...], tuple[str, ...]]], ...] = (
    ("ollama/ollama", (("/bin/ollama",), ("serve",))),
    ("vllm/vllm-openai", (("python3", "-m", "vllm.entrypoints.openai.api_server"), ())),
    ("ghcr.io/huggingface/text-generation-inference", (("text-generation-launcher",), ())),
)
# the command of an image Cog built (replicate/cog pkg/dockerfile generator: `WORKDIR /src`, `EXPOSE 5000`,
# `CMD ["python", "-m", "cog.server.http"]`, behind `ENTRYPOINT ["/sbin/tini", "--"]` in newer releases); its HTTP
# server answers GET /health-check
COG_COMMAND = ("python", "-m", "cog.server.http")
# names an app's own API key goes by (what its clients send as a Bearer token; what verify sends)
APP_KEY_NAMES = ("VLLM_API_KEY", "OPENAI_API_KEY", "API_KEY", "LLM_API_KEY", "INFERENCE_API_KEY")
PYTHON_IMAGE_HINTS = ("python", "pytorch", "vllm", "huggingface", "cog", "jupyter", "colab", "tensorflow")


@dataclass(frozen=True)
class WeightsLayout:
    kind: str  # hf-cache | flat | none
    mount_path: str | None  # where the volume is mounted in the container (the app's path)
    subdir: str  # path inside the destination (posix, no leading/trailing slash; "" = root)
    hf_repo: str | None = None  # ORG/NAME for hf-cache
    note: str = ""


@dataclass(frozen=True)
class DeployOptions:
    """What the user told both ``plan`` and ``apply`` about the deployment (everything else comes from the app).

    The same options give the same Deployment: ``plan --volume-id X`` shows exactly what ``apply --volume-id X``
    writes."""

    weights_from: str | None = None
    base_url: str | None = None
    volume_id: str | None = None
    datacenter: str | None = None
    bucket: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    image: str | None = None
    gpu_type: str | None = None  # the target's own GPU id, overriding the mapped one
    access: str | None = None  # "public" | "private"; None: as the app was on Fly (public *.fly.dev or private)
    weights_on_volume: bool = True  # False: the weights step does not run now (--skip weights), keep baked downloads
    keep_app_auth: bool = False  # keep the server's own API key check even where it collides with the platform's


@dataclass(frozen=True)
class Deployment:
    """The whole of what will run on the target. Built once (:func:`build_deployment`), read by everyone."""

    app_name: str
    slug: str
    target: str
    port: int
    health_path: str | None
    startup_timeout_s: int
    env: tuple[tuple[str, str], ...]  # the container's env (plain values; secrets are in secret_refs)
    secret_names: tuple[str, ...]
    secret_refs: tuple[tuple[str, str], ...]  # (name, how the target references it)
    gpu: str | None  # the target's GPU id; None = no GPU known (or CPU-only)
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
    command: tuple[str, ...] | None  # the argv the container starts (ENTRYPOINT + CMD, Docker's rules)
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
    # where each env value came from: (name, origin) - "fly.toml [env]", "weights", "platform", ...
    env_origins: tuple[tuple[str, str], ...] = ()
    build_args: tuple[tuple[str, str], ...] = ()
    weights_source: str | None = None
    url: str = ""  # the base URL clients will call (a marked placeholder until known)
    url_is_placeholder: bool = True
    auth_header: str | None = None  # the header clients must send, e.g. "Authorization: Bearer $RUNPOD_API_KEY"
    gpu_reason: str = ""
    gpu_label: str = ""
    # the app's own scripts (start.sh, entrypoints, [[files]] sources) as they will be written: (path, new text)
    script_rewrites: tuple[tuple[str, str], ...] = ()
    # every file apply will write, and the step that writes it: (path, "rewrite" | "write", step). Generated
    # files are relative to the output folder (--out, default the app folder), the rest to the app folder.
    files: tuple[tuple[str, str, str], ...] = ()
    dockerfile_path: str | None = None  # the Dockerfile apply writes, relative to the app folder
    # reachable without the platform's auth, as the app was on Fly at APP.fly.dev (decided by the planner)
    public: bool = False
    serves_http: bool = True  # fly.toml has an HTTP service (else the command runs as a worker, no endpoint)
    # environment reads clients must change: (old, new), e.g. the app key they sent as Bearer -> the platform's key
    client_env_renames: tuple[tuple[str, str], ...] = ()
    # the headers clients must send, each read from an env var by name: (header, value prefix, env var); decided by
    # the target (Target.client_auth); the base_urls step adds them where clients call the app (flymigrate.requestauth)
    client_auth: tuple[tuple[str, str, str], ...] = ()
    # the target cannot run this deployment as is: each entry says why and the fix (the plan shows BLOCKED)
    blockers: tuple[str, ...] = ()
    gpu_type_override: str | None = None  # DeployOptions.gpu_type: the target's GPU id the user asked for
    weights_size_bytes: int | None = None  # what the plan knows of the weights' size (an upper bound), for fit checks
    python_link: bool = False  # Modal: the image has only `python3`; link `python` to it (Modal starts `python`)
    # the server's own key check in Authorization is dropped (why; "" = kept): ``--api-key`` out of its argv
    # (rules.APP_KEY) and the env variables it would fall back to (``app_key_envs_dropped``) out of the worker
    app_auth_dropped: str = ""
    app_key_envs_dropped: tuple[str, ...] = ()

    def env_map(self) -> dict[str, str]:
        return dict(self.env)

    def to_json(self) -> dict[str, object]:
        """The Deployment as ``plan --format json`` carries it (schema flymigrate/plan/v2). Never a secret value."""
        sc = self.scaling
        return {
            "target": self.target,
            "app": self.app_name,
            "image": {"dockerfile": self.dockerfile_name, "dockerfile_is_generated": self.dockerfile_is_thin,
                      "registry_image": self.registry_image, "ref": self.image_ref,
                      "build_args": dict(self.build_args), "add_python": self.add_python},
            "command": list(self.command) if self.command else None,
            "port": self.port,
            "health_path": self.health_path,
            "startup_timeout_s": self.startup_timeout_s,
            "env": [{"name": k, "value": v, "origin": dict(self.env_origins).get(k, "fly.toml [env]")}
                    for k, v in self.env],
            "secrets": [{"name": n, "ref": r} for n, r in self.secret_refs],
            "weights": {"source": self.weights_source, "destination": self.weights_dest,
                        "layout": self.layout.kind, "mount_path": self.layout.mount_path,
                        "subdir": self.layout.subdir, "hf_repo": self.layout.hf_repo, "note": self.layout.note},
            "gpu": {"id": self.gpu, "count": self.gpu_count, "label": self.gpu_label, "why": self.gpu_reason},
            "resources": {"cpus": self.cpus, "memory_mb": self.memory_mb},
            "scaling": None if sc is None else {
                "min": sc.min, "max": sc.max, "idle_timeout_s": sc.idle_timeout_s,
                "max_concurrency": sc.max_concurrency, "target_concurrency": sc.target_concurrency,
                "config": {k: v for k, v in sc.config}},
            "region": self.region,
            "url": self.url,
            "url_is_placeholder": self.url_is_placeholder,
            "auth_header": self.auth_header,
            "public": self.public,
            "client_env_renames": [{"old": o, "new": n} for o, n in self.client_env_renames],
            "client_auth": [{"header": h, "prefix": p, "env": e} for h, p, e in self.client_auth],
            "blockers": list(self.blockers),
            "notes": list(self.notes),
            "files": [{"path": p, "action": a, "step": st} for p, a, st in self.files],
        }


# the name this object had before it became the planner's (kept for imports in tests and scripts)
ServiceSpec = Deployment


def hub_dir(env: dict[str, str]) -> str | None:
    for k in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_CACHE"):
        if env.get(k):
            return env[k].rstrip("/")
    if env.get("HF_HOME"):
        return env["HF_HOME"].rstrip("/") + "/hub"
    return None


def under(path: str, root: str) -> str | None:
    p = posixpath.normpath(path)
    r = posixpath.normpath(root)
    if p == r:
        return ""
    if p.startswith(r.rstrip("/") + "/"):
        return p[len(r.rstrip("/")) + 1:]
    return None


def weights_layout(app: FlyApp, plan: Plan, source_url: str | None, lookup: WeightsLookup | None = None
                   ) -> WeightsLayout:
    """Where the weights go on the volume and where the volume is mounted, so the server finds them where it
    looks (``lookup``, from :func:`flymigrate.servers.find_lookup`)."""
    mount = plan.weights.mount_path
    lk = lookup or WeightsLookup("unknown", "unknown", None, "")
    if source_url and source_url.startswith("hf://"):
        repo = source_url[5:].split("@", 1)[0].strip("/")
        model_dir = "models--" + repo.replace("/", "--")
        if lk.kind == "hf-cache" and lk.path:
            cache = lk.path
            if mount is not None and under(cache, mount) is not None:
                rel = under(cache, mount)
                return WeightsLayout("hf-cache", mount, "/".join(p for p in (rel, model_dir) if p), repo,
                                     f"laid out as the Hugging Face cache the server reads: {lk.how} "
                                     "(the app is unchanged)")
            # no volume there on Fly (the server downloaded at start): mount the volume at the cache. When the
            # cache is HF_HOME/hub, mount HF_HOME (the hub keeps its token and lock files beside it)
            home = cache[: -len("/hub")] if cache.endswith("/hub") and "download-dir" not in lk.how and \
                "hub-cache" not in lk.how else None
            new_mount = home or cache
            rel = under(cache, new_mount) or ""
            moved = f"; the Fly volume at {mount} is not mounted any more" if mount else ""
            return WeightsLayout("hf-cache", new_mount, "/".join(p for p in (rel, model_dir) if p), repo,
                                 f"laid out as the Hugging Face cache the server reads: {lk.how}; the volume is "
                                 f"mounted at {new_mount}{moved}")
        if lk.kind in ("dir", "file") and lk.path:
            folder = lk.path if lk.kind == "dir" else posixpath.dirname(lk.path)
            if mount is not None and under(folder, mount) is not None:
                return WeightsLayout("flat", mount, under(folder, mount) or "", repo,
                                     f"copied into {folder}, where the server reads it: {lk.how}")
            return WeightsLayout("flat", folder, "", repo,
                                 f"copied into {folder}, where the server reads it ({lk.how}); the volume is "
                                 f"mounted there")
        where = mount or HF_DEFAULT_HOME
        return WeightsLayout("flat", where, "", repo,
                             f"copied flat to {where}: flymigrate cannot tell where this app's server reads its "
                             "weights (no vLLM/TGI/ollama/llama.cpp command, no Hugging Face cache or model-folder "
                             "variable found); point the app at that folder")
    if mount is None and not source_url:
        return WeightsLayout("none", None, "")
    if mount is None:
        mount = lk.path if lk.kind in ("dir", "ollama") and lk.path else "/models"
    sub = ""
    for k, v in app.env:
        rel = under(v, mount) if v.startswith("/") else None
        if rel and k in ("MODEL_DIR", "MODELS_DIR", "MODEL_PATH", "MODELS_PATH", "WEIGHTS_DIR", "CHECKPOINT_DIR"):
            sub = rel
            break
    return WeightsLayout("flat", mount, sub, None, f"copied to {posixpath.join(mount, sub) if sub else mount}"
                         + (f" ({lk.how})" if lk.how else ""))


def fill_destination(url: str | None, opts: DeployOptions) -> str | None:
    if url is None:
        return None
    if "<VOLUME_ID>" in url and opts.volume_id:
        url = url.replace("<VOLUME_ID>", opts.volume_id)
    if "<BUCKET>" in url and opts.bucket:
        url = url.replace("<BUCKET>", opts.bucket)
    return url


def rewrite_env_urls(value: str, app_name: str | None, new_base: str | None) -> str:
    """An [env] value with this app's Fly URLs pointed at the new base: the same hits and the same rewrite as
    client files (never a plain ``str.replace``: ``admin-APP.fly.dev`` is another host)."""
    if not new_base:
        return value
    hits, _ = find_in_text(value, app_name, "[env]")
    return apply_hits(value, [h for h in hits if h.kind != "fdaa"], new_base)


def server_command(df_text: str | None, image: str | None, *, thin_or_registry: bool,
                   image_builder: str | None = None) -> tuple[str, ...] | None:
    """The argv the container starts: the image's ENTRYPOINT + CMD by Docker's rules. An ENTRYPOINT the
    Dockerfile does not set is inherited from its base image (known for the upstream inference images); a CMD
    set in the Dockerfile replaces the base image's. An image Cog built starts Cog's server when nothing else
    says otherwise."""
    from .rewrite import effective_command

    ep, cmd = effective_command(df_text)
    base = image if thin_or_registry else _final_base(df_text)
    if base and ep is None:
        known = next((k for img, k in KNOWN_IMAGE_COMMANDS if base.startswith(img)), None)
        if known is not None:  # FROM <image> keeps its ENTRYPOINT, and its CMD unless the Dockerfile sets one
            ep = list(known[0])
            cmd = cmd if cmd is not None else list(known[1])
    argv = tuple((ep or []) + (cmd or [])) or None
    return COG_COMMAND if argv is None and image_builder == "cog" else argv


def _final_base(df_text: str | None) -> str | None:
    if not df_text:
        return None
    from .parse.dockerfile import parse_dockerfile_text

    images = parse_dockerfile_text(df_text, "Dockerfile").base_images()
    return images[-1] if images else None


def _dockerfile_env(df_text: str | None) -> dict[str, str]:
    """ENV of the final stage (``ENV K=V`` and ``ENV K V``), what the server inherits."""
    if not df_text:
        return {}
    import shlex

    from .parse.dockerfile import parse_dockerfile_text

    env: dict[str, str] = {}
    for ins in parse_dockerfile_text(df_text, "Dockerfile").instructions:
        if ins.keyword == "FROM":
            env = {}
        elif ins.keyword == "ENV":
            try:
                words = shlex.split(ins.args)
            except ValueError:
                continue
            if words and "=" not in words[0] and len(words) >= 2:
                env[words[0]] = " ".join(words[1:])
            else:
                env.update(w.split("=", 1) for w in words if "=" in w)
    return env


def _dockerfile_runs(df_text: str | None) -> list[str]:
    if not df_text:
        return []
    from .parse.dockerfile import parse_dockerfile_text

    return [ins.args for ins in parse_dockerfile_text(df_text, "Dockerfile").instructions if ins.keyword == "RUN"]


def build_deployment(plan: Plan, app: FlyApp, dockerfile_text: str | None, opts: DeployOptions,  # type: ignore[no-untyped-def]
                     *, target, scripts: dict[str, str] | None = None, dockerfile_path: str | None = None,
                     image_builder: str | None = None) -> Deployment:
    """Decide the deployment. ``target`` is the :class:`~flymigrate.targets.Target`; it adjusts what only it
    knows (reserved env names, its URL and auth, its region) in :meth:`finalize`."""
    from .rewrite import RewriteContext, fix_env_value, rewrite_dockerfile, rewrite_script, thin_dockerfile

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
    weights_source = opts.weights_from or (plan.weights.chosen.url if plan.weights.chosen else None)
    lookup_env = {**image_env(app.build.image or _final_base(dockerfile_text)), **_dockerfile_env(dockerfile_text),
                  **app.env_map}
    pre_cmd = server_command(dockerfile_text, app.build.image, thin_or_registry=bool(app.build.image),
                             image_builder=image_builder)
    if app.experimental_cmd or app.experimental_entrypoint or app.processes:
        from .rewrite import explicit_command_lines

        lines = explicit_command_lines(app)
        pre_cmd = server_command("FROM scratch\n" + "\n".join(lines) + "\n", None, thin_or_registry=False) or pre_cmd
    lookup = find_lookup(pre_cmd, scripts or {}, lookup_env, _dockerfile_runs(dockerfile_text))
    drop_auth, drop_envs = _app_auth_decision(app, plan, opts, target, dockerfile_text, pre_cmd, scripts or {})
    layout = weights_layout(app, plan, weights_source, lookup)
    notes: list[str] = []
    volume_root = f"{target.weights_mount_root}/{s}" if target.weights_mount_root else None
    if weights_source and not opts.weights_on_volume:
        notes.append("the weights step is skipped and has not run: weight downloads baked into the image are kept "
                     "(dropping them would leave an image without weights and an empty volume)")
    ctx = RewriteContext(app, target.name, s, drop_baked=bool(weights_source) and opts.weights_on_volume,
                         mount_path=layout.mount_path,
                         runpod_mount=volume_root, drop_app_auth=drop_auth)
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
    command = server_command(df_text, app.build.image, thin_or_registry=bool(app.build.image and (thin or reg)),
                             image_builder=image_builder)
    base_url = opts.base_url.rstrip("/") if opts.base_url else None
    # this app's Fly URLs in the texts flymigrate writes anyway, through the one rewriter
    if df_text is not None and base_url:
        df_text = rewrite_env_urls(df_text, app.app, base_url)
    script_rewrites: list[tuple[str, str]] = []
    sctx = RewriteContext(app, target.name, s, False, drop_app_auth=drop_auth)
    for rel, text in sorted((scripts or {}).items()):
        new = rewrite_env_urls(rewrite_script(text, sctx, rel), app.app, base_url)
        if new != text:
            script_rewrites.append((rel, new))
    notes += sctx.notes
    # env: [env] (IPv6 binds fixed, this app's Fly URLs rewritten once the new URL is known), then the weights
    env: dict[str, str] = {}
    origins: dict[str, str] = {}
    for k, v in app.env:
        env[k] = rewrite_env_urls(fix_env_value(v), app.app, base_url)
        origins[k] = "fly.toml [env]" + (" (rewritten)" if env[k] != v else "")
    for k, v in plan.weights.env:
        env[k] = v
        origins[k] = "weights (points the app at the mounted volume)"
    if layout.kind == "hf-cache" and plan.weights.mount_path is None and "HF_HOME" not in env \
            and hub_dir(env) is None:
        env["HF_HOME"] = layout.mount_path or HF_DEFAULT_HOME
        origins["HF_HOME"] = "weights (the volume is mounted at the Hugging Face cache)"
    refs = tuple((sp.name, sp.target_ref) for sp in plan.secrets if sp.name not in drop_envs)
    for k in drop_envs:
        env.pop(k, None)
        origins.pop(k, None)
    if opts.image:
        image_ref = opts.image
    elif reg and not reg.startswith("registry.fly.io/"):
        image_ref = reg
    else:
        image_ref = target.image_placeholder(s)
    gpu = plan.gpu.get("target_gpu") if plan.gpu and not plan.gpu.get("blocked") else None
    count = int(plan.gpu.get("count", 1)) if plan.gpu else 0  # type: ignore[call-overload]
    cpus = next((vm.cpus for vm in app.vms if vm.gpu is not None and vm.cpus), None) or \
        next((vm.cpus for vm in app.vms if vm.cpus), None)
    mem = next((vm.memory_mb for vm in app.vms if vm.gpu is not None and vm.memory_mb), None) or app.memory_mb
    dest = fill_destination(plan.weights.destination_url, opts)
    if dest is None and weights_source:
        dest = fill_destination(target.weights_destination(app_name), opts)
    url = base_url or target.placeholder_url(app_name)
    public = exposure(app, plan, opts)
    dep = Deployment(
        app_name=app_name, slug=s, target=target.name, port=port, health_path=health, startup_timeout_s=startup,
        env=tuple(sorted(env.items())), secret_names=tuple(sp.name for sp in plan.secrets
                                                          if sp.name not in drop_envs), secret_refs=refs,
        gpu=gpu, gpu_count=count, scaling=plan.scaling, layout=layout, weights_dest=dest, dockerfile_text=df_text,
        dockerfile_name=df_name, dockerfile_is_thin=thin, registry_image=reg, image_ref=image_ref,
        command=command, add_python=None, cpus=cpus, memory_mb=mem, region=opts.region,
        volume_name=None, bucket=opts.bucket, volume_id=opts.volume_id, datacenter=opts.datacenter,
        hf_offline=False, notes=tuple(dict.fromkeys(notes)), env_origins=tuple(sorted(origins.items())),
        build_args=app.build.args, weights_source=weights_source, url=url, url_is_placeholder=base_url is None,
        gpu_reason=str(plan.gpu.get("reason") or "") if plan.gpu else "",
        gpu_label=str(plan.gpu.get("target_label") or "") if plan.gpu else "",
        script_rewrites=tuple(script_rewrites), public=public, serves_http=app.primary_service is not None,
        dockerfile_path=(dockerfile_path or "Dockerfile") if df_text is not None else None,
        gpu_type_override=opts.gpu_type, weights_size_bytes=plan.weights.size_bytes,
        app_auth_dropped=drop_auth, app_key_envs_dropped=drop_envs,
    )
    dep = target.finalize(dep, app)
    dep = replace(dep, client_auth=tuple(target.client_auth(dep)))
    return replace(dep, files=tuple(planned_files(dep, plan, target, dockerfile_text, dockerfile_path)))


def _app_auth_decision(app: FlyApp, plan: Plan, opts: DeployOptions, target,  # type: ignore[no-untyped-def]
                       dockerfile_text: str | None, pre_cmd: tuple[str, ...] | None, scripts: dict[str, str]
                       ) -> tuple[str, tuple[str, ...]]:
    """(why the server's own key check goes, "" = it stays; the env variables kept out of the worker).

    It goes when the target's gateway takes its key in ``Authorization`` (``Target.app_auth_collision``), a
    key-checking server (vLLM, TGI) is started with ``--api-key`` or has its fallback variable set, and the user
    did not ask to keep it (``--keep-app-auth``). The fallback variable must go too, or the server would read it
    and check it again (vLLM ``api_server.py`` build_app: ``args.api_key or [envs.VLLM_API_KEY]``)."""
    from .rewrite import explicit_command_lines
    from .rules import APP_KEY, key_fallback_envs

    if opts.keep_app_auth:
        return "", ()
    reason = target.app_auth_collision(exposure(app, plan, opts))
    if not reason:
        return "", ()
    text = "\n".join([dockerfile_text or "", " ".join(pre_cmd or ()), app.build.image or "",
                      *explicit_command_lines(app), *scripts.values()])
    servers = key_fallback_envs(text)
    if not servers:
        return "", ()
    have = {k for k, _ in app.env} | {sp.name for sp in plan.secrets}
    envs = tuple(e for _s, e in servers if e in have)
    if not envs and not APP_KEY.detect(text):
        return "", ()
    return reason, envs


def planned_files(dep: Deployment, plan: Plan, target, original_dockerfile: str | None,  # type: ignore[no-untyped-def]
                  dockerfile_path: str | None) -> list[tuple[str, str, str]]:
    """Every file apply will write: the plan lists these, apply writes these and nothing else."""
    out: list[tuple[str, str, str]] = []
    if original_dockerfile is not None and dep.dockerfile_text is not None:
        if dep.dockerfile_text != original_dockerfile:
            out.append((dockerfile_path or "Dockerfile", "rewrite", "dockerfile"))
    elif dep.dockerfile_is_thin:
        out.append(("Dockerfile", "write", "dockerfile"))
    out += [(rel, "rewrite", "dockerfile") for rel, _ in dep.script_rewrites]
    done = {p for p, _, _ in out}
    if not dep.url_is_placeholder:
        for h in plan.base_urls:
            if h.kind != "fdaa" and h.path not in done:
                done.add(h.path)
                out.append((h.path, "rewrite", "base_urls"))
    df_rel = dep.dockerfile_path
    for g in target.render(dep, dockerfile_rel=df_rel, context_rel="." if df_rel else None):
        out.append((g.name, "write", g.step))
    return out


def exposure(app: FlyApp, plan: Plan, opts: DeployOptions) -> bool:
    """Public on the target when the app was public on Fly: an HTTP service whose clients call APP.fly.dev (or,
    with no client found, a service with ports, which fly deploy gives a public address). Private when its clients
    only used .flycast / .internal / fdaa: addresses. ``--access`` decides when given."""
    if opts.access:
        return opts.access == "public"
    svc = app.primary_service
    if svc is None:
        return False
    kinds = {h.kind for h in plan.base_urls}
    if kinds:
        return "fly.dev" in kinds
    return svc.origin == "http_service" or bool(svc.ports)


def env_has_placeholder(value: str) -> bool:
    return bool(re.search(r"<[A-Z_]+>", value))
