"""Stand-in for Hugging Face Text Generation Inference's ``text-generation-launcher``.

Flags and env as the launcher reads them (TGI ``launcher/src/main.rs``, clap ``env`` attributes):
``--model-id`` / ``MODEL_ID``, ``--port`` / ``PORT`` (default 3000; the official image sets ``PORT=80``),
``--hostname`` (default 0.0.0.0), ``--huggingface-hub-cache`` / ``HUGGINGFACE_HUB_CACHE``, ``--revision`` /
``REVISION``, ``--num-shard`` / ``NUM_SHARD``. A ``--model-id`` that is an existing directory is used as is;
otherwise the launcher's ``download-weights`` looks the repo up through huggingface_hub with the hub cache
above as ``cache_dir`` (unset: huggingface_hub's ``HF_HUB_CACHE`` / ``HF_HOME/hub``), offline here.

Routes: ``/health``, ``/info``, ``POST /generate``, ``POST /generate_stream``, ``POST /v1/chat/completions``.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from common import Handler, chat_reply, die, gpu_count, hf_snapshot, report, serve  # noqa: E402


def main(argv: list[str]) -> None:
    e = os.environ
    p = argparse.ArgumentParser(prog="text-generation-launcher", add_help=False)
    p.add_argument("--model-id", default=e.get("MODEL_ID", "bigscience/bloom-560m"))
    p.add_argument("--port", type=int, default=int(e.get("PORT", "3000")))
    p.add_argument("--hostname", default="0.0.0.0")
    p.add_argument("--huggingface-hub-cache", default=e.get("HUGGINGFACE_HUB_CACHE"))
    p.add_argument("--revision", default=e.get("REVISION"))
    p.add_argument("--num-shard", type=int, default=int(e["NUM_SHARD"]) if e.get("NUM_SHARD") else None)
    p.add_argument("--json-output", action="store_true")
    args, unknown = p.parse_known_args(argv)
    if unknown:
        report(warning=f"TGI stand-in ignored flags {unknown}")
    if args.num_shard and args.num_shard > gpu_count():
        die(f"TGI: --num-shard {args.num_shard} but the container has {gpu_count()} GPU(s)")
    if os.path.isdir(args.model_id):
        folder = args.model_id
    else:
        folder = hf_snapshot(args.model_id, args.huggingface_hub_cache, args.revision, "TGI")
    if not glob.glob(os.path.join(folder, "*.safetensors")):
        die(f"TGI: no *.safetensors in {folder} (TGI would try to convert .bin weights, writing beside them)")
    report(weights=folder)

    def health(h: Handler) -> None:
        h.send(200, b"")

    def info(h: Handler) -> None:
        h.send(200, {"model_id": args.model_id, "model_sha": os.path.basename(folder)})

    def generate(h: Handler) -> None:
        req = h.json_body()
        if not isinstance(req, dict) or "inputs" not in req:
            return h.send(422, {"error": "missing field `inputs`", "error_type": "validation"})
        h.send(200, {"generated_text": "Hello from the stand-in."})

    def chat(h: Handler) -> None:
        req = h.json_body()
        if not isinstance(req, dict) or "messages" not in req:
            return h.send(422, {"error": "missing field `messages`", "error_type": "validation"})
        body, streamed = chat_reply("tgi", bool(req.get("stream")))
        if streamed:
            return h.stream(body, "text/event-stream")
        h.send(200, body)

    serve(args.hostname, args.port, {("GET", "/health"): health, ("GET", "/info"): info,
                                     ("POST", "/generate"): generate, ("POST", "/generate_stream"): generate,
                                     ("POST", "/v1/chat/completions"): chat}, "TGI")


if __name__ == "__main__":
    main(sys.argv[1:])
