"""RunPod Serverless: a load-balancing endpoint (REST API v2), network volume, secrets through RunPod's secrets API.

Platform facts used here, with their sources (each checked against the stored copy):

* An HTTP server needs a **load-balancing** endpoint, called at ``https://<ENDPOINT_ID>.api.runpod.ai/<path>``
  with ``Authorization: Bearer <RunPod API key>`` (docs.runpod.io serverless/load-balancing/overview;
  runpod-workers/worker-load-balancing README). ``runpod.create_endpoint()`` (runpod-python 1.12,
  ``api/mutations/endpoints.py``) sends ``saveEndpoint`` without a type, i.e. a queue endpoint that never calls
  the server; so the deploy uses the REST API v2 (``POST /v2/serverless`` with ``type: LOAD_BALANCER``,
  ``PATCH /v2/serverless/{id}`` to change it; runpod/docs ``api-reference-v2/openapi.json``). REST v1
  (rest.runpod.io/v1) "is deprecated and will be retired on November 15, 2026" (runpod/docs
  ``api-reference-v2/migrate-from-v1.mdx``). See :mod:`.runpod_files` for the body.
* Workers answer ``GET /ping`` on ``PORT_HEALTH`` (200 ready / 204 initialising); limits: a request that finds no
  ready worker in ~2 min gets 400, processing is capped at ~5.5 min (524), payloads at 30 MB (same overview page,
  "Timeouts and limits"). See :mod:`.runpod_health` for the adapter that adds ``/ping``.
* Secrets: ``POST /v2/account/secrets {name, value}`` (409 when the name exists), ``GET
  /v2/account/secrets?name=`` and ``PATCH /v2/account/secrets/{id} {value}`` (docs.runpod.io
  api-reference-v2/account/create-a-secret and update-a-secret, "Last modified September 2026"); names match
  ``^[a-zA-Z_][a-zA-Z0-9_.\\-/]*$``, at most 191 characters, not starting with ``RUNPOD``; env values reference
  them as ``{{ RUNPOD_SECRET_<name> }}`` (docs.runpod.io pods/templates/secrets).
* GPU pools (runpod/flash ``core/resources/gpu.py`` ``GpuGroup`` / ``POOLS_TO_TYPES``, commit 757420db):
  AMPERE_16 = RTX A4000 / A4500 / RTX 4000 Ada / RTX 2000 Ada; AMPERE_24 = RTX A5000 / L4 / RTX 3090; ADA_24 =
  RTX 4090 only; ADA_32_PRO = RTX 5090; AMPERE_48 = A40 / RTX A6000; ADA_48_PRO = RTX 6000 Ada / L40 / L40S;
  AMPERE_80 = A100 80GB PCIe / SXM4; ADA_80_PRO = H100 PCIe / HBM3 / NVL; HOPPER_141 = H200; BLACKWELL_96 = RTX PRO
  6000 Blackwell; BLACKWELL_180 = B200. (The A4500 is in AMPERE_16, not AMPERE_24.)

The control-plane base URL is ``RUNPOD_API_BASE_URL`` (default ``https://api.runpod.io``, the variable the runpod
SDK and Flash read for the same host); tests point it at a loopback fake. HTTP is plain ``urllib``: no vendor SDK.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from typing import Any

from ..deployment import Deployment
from ..gpus import FLY_GPU_KINDS
from ..model import Finding, FlyApp, ScalingPlan, Service
from ..naming import slug
from .base import BaseTarget, CostRow, GeneratedFile, TargetGpu, VerifySpec, not_offered, section_row
from .common import FLY_IDLE_EQUIVALENT_S, read_fly_scaling

API_BASE_ENV = "RUNPOD_API_BASE_URL"
API_BASE_DEFAULT = "https://api.runpod.io"
AUTH_HEADER = "Authorization: Bearer $RUNPOD_API_KEY"
# load-balancing limits (docs.runpod.io serverless/load-balancing/overview, "Timeouts and limits")
LB_NO_WORKER_WAIT_S = 120
LB_PROCESSING_CAP_S = 330
LB_PAYLOAD_MB = 30
SECRET_NAME_MAX = 191
_SECRET_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.\-/]*$")
_APP_KEY_NAMES = re.compile(r"^(VLLM_API_KEY|API_KEY|OPENAI_API_KEY|API_TOKEN|AUTH_TOKEN|BEARER_TOKEN|ACCESS_TOKEN|"
                            r"SERVER_API_KEY|APP_API_KEY|SECRET_KEY_API|.*_API_KEYS?)$")
_VENDOR_KEY_PREFIX = ("HF_", "HUGGING", "AWS_", "OPENAI_ORG", "WANDB", "RUNPOD", "GOOGLE", "AZURE", "ANTHROPIC",
                      "COHERE", "MODAL", "FLY_")


def secret_name(app_name: str, name: str) -> str:
    """The RunPod secret holding this app's ``name``: namespaced per app, so another app's ``HF_TOKEN`` on the
    same account is never overwritten; valid for RunPod's name rule (never starts with ``RUNPOD``)."""
    full = f"flymigrate-{slug(app_name)}-{name}"
    if len(full) > SECRET_NAME_MAX or not _SECRET_NAME_RE.match(full):
        import hashlib  # start-up time: plan never needs it (OpenSSL loads with it)

        h = hashlib.sha256(full.encode()).hexdigest()[:8]
        full = f"flymigrate-{h}-" + re.sub(r"[^a-zA-Z0-9_.\-/]", "_", name)[: SECRET_NAME_MAX - 20]
    return full


