"""Where the app's inference server reads its weights, read from its command, scripts and env. Pure.

The weights step must put the files exactly where the server looks, in the layout it expects; "the app is
unchanged" is only true when this is known. Each rule cites the server's own behaviour:

- vLLM: ``--download-dir D`` is passed to huggingface_hub as ``cache_dir=D``, so it looks for
  ``D/models--ORG--NAME/snapshots/<rev>/`` (not ``D/hub/...``); without it, ``HF_HUB_CACHE``, else ``HF_HOME/hub``,
  else ``~/.cache/huggingface/hub`` (vllm ``model_executor/model_loader/weight_utils.py``:
  ``download_weights_from_hf(..., cache_dir)``; huggingface_hub ``constants.py``). ``--model /path`` (or
  ``vllm serve /path``) reads a local directory.
- TGI: ``--huggingface-hub-cache D`` / ``HUGGINGFACE_HUB_CACHE`` (its image sets ``HUGGINGFACE_HUB_CACHE=/data``:
  huggingface/text-generation-inference ``Dockerfile`` at 008733313cec, "Text Generation Inference base env");
  ``--model-id /path`` reads a local directory.
- ollama: ``OLLAMA_MODELS`` (``blobs/`` + ``manifests/``), default ``~/.ollama/models`` (ollama ``envconfig``).
- llama.cpp / llama-cpp-python: ``-m / --model FILE.gguf`` reads that file.
- faster-whisper and other apps that read a directory named in an env var (``WHISPER_MODEL_DIR=/weights/x``)
  after a baked ``huggingface-cli download --local-dir DIR``: that directory, flat.
"""

from __future__ import annotations

import re
import shlex
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # type checkers see the standard decorator
    from dataclasses import dataclass
else:  # start-up time: no exec per generated method (flymigrate/_dataclass.py)
    from ._dataclass import dataclass

HF_DEFAULT_HOME = "/root/.cache/huggingface"
OLLAMA_DEFAULT_MODELS = "/root/.ollama/models"
# environment the upstream images set (what the app inherits when it builds FROM them)
IMAGE_ENV: tuple[tuple[str, dict[str, str]], ...] = (
    # huggingface/text-generation-inference Dockerfile (008733313cec): ENV HUGGINGFACE_HUB_CACHE=/data PORT=80
    ("ghcr.io/huggingface/text-generation-inference", {"HUGGINGFACE_HUB_CACHE": "/data", "PORT": "80"}),
)

_VLLM_RE = re.compile(r"\bvllm\s+serve\b|vllm\.entrypoints\.openai\.api_server|vllm\.entrypoints\.api_server")
_TGI_RE = re.compile(r"\btext-generation-launcher\b")
_OLLAMA_RE = re.compile(r"\bollama\s+serve\b|(^|/)ollama$")
_LLAMA_RE = re.compile(r"\b(llama-server|llama\.cpp|llama_cpp\.server|server)\b.*\s(-m|--model)\s")
_LOCAL_DIR_RE = re.compile(r"(?:huggingface-cli|hf)\s+download\s+\S+.*?--local-dir[= ]+([\"']?)(/[^\s\"']+)\1")
_DIR_ENV_RE = re.compile(r"(MODEL|WEIGHTS|CHECKPOINT)S?_?(DIR|PATH|ROOT)$|_MODEL_DIR$|^MODEL_PATH$")


@dataclass(frozen=True)
class WeightsLookup:
    server: str  # vllm | tgi | ollama | llama.cpp | app | unknown
    kind: str  # hf-cache (path = the hub cache dir, huggingface_hub's cache_dir) | dir | file | ollama | unknown
    path: str | None
    how: str  # for a person: "vLLM --download-dir /data/hf-cache (huggingface_hub cache_dir)"


def _expand(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: env.get(m.group(1), m.group(0)), value)


def _logical_lines(text: str) -> list[str]:
    return [ln for ln in re.sub(r"\\\n\s*", " ", text).split("\n") if ln.strip() and not ln.lstrip().startswith("#")]


def _words(line: str) -> list[str]:
    try:
        return shlex.split(line, comments=True)
    except ValueError:
        return line.split()


