"""RunPod Serverless: an endpoint + template spec (load-balancing worker), network volume, secret refs."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from ..deployment import Deployment
from ..gpus import FLY_GPU_KINDS
from ..model import Finding, FlyApp, ScalingPlan, Service
from ..naming import slug
from .base import BaseTarget, CostRow, GeneratedFile, TargetGpu, VerifySpec, not_offered, section_row
from .common import FLY_IDLE_EQUIVALENT_S, read_fly_scaling


# Fly kind -> (RunPod GPU pool id, label, VRAM GB, reason). Pools: research/users.md 4a, research/destinations.md.
_GPUS = {
    "a10": ("AMPERE_24", "RunPod pool AMPERE_24 (A5000 / A4500 / 3090, 24 GB)", 24,
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
        wrong_url=("api.runpod.ai", "/v2/", "a RunPod queue endpoint (/run, /runsync): an HTTP server (vLLM, "
                   "ollama, ...) never serves a request there",
                   "Deploy it as a load-balancing endpoint and verify https://ENDPOINT_ID.api.runpod.ai "
                   "(docs.runpod.io/serverless/load-balancing/overview)."))

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

    # ---- the deployment
    def finalize(self, dep: Deployment, app: FlyApp) -> Deployment:
        # load-balancing workers: the server listens on PORT and answers GET /ping on PORT_HEALTH
        return self.with_env(dep, {"PORT": str(dep.port), "PORT_HEALTH": str(dep.port)},
                             "platform (RunPod load-balancing worker)")

    def render(self, dep: Deployment, *, dockerfile_rel: str | None = None,
               context_rel: str | None = None) -> list[GeneratedFile]:
        from .runpod_files import render_runpod_spec

        return [GeneratedFile("runpod-endpoint.json", render_runpod_spec(dep))]

    def plan_notes(self, dep: Deployment) -> dict[str, list[str]]:
        return {"dockerfile": [f"RunPod load-balancing worker: PORT={dep.port} and PORT_HEALTH={dep.port} in the "
                               "endpoint's env; the health route (/ping) must answer 200 when ready"]}

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
        return ("Reference each secret as {{ RUNPOD_SECRET_<name> }} in the endpoint's env (RunPod has no "
                "secrets API: add them in the console)")

    def secrets_manual(self, dep: Deployment) -> list[str]:
        return [f"{n}: create RunPod secret {n!r}, referenced as {{{{ RUNPOD_SECRET_{n} }}}}" for n in dep.secret_names]

    def secrets_apply(self, ctx: Any, preview: Any) -> str:
        return "add these secrets in the RunPod console: " + ", ".join(preview.secrets)

    def deploy_commands(self, dep: Deployment) -> list[str]:
        return ["runpod.create_template(name, image_name, ..., env={...}, is_serverless=True) + "
                "runpod.create_endpoint(name, template_id, gpu_ids, ...) via RUNPOD_API_BASE_URL"]

    def deploy(self, ctx: Any) -> str | None:
        return _runpod_deploy(ctx)

    def credentials(self, step: str) -> tuple[str, ...]:
        return ("RUNPOD_API_KEY (a RunPod API key)",) if step == "deploy" else ()

    def credentials_missing(self, step: str, env: dict[str, str]) -> str | None:
        if step == "deploy" and not env.get("RUNPOD_API_KEY"):
            return "RUNPOD_API_KEY is not set; it is needed to create the endpoint (RunPod console > Settings > API Keys)."
        return None


def _runpod_deploy(ctx: Any) -> str:
    import runpod

    from ..errors import UserError
    from .runpod_files import runpod_spec

    key = os.environ.get("RUNPOD_API_KEY")
    if not key:
        raise UserError("RUNPOD_API_KEY is not set; it is needed to create the endpoint.")
    spec = runpod_spec(ctx.dep)
    tpl, ep = spec["template"], spec["endpoint"]
    env = {e["key"]: e["value"] for e in tpl["env"]}
    for k, v in env.items():
        if any(ch in v for ch in '"\\\n'):
            raise UserError(f"env {k} holds a quote, backslash or newline, which the runpod SDK cannot send safely; "
                            "create the template in the console instead.")
    runpod.api_key = key
    st = ctx.state.target("runpod")
    # what was deployed, to notice a change on a later --deploy: the template by hash (its env holds plain
    # [env] values and secret *references*), the endpoint settings as they are (ids, GPU types, counts)
    tpl_hash = hashlib.sha256(json.dumps(tpl, sort_keys=True).encode()).hexdigest()[:12]
    ep_settings = {k: v for k, v in ep.items() if k not in ("name", "templateId")}
    tid = st.get("template_id")
    eid = st.get("endpoint_id")

    def make_template(name: str) -> str:
        t = runpod.create_template(name=name, image_name=tpl["imageName"], docker_start_cmd=tpl["dockerArgs"] or None,
                                   container_disk_in_gb=tpl["containerDiskInGb"], ports=tpl["ports"], env=env,
                                   is_serverless=True)
        st.update(template_id=t["id"], template_hash=tpl_hash)
        ctx.state.save()
        return str(t["id"])

    if tid and st.get("template_hash") not in (None, tpl_hash):
        # image, command, env or disk changed. RunPod template names are unique and the SDK cannot edit one:
        # create the new version, then point the endpoint at it (its workers roll over to the new image)
        name = f"{tpl['name']}-{tpl_hash[:8]}"
        ctx.emit("progress", "deploy", f"the template changed since the last deploy: creating {name} and pointing "
                 f"the endpoint at it (the old template {tid} stays; delete it in the console when done)")
        tid = make_template(name)
        if eid:
            runpod.update_endpoint_template(eid, tid)
    elif not tid:
        tid = make_template(tpl["name"])
    elif st.get("template_hash") is None:
        st["template_hash"] = tpl_hash  # state from before hashes were kept: take what is deployed as current
        ctx.state.save()
    if eid:
        old = st.get("endpoint_settings")
        if old is None:
            st["endpoint_settings"] = ep_settings
            ctx.state.save()
        elif old != ep_settings:
            diff = ", ".join(f"{k} {old.get(k)!r} -> {ep_settings.get(k)!r}" for k in sorted(set(old) | set(ep_settings))
                             if old.get(k) != ep_settings.get(k))
            ctx.emit("progress", "deploy", f"WARNING: endpoint {eid} was created with other settings ({diff}). The runpod "
                     "SDK cannot change an endpoint: edit it in the console (Serverless > the endpoint > Manage > Edit "
                     "Endpoint; runpod-endpoint.json has the new values), or delete it and run --deploy again.")
    if not eid:
        e = runpod.create_endpoint(name=ep["name"], template_id=tid, gpu_ids=ep["gpuIds"],
                                   network_volume_id=ep["networkVolumeId"] or None, locations=ep["locations"] or None,
                                   idle_timeout=ep["idleTimeout"], scaler_type=ep["scalerType"],
                                   scaler_value=ep["scalerValue"], workers_min=ep["workersMin"],
                                   workers_max=ep["workersMax"], flashboot=ep.get("flashBootType") == "FLASHBOOT",
                                   gpu_count=ep["gpuCount"])
        eid = e["id"]
        st.update(endpoint_id=eid, endpoint_settings=ep_settings)
        ctx.state.save()
    return f"https://{eid}.api.runpod.ai"


TARGET = RunPodTarget()