# Fly kind -> (RunPod GPU pool id, label, VRAM GB, reason). Pools: research/users.md 4a, research/destinations.md.
_GPUS = {
    "a10": ("AMPERE_24", "RunPod pool AMPERE_24 (A5000 / L4 / 3090, 24 GB)", 24,
            "RunPod has no A10 pool; AMPERE_24 is the same architecture (sm_86) and VRAM"),
    "l40s": ("ADA_48_PRO", "RunPod pool ADA_48_PRO (L40S / L40 / RTX 6000 Ada, 48 GB)", 48, "same GPU family"),
    "a100-pcie-40gb": ("AMPERE_48", "RunPod pool AMPERE_48 (A40 / A6000, 48 GB)", 48,
                       "RunPod has no 40 GB pool; AMPERE_48 gives more VRAM on the same architecture at a lower "
                       "price. Pick AMPERE_80 (A100 80 GB) instead if the app relies on A100-only features "
                       "(NVLink, HBM bandwidth, MIG)"),
    "a100-sxm4-80gb": ("AMPERE_80", "RunPod pool AMPERE_80 (A100 80 GB PCIe / SXM)", 80, "same GPU"),
}
_ALTERNATIVES = {"a100-pcie-40gb": ("AMPERE_80",), "a10": ("ADA_24",)}
_MAX_GPUS_PER_WORKER = 8


