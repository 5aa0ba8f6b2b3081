"""Stand-in for ``ollama serve``.

Env as ollama reads it (ollama ``envconfig/config.go``): ``OLLAMA_HOST`` (default ``127.0.0.1:11434``, loopback
only: a platform's proxy cannot reach it unless it is set to ``0.0.0.0``/``::``), ``OLLAMA_MODELS`` (default
``$HOME/.ollama/models``). Models are ``manifests/registry.ollama.ai/library/NAME/TAG`` (JSON with ``layers``
whose ``digest`` is ``sha256:HEX``) plus ``blobs/sha256-HEX`` (ollama ``server/modelpath.go``; older releases
named blobs ``sha256:HEX``). At start the server creates ``OLLAMA_MODELS/blobs`` (``GetBlobsPath`` does
``os.MkdirAll``), so a read-only, empty models dir fails.

Routes: ``GET /`` ("Ollama is running"), ``/api/version``, ``/api/tags``, ``POST /api/generate``,
``POST /api/chat``, and the OpenAI-compatible ``POST /v1/chat/completions``. There is no ``/ping`` and no
``/health``. A model whose manifest or model blob is missing answers 404 "model 'x' not found".
"""

from __future__ import annotations

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from common import Handler, chat_reply, die, report, serve  # noqa: E402


def parse_host(v: str) -> tuple[str, int]:
    v = v.strip() or "127.0.0.1:11434"
    for scheme in ("http://", "https://"):
        if v.startswith(scheme):
            v = v[len(scheme):]
    if v.startswith("["):
        host, _, port = v[1:].partition("]")
        return host, int(port.lstrip(":") or 11434)
    if v.count(":") == 1:
        host, port = v.split(":")
        return host or "127.0.0.1", int(port or 11434)
    if v.count(":") > 1:
        return v, 11434
    return v, 11434


def models_dir() -> str:
    return os.environ.get("OLLAMA_MODELS") or os.path.join(os.path.expanduser("~"), ".ollama", "models")


def find_model(root: str, name: str) -> str | None:
    """None when the model is complete on disk, else why it is not."""
    base, _, tag = name.partition(":")
    if "/" not in base:
        base = "library/" + base
    manifest = os.path.join(root, "manifests", "registry.ollama.ai", base, tag or "latest")
    if not os.path.isfile(manifest):
        return f"no manifest {manifest}"
    with open(manifest, encoding="utf-8") as f:
        m = json.load(f)
    for layer in m.get("layers", []):
        hexd = layer["digest"].split(":", 1)[1]
        if not any(os.path.isfile(os.path.join(root, "blobs", f"sha256{sep}{hexd}")) for sep in "-:"):
            return f"blob {layer['digest']} missing from {root}/blobs"
    return None


def list_models(root: str) -> list[str]:
    out = []
    base = os.path.join(root, "manifests", "registry.ollama.ai")
    for dirpath, _dirs, files in os.walk(base):
        for f in files:
            rel = os.path.relpath(os.path.join(dirpath, f), base).split(os.sep)
            name = "/".join(rel[:-1])
            out.append((name[len("library/"):] if name.startswith("library/") else name) + ":" + rel[-1])
    return sorted(out)


def main(argv: list[str]) -> None:
    if argv[:1] != ["serve"]:
        die(f"ollama stand-in: only `ollama serve` is emulated, got {argv}")
    host, port = parse_host(os.environ.get("OLLAMA_HOST", ""))
    root = models_dir()
    try:
        os.makedirs(os.path.join(root, "blobs"), exist_ok=True)
    except OSError as e:
        die(f"ollama: Error: mkdir {root}/blobs: {e.strerror}")
    report(weights=root, models=list_models(root))

    def index(h: Handler) -> None:
        h.send(200, "Ollama is running", "text/plain; charset=utf-8")

    def version(h: Handler) -> None:
        h.send(200, {"version": "0.0.0-standin"})

    def tags(h: Handler) -> None:
        h.send(200, {"models": [{"name": n, "model": n} for n in list_models(root)]})

    def generate(h: Handler) -> None:
        req = h.json_body()
        if not isinstance(req, dict) or not req.get("model"):
            return h.send(400, {"error": "model is required"})
        why = find_model(root, req["model"])
        if why:
            report(request_error=why)
            return h.send(404, {"error": f"model '{req['model']}' not found"})
        if h.path.startswith("/v1/"):
            body, streamed = chat_reply(req["model"], bool(req.get("stream")))
            return h.stream(body, "text/event-stream") if streamed else h.send(200, body)
        key = "message" if h.path == "/api/chat" else "response"
        val = {"role": "assistant", "content": "Hello from the stand-in."} if key == "message" else \
            "Hello from the stand-in."
        if req.get("stream", True):
            return h.stream([json.dumps({"model": req["model"], key: val, "done": False}).encode() + b"\n",
                             json.dumps({"model": req["model"], "done": True}).encode() + b"\n"],
                            "application/x-ndjson")
        h.send(200, {"model": req["model"], key: val, "done": True})

    serve(host, port, {("GET", "/"): index, ("GET", "/api/version"): version, ("GET", "/api/tags"): tags,
                       ("POST", "/api/generate"): generate, ("POST", "/api/chat"): generate,
                       ("POST", "/v1/chat/completions"): generate}, "ollama")


if __name__ == "__main__":
    main(sys.argv[1:])
