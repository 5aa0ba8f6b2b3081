"""Run a migrated app the way its platform would, on this machine, and say whether it serves.

Input: an app folder after ``flymigrate apply APP --to TARGET`` (the rewritten Dockerfile, and the target's
generated file: ``modal_app.py``, ``runpod-endpoint.json`` or ``service.yaml``), the contents of the weights
volume as the transfer wrote it (a local directory), and the secret values as the platform holds them. The
harness reads only those files (``modal_app.py`` with :mod:`ast`, never importing modal), then:

1. builds the container's file system from the Dockerfile (:mod:`dockerimage`): COPY/ADD, WORKDIR, and the RUN
   steps that shape files (a baked ``huggingface-cli download --local-dir`` runs for real against the loopback
   Hub); the inference servers are stand-ins (:mod:`standins`) installed under the real names;
2. starts the container's process as the platform does -- argv (ENTRYPOINT/CMD or the platform's override),
   environment (image ENV + the platform's env + secrets + PORT/PORT_HEALTH), working directory, the weights
   volume at its mount path (read-only where the platform mounts it so) -- in a user + mount namespace
   (:mod:`nsroot`), so container paths such as ``/models`` exist without touching the host's ``/``;
3. probes it as the platform does (RunPod LB: ``GET /ping`` on ``PORT_HEALTH``, 204 while loading then 200;
   Cloud Run: the startup probe in service.yaml; Modal: the server's port opening);
4. runs the rewritten client (its own code, its own URL path and headers) against a "front" that plays the
   platform's router: the platform's own authentication, then the request forwarded to the container.

Facts the emulator cannot observe on this machine (the GPU model, the endpoint kind) are checked statically,
each stated as such in the result with its source.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from serve import dockerimage  # noqa: E402

STANDINS = HERE / "standins"
RUNPOD_KEY = "rpa_HARNESSrunpodkey0000"  # the RunPod API key the client is given
MODAL_PROXY = ("wk-harness", "ws-harness")  # Modal-Key / Modal-Secret for proxy-auth endpoints
ID_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJoYXJuZXNzIjoxfQ.harness-signature"  # what `gcloud auth print-identity-token` prints
PROBE_SECONDS = float(os.environ.get("HARNESS_PROBE_SECONDS", "8"))

# Blackwell (sm_120) needs CUDA >= 12.8 and a stack built for it: sm_120 arrived in CUDA 12.8 (NVIDIA CUDA 12.8
# release notes) and PyTorch 2.7 (its first cu128 stable wheels); vLLM wheels were CUDA 12.4 builds before the
# 0.9 line (vllm-project/vllm#13306 "Support for RTX 5090 (CUDA 12.8)"; #18995, #20522: "no kernel image is
# available for execution on the device"). ../shared/research/platforms-2026.md, "Google Cloud Run".
BLACKWELL = {"nvidia-rtx-pro-6000"}


# --------------------------------------------------------------------------------------------- results
@dataclass
class Result:
    serves: bool
    reason: str = ""
    log: list[str] = field(default_factory=list)
    static: list[str] = field(default_factory=list)  # static checks that failed (facts not observable here)

    def __str__(self) -> str:
        return "serves" if self.serves else f"does not serve: {self.reason}"


class NotServing(Exception):
    pass


# ------------------------------------------------------------------------------------------ deployment
@dataclass
class Deployment:
    """What the platform would run, read from the generated files (platform-neutral)."""

    target: str
    image: dockerimage.Image
    argv: list[str]
    env: dict[str, str]
    workdir: str
    mounts: list[tuple[str, str, bool]]  # (container path, volume key, read-only)
    port: int  # where the platform sends traffic
    probe: dict[str, Any]  # {"kind": "runpod-ping"|"http"|"tcp"|"port", "port": N, "path": "/x"}
    gpu_kind: str = ""
    gpu_count: int = 1
    auth: str = "none"  # runpod-key | modal-proxy | cloudrun-iam | none
    static: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _dockerfile_path(app: Path) -> Path:
    try:
        import tomllib

        cfg = tomllib.loads((app / "fly.toml").read_text(encoding="utf-8"))
        df = (cfg.get("build") or {}).get("dockerfile")
        if df and (app / df).is_file():
            return app / df
    except (OSError, ValueError):
        pass
    return app / "Dockerfile"


def _secret_value(store: dict[str, str], name: str, where: str) -> str:
    if name not in store:
        raise NotServing(f"{where}: secret {name!r} does not exist on the platform")
    return store[name]


# RunPod ------------------------------------------------------------------------------------------------
def read_runpod(app: Path, secrets: dict[str, str]) -> Deployment:
    """runpod-endpoint.json: a template (image, env, dockerArgs, ports) and an endpoint (type, GPUs, volume).

    RunPod facts (runpod/docs serverless/load-balancing/overview.mdx, read via ../shared/research/platforms-2026.md):
    only a load-balancing endpoint (type LB) sends HTTP to the worker; a queue endpoint runs a handler and
    never calls an HTTP server. LB workers get traffic on ``PORT`` (default 80) and are health-checked with
    ``GET /ping`` on ``PORT_HEALTH`` (default PORT): 204 while initialising, 200 when ready. Clients call
    ``https://ENDPOINT_ID.api.runpod.ai/PATH`` with ``Authorization: Bearer <RunPod API key>``. A network
    volume is mounted at ``/runpod-volume``. Template env may reference ``{{ RUNPOD_SECRET_name }}``
    (docs.runpod.io, secrets).
    """
    spec = json.loads((app / "runpod-endpoint.json").read_text(encoding="utf-8"))
    tpl, ep = spec.get("template", {}), spec.get("endpoint", {})
    img = dockerimage.load(_dockerfile_path(app))
    env = dict(img.env)
    # the v1 shape (a template with an env list) or REST v2's (the endpoint carries image, env object, args)
    items = [(i["key"], i.get("value", "")) for i in tpl.get("env") or []] if tpl else list((ep.get("env") or {}).items())
    for key, value in items:
        v = str(value)
        for m in re.finditer(r"\{\{\s*RUNPOD_SECRET_(\w+)\s*\}\}", v):
            name = m.group(1)
            # a namespaced secret (flymigrate-<app>-NAME) holds the export's NAME
            short = re.sub(r"^flymigrate-[a-z0-9-]+?-(?=[A-Z_])", "", name)
            v = v.replace(m.group(0), _secret_value(secrets, short if short in secrets else name, "RunPod env"))
        env[key] = v
    args = tpl.get("dockerArgs") if tpl else ep.get("args")
    cmd = (shlex.split(args) if isinstance(args, str) else list(args)) if args else None
    argv = img.argv(cmd=cmd) if cmd is not None else img.argv()
    port = int(env.get("PORT") or 80)
    health = int(env.get("PORT_HEALTH") or port)
    d = Deployment("runpod", img, argv, env, img.workdir, [], port, {"kind": "runpod-ping", "port": health},
                   gpu_kind=str(ep.get("gpuIds", "") or (ep.get("gpu") or {}).get("pools", "")),
                   gpu_count=int(ep.get("gpuCount") or (ep.get("gpu") or {}).get("count") or 1), auth="runpod-key")
    if ep.get("networkVolumeId") or ep.get("networkVolumes"):
        d.mounts.append(("/runpod-volume", "volume", False))
    kind = next((str(v) for k, v in ep.items() if k.lower() in ("type", "endpointtype")), "")
    if kind.upper() not in ("LB", "LOAD_BALANCER", "LOADBALANCER"):
        d.static.append("RunPod queue endpoint: an HTTP server is never called (runpod-endpoint.json endpoint "
                        f"has {'type ' + kind if kind else 'no type'}; an HTTP server needs type LB -- runpod/docs "
                        "serverless/load-balancing/overview.mdx)")
    return d


# Cloud Run ---------------------------------------------------------------------------------------------
def read_cloudrun(app: Path, secrets: dict[str, str]) -> Deployment:
    """service.yaml (Knative Service). Cloud Run runs ``command`` (else ENTRYPOINT) + ``args`` (else CMD), sets
    ``PORT`` to the container port (default 8080), holds traffic until the startup probe passes (default: a
    TCP probe on the port), mounts Cloud Storage FUSE volumes (``readOnly`` honoured, ``only-dir`` = the
    bucket prefix shown) and is private unless the invoker check is off or allUsers may invoke
    (cloud.google.com/run/docs: container contract, configuring/healthchecks, configuring/services/cloud-storage-volume-mounts,
    authenticating/service-to-service).
    """
    import yaml

    svc = yaml.safe_load((app / "service.yaml").read_text(encoding="utf-8"))
    tspec = svc["spec"]["template"]["spec"]
    tmeta = svc["spec"]["template"].get("metadata", {})
    c = tspec["containers"][0]
    img = dockerimage.load(_dockerfile_path(app))
    ep = c.get("command")
    args = c.get("args")
    if ep is not None:
        argv = list(ep) + list(args if args is not None else [])
    else:
        argv = img.argv(cmd=list(args)) if args is not None else img.argv()
    port = int(((c.get("ports") or [{}])[0]).get("containerPort") or 8080)
    env = dict(img.env)
    for e in c.get("env") or []:
        if "value" in e:
            env[e["name"]] = str(e["value"])
        elif "valueFrom" in e:
            ref = e["valueFrom"].get("secretKeyRef", {})
            env[e["name"]] = _secret_value(secrets, ref.get("name", ""), "service.yaml env " + e["name"])
    env["PORT"] = str(port)
    sp = c.get("startupProbe")
    notes = []
    if sp:
        window = int(sp.get("periodSeconds", 10)) * int(sp.get("failureThreshold", 3))
        if window > 240:
            # not a verdict: the limit for services is not settled in Google's pages (worker pools: "a maximum of
            # 240 seconds, calculated as failureThreshold * periodSeconds"; jobs: 600 s, 1800 s with a GPU;
            # services' default TCP probe is 240 s x 1) -- cloud.google.com/run/docs/configuring/*/healthchecks
            notes.append(f"startup probe window {window} s (failureThreshold x periodSeconds) is above 240 s: "
                         "check that Cloud Run accepts it for a GPU service")
    if sp and "httpGet" in sp:
        probe = {"kind": "http", "port": int(sp["httpGet"].get("port") or port), "path": sp["httpGet"].get("path", "/")}
    elif sp and "tcpSocket" in sp:
        probe = {"kind": "tcp", "port": int(sp["tcpSocket"].get("port") or port)}
    else:
        probe = {"kind": "tcp", "port": port}
    vols = {v["name"]: v for v in tspec.get("volumes") or []}
    mounts = []
    for vm in c.get("volumeMounts") or []:
        v = vols.get(vm["name"], {})
        csi = v.get("csi") or {}
        ro = bool(csi.get("readOnly") or vm.get("readOnly"))
        opts = (csi.get("volumeAttributes") or {}).get("mountOptions", "")
        m = re.search(r"only-dir=([^,]+)", opts)
        key = "volume" + ("/" + m.group(1).strip("/") if m else "")
        mounts.append((vm["mountPath"], key, ro))
    accel = ((tspec.get("nodeSelector") or {}).get("run.googleapis.com/accelerator", ""))
    gpus = int(((c.get("resources") or {}).get("limits") or {}).get("nvidia.com/gpu") or (1 if accel else 0))
    public = tmeta.get("annotations", {}).get("run.googleapis.com/invoker-iam-disabled") == "true" or \
        (svc.get("metadata", {}).get("annotations", {}) or {}).get("run.googleapis.com/invoker-iam-disabled") == "true"
    # a public service: the invoker check off (annotation above), or a generated deploy step granting allUsers
    # run.invoker (gcloud run deploy --allow-unauthenticated / add-iam-policy-binding --member=allUsers)
    for f in app.rglob("*"):
        if ".flymigrate" in f.parts or not f.is_file() or f.suffix not in (".sh", ".md", ".txt", ".yaml") \
                or f.stat().st_size > 200_000:
            continue
        for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line.lstrip().startswith("#") and ("--allow-unauthenticated" in line
                                                      or re.search(r"add-iam-policy-binding.*allUsers", line)):
                public = True
    d = Deployment("cloudrun", img, argv, env, img.workdir, mounts, port, probe, gpu_kind=accel, gpu_count=gpus,
                   auth="none" if public else "cloudrun-iam")
    d.notes.extend(notes)
    if accel in BLACKWELL:
        stack = _stack(img)
        if stack:
            d.static.append(f"Blackwell GPU ({accel}, sm_120), image stack {stack}: kernels fail with \"no kernel "
                            "image is available for execution on the device\" (vllm-project/vllm#20522, #18995)")
    return d


def _stack(img: dockerimage.Image) -> str:
    """Why this image cannot run on sm_120, or '' when nothing says so."""
    v = dockerimage._ver
    p = img.packages
    if p.get("vllm") and v(p["vllm"]) < (0, 9, 0):
        return f"vLLM {p['vllm']} (CUDA 12.4 wheels; Blackwell builds from 0.9)"
    if p.get("torch") and v(p["torch"]) < (2, 7, 0):
        return f"torch {p['torch']} (< 2.7)"
    if img.base.cuda and v(img.base.cuda) < (12, 8):
        return f"cuda {img.base.cuda} (base {img.base_ref}; < 12.8)"
    # ollama releases up to 0.5.7 (2025-01-16) predate CUDA 12.8 (2025-01-23, the first toolkit with sm_120);
    # Blackwell codegen was proposed after it (ollama/ollama#8521, 2025-01-21)
    o = p.get("ollama", "").lstrip("v")
    if o and o != "latest" and o[:1].isdigit() and v(o) < (0, 5, 8):
        return f"ollama {o} (built before CUDA 12.8)"
    return ""


# Modal -------------------------------------------------------------------------------------------------
def _lit(node: ast.AST, names: dict[str, Any]) -> Any:
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError):
        return None


def _call_name(node: ast.AST) -> str:
    if isinstance(node, ast.Call):
        return _call_name(node.func)
    if isinstance(node, ast.Attribute):
        return _call_name(node.value) + "." + node.attr
    if isinstance(node, ast.Name):
        return node.id
    return "?"


def _chain(node: ast.AST) -> list[ast.Call]:
    out = []
    while isinstance(node, ast.Call):
        out.append(node)
        node = node.func.value if isinstance(node.func, ast.Attribute) else None  # type: ignore[assignment]
    return list(reversed(out))


def read_modal(app: Path, secrets: dict[str, str]) -> Deployment:
    """modal_app.py, parsed (never imported). Modal facts: ``Image.from_dockerfile`` builds the image but Modal
    starts the *function*, not the image's ENTRYPOINT/CMD, and "to be used with a Modal Function, the image needs
    to have python and pip installed and available on the $PATH", else ``add_python=``
    (modal.com/docs/guide/existing-images); ``@modal.web_server(port)`` and ``@app.server(port=...)`` route HTTP to the port once it
    accepts connections; ``web_server`` endpoints are public unless ``requires_proxy_auth=True``, ``app.server``
    requires ``Modal-Key``/``Modal-Secret`` unless ``unauthenticated=True`` (modal.com/docs/guide/servers;
    modal 1.6.4 ``App.server`` signature). Volumes mount at the dict's keys; ``gpu="A100-80GB:2"`` is 2 GPUs.
    """
    src = (app / "modal_app.py").read_text(encoding="utf-8")
    tree = ast.parse(src)
    names: dict[str, Any] = {}
    nodes: dict[str, ast.AST] = {}  # module-level NAME = <expr>, to follow `secrets=secrets` and the like
    volumes: dict[str, str] = {}
    image_chain: list[ast.Call] = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            n = node.targets[0].id
            nodes[n] = node.value
            val = _lit(node.value, names)
            if val is not None:
                names[n] = val
            cn = _call_name(node.value)
            if "Volume.from_name" in cn:
                volumes[n] = _lit(_chain(node.value)[0].args[0], names) if "from_name" in _call_name(
                    _chain(node.value)[0]) else "?"
                for call in _chain(node.value):
                    if _call_name(call).endswith("Volume.from_name"):
                        volumes[n] = _lit(call.args[0], names)
            if "Image." in cn:
                image_chain = _chain(node.value)
    df = app / "Dockerfile"
    add_python = False
    img_env: dict[str, str] = {}
    workdir = None
    entry_override = None
    for call in image_chain:
        nm = _call_name(call.func) if isinstance(call.func, ast.Attribute) else ""
        attr = call.func.attr if isinstance(call.func, ast.Attribute) else ""
        if attr == "from_dockerfile" and call.args:
            a = call.args[0]
            if isinstance(a, ast.BinOp) and isinstance(a.right, ast.Constant):
                df = app / a.right.value
            elif isinstance(a, ast.Constant):
                df = app / a.value
            if any(k.arg == "add_python" and _lit(k.value, names) for k in call.keywords):
                add_python = True
        elif attr in ("from_registry",) and any(k.arg == "add_python" and _lit(k.value, names) for k in call.keywords):
            add_python = True
        elif attr == "dockerfile_commands" and call.args:
            # an image command that puts `python` on PATH (e.g. a link to the image's python3) counts as providing it
            cmds = _lit(call.args[0], names) if not isinstance(call.args[0], ast.Constant) else [call.args[0].value]
            for c in cmds or []:
                if isinstance(c, str) and "/python" in c and ("ln " in c or "ln -" in c):
                    add_python = True
        elif attr == "env" and call.args:
            img_env.update(_lit(call.args[0], names) or {})
        elif attr == "workdir" and call.args:
            workdir = _lit(call.args[0], names)
        elif attr == "entrypoint":
            entry_override = _lit(call.args[0], names) if call.args else []
        del nm
    img = dockerimage.load(df)
    fn = None
    deco: dict[str, Any] = {}
    fkw: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            for dec in node.decorator_list:
                dn = _call_name(dec)
                if dn.endswith("web_server") or dn.endswith(".server") or dn.endswith("web_endpoint") \
                        or dn.endswith("asgi_app") or dn.endswith("wsgi_app"):
                    fn = node
                    deco["kind"] = dn.rsplit(".", 1)[-1]
                    if isinstance(dec, ast.Call):
                        if dec.args:
                            deco["port"] = _lit(dec.args[0], names)
                        for k in dec.keywords:
                            deco[k.arg] = _lit(k.value, names)
                            if k.arg in ("env", "gpu", "volumes", "secrets"):
                                fkw[k.arg] = k.value
                if dn.endswith(".function") or dn.endswith(".cls"):
                    if isinstance(dec, ast.Call):
                        for k in dec.keywords:
                            fkw[k.arg] = k.value
    if fn is None:
        raise NotServing("modal_app.py has no web endpoint (@modal.web_server / @app.server): nothing serves HTTP")
    for k, v in list(fkw.items()):
        while isinstance(v, ast.Name) and v.id in nodes:
            v = nodes[v.id]
        fkw[k] = v
    env = dict(img.env)
    env.update(img_env)
    env.update(_lit(fkw["env"], names) or {} if "env" in fkw else {})
    if "secrets" in fkw and isinstance(fkw["secrets"], ast.List):
        for el in fkw["secrets"].elts:
            if _call_name(el).endswith("Secret.from_name") and isinstance(el, ast.Call):
                sname = _lit(el.args[0], names)
                for k, v in _modal_secret(secrets, sname).items():
                    env[k] = v
            elif _call_name(el).endswith("Secret.from_dict") and isinstance(el, ast.Call):
                env.update(_lit(el.args[0], names) or {})
    gpu = _lit(fkw["gpu"], names) if "gpu" in fkw else ""
    gpu = gpu if isinstance(gpu, str) else ""
    count = int(gpu.split(":")[1]) if ":" in gpu else (1 if gpu else 0)
    mounts = []
    if "volumes" in fkw and isinstance(fkw["volumes"], ast.Dict):
        for k, v in zip(fkw["volumes"].keys, fkw["volumes"].values):
            path = _lit(k, names) if k is not None else None
            vname = volumes.get(v.id) if isinstance(v, ast.Name) else None
            if path:
                mounts.append((path, f"volume:{vname}", False))
    argv = _modal_argv(fn, names)
    port = int(deco.get("port") or 8000)
    auth = "none"
    if deco["kind"] == "server" and not deco.get("unauthenticated"):
        auth = "modal-proxy"
    if deco["kind"] == "web_server" and deco.get("requires_proxy_auth"):
        auth = "modal-proxy"
    d = Deployment("modal", img, argv, env, workdir or img.workdir, mounts, port, {"kind": "port", "port": port},
                   gpu_kind=gpu, gpu_count=count, auth=auth)
    if entry_override is not None:
        d.notes.append(f"image entrypoint overridden to {entry_override}")
    if "python" not in img.pythons and not add_python:
        have = ", ".join(sorted(img.pythons)) or "no python at all"
        d.static.append(f"Modal cannot start the function: the image ({img.base_ref}) has {have} on PATH, "
                        "no `python` (Modal runs the function with `python`; use add_python= or link python) -- "
                        "modal.com/docs/guide/existing-images")
    return d


def _modal_secret(store: dict[str, str], name: str) -> dict[str, str]:
    raw = store.get("modal:" + name)
    if raw is None:
        raise NotServing(f"modal_app.py references modal.Secret {name!r}, which does not exist in Modal")
    return json.loads(raw)


def _modal_argv(fn: ast.AST, names: dict[str, Any]) -> list[str]:
    """The process the function body starts: subprocess.Popen/run/call(X, shell=?), os.system(s), os.exec*."""
    for node in ast.walk(fn):
        if not isinstance(node, ast.Call):
            continue
        cn = _call_name(node.func)
        if cn.split(".")[-1] in ("Popen", "run", "call", "check_call") and cn.startswith("subprocess") and node.args:
            val = _lit(node.args[0], names)
            shell = any(k.arg == "shell" and _lit(k.value, names) for k in node.keywords)
            if isinstance(val, str):
                # POSIX Popen: a string without shell=True is the program's name (subprocess docs)
                return ["/bin/sh", "-c", val] if shell else [val]
            if isinstance(val, list):
                return ["/bin/sh", "-c", " ".join(val)] if shell else [str(x) for x in val]
            if val is None and isinstance(node.args[0], ast.Name):
                raise NotServing(f"modal_app.py starts {node.args[0].id}, which is not a literal the harness can read")
        if cn in ("os.system",) and node.args:
            val = _lit(node.args[0], names)
            if isinstance(val, str):
                return ["/bin/sh", "-c", val]
        if cn.startswith("os.exec") and len(node.args) >= 2:
            val = _lit(node.args[1], names)
            if isinstance(val, list):
                return [str(x) for x in val]
    raise NotServing("the Modal web endpoint's function starts no server process (no subprocess.Popen / os.exec)")


READERS = {"runpod": read_runpod, "cloudrun": read_cloudrun, "modal": read_modal}


# ------------------------------------------------------------------------------------------- container
@dataclass
class Container:
    root: Path
    status: Path
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None


def namespace_ok() -> str:
    """'' when user + mount namespaces work here, else why not."""
    us = shutil.which("unshare")
    if not us:
        return "no unshare(1)"
    r = subprocess.run([us, "-Urm", "true"], capture_output=True, text=True, check=False)
    return "" if r.returncode == 0 else f"unshare -Urm fails: {r.stderr.strip()[:200]}"


def _canon(path: str) -> str:
    """Resolve host symlinks in a container path's existing prefix (/bin/x -> /usr/bin/x on merged-usr hosts)."""
    parts = Path(path).parts
    cur = "/"
    for i, p in enumerate(parts[1:], start=1):
        nxt = os.path.join(cur, p)
        if os.path.islink(nxt):
            tgt = os.readlink(nxt)
            cur = os.path.normpath(os.path.join(cur, tgt))
            continue
        cur = nxt
        if not os.path.exists(nxt):
            return os.path.normpath(os.path.join(nxt, *parts[i + 1:]))
    return os.path.normpath(cur)


