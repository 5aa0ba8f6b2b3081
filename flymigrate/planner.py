"""Inputs -> Plan. Pure and deterministic: the same inputs give the same plan, byte for byte.

The five steps always come in this order (weights first: it is the slowest, so it starts first), each with
what will change, what it needs from the user, what cannot translate, and the manual checks from
``checklists/steps.toml``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from . import dockerplan, weights
from .checklists import load_steps
from .gpus import FLY_GPU_KINDS, TargetGpu, normalise_gpu_kind
from .model import (
    STEP_IDS,
    Dockerfile,
    DockerIssue,
    Finding,
    FlyApp,
    GpuSpec,
    Plan,
    ScalingPlan,
    SecretPlan,
    SecretsExport,
    Step,
    WeightsPlan,
)
from .deployment import DeployOptions, build_deployment, under
from .naming import slug as _slug
from .scan import ScanResult, rewrite_url
from .targets import get_target

if TYPE_CHECKING:  # type checkers see the standard decorator
    from dataclasses import dataclass, field
else:  # start-up time: no exec per generated method (flymigrate/_dataclass.py)
    from ._dataclass import dataclass, field

SECRETY_NAME_RE = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|APIKEY|PRIVATE_KEY|COOKIE|CREDENTIALS?)$",
                             re.I)
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class PlanInputs:
    """Everything the planner reads, already loaded (see :func:`flymigrate.api.load_inputs`)."""

    app: FlyApp
    dockerfile: Dockerfile | None = None
    secrets: SecretsExport | None = None
    scan: ScanResult | None = None
    scripts: dict[str, str] = field(default_factory=dict)  # app shell scripts / [[files]] sources, by rel path
    gpu_override: GpuSpec | None = None
    gpu_hints: tuple[GpuSpec, ...] = ()  # --vm-gpu-kind / --vm-size seen in READMEs, Makefiles, CI
    image_env_names: tuple[str, ...] = ()
    inputs: tuple[tuple[str, str], ...] = ()
    findings: tuple[Finding, ...] = ()  # loader findings (missing Dockerfile, ...)
    image_builder: str | None = None  # "cog": the [build] image was built by Cog from the cog.yaml beside fly.toml


def parse_gpu_arg(value: str) -> GpuSpec:
    """``--gpu KIND[:N]``. Raises ValueError with a message naming the legal kinds."""
    kind_raw, _, n = value.partition(":")
    kind, alias = normalise_gpu_kind(kind_raw)
    if kind is None:
        raise ValueError(f"--gpu {value!r}: unknown GPU kind; use one of {', '.join(FLY_GPU_KINDS)} "
                         "(optionally :N for N GPUs)")
    count = 1
    if n:
        if not n.isdigit() or not 1 <= int(n) <= 8:
            raise ValueError(f"--gpu {value!r}: the count after ':' must be 1-8")
        count = int(n)
    return GpuSpec(kind, count, "--gpu", "--gpu")


def resolve_gpu(inp: PlanInputs) -> tuple[GpuSpec | None, list[Finding]]:
    findings: list[Finding] = []
    app_gpu = inp.app.gpu
    if inp.gpu_override is not None:
        if app_gpu and (app_gpu.kind, app_gpu.count) != (inp.gpu_override.kind, inp.gpu_override.count):
            findings.append(Finding("info", "gpu-override", f"--gpu {inp.gpu_override.kind}:{inp.gpu_override.count} "
                                    f"overrides fly.toml's {app_gpu.kind}:{app_gpu.count}.", app_gpu.where))
        return inp.gpu_override, findings
    if app_gpu is not None:
        return app_gpu, findings
    if inp.gpu_hints:
        h = inp.gpu_hints[0]
        findings.append(Finding("warning", "gpu-from-hint", f"fly.toml sets no GPU; {h.where} deploys with "
                                f"{h.origin}, so {h.kind} x{h.count} is assumed. Confirm with --gpu {h.kind}.",
                                h.where))
        return h, findings
    # nothing names a GPU: does the image look like a GPU workload (CUDA base, an inference server)?
    import re

    df = inp.dockerfile
    image_text = " ".join([inp.app.build.image or ""] + (df.base_images() if df else []))
    gpu_re = re.compile(r"cuda|nvidia|cudnn|vllm|text-generation-inference|tgi|ollama|comfy|diffusers|torch|"
                        r"tensorrt|triton|whisper|llama", re.I)
    looks_gpu = bool(gpu_re.search(image_text)) or any(
        re.search(r"cuda|nvidia", text, re.I) for text in ([df.text] if df else []) + list(inp.scripts.values()))
    if looks_gpu:
        findings.append(Finding("warning", "no-gpu", "fly.toml sets no GPU, yet the image looks like a GPU workload "
                                f"({(image_text.strip() or 'CUDA in the Dockerfile')[:80]}); the GPU was probably "
                                "given on the command line or with `fly scale vm`. Pass --gpu KIND[:N] (one of "
                                f"{', '.join(FLY_GPU_KINDS)}) to plan it.", inp.app.config_path))
        return None, findings
    # a CPU app: say what that means on each target instead of asking for a GPU it never had
    findings.append(Finding("info", "cpu-only", "no GPU anywhere (fly.toml, the image, its scripts): the app runs on "
                            "CPU. Modal: a function with no gpu= runs on CPU containers; RunPod Serverless: a CPU "
                            "endpoint (computeType CPU, docs.runpod.io/api-reference/endpoints/POST/endpoints); "
                            "Cloud Run: a plain service (CPU is its default). Pass --gpu KIND if it did use a GPU.",
                            inp.app.config_path))
    return None, findings


def build_plan(inp: PlanInputs, target_name: str, *, base_url: str | None = None,
               options: DeployOptions | None = None) -> Plan:
    """The plan and its Deployment. ``options`` are what the user told plan/apply (volume id, bucket, image...);
    the same inputs and options always give the same plan, and apply executes exactly its Deployment."""
    from dataclasses import replace

    opts = options or DeployOptions()
    if base_url is not None:
        opts = replace(opts, base_url=base_url)
    base_url = opts.base_url
    target = get_target(target_name)
    app = inp.app
    app_name = app.app or "app"
    steps_info = load_steps()
    findings: list[Finding] = list(app.findings) + list(inp.findings)
    if inp.secrets:
        findings += list(inp.secrets.findings)
    if inp.scan:
        findings += list(inp.scan.findings)

    # ---- GPU
    gpu, gf = resolve_gpu(inp)
    findings += gf
    tgpu: TargetGpu | None = target.map_gpu(gpu.kind, gpu.count) if gpu else None
    gpu_json = None
    if gpu is not None and tgpu is not None:
        gpu_json = {"fly_kind": gpu.kind, "count": gpu.count, "vram_gb": FLY_GPU_KINDS[gpu.kind],
                    "target_gpu": tgpu.name, "target_label": tgpu.label, "target_vram_gb": tgpu.vram_gb,
                    "fits": tgpu.fits, "blocked": tgpu.blocked, "reason": tgpu.reason,
                    "alternatives": list(tgpu.alternatives), "origin": gpu.origin, "where": gpu.where}
        if tgpu.blocked:
            findings.append(Finding("error", "gpu-not-offered", f"{target.label} cannot run this app's GPU: "
                                    f"{tgpu.reason}.", gpu.where, "scaling"))
        elif gpu.kind and tgpu.vram_gb and tgpu.vram_gb != FLY_GPU_KINDS[gpu.kind]:
            findings.append(Finding("info", "gpu-mapped", f"{gpu.kind} ({FLY_GPU_KINDS[gpu.kind]} GB) -> "
                                    f"{tgpu.label}: {tgpu.reason}.", gpu.where, "scaling"))

    # ---- weights
    sources = weights.find_sources(app, inp.dockerfile, inp.secrets, inp.scripts)
    chosen = sources[0] if sources and sources[0].url else next((s for s in sources if s.url), None)
    mount_path = app.mounts[0].destination if app.mounts else None
    weights_env: list[tuple[str, str]] = []
    if target.weights_mount_root and mount_path:
        # RunPod mounts the network volume at /runpod-volume; point the app there
        new_path = f"{target.weights_mount_root}/{_slug(app_name)}"
        for k, v in weights.app_weights_env(app):
            rel = under(v, mount_path)  # a path under the mount, not a string that merely starts with it
            if rel is not None:
                weights_env.append((k, new_path + ("/" + rel if rel else "")))
    size = next((s.size_bytes for s in sources if s.size_bytes), None)
    wplan = WeightsPlan(tuple(sources), chosen, target.weights_destination(app_name) if (chosen or mount_path) else None,
                        mount_path, tuple(weights_env), size)

    # ---- Dockerfile
    uses_gpu = gpu is not None
    # the same decision the Deployment makes: a baked download goes when the weights go to the volume
    drop_baked = bool(opts.weights_from or chosen) and opts.weights_on_volume
    issues = dockerplan.analyze(app, inp.dockerfile, inp.scripts, uses_gpu=uses_gpu, drop_baked=drop_baked)

    # ---- secrets
    secret_plans, sf = _secret_plans(app, inp.secrets, target, app_name)
    findings += sf

    # ---- base URLs
    placeholder = base_url is None
    new_base = base_url.rstrip("/") if base_url else target.placeholder_url(app_name)
    # a literal 6PN address cannot be known to be this app's: listed, never rewritten (new = None)
    hits = tuple(h.__class__(h.path, h.line, h.column, h.old, h.kind,
                             None if h.kind == "fdaa" else rewrite_url(h.old, new_base))
                 for h in (inp.scan.hits if inp.scan else ()))
    others = inp.scan.other_apps if inp.scan else ()
    url_step, uf = _base_url_step(hits, others, placeholder, new_base, steps_info["base_urls"].checks(target_name),
                                  app)
    findings += uf

    # ---- scaling
    svc = app.primary_service
    max_guess = 1 if app.mounts else 2
    scaling, scf = target.scaling(app, svc, max_guess)
    findings += scf
    findings.append(Finding("info", "max-assumed", f"the machine count is not in fly.toml (it was `fly scale count`); "
                            f"the maximum is set to {scaling.max} ({'one volume = one machine' if app.mounts else 'fly deploy creates 2 machines'}). "
                            "Change it in the generated config if you ran more.", svc.where if svc else None,
                            "scaling"))
    lossy = tuple(f.message for f in scf if f.severity in ("warning", "error"))
    scaling_step = _scaling_step(scaling, tgpu, target.label, steps_info["scaling"].checks(target_name), lossy,
                                 cpu_only=any(f.code == "cpu-only" for f in gf))

    findings = _dedupe(findings)
    findings.sort(key=lambda f: _SEVERITY_ORDER[f.severity])
    plan = Plan(
        app=app.app, target=target_name, steps=(), gpu=gpu_json, scaling=scaling, secrets=tuple(secret_plans),
        base_urls=hits, other_fly_urls=tuple(others), findings=tuple(findings), weights=wplan,
        docker_issues=tuple(issues), base_url=new_base, base_url_is_placeholder=placeholder, inputs=inp.inputs,
    )
    # ---- the Deployment: decided once, here; the weights and Dockerfile steps describe it
    dep = build_deployment(plan, app, inp.dockerfile.text if inp.dockerfile else None, opts, target=target,
                           scripts=inp.scripts, dockerfile_path=inp.dockerfile.path if inp.dockerfile else None,
                           image_builder=inp.image_builder)
    if dep.app_auth_dropped:
        # the Deployment drops the server's own key check (rules.APP_KEY): the plan lists that rule's findings too
        issues = dockerplan.analyze(app, inp.dockerfile, inp.scripts, uses_gpu=uses_gpu, drop_baked=drop_baked,
                                    drop_app_auth=dep.app_auth_dropped)
        plan = replace(plan, docker_issues=tuple(issues))
    notes = target.plan_notes(dep)
    weights_step = _weights_step(wplan, dep, target, steps_info["weights"].checks(target_name))
    docker_step = _docker_step(app, inp.dockerfile, issues, notes.get("dockerfile", []),
                               steps_info["dockerfile"].checks(target_name))
    secret_step = _secrets_step(secret_plans, inp.secrets, dep, target, steps_info["secrets"].checks(target_name))
    spec = getattr(target, "verify_spec", None)
    if spec is not None and spec.auth == "platform-bearer" and spec.key_env and hits:
        # the platform's gateway takes its own key in Authorization: clients that sent the app's key as their
        # Bearer token send the platform key instead (read from the same kind of place: the environment)
        from .deployment import APP_KEY_NAMES

        have = set(dep.secret_names) | {k for k, _ in dep.env} | set(dep.app_key_envs_dropped)
        renames = tuple((n, spec.key_env[0]) for n in APP_KEY_NAMES if n in have)
        if renames:
            dep = replace(dep, client_env_renames=renames)
            url_step = replace(url_step, changes=url_step.changes + tuple(
                f"clients that read {o} for their Bearer token read {n} instead ({target.label}'s gateway checks "
                f"its own key in Authorization)" for o, n in renames))
    auth_adds: list[str] = []
    if dep.client_auth and hits:
        # the target's auth, added where clients call the app (one decision: apply makes exactly these edits)
        from .requestauth import plan_sites

        auth_adds, by_hand = plan_sites(hits, inp.scan.texts if inp.scan else (), dep.client_auth,
                                        dep.client_env_renames)
        url_step = replace(url_step, changes=url_step.changes + tuple(auth_adds),
                           cannot=url_step.cannot + tuple(by_hand))
    if dep.gpu != (plan.gpu or {}).get("target_gpu") or dep.blockers:
        # the target decided the GPU with what only the Deployment knows (the image's stack, the model's size):
        # the plan shows that decision, not the first guess from the Fly GPU kind
        if plan.gpu is not None:
            g = dict(plan.gpu)
            g.update(target_gpu=dep.gpu, target_label=dep.gpu_label or g.get("target_label"),
                     reason=dep.gpu_reason or g.get("reason"), blocked=bool(dep.blockers) or bool(g.get("blocked")))
            plan = replace(plan, gpu=g)
        lines = [c for c in scaling_step.changes if not c.startswith("GPU: ")]
        if dep.gpu and not dep.blockers:
            lines.insert(0, f"GPU: {dep.gpu}{'' if dep.gpu_count <= 1 else f' x{dep.gpu_count}'} ({dep.gpu_label}) - "
                            f"{dep.gpu_reason}")
        scaling_step = replace(scaling_step, changes=tuple(lines))
    if dep.blockers:
        scaling_step = replace(scaling_step, status="blocked",
                               summary=f"{target.label} cannot run this deployment as it is: {dep.blockers[0]}",
                               cannot=tuple(dep.blockers) + tuple(c for c in scaling_step.cannot
                                                                  if c not in dep.blockers))
        plan = replace(plan, findings=plan.findings + tuple(
            Finding("error", "target-blocked", b, None, "scaling") for b in dep.blockers))
    spec = getattr(target, "verify_spec", None)
    if spec is not None and spec.auth in ("header-pair", "identity-token") and app.primary_service is not None:
        if dep.public:
            findings_pub = Finding("warning", "public-endpoint", f"the endpoint is public on {target.label}, as the app "
                                   "was on Fly (clients call APP.fly.dev with no platform credentials): anyone can call "
                                   "it and start GPU instances, and the app's own key, if it checks one, is the only "
                                   "guard. Plan with --access private to require the platform's auth instead (then "
                                   "every client must send it).", app.config_path, "base_urls")
        else:
            findings_pub = Finding("info", "private-endpoint", f"the endpoint is private on {target.label} (its "
                                   "clients used private Fly addresses, or --access private): every client must send "
                                   f"{dep.auth_header or 'the platform credentials'}.", app.config_path, "base_urls")
        plan = replace(plan, findings=plan.findings + (findings_pub,))
    extra = [f for f in target.findings(dep, app) if (f.severity, f.code, f.message, f.where) not in
             {(x.severity, x.code, x.message, x.where) for x in plan.findings}]
    if extra:
        plan = replace(plan, findings=tuple(sorted(plan.findings + tuple(extra),
                                                   key=lambda f: _SEVERITY_ORDER[f.severity])))
    if dep.client_auth and url_step.status != "nothing_to_do":
        # the rewritten clients read the target's credentials from their environment, by name
        from .requestauth import describe

        names = " and ".join(dict.fromkeys(e for _, _, e in dep.client_auth))
        note = spec.client_env_note if spec is not None else ""
        line = (f"set {names} where the clients run (they read it by name{f': {note}' if note else ''})"
                if auth_adds else f"clients must send `{describe(dep.client_auth)}` on every request (no request "
                f"in the code here was rewritten; {note})" if note else "")
        url_step = replace(url_step, needs=url_step.needs + ((line,) if line else ()))
    elif dep.auth_header and url_step.status != "nothing_to_do":
        # flymigrate rewrites where clients call, not how they authenticate: say what they must send
        url_step = replace(url_step, needs=url_step.needs + (
            f"clients must send `{dep.auth_header}` on every request (the URL is rewritten; your auth code is "
            "not: add the header where the client builds its requests)",))
    steps = tuple(replace(st, needs=st.needs + tuple(n for n in target.credentials(st.id) if n not in st.needs))
                  if st.status in ("ready", "blocked") else st
                  for st in (weights_step, docker_step, secret_step, url_step, scaling_step))
    assert tuple(s.id for s in steps) == STEP_IDS
    return replace(plan, steps=steps, deployment=dep)


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen = set()
    out = []
    for f in findings:
        key = (f.severity, f.code, f.message, f.where)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def _fmt_bytes(n: int | None) -> str:
    if not n:
        return "unknown size"
    for unit, div in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n} B"


def _weights_step(w: WeightsPlan, dep, target, checks: tuple[str, ...]) -> Step:  # type: ignore[no-untyped-def]
    """What the weights step will do: the Deployment's source, destination, layout and mount, nothing else."""
    info_title = load_steps()["weights"].title
    lay = dep.layout
    if not w.sources and not lay.mount_path and not dep.weights_source:
        return Step("weights", info_title, "nothing_to_do", "No weights found: no volume, no model id, nothing "
                    "downloaded in the image. If the app loads weights from elsewhere, move them with "
                    "`flymigrate transfer SRC DST`.", manual_checks=checks)
    changes: list[str] = []
    needs: list[str] = []
    cannot: list[str] = []
    status = "ready"
    src = dep.weights_source
    chosen = w.chosen if w.chosen and w.chosen.url == src else None
    dest = dep.weights_dest
    if src:
        kind = chosen.kind if chosen else ("hf" if src.startswith("hf://") else "s3" if src.startswith("s3://")
                                           else "fly-volume" if src.startswith("fly-volume://") else "local")
        where = dest + (lay.subdir + "/" if lay.subdir else "") if dest else dest
        if kind == "hf":
            changes.append(f"Copy {src} (pinned to the commit it resolves to when the transfer starts) -> {where}"
                           + (" in the Hugging Face cache layout (snapshots/<commit>/ + refs/main)"
                              if lay.kind == "hf-cache" else ""))
            needs.append("HF_TOKEN in the environment if the repository is gated or private")
        elif kind == "tigris":
            changes.append(f"Copy {src} from Tigris -> {where}")
            needs.append("AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_ENDPOINT_URL_S3 for the Tigris bucket "
                         "in the environment (or in the --secrets export)")
        elif kind == "fly-volume":
            changes.append(f"Copy the Fly volume through a CPU helper machine: {src} -> {where}")
            needs.append("flyctl on PATH and logged in (the helper machine is removed afterwards)")
            cannot.append("GPU-host volumes may not accept a CPU machine any more; if the helper cannot start, "
                          "fork the volume (`fly volumes fork`) or re-fetch from the origin")
        else:
            changes.append(f"Copy {src} -> {where}")
    else:
        status = "manual"
        needs.append("the weights' source: pass --weights-from hf://ORG/REPO, s3://BUCKET/PREFIX, a local folder "
                     "or fly-volume://APP/VOLUME/")
    for s in w.sources:
        if s.kind in ("ollama", "baked") and not (src and src.startswith("hf://")):
            cannot.append(s.description)
    if lay.mount_path:
        wenv = [f"{k}={v}" for k, v in dep.env if dict(dep.env_origins).get(k, "").startswith("weights")]
        if w.mount_path:
            line = f"Mount the weights where the app expects them: {lay.mount_path}"
        else:
            line = (f"Mount the weights volume at {lay.mount_path} (fly.toml has no volume: the app downloaded "
                    "them at start; now they are read from the volume)")
        if target.weights_mount_root:
            line += (f" ({target.label} mounts the network volume at {target.weights_mount_root}; this app's files "
                     f"are under {target.weights_mount_root}/{dep.slug}, linked to {lay.mount_path})")
        if wenv:
            line += "; set " + ", ".join(wenv)
        changes.append(line)
    needs += target.weights_needs()
    if dest and "<" in dest and not needs[len(needs) - len(target.weights_needs()):]:
        needs.append(f"{target.weights_option_hint()}: the destination {dest} has a placeholder")
    needs += target.weights_blocking(dep)
    others = [s.description for s in w.sources if s is not w.chosen and s.kind not in ("ollama", "baked")]
    summary = (f"{'From ' + (chosen.description if chosen else src) if src else 'Source unknown'}; "
               f"{_fmt_bytes(w.size_bytes) + ' (volume size, an upper bound)' if w.size_bytes else 'size unknown until listed'}; "
               f"to {target.label}." + (f" Also found: {'; '.join(others)}." if others else ""))
    return Step("weights", info_title, status, summary, tuple(changes), tuple(needs), tuple(cannot), checks)  # type: ignore[arg-type]


