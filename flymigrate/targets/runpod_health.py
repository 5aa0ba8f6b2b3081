"""RunPod load-balancing health: does the server answer ``/ping``, and if not, the health adapter baked into the image.

A load-balancing worker is polled at ``GET /ping`` (the path is fixed) on ``PORT_HEALTH``: 200 ready,
204 initialising, anything else unhealthy (removed from the routing pool); a worker whose ports are wrong stays up
8 minutes returning 502 (docs.runpod.io serverless/load-balancing/overview, "Health checks", "Environment
variables"; runpod/docs snapshot 2026-08-20).

Which servers answer ``/ping`` themselves:

* vLLM from 0.7.0 on: ``/ping`` (SageMaker compatibility) was asked for in vllm-project/vllm#11557 and added by
  #11575, opened 2024-12-28, after 0.6.6 shipped; it answers like ``/health``. Older images (0.6.x) have none.
* an app whose fly.toml check path *is* ``/ping``.
* anything else (ollama, TGI's ``/health``, faster-whisper apps, hand-written servers): no ``/ping``.

When the server has none, the rewritten Dockerfile wraps its command in the adapter
(:mod:`flymigrate.targets.runpod_health_adapter`, or its static C twin ``runpod_health.c`` for images without
``python3``), listening on its own ``PORT_HEALTH``. The lines are added here, as a separate block after the
Dockerfile rewrite (``apply/rewrite.py`` is not touched): :func:`add_adapter` takes the rewritten text and returns
it with the block; it is idempotent (an old block is removed first).

Why two builds: the Python adapter needs nothing but the image's own ``python3`` (vLLM, TGI, whisper and most
hand-written apps have it), so it adds one ``COPY``. An image without Python (ollama, llama.cpp) gets a small
(< 1 MB; 0.7 MiB resident, scripts/bench_runpod_health) static binary compiled in a throwaway Alpine stage (``gcc -static``): no package is installed into the final image
and its libc does not matter. Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources

from ..rewrite import MARK, effective_command

ADAPTER_PY = "flymigrate-runpod-health.py"  # file names in the build context (rendered next to the Dockerfile)
ADAPTER_C = "flymigrate-runpod-health.c"
IN_IMAGE_DIR = "/opt/flymigrate"
BUILD_STAGE = "flymigrate-runpod-health"
BUILD_BASE = "alpine:3.20"
# the apply step that writes the adapter source. "dockerfile" is where it belongs, but today's engine writes a
# target's generated files only in the secrets and scaling steps (apply/engine.py preview_dockerfile has no
# generated_configs(ctx, "dockerfile")); until it does, the scaling step writes it so a default apply is buildable.
ADAPTER_STEP = "dockerfile"
HEALTH_PORT = 18080  # the adapter's own port (PORT_HEALTH); 18081 when the app itself uses 18080
BEGIN = f"{MARK} RunPod health adapter >>>"
END = f"{MARK} RunPod health adapter <<<"
STAGE_BEGIN = f"{MARK} RunPod health adapter build stage >>>"
STAGE_END = f"{MARK} RunPod health adapter build stage <<<"
VLLM_PING_SINCE = (0, 7, 0)

_PY_CMD_RE = re.compile(r"(^|/)(python[0-9.]*|uvicorn|gunicorn|hypercorn|fastapi|flask|streamlit|gradio|"
                        r"text-generation-launcher|vllm|huggingface-cli|hf)$")
_PY_IMAGE_RE = re.compile(r"python|pytorch|vllm|huggingface|text-generation-inference|tensorflow|jupyter|cog|"
                          r"conda|mamba|nvcr\.io/nvidia/(pytorch|tritonserver)", re.I)
_PY_RUN_RE = re.compile(r"\b(pip3?|python3?(\.\d+)?|uv|poetry|conda|apt-get install[^\n]*\bpython3)\b")
_VLLM_TAG_RE = re.compile(r"vllm/vllm-openai:v?(\d+)\.(\d+)(?:\.(\d+))?", re.I)
_VLLM_PIN_RE = re.compile(r"\bvllm(?:\[[^\]]*\])?\s*(?:==|~=|>=)\s*v?(\d+)\.(\d+)(?:\.(\d+))?", re.I)


@dataclass(frozen=True)
class PingSupport:
    has_ping: bool
    reason: str


def _from_images(df_text: str | None, image: str | None) -> list[str]:
    out = [image] if image else []
    for line in (df_text or "").splitlines():
        m = re.match(r"\s*FROM\s+(?:--\S+\s+)*(\S+)", line, re.I)
        if m:
            out.append(m.group(1))
    return out


def vllm_version(df_text: str | None, image: str | None) -> tuple[int, ...] | None | str:
    """The vLLM version the image runs: a tuple, "latest" (unpinned), or None (not vLLM / unknown)."""
    text = "\n".join(_from_images(df_text, image)) + "\n" + (df_text or "")
    m = _VLLM_TAG_RE.search(text) or _VLLM_PIN_RE.search(df_text or "")
    if m:
        return tuple(int(g or 0) for g in m.groups())
    if re.search(r"vllm/vllm-openai(:latest|:nightly)?(\s|$)", text, re.I) or re.search(r"pip3? install[^\n]*\bvllm\b",
                                                                                          df_text or ""):
        return "latest"
    return None


def _runs_vllm_server(argv: str) -> bool:
    return bool(re.search(r"vllm\.entrypoints|(^|[\s/])vllm\s+serve\b", argv))


def ping_support(df_text: str | None, image: str | None, command: tuple[str, ...] | None,
                 health_path: str | None) -> PingSupport:
    if health_path and health_path.split("?", 1)[0].rstrip("/") == "/ping":
        return PingSupport(True, "the app's own health check is /ping")
    argv = " ".join(command or ())
    images = _from_images(df_text, image)
    v = vllm_version(df_text, image)
    if _runs_vllm_server(argv):
        if v == "latest":
            return PingSupport(True, "vLLM's server (unpinned, so a current release) answers /ping (vLLM >= 0.7.0)")
        if isinstance(v, tuple):
            shown = ".".join(map(str, v))
            if v >= VLLM_PING_SINCE:
                return PingSupport(True, f"vLLM {shown} answers /ping (added in 0.7.0, vllm-project/vllm#11575)")
            return PingSupport(False, f"vLLM {shown} has no /ping (it came with 0.7.0, vllm-project/vllm#11575)")
        return PingSupport(False, "vLLM of an unknown version: /ping exists only from 0.7.0 on")
    if isinstance(v, tuple) and v < VLLM_PING_SINCE:
        return PingSupport(False, f"vLLM {'.'.join(map(str, v))} has no /ping (it came with 0.7.0, "
                                  "vllm-project/vllm#11575)")
    if "ollama" in argv or any("ollama" in i for i in images):
        return PingSupport(False, "ollama has no /ping")
    if "text-generation-launcher" in argv or any("text-generation-inference" in i for i in images):
        return PingSupport(False, "TGI answers /health, not /ping")
    if v is not None:
        return PingSupport(False, "vLLM is installed but the command does not visibly start vLLM's server, so "
                                  "flymigrate cannot see a /ping route")
    return PingSupport(False, "the server has no /ping route that flymigrate can see")


def inherited_command(text: str | None) -> tuple[str, ...] | None:
    """ENTRYPOINT + CMD by Docker's rules, including what the final stage inherits from a known base image."""
    from ..deployment import KNOWN_IMAGE_COMMANDS

    if not text:
        return None
    ep, cmd = effective_command(text)
    froms = _from_images(text, None)
    base = froms[-1] if froms else ""
    known = next((k for img, k in KNOWN_IMAGE_COMMANDS if base.startswith(img)), None)
    if known is not None and ep is None:
        ep = list(known[0])
        cmd = cmd if cmd is not None else list(known[1])
    return tuple((ep or []) + (cmd or [])) or None