def _bin_script(name: str, target: str) -> str:
    return (f"#!{sys.executable}\nimport sys, runpy\nsys.path.insert(0, {str(STANDINS)!r})\n"
            f"sys.argv[0] = {name!r}\nrunpy.run_path({str(STANDINS / target)!r}, run_name='__main__')\n")


STANDIN_BINS = {"vllm": "vllm_server.py", "text-generation-launcher": "tgi_server.py", "ollama": "ollama_server.py",
                "huggingface-cli": "hf_cli.py", "hf": "hf_cli.py"}


class Runner:
    """Builds one container root (see :mod:`nsroot`: overlays, so writes land in ``work/root/up``) and runs
    processes in it."""

    def __init__(self, app: Path, work: Path, image: dockerimage.Image, *, hub_url: str | None = None,
                 log: list[str] | None = None) -> None:
        self.app, self.work, self.img = app, work, image
        self.root = work / "root"
        self.hub_url = hub_url
        self.log = log if log is not None else []

    def ipath(self, path: str) -> Path:
        """Where a container path's image content lives on the host (the overlay's upper layer)."""
        c = _canon(path) if path.startswith("/") else path
        parts = [x for x in c.split("/") if x]
        if parts and os.path.isdir("/" + parts[0]) and not os.path.islink("/" + parts[0]) and parts[0] != "tmp":
            return self.root / "up" / parts[0] / "/".join(parts[1:])
        return self.root / "up" / "_root" / "/".join(parts)

    # build ----------------------------------------------------------------------------------------
    def build(self) -> None:
        img = self.img
        hb = self.ipath("/.harness/bin")
        hb.mkdir(parents=True, exist_ok=True)
        site = self.ipath("/.harness/site")
        site.mkdir(parents=True, exist_ok=True)
        tools = dict.fromkeys(("huggingface-cli", "hf"))
        if "vllm" in img.packages:
            tools["vllm"] = None
        if "text-generation-inference" in img.packages:
            tools["text-generation-launcher"] = None
        if "ollama" in img.packages:
            tools["ollama"] = None
        for t in tools:
            p = hb / t
            p.write_text(_bin_script(t, STANDIN_BINS[t]))
            p.chmod(0o755)
        for py in img.pythons:
            (hb / py).symlink_to(sys.executable)
        for path, exe in img.base.files.items():
            dst = self.ipath(path)
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_text(_bin_script(exe, STANDIN_BINS[exe]))
            dst.chmod(0o755)
        if "vllm" in img.packages:
            (site / "vllm").symlink_to(STANDINS / "pylib" / "vllm")
        if "faster-whisper" in img.packages or "faster_whisper" in img.packages:
            (site / "faster_whisper").symlink_to(STANDINS / "pylib" / "faster_whisper")
        for w in img.workdirs + [img.workdir]:
            self.ipath(w).mkdir(parents=True, exist_ok=True)
        for srcs, dest, line in img.copies:
            self._copy(srcs, dest, line)
        for run, line in img.runs:
            keep, skipped = dockerimage.fs_segments(run)
            if skipped:
                self.log.append(f"Dockerfile:{line}: not replayed (installs; the stand-ins play them): "
                                + "; ".join(x[:60] for x in skipped))
            if keep:
                # rm of files the base image owns (apt lists...) may be refused here; it never shapes what serves
                self._run_build(" && ".join(f"{{ {k}; }} 2>/dev/null || true" if k.startswith("rm ") else k
                                            for k in keep), line)
        for stage, path, dest, line in img.stage_copies:
            self._play_stage(stage, path, dest, line)

    def _play_stage(self, stage: dockerimage.Stage, path: str, dest: str, line: int) -> None:
        """``COPY --from=STAGE PATH DEST``: the build stage is not run (its base image is not here); a C program it
        compiles (``RUN gcc ... -o PATH src.c``, the sources COPY'd from the context) is compiled the same way
        with this host's compiler, static when the host has a static libc, and put at DEST."""
        step = dockerimage.compile_step(stage, path)
        if step is None:
            raise NotServing(f"Dockerfile:{line}: COPY --from={stage.name} {path}: the harness cannot play that "
                             f"stage ({stage.base_ref}): no RUN in it compiles {path} from a C source in the "
                             "build context")
        args, sources, run_line = step
        cc = shutil.which("gcc") or shutil.which("cc")
        if cc is None:
            raise NotServing(f"Dockerfile:{run_line}: no C compiler on this machine to play stage {stage.name}")
        ctx = self.app.resolve()
        files = [str((ctx / src).resolve()) for src in sources]
        for src, f in zip(sources, files):
            if not f.startswith(str(ctx) + "/") or not Path(f).is_file():
                raise NotServing(f"Dockerfile:{line}: stage {stage.name} compiles {src}: not in the build context")
        out = self.work / f"stage-{stage.name}-{Path(path).name}"
        tries = [args] + ([[a for a in args if a != "-static"]] if "-static" in args else [])
        err = ""
        for k, a in enumerate(tries):
            p = subprocess.run([cc, *a, "-o", str(out), *files], capture_output=True, text=True, timeout=120)
            if p.returncode == 0:
                how = " ".join(["gcc", *a, "-o", path, *sources])
                self.log.append(f"Dockerfile:{run_line}: stage {stage.name} ({stage.base_ref}) played with this "
                                f"host's compiler: {how}" + (" (this host has no static libc: built dynamically; "
                                                             "the container root shares the host's /lib)"
                                                             if k else ""))
                break
            err = (p.stderr or p.stdout).strip().splitlines()[-1:] and (p.stderr or p.stdout).strip().splitlines()[-1]
        else:
            raise NotServing(f"Dockerfile:{run_line}: stage {stage.name}: `gcc {' '.join(args)}` fails here: {err}")
        target = dest.rstrip("/") + "/" + Path(path).name if dest.endswith("/") else dest
        t = self.ipath(target)
        t.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(out, t)
        t.chmod(0o755)

    def _copy(self, srcs: list[str], dest: str, line: int) -> None:
        ctx = self.app.resolve()
        for s in srcs:
            src = (ctx / s).resolve()
            if not (src == ctx or str(src).startswith(str(ctx) + "/")) or not src.exists():
                raise NotServing(f"Dockerfile:{line}: COPY {s}: not found in the build context")
            if src.is_dir():
                target = dest.rstrip("/") or "/"
            elif dest.endswith("/") or len(srcs) > 1:
                target = dest.rstrip("/") + "/" + src.name
            else:
                target = dest
            out = self.ipath(target)
            if src.is_dir():
                shutil.copytree(src, out, dirs_exist_ok=True, symlinks=True,
                                ignore=shutil.ignore_patterns(".flymigrate", ".git"))
            else:
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, out)

    def _run_build(self, cmd: str, line: int) -> None:
        env = {**self.img.build_args, **self.img.env,
               "PATH": "/.harness/bin:" + self.img.env.get("PATH", dockerimage.DEFAULT_PATH),
               "HOME": "/root", "HF_HUB_DISABLE_TELEMETRY": "1"}
        if self.hub_url:
            env["HF_ENDPOINT"] = self.hub_url
        env.pop("HF_HUB_OFFLINE", None)
        p = self.spawn(["/bin/sh", "-c", cmd], env, "/", [], capture=True)
        out, _ = p.communicate(timeout=60)
        if p.returncode != 0:
            raise NotServing(f"Dockerfile:{line}: the build step `{cmd}` fails: "
                             f"{out.decode(errors='replace').strip().splitlines()[-1:]}")

    # run ------------------------------------------------------------------------------------------
    def spawn(self, argv: list[str], env: dict[str, str], workdir: str, mounts: list[tuple[str, Path, bool]],
              *, capture: bool = False) -> subprocess.Popen[bytes]:
        spec = {"root": str(self.root), "workdir": workdir, "argv": argv, "status": "/.harness/status.jsonl",
                "mounts": [{"src": str(src), "dst": dst, "ro": ro} for dst, src, ro in mounts]}
        sp = self.work / f"spec-{time.monotonic_ns()}.json"
        sp.write_text(json.dumps(spec))
        self.logfile = self.work / "container.log"
        logf = open(self.logfile, "ab")
        try:
            return subprocess.Popen([shutil.which("unshare") or "unshare", "-Urm", sys.executable,
                                     str(HERE / "nsroot.py"), str(sp)], env=env,
                                    stdout=subprocess.PIPE if capture else logf, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        finally:
            logf.close()

    def tail(self, n: int = 3) -> str:
        try:
            lines = [x for x in self.logfile.read_text(errors="replace").splitlines() if x.strip()]
        except (OSError, AttributeError):
            return ""
        return " | ".join(lines[-n:])[:400]

    def status(self) -> list[dict[str, Any]]:
        p = self.ipath("/.harness/status.jsonl")
        if not p.exists():
            return []
        return [json.loads(x) for x in p.read_text(encoding="utf-8").splitlines() if x.strip()]

    def fatal(self) -> str | None:
        return next((e["fatal"] for e in self.status() if "fatal" in e), None)

    def listening(self) -> list[dict[str, Any]]:
        return [e["listening"] for e in self.status() if "listening" in e]


def _kill(p: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


# --------------------------------------------------------------------------------------------- probes
def _http(method: str, port: int, path: str, timeout: float = 1.0) -> tuple[int, bytes] | None:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (OSError, ValueError):
        return None


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def probe(d: Deployment, runner: Runner, proc: subprocess.Popen[bytes], log: list[str]) -> None:
    """Wait as the platform waits; raise NotServing with the platform's view of why the worker never got ready."""
    kind, port = d.probe["kind"], d.probe["port"]
    deadline = time.monotonic() + PROBE_SECONDS
    last = "no answer"
    n204 = 0  # RunPod /ping answers seen as 204 (initialising) before the 200
    while time.monotonic() < deadline:
        f = runner.fatal()
        if f:
            raise NotServing(f)
        _reachable(d, runner, port)
        if proc.poll() is not None:
            raise NotServing(f"the container's process exited with code {proc.returncode} before it was ready "
                             f"(argv {d.argv}): {runner.tail()}")
        if kind == "runpod-ping":
            r = _http("GET", port, "/ping")
            if r is None:
                last = f"nothing listens on PORT_HEALTH {port}"
            elif r[0] == 204:
                last = "204 (initialising)"
                n204 += 1
            elif r[0] == 200:
                log.append(f"RunPod health: GET /ping on PORT_HEALTH {port} -> 200" +
                           (f" (after {n204} x 204 while the server loaded)" if n204 else ""))
                return
            else:
                last = f"GET /ping on PORT_HEALTH {port} -> {r[0]}"
                if r[0] == 404:
                    raise NotServing(f"no /ping on PORT_HEALTH {port} (the server answers 404; RunPod never marks "
                                     "the worker ready)")
        elif kind == "http":
            r = _http("GET", port, d.probe["path"])
            if r is not None and 200 <= r[0] < 400:
                log.append(f"startup probe GET {d.probe['path']} on {port} -> {r[0]}")
                return
            last = f"startup probe GET {d.probe['path']} on port {port} -> " + (str(r[0]) if r else "refused")
        else:
            if _port_open(port):
                log.append(f"port {port} accepts connections")
                return
            last = f"nothing listens on port {port}"
        time.sleep(0.1)
    listen = runner.listening()
    where = f"; the server listens on {', '.join(str(x['host']) + ':' + str(x['port']) for x in listen)}" if listen else ""
    raise NotServing(f"never ready: {last}{where}")


def _reachable(d: Deployment, runner: Runner, probe_port: int | None = None) -> None:
    """A server bound to loopback is unreachable from the platform's proxy (it connects from outside)."""
    for x in runner.listening():
        if x["port"] in (d.port, probe_port) and x["host"] in ("127.0.0.1", "localhost", "::1"):
            raise NotServing(f"the server listens on {x['host']}:{x['port']} (loopback only): the platform's "
                             "proxy cannot reach it")
    if d.port not in {x["port"] for x in runner.listening()} and runner.listening():
        raise NotServing(f"traffic goes to port {d.port} but the server listens on "
                         f"{', '.join(str(x['port']) for x in runner.listening())}")


# ---------------------------------------------------------------------------------------------- front
class Front:
    """The platform's router: its own authentication, then the request forwarded to the container port."""

    HOSTS = {"runpod": r"^[a-z0-9]+\.api\.runpod\.ai$", "modal": r"\.modal\.(run|direct)$",
             "cloudrun": r"\.run\.app$"}

    def __init__(self, d: Deployment) -> None:
        self.d = d
        self.seen: list[str] = []
        self.srv: ThreadingHTTPServer | None = None

    def start(self) -> int:
        front = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def _any(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                code, headers, data, note = front.route(self.command, self.path, dict(self.headers.items()), body)
                front.seen.append(f"{self.command} {self.headers.get('X-Harness-Host', '')}{self.path} -> {code}"
                                  + (f" ({note})" if note else ""))
                self.send_response(code)
                for k, v in headers.items():
                    if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        return self.srv.server_address[1]

    def stop(self) -> None:
        if self.srv:
            self.srv.shutdown()
            self.srv.server_close()

    def route(self, method: str, path: str, headers: dict[str, str], body: bytes
              ) -> tuple[int, dict[str, str], bytes, str]:
        d = self.d
        host = headers.pop("X-Harness-Host", "").split(":")[0]
        headers.pop("X-Harness-Scheme", None)
        if not re.search(self.HOSTS[d.target], host):
            return 502, {}, b"not this deployment", f"the client calls {host}, not the {d.target} deployment"
        hk = {k.lower(): k for k in headers}
        auth = headers.get(hk.get("authorization", ""), "")
        if d.auth == "runpod-key" and auth != f"Bearer {RUNPOD_KEY}":
            return 401, {}, b"Unauthorized", "RunPod LB wants Authorization: Bearer <RunPod API key>"
        if d.auth == "modal-proxy" and (headers.get(hk.get("modal-key", ""), ""),
                                        headers.get(hk.get("modal-secret", ""), "")) != MODAL_PROXY:
            return 401, {}, b"missing Modal-Key/Modal-Secret", "Modal proxy auth wants Modal-Key and Modal-Secret"
        if d.auth == "cloudrun-iam":
            xs = headers.get(hk.get("x-serverless-authorization", ""), "")
            if xs != f"Bearer {ID_TOKEN}" and auth != f"Bearer {ID_TOKEN}":
                return 403, {}, b"Forbidden", "Cloud Run is private: no identity token"
            if xs:
                headers.pop(hk["x-serverless-authorization"])
        fwd = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length", "connection",
                                                                      "accept-encoding")}
        req = urllib.request.Request(f"http://127.0.0.1:{d.port}{path}", data=body or None, method=method,
                                     headers=fwd)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, dict(r.headers.items()), r.read(), ""
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers.items()), e.read(), "from the app"
        except OSError as e:
            return 502, {}, b"upstream unreachable", f"container port {d.port}: {e}"