class RunPodTarget(BaseTarget):
    name = "runpod"
    label = "RunPod Serverless"
    short_label = "RunPod"
    cpu_form = "a RunPod CPU endpoint (computeType CPU)"
    compare_row = "runpod-flex"
    weights_fields = ("from", "volume_id", "datacenter", "endpoint_url")
    blurb = "serverless GPU workers from a Docker image; network volumes for weights"
    weights_mount_root = "/runpod-volume"
    # load-balancing endpoints (docs.runpod.io/serverless/load-balancing/overview): Bearer RunPod API key; the
    # load balancer answers GET /ping (204 while a worker initialises, 200 ready) and 400 when no worker became
    # ready within its window; /v2/ID/run|runsync on api.runpod.ai is a queue endpoint, never an HTTP server
    verify_spec = VerifySpec(
        auth="platform-bearer", key_env=("RUNPOD_API_KEY",),
        auth_hint="set RUNPOD_API_KEY to an API key of the account that owns the endpoint",
        health_route="/ping", health_ready_status=200, no_worker_status=400,
        # every request to an LB endpoint carries the RunPod API key as Bearer (the docs' and the worker template's
        # curl: -H "Authorization: Bearer $RUNPOD_API_KEY"; docs.runpod.io/flash/apps/requests,
        # github.com/runpod-workers/worker-load-balancing README), public or not
        client_headers=(("Authorization", "Bearer ", "RUNPOD_API_KEY"),),
        client_env_note="an API key of the endpoint's account",
        wrong_url=("api.runpod.ai", "/v2/", "a RunPod queue endpoint (/run, /runsync): an HTTP server (vLLM, "
                   "ollama, ...) never serves a request there",
                   "Deploy it as a load-balancing endpoint and verify https://ENDPOINT_ID.api.runpod.ai "
                   "(docs.runpod.io/serverless/load-balancing/overview)."))

    def app_auth_collision(self, public: bool) -> str:
        # a load-balancing endpoint always wants the RunPod API key as the Bearer token (overview page above)
        return ("RunPod load-balancing endpoints take the caller's RunPod API key in `Authorization: Bearer ...`, "
                "the header the server checks its own key in; the RunPod key guards the endpoint")

    def map_gpu(self, kind: str, count: int) -> TargetGpu:
        gid, label, vram, reason = _GPUS[kind]
        if count > _MAX_GPUS_PER_WORKER:
            return TargetGpu(self.name, gid, label, vram, count, False, True,
                             f"RunPod workers have at most {_MAX_GPUS_PER_WORKER} GPUs")
        return TargetGpu(self.name, gid, label, vram, count, vram >= FLY_GPU_KINDS[kind], False, reason,
                         _ALTERNATIVES.get(kind, ()))

    def cost_rows(self, dep: Deployment, prices: Any) -> list[CostRow]:
        """Two rows: flex workers (scale to zero, the Deployment when workersMin = 0) and active workers (kept up
        at the cheaper active rate, the Deployment when workersMin >= 1; load above them runs on flex)."""
        flex_key, active_key = "runpod-flex", "runpod-active"
        if not dep.gpu:
            why = dep.gpu_reason or "no GPU to run this app on"
            return [not_offered(flex_key, f"{self.label} (flex)", "RunPod flex", why),
                    not_offered(active_key, f"{self.label} (active)", "RunPod active", why)]
        sec = self.price_section(prices)
        entry = self.gpu_price(sec, dep.gpu)
        flex, active = float(entry["flex_per_gpu_s"]), float(entry["active_per_gpu_s"])
        common = dict(price_id=dep.gpu, basis=entry.get("basis"), source=entry.get("source"))
        return [
            section_row(sec, key=flex_key, label=f"{sec['label']} (flex)", short_label="RunPod flex",
                        warm_per_gpu_s=active, ondemand_per_gpu_s=flex, modes=("scale-to-zero",),
                        deployed_when="scale-to-zero",
                        notes=("warm workers on RunPod are active workers: see the active row",
                               f"secrets: {sec['secrets_api_disagreement']}"), **common),
            section_row(sec, key=active_key, label=f"{sec['label']} (active)", short_label="RunPod active",
                        warm_per_gpu_s=active, ondemand_per_gpu_s=flex, modes=("warm",), min_warm=1,
                        deployed_when="warm",
                        notes=("workersMin active worker(s) billed 24/7 at the active rate; load above them runs "
                               "on flex workers",), **common),
        ]

    def scaling(self, app: FlyApp, svc: Service | None, max_guess: int) -> tuple[ScalingPlan, list[Finding]]:
        from .runpod_files import DEFAULT_REQUEST_COUNT

        fs, findings = read_fly_scaling(svc, max_guess)
        notes: list[str] = []
        mx = fs.max_guess
        if fs.always_on:
            mn = mx
            idle = None
            notes.append(f"auto_stop off -> workers.min = workers.max = {mx} (active workers, billed always at the "
                         "active rate)")
        else:
            mn = fs.min_running
            idle = FLY_IDLE_EQUIVALENT_S
            notes.append(f"auto_stop -> workers.idleTimeout = {idle} s (RunPod's console default is 5 s: cheaper, "
                         "but almost every request after a pause would be a cold start)")
        config: list[tuple[str, object]] = [("workersMin", mn), ("workersMax", mx)]
        if idle is not None:
            config.append(("idleTimeout", idle))
        # a load-balancing endpoint scales on in-flight requests only (RequestCountScaling, REST API v2)
        value = fs.soft or DEFAULT_REQUEST_COUNT
        config += [("scalerType", "REQUEST_COUNT"), ("scalerValue", value)]
        if fs.soft:
            notes.append(f"soft_limit {fs.soft} -> scaling REQUEST_COUNT, requestCount {fs.soft}")
        else:
            notes.append(f"no concurrency in fly.toml: Fly's default soft_limit {DEFAULT_REQUEST_COUNT} "
                         f"(fly.io/docs/apps/concurrency) -> scaling REQUEST_COUNT, requestCount "
                         f"{DEFAULT_REQUEST_COUNT}")
        config.append(("flashboot", True))
        if fs.suspend:
            findings.append(Finding("info", "suspend", "auto_stop_machines = \"suspend\" -> flashboot (on by "
                                    "default): RunPod's nearest equivalent.", fs.where, "scaling"))
        if fs.hard:
            findings.append(Finding("warning", "hard-limit-server-side", f"hard_limit {fs.hard} has no RunPod "
                                    "endpoint setting (a load-balancing endpoint only scales on requestCount): "
                                    "enforce it in the server itself (vLLM --max-num-seqs, ollama "
                                    "OLLAMA_NUM_PARALLEL, a semaphore in your app); flymigrate does not set it.",
                                    fs.concurrency_where, "scaling"))
        if fs.ctype == "connections":
            findings.append(Finding("warning", "connections-vs-requests", "Fly counted connections; RunPod scales "
                                    "on requests. Long streaming responses count as one request each.",
                                    fs.concurrency_where, "scaling"))
        findings += lb_limit_findings(None, app, workers_min=mn)
        return ScalingPlan(mn, mx, idle, fs.hard, fs.soft, tuple(config), tuple(notes)), findings

    def weights_destination(self, app_name: str) -> str:
        return f"runpod-volume://<VOLUME_ID>/{slug(app_name)}/"

    def secret_ref(self, app_name: str, name: str) -> str:
        return "{{ RUNPOD_SECRET_" + secret_name(app_name, name) + " }}"

    def placeholder_url(self, app_name: str) -> str:
        return "https://<ENDPOINT_ID>.api.runpod.ai"

    # ---- the deployment
    def finalize(self, dep: Deployment, app: FlyApp) -> Deployment:
        from . import runpod_health as rh

        dep = replace(dep, auth_header=AUTH_HEADER)
        image = app.build.image or dep.registry_image
        base_text = rh.strip_adapter(dep.dockerfile_text) if dep.dockerfile_text else None
        command = dep.command
        if base_text is not None and (dep.dockerfile_text != base_text or command is None):
            command = rh.inherited_command(base_text) or command
        if command and command[0].startswith("-"):
            command = None  # only arguments: the image's own ENTRYPOINT is unknown, so the argv cannot be wrapped
        ps = rh.ping_support(base_text, image, command, dep.health_path)
        if ps.has_ping:
            return self.with_env(dep, {"PORT": str(dep.port), "PORT_HEALTH": str(dep.port)},
                                 "platform (RunPod load-balancing worker)")
        if not command:
            # the image's command is unknown, so no adapter can wrap it; RunPod polls only GET /ping on PORT_HEALTH
            # (no configurable path: docs.runpod.io serverless/load-balancing/overview "Health checks"), so the
            # worker would never be routed to: blocked, with the fixes
            dep = self.with_env(dep, {"PORT": str(dep.port), "PORT_HEALTH": str(dep.port)},
                                "platform (RunPod load-balancing worker)")
            return replace(dep, blockers=tuple(dep.blockers) + (no_ping_blocker(ps.reason, image),))
        python = rh.has_python3(base_text, image, command)
        hport = rh.health_port_for(dep.port)
        text = base_text
        thin = dep.dockerfile_is_thin
        image_ref = dep.image_ref
        registry = dep.registry_image
        if text is None:  # the registry image was used as is: a thin Dockerfile FROM it carries the adapter
            text = (f"# flymigrate: generated for [build] image = {image!r} in fly.toml: the image itself is "
                    f"unchanged;\n# flymigrate: this adds RunPod's health route.\nFROM {image}\n")
            thin = True
            if registry and image_ref == registry:
                image_ref = self.image_placeholder(dep.slug)  # it must be built and pushed now
            registry = None
        text = rh.add_adapter(text, command, python=python, app_port=dep.port, health_path=dep.health_path,
                              health_port=hport)
        dep = self.with_env(dep, {"PORT": str(dep.port), "PORT_HEALTH": str(hport)},
                            "platform (RunPod load-balancing worker; PORT_HEALTH is the health adapter's)")
        return replace(dep, dockerfile_text=text, dockerfile_name=dep.dockerfile_name or "Dockerfile",
                       dockerfile_is_thin=thin, registry_image=registry, image_ref=image_ref,
                       command=tuple(rh.adapter_argv(python, dep.port, dep.health_path, hport)) + tuple(command))

    def render(self, dep: Deployment, *, dockerfile_rel: str | None = None,
               context_rel: str | None = None) -> list[GeneratedFile]:
        from . import runpod_health as rh
        from .runpod_files import render_runpod_spec

        out = [GeneratedFile("runpod-endpoint.json", render_runpod_spec(dep))]
        text = dep.dockerfile_text or ""
        for fname, python in ((rh.ADAPTER_PY, True), (rh.ADAPTER_C, False)):
            if re.search(rf"^COPY {re.escape(fname)} ", text, re.M):
                where = f"{context_rel}/{fname}" if context_rel not in (None, "", ".") else fname
                out.append(GeneratedFile(where, rh.adapter_source(python), 0o644, rh.ADAPTER_STEP))
        return out

    def findings(self, dep: Deployment, app: FlyApp) -> list[Finding]:
        return auth_collisions(dep) + lb_limit_findings(dep, app)

    def plan_notes(self, dep: Deployment) -> dict[str, list[str]]:
        env = dep.env_map()
        lines = [f"RunPod load-balancing endpoint (type LOAD_BALANCER): the server listens on PORT={dep.port}; "
                 f"RunPod polls GET /ping on PORT_HEALTH="
                 f"{env.get('PORT_HEALTH', dep.port)} (200 ready, 204 loading)"]
        lines.append(health_line(dep))
        lines += [f.message for f in auth_collisions(dep)]
        lines += app_auth_lines(dep)
        return {"dockerfile": lines}

    def weights_needs(self) -> list[str]:
        return ["the RunPod network volume id (--volume-id) and its datacenter (--datacenter), and "
                "RUNPOD_S3_ACCESS_KEY_ID / RUNPOD_S3_SECRET_ACCESS_KEY"]

    def weights_option_hint(self) -> str:
        return "--volume-id ID --datacenter DC (the RunPod network volume)"

    def weights_blocking(self, dep: Deployment) -> list[str]:
        if not dep.datacenter:
            return ["RunPod network volumes are reached per datacenter: pass --datacenter (e.g. EU-RO-1)"]
        return []

    def secrets_summary(self, dep: Deployment, n_values: int) -> str:
        return ("Create each secret through RunPod's secrets API (POST /v2/account/secrets, needs RUNPOD_API_KEY) "
                "as flymigrate-<app>-<NAME>, referenced in the endpoint's env as "
                "{{ RUNPOD_SECRET_flymigrate-<app>-<NAME> }}")

    def secrets_manual(self, dep: Deployment) -> list[str]:
        return [f"{n} -> RunPod secret {secret_name(dep.app_name, n)!r}, referenced as "
                f"{{{{ RUNPOD_SECRET_{secret_name(dep.app_name, n)} }}}}" for n in dep.secret_names]

    def secrets_apply(self, ctx: Any, preview: Any) -> str:
        values, _missing = ctx.secret_values()
        if not values:
            return "no secret values to create"
        api = RunPodAPI.from_env(values=[v.reveal() for v in values.values()])
        st = ctx.state.target("runpod")
        ids = dict(st.get("secret_ids") or {})
        created = updated = 0
        for name in sorted(values):
            rp = secret_name(ctx.dep.app_name, name)
            sid, was_new = api.put_secret(rp, values[name].reveal(), f"{name} of the Fly app {ctx.dep.app_name} "
                                          "(flymigrate)")
            ids[name] = sid
            st["secret_ids"] = ids
            ctx.state.save()
            created += was_new
            updated += not was_new
            ctx.emit("progress", "secrets", f"RunPod secret {rp} {'created' if was_new else 'updated'}")
            ctx.pause()
        return f"{created} RunPod secret(s) created, {updated} updated: " + ", ".join(
            secret_name(ctx.dep.app_name, n) for n in sorted(values))

    def deploy_commands(self, dep: Deployment) -> list[str]:
        return ["POST /v2/serverless (a LOAD_BALANCER endpoint from runpod-endpoint.json; PATCH "
                "/v2/serverless/{id} when it changed) on " + os.environ.get(API_BASE_ENV, API_BASE_DEFAULT)]

    def deploy(self, ctx: Any) -> str | None:
        return _runpod_deploy(ctx)

    def credentials(self, step: str) -> tuple[str, ...]:
        # secrets: POST /v2/account/secrets; deploy: POST/PATCH /v2/serverless (both with the API key)
        return ("RUNPOD_API_KEY (a RunPod API key)",) if step in ("secrets", "deploy") else ()

    def credentials_missing(self, step: str, env: dict[str, str]) -> str | None:
        if step in ("secrets", "deploy") and not env.get("RUNPOD_API_KEY"):
            what = "create the secrets" if step == "secrets" else "create the endpoint"
            return (f"RUNPOD_API_KEY is not set; it is needed to {what} through RunPod's API (RunPod console > "
                    "Settings > API Keys).")
        return None