def _docker_step(app: FlyApp, df: Dockerfile | None, issues: list[DockerIssue], platform_lines: list[str],
                 checks: tuple[str, ...]) -> Step:
    title = load_steps()["dockerfile"].title
    auto = [i for i in issues if i.fix and getattr(i, "auto", True)]
    by_hand = [i for i in issues if i.fix and not getattr(i, "auto", True)]
    changes = [f"{i.where + ': ' if i.where else ''}{i.message} -> {i.fix}" for i in auto] + list(platform_lines)
    needs: list[str] = []
    cannot: list[str] = [f"{i.where + ': ' if i.where else ''}{i.message} -> fix by hand: {i.fix}" for i in by_hand]
    if df is None and not app.build.image:
        needs.append("a Dockerfile or [build] image: none was found")
    if any(i.kind == "registry" for i in issues):
        needs.append("re-push the image out of registry.fly.io (`fly auth docker`, docker pull/tag/push)")
    # ready: apply has something to do here (what it needs from you is listed beside it); manual: only you can
    status = "ready" if (changes or df is not None) else ("manual" if needs else "nothing_to_do")
    for i in issues:
        if i.kind == "files" and "secret" in i.message:
            cannot.append(f"{i.message} (a secret file: mount it from the target's secret store)")
    source = f"{df.path} ({len(df.instructions)} instructions)" if df else (
        f"image {app.build.image}" if app.build.image else "no Dockerfile")
    summary = f"{source}: {len(issues)} Fly-specific item(s) to fix." if issues else f"{source}: nothing Fly-specific found."
    return Step("dockerfile", title, status, summary, tuple(changes), tuple(needs), tuple(cannot), checks)  # type: ignore[arg-type]