# ------------------------------------------------------------------------------------------------ run
def client_env(secrets_env: dict[str, str], front_port: int, bindir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "MODAL_", "RUNPOD_", "AWS_"))}
    env.update(secrets_env)
    env.update(HARNESS_FRONT=f"127.0.0.1:{front_port}", PYTHONPATH=str(HERE / "clientshim"),
               RUNPOD_API_KEY=RUNPOD_KEY, MODAL_KEY=MODAL_PROXY[0], MODAL_SECRET=MODAL_PROXY[1],
               MODAL_PROXY_KEY=MODAL_PROXY[0], MODAL_PROXY_SECRET=MODAL_PROXY[1],
               CLOUD_RUN_ID_TOKEN=ID_TOKEN,  # what `export CLOUD_RUN_ID_TOKEN=$(gcloud auth print-identity-token)` sets
               PATH=f"{bindir}:{os.environ.get('PATH', '')}")
    return env


def _smoke(d: Deployment, front: Front, fport: int, log: list[str]) -> Result:
    """No client in the app (corpus apps): GET / through the platform with the platform's own credentials."""
    host = {"runpod": "harness01.api.runpod.ai", "modal": "harness--app-serve.modal.run",
            "cloudrun": "app-harness-uc.a.run.app"}[d.target]
    headers = {"X-Harness-Host": host, "Authorization": f"Bearer {RUNPOD_KEY}" if d.auth == "runpod-key" else
               f"Bearer {ID_TOKEN}" if d.auth == "cloudrun-iam" else "",
               "Modal-Key": MODAL_PROXY[0], "Modal-Secret": MODAL_PROXY[1]}
    req = urllib.request.Request(f"http://127.0.0.1:{fport}/", headers={k: v for k, v in headers.items() if v})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            code = r.status
    except urllib.error.HTTPError as e:
        code = e.code
    except OSError as e:
        return Result(False, f"GET / through the platform failed: {e}", log)
    log.extend(front.seen)
    log.append("no client in the app: sent GET / with the platform's credentials")
    if code >= 500:
        return Result(False, f"GET / through the platform -> {code}", log)
    return Result(True, "", log)


