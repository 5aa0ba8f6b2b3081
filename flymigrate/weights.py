"""Where do this app's weights live today, and where should the transfer take them from?

Preference (research/users.md P1/P2): re-fetch from the origin (Hugging Face at a pinned revision) when
the model id is known; otherwise copy from Tigris (reachable from anywhere) or the Fly volume (needs a
helper machine; GPU-host volumes may be unreachable); weights baked into the image must be extracted.
"""

from __future__ import annotations

import re

from .model import Dockerfile, FlyApp, SecretsExport, WeightsSource

HF_ID_RE = re.compile(r"^(?!https?:|/|\.)[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")
MODEL_ENV_RE = re.compile(r"(^|_)(MODEL|MODELS|MODEL_ID|MODEL_NAME|MODEL_REPO|HF_MODEL|REPO_ID|CHECKPOINT|"
                          r"BASE_MODEL|DEFAULT_MODEL|LLM_MODEL|EMBEDDING_MODEL|TOKENIZER)$", re.I)
HF_CMD_RE = re.compile(
    r"(?:--model(?:[ =])|--model-id(?:[ =])|--model_name_or_path(?:[ =])|(?:huggingface-cli|hf)\s+download\s+"
    r"|snapshot_download\(\s*(?:repo_id\s*=\s*)?[\"']|from_pretrained\(\s*[\"']|hf_hub_download\(\s*(?:repo_id\s*=\s*)?[\"'])"
    r"[\"']?([A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*)"
)
OLLAMA_TAG_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*(:[A-Za-z0-9_.-]+)?$")
OLLAMA_CMD_RE = re.compile(r"ollama\s+(?:pull|run)\s+([a-z0-9][a-z0-9_./-]*(?::[A-Za-z0-9_.-]+)?)")
CACHE_ENV = ("HF_HOME", "HUGGINGFACE_HUB_CACHE", "HF_HUB_CACHE", "TRANSFORMERS_CACHE", "OLLAMA_MODELS",
             "MODEL_CACHE_DIR", "MODELS_PATH", "MODEL_DIR", "MODELS_DIR", "BUMBLEBEE_CACHE_DIR", "XDG_CACHE_HOME",
             "TORCH_HOME", "WEIGHTS_DIR", "CACHE_DIR")
BUCKET_NAMES = ("BUCKET_NAME", "S3_BUCKET_NAME", "MODEL_BUCKET_NAME", "AWS_BUCKET", "BUCKET")


def _split_rev(model_id: str) -> str:
    return model_id


