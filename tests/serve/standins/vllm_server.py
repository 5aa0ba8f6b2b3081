"""Stand-in for vLLM's OpenAI-compatible server (``vllm serve MODEL`` and
``python3 -m vllm.entrypoints.openai.api_server --model MODEL``).

Flags and env as vLLM reads them: ``--model`` (or the positional of ``vllm serve``), ``--download-dir``,
``--host`` (default: all interfaces), ``--port`` (default 8000), ``--api-key`` (else ``VLLM_API_KEY``; the flag
wins, vllm ``entrypoints/openai/api_server.py`` build_app: ``args.api_key or [envs.VLLM_API_KEY]``),
``--served-model-name``, ``--revision``, ``--tensor-parallel-size``.

Weights are resolved as vLLM does (vllm ``vllm/model_executor/model_loader/weight_utils.py``, read at commit
0035bdf2, the 0.6.x line): a ``--model`` that is a directory is used as is (``os.path.isdir``); otherwise
``download_weights_from_hf`` takes ``get_lock(model, cache_dir)`` -- a ``FileLock`` created *in*
``--download-dir`` (``lock_dir = cache_dir or tempfile.gettempdir()``), so a read-only download dir fails -- and
calls ``snapshot_download(model, cache_dir=download_dir, revision=..., local_files_only=HF_HUB_OFFLINE)``. So
``--download-dir D`` is huggingface_hub's ``cache_dir``: the snapshot must be at
``D/models--ORG--NAME/snapshots/<rev>/`` (not ``D/hub/...``); without it, ``HF_HUB_CACHE``, else ``HF_HOME/hub``.
There is no network here, so the lookup is always offline; the error says what the real server would do.

Routes: ``/health``; ``/ping`` only from vLLM 0.7.0 (added for SageMaker, vllm-project/vllm#11575 fixing
#11557, Dec 2024; ``STANDIN_VLLM_VERSION`` carries the image's pinned version, absent = recent);
``/v1/models``; ``/v1/chat/completions`` and ``/v1/completions`` (``stream`` honoured). The API key is checked
on ``/v1`` paths only, as ``Authorization: Bearer <key>`` (vLLM's authentication middleware), 401 otherwise.
A request for a model name it does not serve gets 404, as vLLM answers.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from common import Handler, bearer_ok, chat_reply, die, gpu_count, hf_snapshot, report, serve  # noqa: E402


def _version() -> tuple[int, ...]:
    v = os.environ.get("STANDIN_VLLM_VERSION", "")
    try:
        return tuple(int(x) for x in v.split(".")[:3]) if v else (99,)
    except ValueError:
        return (99,)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vllm", add_help=False)
    p.add_argument("--model", default=None)
    p.add_argument("--download-dir", default=None)
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--api-key", action="append", default=None)
    p.add_argument("--served-model-name", nargs="+", default=None)
    p.add_argument("--revision", default=None)
    p.add_argument("--tensor-parallel-size", "-tp", type=int, default=1)
    p.add_argument("--pipeline-parallel-size", "-pp", type=int, default=1)
    return p


def get_lock_path(model: str, cache_dir: str | None) -> str:
    # vllm weight_utils.get_lock: lock_dir = cache_dir or temp_dir; os.makedirs(os.path.dirname(lock_dir))
    lock_dir = cache_dir or tempfile.gettempdir()
    os.makedirs(os.path.dirname(lock_dir.rstrip("/")) or "/", exist_ok=True)
    name = model.replace("/", "-")
    return os.path.join(lock_dir, hashlib.sha256(name.encode()).hexdigest() + name + ".lock")


def resolve(model: str, download_dir: str | None, revision: str | None) -> str:
    if os.path.isdir(model):
        folder = model
    else:
        import filelock

        lock = get_lock_path(model, download_dir)
        try:
            with filelock.FileLock(lock, mode=0o666):
                folder = hf_snapshot(model, download_dir, revision, "vLLM")
        except OSError as e:
            die(f"vLLM: cannot create the download lock {lock}: {e.strerror} (the download dir must be writable)")
    if not os.path.isfile(os.path.join(folder, "config.json")):
        die(f"vLLM: {folder} has no config.json (not a Hugging Face model folder)")
    if not (glob.glob(os.path.join(folder, "*.safetensors")) or glob.glob(os.path.join(folder, "*.bin"))):
        die(f"vLLM: no *.safetensors or *.bin weights in {folder}")
    return folder


def main(argv: list[str]) -> None:
    if argv and argv[0] == "serve":  # `vllm serve MODEL [flags]`
        argv = argv[1:]
        model_pos = argv[0] if argv and not argv[0].startswith("-") else None
        if model_pos:
            argv = ["--model", model_pos] + argv[1:]
    args, unknown = parser().parse_known_args(argv)
    if unknown:
        report(warning=f"vLLM stand-in ignored flags {unknown}")
    if not args.model:
        die("vLLM: no model given (--model or `vllm serve MODEL`)")
    need = args.tensor_parallel_size * args.pipeline_parallel_size
    if need > gpu_count():
        die(f"vLLM: tensor_parallel_size x pipeline_parallel_size = {need} but the container has "
            f"{gpu_count()} GPU(s)")
    folder = resolve(args.model, args.download_dir, args.revision)
    report(weights=folder)
    keys = [k for k in (args.api_key or [os.environ.get("VLLM_API_KEY", "")]) if k]
    names = args.served_model_name or [args.model]
    has_ping = _version() >= (0, 7, 0)

    def health(h: Handler) -> None:
        h.send(200, b"")

    def models(h: Handler) -> None:
        if not bearer_ok(h, keys):
            return h.send(401, {"error": "Unauthorized"})
        h.send(200, {"object": "list", "data": [{"id": n, "object": "model"} for n in names]})

    def completions(h: Handler) -> None:
        if not bearer_ok(h, keys):
            return h.send(401, {"error": "Unauthorized"})
        req = h.json_body()
        if not isinstance(req, dict):
            return h.send(400, {"object": "error", "message": "invalid JSON body"})
        model = req.get("model") or names[0]
        if model not in names:
            return h.send(404, {"object": "error", "message": f"The model `{model}` does not exist.",
                                "type": "NotFoundError", "code": 404})
        body, streamed = chat_reply(model, bool(req.get("stream")))
        if streamed:
            return h.stream(body, "text/event-stream")
        h.send(200, body)

    routes = {("GET", "/health"): health, ("GET", "/v1/models"): models,
              ("POST", "/v1/chat/completions"): completions, ("POST", "/v1/completions"): completions}
    if has_ping:
        routes[("GET", "/ping")] = health
        routes[("POST", "/ping")] = health
    serve(args.host if args.host is not None else "0.0.0.0", args.port, routes, "vLLM")


if __name__ == "__main__":
    main(sys.argv[1:])