# ------------------------------------------------------------------------------------------------ findings


def health_line(dep: Deployment) -> str:
    """What answers RunPod's health check, and why (derived from the Deployment alone)."""
    from . import runpod_health as rh

    text = dep.dockerfile_text or ""
    base = rh.strip_adapter(text) if text else None
    command = rh.inherited_command(base) if base else dep.command
    ps = rh.ping_support(base, dep.registry_image, command, dep.health_path)
    env = dep.env_map()
    if rh.BEGIN in text:
        python = f"COPY {rh.ADAPTER_PY} " in text
        how = f"its check {dep.health_path} answers 2xx" if dep.health_path else "its port accepts connections"
        return (f"RunPod health adapter: {ps.reason}, so the image gets "
                f"{'a Python (stdlib) adapter' if python else 'a static adapter binary (the image has no python3)'}"
                f" that starts the server and answers GET /ping on PORT_HEALTH={env.get('PORT_HEALTH')}: 204 while "
                f"the model loads, 200 once {how}")
    if ps.has_ping:
        return f"RunPod health: the server answers GET /ping itself ({ps.reason})"
    return "RunPod health: " + no_ping_blocker(ps.reason, dep.registry_image)


def no_ping_blocker(reason: str, image: str | None) -> str:
    """Why a worker whose server has no /ping and whose command flymigrate cannot see is never routed to."""
    return (f"RunPod routes only to workers that answer GET /ping on PORT_HEALTH, and {reason}; the image's command "
            f"is unknown{f' ({image} is not an image flymigrate knows)' if image else ''}, so the health adapter "
            "cannot start the server. Fix: give the server's command in fly.toml (`[processes] app = \"...\"` or "
            "`[experimental] cmd`) or a Dockerfile ENTRYPOINT/CMD, so flymigrate wraps it; or add a /ping route "
            "(200 ready, 204 loading) to the server.")