FAKE_GCLOUD_CLIENT = f"""#!/bin/sh
# `gcloud auth print-identity-token` for the client (the harness's Cloud Run front accepts this token)
if [ "$1 $2" = "auth print-identity-token" ]; then echo '{ID_TOKEN}'; exit 0; fi
echo "fake gcloud: $*" >&2; exit 2
"""


def run(app: Path, target: str, *, volumes: dict[str, Path], secrets: dict[str, str],
        client: list[str] | None = None, client_env_extra: dict[str, str] | None = None,
        hub_url: str | None = None, workdir: Path | None = None) -> Result:
    """Start APP's deployment for TARGET as the platform would and send the client's request.

    ``volumes``: "volume" (RunPod network volume / Cloud Run bucket root) or "volume:NAME" (a Modal volume)
    -> the local directory holding what the transfer wrote there.
    ``secrets``: the secret values as the platform holds them (Cloud Run secret id -> value; RunPod secret name
    -> value; "modal:NAME" -> JSON of the Modal secret's dict).
    ``client``: the argv of the rewritten client, run from APP (default: ``python3 client.py`` when present).
    """
    res = _run(app, target, volumes=volumes, secrets=secrets, client=client, client_env_extra=client_env_extra,
               hub_url=hub_url, workdir=workdir)
    return _redact(res, {**{k: v for k, v in secrets.items() if not k.startswith("modal:")},
                         **(client_env_extra or {}),
                         **{f"{k}/{n}": v for k, raw in secrets.items() if k.startswith("modal:")
                            for n, v in json.loads(raw).items()}})


