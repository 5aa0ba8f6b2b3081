"""Helpers shared by the target translators: Fly's scaling semantics, read once."""

from __future__ import annotations

import re

from ..model import Finding, Service

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # type checkers see the standard decorator
    from dataclasses import dataclass
else:  # start-up time: no exec per generated method (flymigrate/_dataclass.py)
    from .._dataclass import dataclass

# Fly Proxy stops idle machines "every few minutes"; 300 s is what users saw in practice and the most
# faithful idle timeout to carry over (research/users.md P5). Targets default far lower (5-60 s).
FLY_IDLE_EQUIVALENT_S = 300

# What Fly's proxy applied to a service whose fly.toml sets no concurrency: type "connections", soft_limit 20 and,
# in today's docs, no hard limit (fly.io/docs/apps/concurrency, read 2026-11; older pages -
# fly.io/docs/reference/concurrency - said hard_limit 25, which flyctl-generated configs still carry). The app was
# sized for that on Fly, so every target translates it instead of its own default (Modal: one request per
# container; Cloud Run: 80).
FLY_DEFAULT_CONCURRENCY_TYPE = "connections"
FLY_DEFAULT_SOFT_LIMIT = 20
FLY_DEFAULT_HARD_LIMIT: int | None = None


@dataclass(frozen=True)
class FlyScaling:
    always_on: bool  # auto_stop off (or never configured: Fly's default is off)
    suspend: bool
    min_running: int
    max_guess: int
    auto_start: bool
    soft: int | None
    hard: int | None
    ctype: str | None
    where: str | None
    concurrency_where: str | None
    concurrency_default: bool = False  # fly.toml set none: soft/hard/ctype are Fly's defaults


def read_fly_scaling(svc: Service | None, max_guess: int) -> tuple[FlyScaling, list[Finding]]:
    findings: list[Finding] = []
    if svc is None:
        return FlyScaling(True, False, 1, max(max_guess, 1), True, None, None, None, None, None), [
            Finding("warning", "no-service", "fly.toml has no [http_service] or [[services]]: the app is not "
                    "reachable over HTTP on Fly, so there is no request-driven scaling to translate. It is "
                    "treated as one always-on worker.", None, "scaling")]
    c = svc.concurrency
    always_on = svc.auto_stop == "off"
    if not svc.auto_stop_set:
        findings.append(Finding("info", "auto-stop-default", "auto_stop_machines is not set; Fly's default is "
                                "\"off\" (machines keep running), so the translation keeps capacity warm.",
                                svc.where, "scaling"))
    if svc.auto_stop != "off" and not svc.auto_start:
        findings.append(Finding("warning", "never-restarts", "auto_stop_machines is on and auto_start_machines is "
                                "false: on Fly a stopped machine never came back. The targets always start on "
                                "demand; check this is what you want.", svc.where, "scaling"))
    min_running = svc.min_machines_running
    if c is None:
        findings.append(Finding("info", "fly-default-concurrency", "fly.toml sets no concurrency, so Fly applied its "
                                f"default ({FLY_DEFAULT_CONCURRENCY_TYPE}, soft_limit {FLY_DEFAULT_SOFT_LIMIT}, no "
                                "hard limit in today's docs; older docs said 25); that is what is translated.",
                                svc.where, "scaling"))
        return FlyScaling(always_on, svc.auto_stop == "suspend", min_running, max(max_guess, min_running, 1),
                          svc.auto_start, FLY_DEFAULT_SOFT_LIMIT, FLY_DEFAULT_HARD_LIMIT,
                          FLY_DEFAULT_CONCURRENCY_TYPE, svc.where, svc.where, True), findings
    return FlyScaling(always_on, svc.auto_stop == "suspend", min_running, max(max_guess, min_running, 1),
                      svc.auto_start, c.soft_limit, c.hard_limit, c.type, svc.where, c.where), findings


# ---- what the image is built on (read from the Dockerfile text / [build] image tag; pure)
_VER = r"v?(\d+(?:\.\d+){0,2})"


def _ver(s: str) -> tuple[int, ...]:
    return tuple(int(p) for p in s.split(".") if p.isdigit())