def _app_key_names(dep: Deployment) -> list[str]:
    names = [k for k, _ in dep.env] + list(dep.secret_names)
    return [n for n in dict.fromkeys(names) if _APP_KEY_NAMES.match(n) and not n.startswith(_VENDOR_KEY_PREFIX)]


def app_auth_lines(dep: Deployment) -> list[str]:
    """What the plan says about the server's own key check the Deployment drops (``rules.APP_KEY`` lists the
    ``--api-key`` flags it removes, with where they are)."""
    if not dep.app_auth_dropped:
        return []
    out = []
    for name in dep.app_key_envs_dropped:
        server = "TGI" if name == "API_KEY" else "vLLM"
        out.append(f"{name} is not passed to the worker: {server} reads it as its key when --api-key is absent "
                   "and would check it in Authorization again (" + (
                       "vllm api_server.py build_app: args.api_key or [envs.VLLM_API_KEY]" if server == "vLLM" else
                       "text-generation-launcher: #[clap(long, env)] api_key") + ")")
    out.append(f"the server's own API key check goes: {dep.app_auth_dropped}. Clients send RUNPOD_API_KEY as "
               "their Bearer token now (step 4); to keep the app's key instead, plan/apply with --keep-app-auth "
               "(then no request passes both checks unless a proxy of yours moves one key to another header)")
    return out