def has_python3(df_text: str | None, image: str | None, command: tuple[str, ...] | None) -> bool:
    if command and _PY_CMD_RE.search(command[0]):
        return True
    if command and command[0] in ("sh", "/bin/sh", "bash", "/bin/bash") and re.search(r"\bpython3?\b",
                                                                                     " ".join(command)):
        return True
    if any(_PY_IMAGE_RE.search(i) for i in _from_images(df_text, image)):
        return True
    body = "\n".join(ln for ln in (df_text or "").splitlines() if re.match(r"\s*RUN\b", ln, re.I))
    return bool(_PY_RUN_RE.search(body))


def health_port_for(app_port: int) -> int:
    return HEALTH_PORT if app_port != HEALTH_PORT else HEALTH_PORT + 1


def strip_adapter(text: str) -> str:
    """The Dockerfile without a block :func:`add_adapter` added before (idempotence)."""
    for begin, end in ((BEGIN, END), (STAGE_BEGIN, STAGE_END)):
        while begin in text and end in text:
            i = text.index(begin)
            j = text.index(end, i) + len(end)
            if j < len(text) and text[j] == "\n":
                j += 1
            text = text[:i] + text[j:]
    return text


def adapter_argv(python: bool, app_port: int, health_path: str | None, health_port: int) -> list[str]:
    argv = ["python3", f"{IN_IMAGE_DIR}/runpod-health.py"] if python else [f"{IN_IMAGE_DIR}/runpod-health"]
    argv += ["--app-port", str(app_port)]
    if health_path:
        argv += ["--check-path", health_path]
    return argv + ["--health-port", str(health_port), "--"]