def _flag(words: list[str], *names: str) -> str | None:
    for i, w in enumerate(words):
        for n in names:
            if w == n and i + 1 < len(words):
                return words[i + 1]
            if w.startswith(n + "="):
                return w[len(n) + 1:]
    return None


def image_env(image: str | None) -> dict[str, str]:
    for prefix, env in IMAGE_ENV:
        if image and image.startswith(prefix):
            return dict(env)
    return {}


def hub_cache(env: dict[str, str]) -> tuple[str, str]:
    """huggingface_hub's cache dir from the env, and which variable decided it."""
    for k in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if env.get(k):
            return env[k].rstrip("/"), k
    if env.get("HF_HOME"):
        return env["HF_HOME"].rstrip("/") + "/hub", "HF_HOME"
    return HF_DEFAULT_HOME + "/hub", "the default (~/.cache/huggingface/hub)"


def find_lookup(command: tuple[str, ...] | None, scripts: dict[str, str], env: dict[str, str],
                dockerfile_runs: list[str] | None = None) -> WeightsLookup:
    """Where the server the container starts reads its weights."""
    texts = [" ".join(shlex.quote(w) for w in command)] if command else []
    texts += list(scripts.values())
    for text in texts:
        for line in _logical_lines(text):
            line = _expand(line, env)
            if _VLLM_RE.search(line):
                w = _words(line)
                d = _flag(w, "--download-dir")
                model = _flag(w, "--model")
                if model is None and "serve" in w:
                    i = w.index("serve")
                    model = w[i + 1] if i + 1 < len(w) and not w[i + 1].startswith("-") else None
                if model and model.startswith("/"):
                    return WeightsLookup("vllm", "dir", model.rstrip("/"), f"vLLM --model {model} (a local folder)")
                if d:
                    return WeightsLookup("vllm", "hf-cache", d.rstrip("/"),
                                         f"vLLM --download-dir {d} (huggingface_hub cache_dir: "
                                         f"{d.rstrip('/')}/models--ORG--NAME)")
                path, why = hub_cache(env)
                return WeightsLookup("vllm", "hf-cache", path, f"vLLM's Hugging Face cache ({why})")
            if _TGI_RE.search(line):
                w = _words(line)
                d = _flag(w, "--huggingface-hub-cache")
                model = _flag(w, "--model-id") or env.get("MODEL_ID")
                if model and model.startswith("/"):
                    return WeightsLookup("tgi", "dir", model.rstrip("/"), f"TGI --model-id {model} (a local folder)")
                if d:
                    return WeightsLookup("tgi", "hf-cache", d.rstrip("/"), f"TGI --huggingface-hub-cache {d}")
                path, why = hub_cache(env)
                return WeightsLookup("tgi", "hf-cache", path, f"TGI's Hugging Face cache ({why})")
            if _OLLAMA_RE.search(line.strip()):
                d = env.get("OLLAMA_MODELS", OLLAMA_DEFAULT_MODELS)
                return WeightsLookup("ollama", "ollama", d.rstrip("/"), f"ollama's models folder (OLLAMA_MODELS={d})")
            if _LLAMA_RE.search(line):
                m = _flag(_words(line), "-m", "--model")
                if m and m.startswith("/"):
                    return WeightsLookup("llama.cpp", "file", m, f"llama.cpp -m {m}")
    # an app that reads a folder named in its env, filled by a baked `--local-dir` download
    baked = [m.group(2).rstrip("/") for r in (dockerfile_runs or []) for m in _LOCAL_DIR_RE.finditer(r)]
    for k, v in sorted(env.items()):
        if v.startswith("/") and (_DIR_ENV_RE.search(k) or v.rstrip("/") in baked):
            return WeightsLookup("app", "dir", v.rstrip("/"), f"{k}={v} (a folder the app reads)")
    if any(k in env for k in ("HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_CACHE")):
        path, why = hub_cache(env)
        return WeightsLookup("app", "hf-cache", path, f"the Hugging Face cache ({why})")
    if baked:
        return WeightsLookup("app", "dir", baked[0], f"the folder the image's download fills (--local-dir {baked[0]})")
    return WeightsLookup("unknown", "unknown", None, "")