def auth_collisions(dep: Deployment) -> list[Finding]:
    """The app checks its own key in the ``Authorization`` header RunPod's gateway already uses (and the
    Deployment did not drop that check: ``--keep-app-auth``, or a server flymigrate cannot edit)."""
    if dep.app_auth_dropped:
        return []
    argv = " ".join(dep.command or ())
    # the Dockerfile, the command and the app's scripts flymigrate rewrites (start.sh often holds --api-key)
    text = "\n".join([dep.dockerfile_text or "", argv, *(t for _, t in dep.script_rewrites)])
    is_vllm = "vllm" in text
    vllm_key = bool(re.search(r"--api-key\b", text)) or "VLLM_API_KEY" in dict(dep.env) or \
        "VLLM_API_KEY" in dep.secret_names
    if is_vllm and vllm_key:
        return [Finding("warning", "auth-header-collision",
                        "RunPod load-balancing endpoints take the caller's RunPod API key in `Authorization: Bearer "
                        "...`; vLLM's --api-key / VLLM_API_KEY checks the same header, so no request can satisfy "
                        "both. Fix: drop the app's own key (remove --api-key / VLLM_API_KEY; RunPod's key already "
                        "guards the endpoint; flymigrate does it unless --keep-app-auth is given) and send the RunPod "
                        "API key from clients. Keep a second key only in "
                        "another header your own proxy checks.", None, "secrets")]
    generic = _app_key_names(dep)
    if generic:
        return [Finding("info", "auth-header-collision",
                        f"{', '.join(generic)} looks like the app's own API key. RunPod load-balancing endpoints "
                        "take the RunPod API key in `Authorization: Bearer ...`; if the app checks its key in that "
                        "header (OpenAI-style), requests collide. Fix: drop that check (RunPod's key guards the "
                        "endpoint) or read the app key from another header such as X-API-Key.", None, "secrets")]
    return []