def _secret_plans(app: FlyApp, export: SecretsExport | None, target, app_name: str  # type: ignore[no-untyped-def]
                  ) -> tuple[list[SecretPlan], list[Finding]]:
    findings: list[Finding] = []
    for name, _value in app.env:
        if SECRETY_NAME_RE.search(name):
            findings.append(Finding("warning", "secret-in-env", f"[env] {name} looks like a secret committed in "
                                    "fly.toml; move it to the target's secret store and rotate it.",
                                    app.env_line(name), "secrets"))
    names_needed = [f.secret_name for f in app.files if f.secret_name]
    plans: list[SecretPlan] = []
    if export is not None:
        for s in export.secrets:
            plans.append(SecretPlan(s.name, s.has_value, target.secret_ref(app_name, s.name), s.where))
    known = {p.name for p in plans}
    for n in names_needed:
        if n not in known:
            plans.append(SecretPlan(n, False, target.secret_ref(app_name, n), "[[files]] secret_name"))
    missing = [p.name for p in plans if not p.has_value]
    if missing:
        findings.append(Finding("error", "secret-values-missing", f"{len(missing)} secret(s) have no value in the "
                                f"export: {', '.join(missing)}. Supply them in a .env file passed with --secrets.",
                                export.path if export else None, "secrets"))
    return plans, findings