def add_adapter(text: str, command: tuple[str, ...], *, python: bool, app_port: int, health_path: str | None,
                health_port: int) -> str:
    """``text`` (a rewritten or thin Dockerfile) with the adapter baked in and wrapped around ``command``."""
    text = strip_adapter(text)
    if text and not text.endswith("\n"):
        text += "\n"
    ep = adapter_argv(python, app_port, health_path, health_port)
    tail = [BEGIN,
            f"{MARK} RunPod polls GET /ping on PORT_HEALTH={health_port}; this server has none. The adapter starts "
            "the command below and answers /ping from the app's own health check (204 while it loads, 200 when "
            "ready)."]
    if python:
        tail.append(f"COPY {ADAPTER_PY} {IN_IMAGE_DIR}/runpod-health.py")
    else:
        tail.append(f"COPY --from={BUILD_STAGE} /runpod-health {IN_IMAGE_DIR}/runpod-health")
    tail += [f"ENTRYPOINT {json.dumps(ep)}", f"CMD {json.dumps(list(command))}", END]
    out = text + "\n".join(tail) + "\n"
    if not python:
        stage = [STAGE_BEGIN,
                 f"{MARK} the image has no python3: the health adapter is built as a static binary in this stage",
                 f"FROM {BUILD_BASE} AS {BUILD_STAGE}",
                 "RUN apk add --no-cache gcc musl-dev",
                 f"COPY {ADAPTER_C} /src/runpod-health.c",
                 "RUN gcc -static -Os -o /runpod-health /src/runpod-health.c",
                 STAGE_END]
        lines = out.split("\n")
        first_from = next(i for i, ln in enumerate(lines) if re.match(r"\s*FROM\s", ln, re.I))
        out = "\n".join(lines[:first_from] + stage + lines[first_from:])
    return out


def wrapped_command(text: str) -> tuple[str, ...] | None:
    ep, cmd = effective_command(text)
    return tuple((ep or []) + (cmd or [])) or None


def adapter_source(python: bool) -> str:
    name = "runpod_health_adapter.py" if python else "runpod_health.c"
    return resources.files("flymigrate.targets").joinpath(name).read_text("utf-8")