@dataclass(frozen=True)
class ImageFacts:
    base: str | None  # the final stage's base image (stage aliases followed); None = no FROM / no image
    cuda: str | None  # CUDA version of an nvidia/cuda (or *-cudaX.Y) base
    packages: tuple[tuple[str, str], ...]  # (name, version) pinned in the base tag or in pip/uv/apt/env lines
    python: str  # "python" | "python3" | "none" | "unknown": the interpreter names on PATH

    def version(self, name: str) -> str | None:
        return dict(self.packages).get(name)


def image_facts(dockerfile_text: str | None, registry_image: str | None) -> ImageFacts:
    """The base image, CUDA version, pinned framework versions and Python interpreter names of an image."""
    text = dockerfile_text or ""
    stages: dict[str, str] = {}
    base = registry_image
    for m in re.finditer(r"(?im)^\s*FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", text):
        ref = stages.get(m.group(1).lower(), m.group(1))
        base = ref
        if m.group(2):
            stages[m.group(2).lower()] = ref
    low = (base or "").lower()
    name, _, tag = low.rpartition(":") if ":" in low.rsplit("/", 1)[-1] else (low, "", "")
    pk: dict[str, str] = {}
    cuda = None
    mt = re.match(_VER, tag)
    if name.endswith("vllm/vllm-openai") and mt:
        pk["vllm"] = mt.group(1)
    elif name.endswith("ollama/ollama") and mt:
        pk["ollama"] = mt.group(1)
    elif name.endswith("pytorch/pytorch") and mt:
        pk["torch"] = mt.group(1)
    elif name.endswith("text-generation-inference") and mt:
        pk["tgi"] = mt.group(1)
    if name.endswith("nvidia/cuda") and mt:
        cuda = ".".join(mt.group(1).split(".")[:2])
    mc = re.search(r"cuda[-_]?(\d+\.\d+)", tag)
    if mc and cuda is None:
        cuda = mc.group(1)
    for pkg in ("vllm", "torch", "ctranslate2", "faster-whisper", "sglang"):
        m = re.search(rf"(?i)(?<![\w-]){re.escape(pkg)}\s*==\s*{_VER}", text)
        if m:
            pk[pkg] = m.group(1)
    m = re.search(rf"OLLAMA_VERSION\s*[= ]\s*[\"']?{_VER}", text)
    if m:
        pk["ollama"] = m.group(1)
    return ImageFacts(base, cuda, tuple(sorted(pk.items())), _python_names(text, low))


# Images whose PATH has `python` (not only `python3`): python:*, conda-based (pytorch/pytorch, TGI), jupyter.
_HAS_PYTHON = ("python:", "/python:", "pytorch/pytorch", "continuumio/", "condaforge/", "mambaorg/",
               "text-generation-inference", "jupyter/", "quay.io/jupyter", "nvcr.io/nvidia/pytorch",
               "huggingface/transformers", "r8.im/", "cog-")
# Images with `python3` only: vLLM's images (Ubuntu + deadsnakes/uv; no `python` link).
_PYTHON3_ONLY = ("vllm/vllm-openai", "lmsysorg/sglang")
# Images with no Python at all.
_NO_PYTHON = ("nvidia/cuda", "ubuntu", "debian", "alpine", "ollama/ollama", "busybox", "ghcr.io/ggml-org/llama.cpp",
              "ghcr.io/ggerganov/llama.cpp", "rockylinux", "fedora", "amazonlinux", "node:", "golang:", "rust:")


def _python_names(text: str, base: str) -> str:
    if re.search(r"python-is-python3|ln\s+-s\S*\s+\S*python3\S*\s+\S*/python\b|update-alternatives[^\n]*python\b",
                 text):
        return "python"
    b = base.split("@", 1)[0]
    short = b.rsplit("/", 1)[-1]
    if any(h in b for h in _HAS_PYTHON) or short.startswith("python"):
        return "python"
    installs_py3 = bool(re.search(r"(?i)(apt-get|apt|apk|dnf|yum)\b[^\n]*\binstall\b[^\n]*\bpython3(\.\d+)?\b", text))
    if any(b.startswith(h) or ("/" + h) in b for h in _PYTHON3_ONLY):
        return "python3"
    if any(b.startswith(h) or b.rsplit("/", 1)[0].endswith(h.rstrip(":")) or short.startswith(h) for h in _NO_PYTHON):
        return "python3" if installs_py3 else "none"
    return "unknown"