def _secrets_step(plans: list[SecretPlan], export: SecretsExport | None, dep, target,  # type: ignore[no-untyped-def]
                  checks: tuple[str, ...]) -> Step:
    title = load_steps()["secrets"].title
    missing = [p.name for p in plans if not p.has_value]
    if export is None and not plans:
        return Step("secrets", title, "manual", "No secrets export given: if the app has Fly secrets, "
                    "export them and pass --secrets (names: `fly secrets list --json`; values: your .env or "
                    "`fly ssh console -C env` on a running machine).",
                    needs=("a secrets export (--secrets FILE)",), manual_checks=checks)
    changes = [target.secrets_summary(dep, len(plans) - len(missing))] if plans else []
    needs = [f"the value of {n} (never exported; Fly cannot show it again)" for n in missing]
    status = "blocked" if missing else ("ready" if plans else "nothing_to_do")
    summary = (f"{len(plans)} secret(s), {len(plans) - len(missing)} with a value, {len(missing)} missing."
               if plans else "The export holds no secrets.")
    return Step("secrets", title, status, summary, tuple(changes), tuple(needs), (), checks)  # type: ignore[arg-type]


def _base_url_step(hits, others, placeholder: bool, new_base: str, checks: tuple[str, ...],
                   app: FlyApp) -> tuple[Step, list[Finding]]:
    title = load_steps()["base_urls"].title
    findings: list[Finding] = []
    private = [h for h in hits if h.kind in ("flycast", "internal", "fdaa")]
    if private:
        findings.append(Finding("warning", "now-public", f"{len(private)} reference(s) use a private Fly address "
                                "(.flycast/.internal/fdaa:); the new endpoint is public, so add authentication on "
                                "the target and send the credential from these clients.",
                                f"{private[0].path}:{private[0].line}", "base_urls"))
    for h in others:
        findings.append(Finding("info", "other-fly-app", f"{h.old} is another Fly app, not rewritten; it must move "
                                "too (or stay reachable).", f"{h.path}:{h.line}", "base_urls"))
    if app.app is None:
        findings.append(Finding("warning", "urls-unsearchable", "without an app name only other Fly apps' hostnames "
                                "and fdaa: addresses can be found; set `app` in fly.toml or pass --app NAME.",
                                app.config_path, "base_urls"))
    if not hits:
        return Step("base_urls", title, "nothing_to_do", "No base URLs of this app were found in the scanned code.",
                    manual_checks=checks), findings
    files = sorted({h.path for h in hits})
    changes = [f"{h.path}:{h.line}: {h.old} -> {h.new}" for h in hits if h.new is not None]
    needs = ["the new endpoint URL (--base-url URL, or it is read after --deploy)"] if placeholder else []
    fdaa = [h for h in hits if h.kind == "fdaa"]
    cannot = [f"{h.path}:{h.line}: literal 6PN address {h.old}: check it belongs to this app" for h in fdaa]
    summary = (f"{len(hits)} occurrence(s) in {len(files)} file(s) -> "
               f"{new_base}{' (placeholder until the endpoint exists)' if placeholder else ''}.")
    return Step("base_urls", title, "ready" if not placeholder else "manual", summary, tuple(changes), tuple(needs),
                tuple(cannot), checks), findings