def _redact(res: Result, values: dict[str, str]) -> Result:
    """Secret values never reach the harness's output: each is replaced by its name wherever it shows up."""
    pairs = sorted(((v, k) for k, v in values.items() if v and len(v) >= 4), key=lambda x: -len(x[0]))

    def clean(text: str) -> str:
        for v, k in pairs:
            text = text.replace(v, f"<secret {k}>")
        return text
    return Result(res.serves, clean(res.reason), [clean(x) for x in res.log], [clean(x) for x in res.static])


def _run(app: Path, target: str, *, volumes: dict[str, Path], secrets: dict[str, str],
         client: list[str] | None, client_env_extra: dict[str, str] | None, hub_url: str | None,
         workdir: Path | None) -> Result:
    log: list[str] = []
    try:
        d = READERS[target](app, secrets)
    except NotServing as e:
        return Result(False, str(e), log)
    except (OSError, ValueError, KeyError) as e:
        return Result(False, f"cannot read the generated {target} files: {e}", log)
    log.append(f"argv {d.argv}; workdir {d.workdir}; port {d.port}; probe {d.probe}")
    log.extend(f"note: {n}" for n in d.notes)
    res = _run_dynamic(d, app, log, volumes=volumes, client=client, client_env_extra=client_env_extra,
                       hub_url=hub_url, workdir=workdir)
    if d.static:
        # facts this machine cannot observe come first; what the run showed is kept for whoever fixes them
        also = [] if res.serves else [res.reason]
        log.append("run (ignoring the static checks): " + str(res))
        return Result(False, "; ".join(s + " [static check]" for s in d.static), log, d.static + also)
    return res