def lb_limit_findings(dep: Deployment | None, app: FlyApp, workers_min: int | None = None) -> list[Finding]:
    """RunPod load-balancer limits that this app's own settings make bite. Called by :meth:`scaling` (from fly.toml
    alone, so the plan shows them today) and by :meth:`findings` (with the Deployment); identical findings merge."""
    out: list[Finding] = []
    svc = app.primary_service
    grace = max((c.grace_period_s or 0 for c in (svc.checks if svc else ())), default=0)
    if workers_min is None:
        workers_min = int(dict(dep.scaling.config).get("workersMin", 0)) if dep and dep.scaling else 0
    if grace > LB_NO_WORKER_WAIT_S and not workers_min:
        out.append(Finding("warning", "lb-cold-start-400",
                           f"the app's check grace period is {grace:g} s: it takes that long to start. On RunPod a "
                           f"request that finds no ready worker for ~{LB_NO_WORKER_WAIT_S // 60} min gets 400, so "
                           "with workers.min 0 the first request after an idle period fails. Set workers.min >= 1 "
                           "(billed while idle) or make clients retry on 400.", svc.where if svc else None,
                           "scaling"))
    text = " ".join([app.app or "", *(app.experimental_cmd or ()), *(c for _, c in app.processes),
                     *(f"{k}={v}" for k, v in app.env)])
    if dep is not None:
        text += " " + " ".join(dep.command or ()) + " " + (dep.dockerfile_text or "")
    if re.search(r"whisper|transcri", text, re.I):
        out.append(Finding("warning", "lb-payload-limit",
                           f"an audio transcription app: RunPod load-balancing requests and responses are capped at "
                           f"{LB_PAYLOAD_MB} MB and ~{LB_PROCESSING_CAP_S / 60:.1f} min of processing (524 after "
                           "that). Long recordings must be uploaded elsewhere (a URL or the network volume) and "
                           "split.", None, "scaling"))
    if app.kill_timeout_s and app.kill_timeout_s > LB_PROCESSING_CAP_S:
        out.append(Finding("info", "lb-processing-cap",
                           f"kill_timeout {app.kill_timeout_s:g} s suggests requests that run for minutes; RunPod "
                           f"cuts a load-balanced request after ~{LB_PROCESSING_CAP_S / 60:.1f} min (524).",
                           None, "scaling"))
    return out


# ------------------------------------------------------------------------------------------------ the API


class RunPodAPI:
    """RunPod's REST API v2 over plain HTTPS (urllib). Values travel in JSON bodies only, never in URLs or argv;
    error text from the server is scrubbed of every value this client was given."""

    def __init__(self, base: str, key: str, values: list[str] | None = None) -> None:
        self.base = base.rstrip("/")
        self.key = key
        self.values = [v for v in (values or []) if v] + [key]

    @classmethod
    def from_env(cls, values: list[str] | None = None) -> RunPodAPI:
        from ..errors import UserError

        key = os.environ.get("RUNPOD_API_KEY")
        if not key:
            raise UserError("RUNPOD_API_KEY is not set; it is needed to create the secrets and the endpoint on "
                            "RunPod.", hint="Create an API key in the RunPod console (Settings > API Keys) and "
                            "export RUNPOD_API_KEY; the steps that only write files run without it.")
        return cls(os.environ.get(API_BASE_ENV) or API_BASE_DEFAULT, key, values)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None,
             ok: tuple[int, ...] = (200, 201)) -> tuple[int, Any]:
        import urllib.error
        import urllib.request

        from ..errors import RemoteError, UserError
        from ..redact import scrub_values

        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.key}", "Content-Type": "application/json",
            "Accept": "application/json", "User-Agent": "flymigrate"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RemoteError(f"RunPod API {method} {path}: cannot connect ({scrub_values(str(reason), self.values)})"
                              ) from None
        try:
            doc = json.loads(raw or b"null")
        except ValueError:
            doc = None
        if status in ok:
            return status, doc
        detail = ""
        if isinstance(doc, dict):
            parts = [str(doc.get(k)) for k in ("title", "detail", "message") if doc.get(k)]
            parts += [str(e) for e in doc.get("errors") or []][:5]
            detail = "; ".join(parts)
        detail = scrub_values(detail or raw[:300].decode("utf-8", "replace"), self.values)
        if status in (401, 403):
            raise UserError(f"RunPod rejected RUNPOD_API_KEY ({method} {path}: HTTP {status}{': ' + detail if detail else ''}).",
                            hint="Check the key and that it may manage Serverless endpoints and secrets.")
        return status, {"_error": f"HTTP {status}: {detail}"}

    def fail(self, what: str, status: int, doc: Any) -> None:
        from ..errors import RemoteError

        err = doc.get("_error") if isinstance(doc, dict) else f"HTTP {status}"
        raise RemoteError(f"RunPod API: {what} failed ({err}).")

    # secrets
    def put_secret(self, name: str, value: str, description: str) -> tuple[str, bool]:
        """Create the secret, or set its value when it exists. (id, created?)"""
        from urllib.parse import quote

        status, doc = self.call("POST", "/v2/account/secrets", {"name": name, "value": value,
                                                                  "description": description}, ok=(200, 201, 409))
        if status in (200, 201) and isinstance(doc, dict) and doc.get("id"):
            return str(doc["id"]), True
        if status != 409:
            self.fail(f"creating secret {name}", status, doc)
        status, doc = self.call("GET", "/v2/account/secrets?name=" + quote(name, safe=""))
        if isinstance(doc, dict) and doc.get("_error"):
            self.fail(f"finding the existing secret {name}", status, doc)
        found = [s for s in (doc.get("secrets") if isinstance(doc, dict) else None) or [] if s.get("name") == name]
        if not found:
            self.fail(f"finding the existing secret {name}", status, {"_error": "409 on create, but not listed"})
        sid = str(found[0]["id"])
        status, doc = self.call("PATCH", f"/v2/account/secrets/{quote(sid, safe='')}", {"value": value})
        if isinstance(doc, dict) and doc.get("_error"):
            self.fail(f"setting the value of secret {name}", status, doc)
        return sid, False

    # endpoints
    def create_endpoint(self, body: dict[str, Any]) -> dict[str, Any]:
        status, doc = self.call("POST", "/v2/serverless", body, ok=(200, 201))
        if not isinstance(doc, dict) or not doc.get("id"):
            self.fail("creating the endpoint", status, doc)
        return doc  # type: ignore[no-any-return]

    def update_endpoint(self, eid: str, body: dict[str, Any]) -> dict[str, Any]:
        from urllib.parse import quote

        status, doc = self.call("PATCH", f"/v2/serverless/{quote(eid, safe='')}", body)
        if not isinstance(doc, dict) or doc.get("_error"):
            self.fail(f"updating endpoint {eid}", status, doc)
        return doc  # type: ignore[no-any-return]

    def get_endpoint(self, eid: str) -> dict[str, Any] | None:
        from urllib.parse import quote

        status, doc = self.call("GET", f"/v2/serverless/{quote(eid, safe='')}", ok=(200, 404))
        return doc if status == 200 and isinstance(doc, dict) else None

    def find_endpoint(self, name: str) -> dict[str, Any] | None:
        status, doc = self.call("GET", "/v2/serverless")
        items = doc.get("endpoints") if isinstance(doc, dict) else doc if isinstance(doc, list) else None
        for e in items or []:
            if isinstance(e, dict) and e.get("name") == name and e.get("type", "LOAD_BALANCER") == "LOAD_BALANCER":
                return e
        return None