def _scaling_step(s: ScalingPlan, tgpu: TargetGpu | None, label: str, checks: tuple[str, ...],
                  lossy: tuple[str, ...], cpu_only: bool = False) -> Step:
    title = load_steps()["scaling"].title
    changes = [f"{k} = {v}" for k, v in s.config] + [f"why: {n}" for n in s.notes]
    if cpu_only:
        changes.insert(0, "CPU only: no GPU on any target")
    if tgpu is not None and not tgpu.blocked:
        changes.insert(0, f"GPU: {tgpu.name}{'' if tgpu.count == 1 or ':' in (tgpu.name or '') else f' x{tgpu.count}'}"
                       f" ({tgpu.label}) - {tgpu.reason}")
    cannot = list(lossy)
    if tgpu is not None and tgpu.blocked:
        return Step("scaling", title, "blocked", f"{label} cannot run this GPU configuration: {tgpu.reason}.",
                    tuple(changes), (), (tgpu.reason, *cannot), checks)
    needs = () if tgpu is not None or cpu_only else ("the GPU kind (--gpu KIND[:N])",)
    idle = f"idle timeout {s.idle_timeout_s} s" if s.idle_timeout_s else "always on" if s.min == s.max else "idle timeout fixed by the platform"
    conc = (f"concurrency {s.max_concurrency}" if s.max_concurrency else
            f"no per-instance concurrency cap (scales out at {s.target_concurrency} in flight)"
            if s.target_concurrency else "no per-instance concurrency cap")
    summary = f"min {s.min}, max {s.max}, {idle}, {conc}."
    return Step("scaling", title, "ready" if tgpu is not None or cpu_only else "manual", summary, tuple(changes),
                needs, tuple(cannot), checks)