def _run_dynamic(d: Deployment, app: Path, log: list[str], *, volumes: dict[str, Path],
                 client: list[str] | None, client_env_extra: dict[str, str] | None, hub_url: str | None,
                 workdir: Path | None) -> Result:
    own_tmp = workdir is None
    work = Path(tempfile.mkdtemp(prefix="serve-")) if own_tmp else workdir
    assert work is not None
    proc = None
    front = None
    try:
        runner = Runner(app, work, d.image, hub_url=hub_url, log=log)
        try:
            runner.build()
        except NotServing as e:
            return Result(False, str(e), log)
        mounts = []
        for cpath, key, ro in d.mounts:
            vk, _, sub = key.partition("/")
            base = volumes.get(vk)
            if base is None:
                return Result(False, f"no contents for {key} (mounted at {cpath})", log)
            src = base / sub if sub else base
            src.mkdir(parents=True, exist_ok=True)
            mounts.append((cpath, src, ro))
        env = dict(d.env)
        env["PATH"] = "/.harness/bin:" + env.get("PATH", dockerimage.DEFAULT_PATH)
        env["PYTHONPATH"] = ":".join(x for x in (env.get("PYTHONPATH", ""), "/.harness/site") if x)
        env.setdefault("HOME", "/root")
        env.update(STANDIN_STATUS="/.harness/status.jsonl", STANDIN_GPU_COUNT=str(d.gpu_count),
                   STANDIN_IMAGE_LIBS=",".join(sorted(d.image.libs)))
        if d.image.packages.get("vllm"):
            env["STANDIN_VLLM_VERSION"] = d.image.packages["vllm"]
        if d.target == "runpod":
            env.setdefault("RUNPOD_ENDPOINT_ID", "harness")
        proc = runner.spawn(d.argv, env, d.workdir, mounts)
        try:
            probe(d, runner, proc, log)
            _reachable(d, runner)
        except NotServing as e:
            return Result(False, str(e), log)
        front = Front(d)
        fport = front.start()
        argv = client or (["python3", "client.py"] if (app / "client.py").exists() else None)
        if argv is None:
            return _smoke(d, front, fport, log)
        bindir = work / "client-bin"
        bindir.mkdir(exist_ok=True)
        (bindir / "gcloud").write_text(FAKE_GCLOUD_CLIENT)
        (bindir / "gcloud").chmod(0o755)
        cenv = client_env(client_env_extra or {}, fport, bindir)
        argv = [sys.executable if a in ("python3", "python") else a for a in argv]
        r = subprocess.run(argv, cwd=str(app), env=cenv, capture_output=True, text=True, timeout=30, check=False)
        log.extend(front.seen)
        if runner.fatal():
            return Result(False, runner.fatal() or "", log)
        if r.returncode != 0 or not front.seen:
            last = front.seen[-1] if front.seen else "no request reached the platform"
            err = (r.stderr.strip().splitlines() or [""])[-1][:200]
            return Result(False, f"the client's request failed: {last}" + (f"; client: {err}" if err else ""), log)
        bad = [s for s in front.seen if not re.search(r"-> 2\d\d", s)]
        if bad:
            return Result(False, f"the client's request failed: {bad[0]}", log)
        log.append(f"client output: {r.stdout.strip()[:200]}")
        return Result(True, "", log)
    finally:
        if front:
            front.stop()
        if proc:
            _kill(proc)
        if own_tmp:
            shutil.rmtree(work, ignore_errors=True)