def _runpod_deploy(ctx: Any) -> str:
    from .runpod_files import runpod_spec, update_body

    api = RunPodAPI.from_env()
    spec = runpod_spec(ctx.dep)
    body = spec["endpoint"]
    st = ctx.state.target("runpod")
    import hashlib

    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    eid = st.get("endpoint_id")
    if eid and st.get("endpoint_type") != "LOAD_BALANCER":
        # made by an older flymigrate (runpod.create_endpoint: a queue endpoint, which never calls the server)
        old = api.get_endpoint(eid)
        if old is None or old.get("type") != "LOAD_BALANCER":
            ctx.emit("progress", "deploy", f"endpoint {eid} is a queue endpoint (or gone): it cannot serve an HTTP "
                     "server and its type cannot change; creating a load-balancing endpoint. Delete the old one "
                     f"in the console (Serverless > {eid} > Delete) when done.")
            for k in ("endpoint_id", "template_id", "template_hash", "endpoint_settings", "endpoint_digest"):
                st.pop(k, None)
            eid = None
        else:
            st["endpoint_type"] = "LOAD_BALANCER"
    if not eid:
        # a crash after the create and before the state save must not make a second endpoint: adopt by name
        found = api.find_endpoint(body["name"])
        if found is not None:
            eid = str(found["id"])
            st.update(endpoint_id=eid, endpoint_type="LOAD_BALANCER", endpoint_digest=None)
        else:
            made = api.create_endpoint(body)
            eid = str(made["id"])
            st.update(endpoint_id=eid, endpoint_type="LOAD_BALANCER", endpoint_digest=digest)
            ctx.state.save()
            ctx.emit("progress", "deploy", f"created load-balancing endpoint {eid}")
    if st.get("endpoint_digest") != digest:
        api.update_endpoint(eid, update_body(body))
        st["endpoint_digest"] = digest
        ctx.state.save()
        ctx.emit("progress", "deploy", f"updated endpoint {eid} (image, env, GPU, workers or scaling changed; "
                 "RunPod rolls its workers over)")
    ctx.state.save()
    return f"https://{eid}.api.runpod.ai"


TARGET = RunPodTarget()