def find_sources(app: FlyApp, df: Dockerfile | None, secrets: SecretsExport | None,
                 scripts: dict[str, str]) -> list[WeightsSource]:
    """Every weights location found, best (most reliable to move) first."""
    found: list[WeightsSource] = []
    seen: set[str] = set()

    def add(src: WeightsSource) -> None:
        key = f"{src.kind}:{src.url or src.description}"
        if key not in seen:
            seen.add(key)
            found.append(src)

    env = app.env_map
    # 1. model ids in [env]
    for name, value in app.env:
        v = value.strip()
        if MODEL_ENV_RE.search(name) and HF_ID_RE.match(v) and not v.endswith((".gguf", ".bin", ".safetensors")):
            add(WeightsSource("hf", f"hf://{v}", f"Hugging Face model {v} (from [env] {name})",
                              where=app.env_line(name)))
        elif MODEL_ENV_RE.search(name) and OLLAMA_TAG_RE.match(v) and ":" in v:
            add(WeightsSource("ollama", None, f"Ollama model {v} (from [env] {name}): pull it into the new volume "
                              "with `ollama pull` once, or copy the Fly volume", where=app.env_line(name)))
    # 2. commands: experimental cmd/entrypoint, processes, Dockerfile, scripts
    texts: list[tuple[str, str]] = []
    if app.experimental_cmd:
        texts.append((" ".join(app.experimental_cmd), app.config_path))
    for group, cmd in app.processes:
        texts.append((cmd, f"{app.config_path} [processes] {group}"))
    if df is not None:
        for ins in df.instructions:
            if ins.keyword in ("RUN", "CMD", "ENTRYPOINT", "ENV", "ARG"):
                texts.append((ins.args, f"{df.path}:{ins.line}"))
    for rel, text in scripts.items():
        texts.append((text, rel))
    for text, where in texts:
        for m in HF_CMD_RE.finditer(text):
            mid = m.group(1).rstrip(".")
            if "$" in mid or not HF_ID_RE.match(mid):
                continue
            baked = df is not None and where.startswith(df.path + ":") and "RUN" in _kw_at(df, where)
            add(WeightsSource("hf", f"hf://{mid}", f"Hugging Face model {mid} (from {where}"
                              + ("; downloaded into the image at build time)" if baked else ")"), where=where))
        for m in OLLAMA_CMD_RE.finditer(text):
            add(WeightsSource("ollama", None, f"Ollama model {m.group(1)} (from {where})", where=where))
    # 3. Tigris / S3 bucket
    secret_names = set(secrets.names()) if secrets else set()
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    has_tigris = bool(endpoint and "tigris" in endpoint) or "AWS_ENDPOINT_URL_S3" in secret_names
    bucket = next((env[n] for n in BUCKET_NAMES if env.get(n)), None)
    bucket_secret = next((n for n in BUCKET_NAMES if n in secret_names), None)
    if has_tigris or bucket or bucket_secret:
        if bucket:
            add(WeightsSource("tigris", f"s3://{bucket}/", f"Tigris/S3 bucket {bucket} (from [env])",
                              where=app.env_line(next(n for n in BUCKET_NAMES if env.get(n)))))
        else:
            add(WeightsSource("tigris", None, f"a Tigris bucket (its name is in the secret {bucket_secret or 'BUCKET_NAME'}"
                              "; pass it as s3://BUCKET/PREFIX)"))
    # 4. Fly volumes
    for m in app.mounts:
        size = int(m.initial_size_gb * 1e9) if m.initial_size_gb else None
        what = _volume_contents(m.destination, env)
        add(WeightsSource("fly-volume", f"fly-volume://{app.app or '<APP>'}/{m.source}/",
                          f"Fly volume {m.source} mounted at {m.destination}{what}", size, m.where))
    # 5. baked into the image without a known origin
    if df is not None:
        from .dockerplan import BAKED_RE

        for ins in df.instructions:
            if ins.keyword == "RUN" and BAKED_RE.search(ins.args) and not any(
                    s.where == f"{df.path}:{ins.line}" for s in found):
                add(WeightsSource("baked", None, f"weights downloaded into the image ({df.path}:{ins.line}); "
                                  "re-fetch them from their origin", where=f"{df.path}:{ins.line}"))
    order = {"hf": 0, "tigris": 1, "fly-volume": 2, "ollama": 3, "baked": 4, "local": 5, "unknown": 6}
    found.sort(key=lambda s: order.get(s.kind, 9))
    return found


def _kw_at(df: Dockerfile, where: str) -> str:
    try:
        line = int(where.rsplit(":", 1)[1])
    except ValueError:
        return ""
    for ins in df.instructions:
        if ins.line == line:
            return ins.keyword
    return ""


def _volume_contents(dest: str, env: dict[str, str]) -> str:
    d = dest.rstrip("/")
    if "huggingface" in d or any(env.get(k, "").startswith(d) for k in ("HF_HOME", "HF_HUB_CACHE",
                                                                        "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_CACHE")):
        return " (a Hugging Face cache)"
    if ".ollama" in d or env.get("OLLAMA_MODELS", "").startswith(d):
        return " (Ollama models)"
    for k in CACHE_ENV:
        if env.get(k, "").startswith(d):
            return f" ({k} points here)"
    return ""


def app_weights_env(app: FlyApp) -> list[tuple[str, str]]:
    """[env] variables that tell the app where its weights are (kept, re-pointed when the mount moves)."""
    return [(k, v) for k, v in app.env if k in CACHE_ENV or k.endswith(("_CACHE_DIR", "_MODELS_PATH"))]
