"""Shared parts of the stand-in servers: an HTTP server that binds like the real ones, and status reporting.

Each stand-in is a small Python program that takes the real server's flags and environment, resolves the
weights exactly as the real server does (huggingface_hub's offline cache lookup with the same ``cache_dir``
rules, ollama's manifests/blobs, a faster-whisper directory), and serves the real server's routes. It never
loads a model: "inference" echoes a fixed completion. When it cannot start it exits non-zero, after writing one
line ``{"fatal": reason}`` to ``$STANDIN_STATUS`` (a file the harness reads back), the way the real server would
crash with that reason in its log.

Facts about the image that a real server would observe through the hardware or the installed packages (how
many GPUs, the pinned vLLM version) are handed in by the harness as ``STANDIN_*`` variables.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

Route = Callable[["Handler"], None]


def report(**event: Any) -> None:
    path = os.environ.get("STANDIN_STATUS")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(event) + "\n")


def die(reason: str, code: int = 1) -> None:
    """The server crashes at start-up with this reason (as the real one would, in its own words)."""
    report(fatal=reason)
    print(f"ERROR: {reason}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def gpu_count() -> int:
    return int(os.environ.get("STANDIN_GPU_COUNT", "1") or "1")


class Handler(BaseHTTPRequestHandler):
    routes: dict[tuple[str, str], Route] = {}
    protocol_version = "HTTP/1.1"

    def log_message(self, *a: Any) -> None:  # quiet
        pass

    def body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def json_body(self) -> Any:
        try:
            return json.loads(self.body() or b"{}")
        except ValueError:
            return None

    def send(self, code: int, obj: Any = None, ctype: str = "application/json") -> None:
        data = b"" if obj is None else (obj if isinstance(obj, bytes) else
                                       (obj.encode() if isinstance(obj, str) else json.dumps(obj).encode()))
        self.send_response(code)
        if data or code not in (204, 304):
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)

    def stream(self, chunks: list[bytes], ctype: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for c in chunks:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(c), c))
        self.wfile.write(b"0\r\n\r\n")

    def _dispatch(self) -> None:
        path = self.path.split("?", 1)[0]
        fn = self.routes.get((self.command, path)) or self.routes.get((self.command, "*"))
        if fn is None and self.command == "HEAD":
            fn = self.routes.get(("GET", path))
        if fn is None:
            self.send(404, {"detail": "Not Found"})
            return
        fn(self)

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _dispatch


def serve(host: str, port: int, routes: dict[tuple[str, str], Route], name: str) -> None:
    """Bind as the real servers do (``::`` is dual-stack; ``localhost``/``127.0.0.1`` is loopback only) and serve."""
    Handler.routes = routes
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    bind_host = host
    if host in ("", "*"):
        bind_host, family = "0.0.0.0", socket.AF_INET

    class Server(ThreadingHTTPServer):
        address_family = family
        daemon_threads = True
        allow_reuse_address = True

        def server_bind(self) -> None:
            if family == socket.AF_INET6:
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            super().server_bind()

    try:
        srv = Server((bind_host, port), Handler)
    except OSError as e:
        die(f"{name}: cannot listen on {host}:{port}: {e.strerror}")
    report(listening={"host": host, "port": port, "server": name})
    print(f"{name} listening on {host}:{port}", file=sys.stderr, flush=True)
    srv.serve_forever()


def sse(objs: list[Any]) -> list[bytes]:
    return [b"data: " + json.dumps(o).encode() + b"\n\n" for o in objs] + [b"data: [DONE]\n\n"]


def chat_reply(model: str, stream: bool, text: str = "Hello from the stand-in.") -> tuple[Any, bool]:
    if not stream:
        return ({"id": "chatcmpl-standin", "object": "chat.completion", "model": model,
                 "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                 "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}}, False)
    chunks = [{"id": "chatcmpl-standin", "object": "chat.completion.chunk", "model": model,
               "choices": [{"index": 0, "delta": {"content": w + " "}, "finish_reason": None}]} for w in text.split()]
    chunks.append({"id": "chatcmpl-standin", "object": "chat.completion.chunk", "model": model,
                   "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return (sse(chunks), True)


def hf_snapshot(repo: str, cache_dir: str | None, revision: str | None, what: str) -> str:
    """huggingface_hub's offline lookup, as the real server calls it (``snapshot_download(local_files_only=True)``).

    ``cache_dir=None`` means huggingface_hub's default: ``HF_HUB_CACHE``, else ``HF_HOME/hub``, else
    ``~/.cache/huggingface/hub`` (huggingface_hub ``constants.py``), read from this process's environment.
    """
    import huggingface_hub.constants as hc
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    where = cache_dir if cache_dir is not None else hc.HF_HUB_CACHE
    folder = os.path.join(where, "models--" + repo.replace("/", "--"))
    try:
        return snapshot_download(repo, cache_dir=cache_dir, revision=revision, local_files_only=True)
    except LocalEntryNotFoundError:
        hint = "" if os.environ.get("HF_HUB_OFFLINE") in ("1", "true", "TRUE", "ON", "YES") else \
            " (with the Hub reachable the real server would download them again at every cold start)"
        listing = sorted(os.listdir(where))[:6] if os.path.isdir(where) else None
        die(f"{what}: weights not found at {folder}" + hint +
            (f"; {where} holds {listing}" if listing is not None else f"; {where} does not exist"))
    raise AssertionError("unreachable")


def bearer_ok(h: Handler, keys: list[str]) -> bool:
    return not keys or h.headers.get("Authorization") in {f"Bearer {k}" for k in keys}
