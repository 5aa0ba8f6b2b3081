"""What the app folder says verify should check: the server kind, the model it served, the health path.

Read through :func:`flymigrate.api.load_inputs` (fly.toml with flyctl's normalising, the Dockerfile or
``[build] image``, the app's scripts and ``[[files]]``) and the planner (the target's concurrency).
When only ``--url`` is given, :func:`flymigrate.verify.checks.probe_kind` asks the server instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..model import SecretsExport

# server kind -> what in the image, command or scripts names it (first match wins, most specific first)
KIND_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ollama", re.compile(r"\bollama\b", re.I)),
    ("tgi", re.compile(r"text-generation-inference|text-generation-launcher", re.I)),
    # OpenAI-compatible servers before whisper: LocalAI or vLLM may also serve a whisper model
    ("openai", re.compile(r"\bvllm\b|vllm[/-]openai|vllm\.entrypoints|\bsglang\b|llama_cpp\.server|llama-server|"
                          r"local-?ai\b|\blmdeploy\b|openai[_-]api|/v1/chat/completions", re.I)),
    ("whisper", re.compile(r"whisper", re.I)),
)
SERVED_NAME_RE = re.compile(r"--served-model-name[= ]+[\"']?([^\s\"']+)")
OLLAMA_DESC_RE = re.compile(r"^Ollama model (\S+)")


@dataclass
class AppFacts:
    app: str | None = None
    kind: str | None = None  # openai | tgi | ollama | whisper | generic; None: ask the server
    kind_from: str = ""
    model: str | None = None  # the model the Fly app served (a served name, an HF id or an ollama tag)
    model_from: str = ""
    health_path: str | None = None
    health_from: str = ""
    max_concurrency: int | None = None
    export: SecretsExport | None = None
    deployed_url: str | None = None
    notes: list[str] = field(default_factory=list)


def read_app(app_dir: str, target: str, secrets_paths: list[str] | None) -> AppFacts:
    from .. import api
    from ..errors import FlymigrateError
    from ..planner import build_plan
    from ..weights import find_sources

    cfg = api.find_config(Path(app_dir))
    inp = api.load_inputs(app_dir, secrets_paths=secrets_paths, code_dirs=[str(cfg)])
    app = inp.app
    facts = AppFacts(app=app.app, export=inp.secrets)

    texts: list[tuple[str, str]] = []
    if app.build.image:
        texts.append((app.build.image, f"{app.config_path} [build] image"))
    if inp.dockerfile is not None:
        for img in inp.dockerfile.base_images():
            texts.append((img, f"{inp.dockerfile.path} FROM"))
        for ins in inp.dockerfile.instructions:
            if ins.keyword in ("RUN", "CMD", "ENTRYPOINT"):
                texts.append((ins.args, f"{inp.dockerfile.path}:{ins.line}"))
    if app.experimental_cmd:
        texts.append((" ".join(app.experimental_cmd), f"{app.config_path} [experimental] cmd"))
    if app.experimental_entrypoint:
        texts.append((" ".join(app.experimental_entrypoint), f"{app.config_path} [experimental] entrypoint"))
    for group, cmd in app.processes:
        texts.append((cmd, f"{app.config_path} [processes] {group}"))
    for rel, text in inp.scripts.items():
        texts.append((text, rel))
    for kind, rx in KIND_PATTERNS:
        hit = next((where for text, where in texts if rx.search(text)), None)
        if hit:
            facts.kind, facts.kind_from = kind, hit
            break

    # the model it served: --served-model-name wins (that is what /v1/models lists), then the weights found
    for text, where in texts:
        m = SERVED_NAME_RE.search(text)
        if m and "$" not in m.group(1):
            facts.model, facts.model_from = m.group(1), where
            break
    if facts.model is None:
        for src in find_sources(app, inp.dockerfile, inp.secrets, inp.scripts):
            if facts.kind == "ollama" and src.kind == "ollama":
                m = OLLAMA_DESC_RE.match(src.description)
                if m:
                    facts.model, facts.model_from = m.group(1), src.where or "the app"
                    break
            if facts.kind != "ollama" and src.kind == "hf" and src.url:
                facts.model, facts.model_from = src.url[len("hf://"):].split("@")[0], src.where or "the app"
                break

    svc = app.primary_service
    if svc is not None:
        for chk in svc.checks:
            if chk.type == "http" and chk.path:
                facts.health_path, facts.health_from = chk.path, chk.where or app.config_path
                break

    try:
        plan = build_plan(inp, target)
        if plan.scaling is not None and plan.scaling.max_concurrency:
            facts.max_concurrency = int(plan.scaling.max_concurrency)
    except FlymigrateError:
        pass

    from ..apply.state import read_state

    st = read_state(Path(app_dir)) or {}
    facts.deployed_url = ((st.get("targets") or {}).get(target) or {}).get("deployed_url")
    return facts

