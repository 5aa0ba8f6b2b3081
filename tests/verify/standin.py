"""Real HTTP stand-ins on 127.0.0.1 for `flymigrate verify`: inference servers behind platform-like fronts.

One ThreadingHTTPServer per test. ``kind`` picks the server (OpenAI-compatible like vLLM, ollama, whisper,
TGI, or a plain web app); ``platform`` puts a front before it that behaves like the platform during a cold
start and checks its credential:

* ``runpod``: ``Authorization: Bearer <RunPod key>`` or 401; until ``worker_up_s`` no worker exists and every
  request is held ``lb_window_s`` and then gets **400**; then ``/ping`` answers 204 while the worker loads and
  200 when ready; any other request waits up to ``lb_window_s`` for a ready worker, then gets 400.
* ``cloudrun``: a request without the identity token (``X-Serverless-Authorization``, or ``Authorization``
  when the app has no key) gets **403**; the token header is removed before the app sees the request
  (``Authorization`` passes to the app when the token came in ``X-Serverless-Authorization``); 503 while cold.
* ``modal``: ``Modal-Key``/``Modal-Secret`` or 401 ("missing credentials for proxy authorization"); 503 cold.
* none: the bare server (``/ping`` 204 while loading, like vLLM's; 503 elsewhere).

Faults: ``fail_every`` (every k-th generation request answers 500), ``slow_ms`` (added to each generation),
``token_delay_s`` between streamed tokens.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Config:
    kind: str = "openai"  # openai | ollama | whisper | tgi | generic
    model: str = "Qwen/Qwen3-8B"
    cold_start_s: float = 0.0
    platform: str | None = None  # runpod | cloudrun | modal | None
    runpod_key: str = ""
    lb_window_s: float = 0.3
    worker_up_s: float = 0.0  # runpod: before this no worker exists, so every request (even /ping) gets 400
    id_token: str = ""
    modal_key: str = ""
    modal_secret: str = ""
    app_key: str = ""
    whisper_api: str = "openai"  # openai | asr | cog
    tokens: int = 6
    token_delay_s: float = 0.0
    fail_every: int = 0
    slow_ms: float = 0.0
    health_path: str = "/health"
    starting_status: int = 503  # what the Cloud Run / Modal front answers while a container starts (503 or 429)
    echo_auth: bool = False  # a careless app that quotes the Authorization it got in its 401 body
    chat_template: bool = True  # False: a base model; chat answers 400 like vLLM's, /v1/completions works
    seen: list[dict[str, str]] = field(default_factory=list)  # headers the app saw (after the front)
    gen_count: int = 0


class StandIn:
    def __init__(self, cfg: Config, *, listen_after_s: float = 0.0) -> None:
        self.cfg = cfg
        self.created = time.monotonic()
        self.started: float | None = None  # the first request starts the cold start, as a scale-from-zero does
        self.lock = threading.Lock()
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.url = f"http://127.0.0.1:{self.port}"
        self.httpd: ThreadingHTTPServer | None = None
        self._t = threading.Thread(target=self._serve, args=(listen_after_s,), daemon=True)
        self._t.start()
        if listen_after_s == 0:
            while self.httpd is None:
                time.sleep(0.005)

    def _serve(self, delay: float) -> None:
        if delay:
            time.sleep(delay)  # until then: connection refused
        handler = type("H", (_Handler,), {"standin": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.httpd.daemon_threads = True
        self.httpd.serve_forever(poll_interval=0.05)

    def cold_left(self, until_s: float | None = None) -> float:
        """Seconds of the cold start still ahead now (``until_s``: the listen delay, counted from creation)."""
        if until_s is not None:
            return max(0.0, until_s - (time.monotonic() - self.created))
        if self.started is None:
            return self.cfg.cold_start_s
        return max(0.0, self.cfg.cold_start_s - (time.monotonic() - self.started))

    def since_start(self) -> float:
        with self.lock:
            if self.started is None:
                self.started = time.monotonic()
        return time.monotonic() - self.started

    def ready(self) -> bool:
        return self.since_start() >= self.cfg.cold_start_s

    def close(self) -> None:
        while self.httpd is None and self._t.is_alive():
            time.sleep(0.01)
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    standin: StandIn

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms delayed-ACK stalls

    def log_message(self, *a: Any) -> None:  # quiet
        pass

    # -- plumbing -------------------------------------------------------------------------------------
    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status: int, body: bytes | str | dict | list = b"", ctype: str = "application/json") -> None:
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
            ctype = ctype if ctype != "application/json" or body[:1] in (b"{", b"[") else "text/plain"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _stream_start(self, ctype: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _stream_end(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # -- the front --------------------------------------------------------------------------------------
    def _front(self) -> dict[str, str] | None:
        """Apply the platform's behaviour; return the headers the app sees, or None when answered here."""
        cfg, si = self.standin.cfg, self.standin
        hdrs = {k.lower(): v for k, v in self.headers.items()}
        path = self.path.split("?")[0]
        if cfg.platform == "runpod":
            if hdrs.get("authorization") != f"Bearer {cfg.runpod_key}":
                self._send(401, {"error": "unauthorized"})
                return None
            hdrs.pop("authorization")
            if si.since_start() < cfg.worker_up_s:
                time.sleep(cfg.lb_window_s)  # RunPod holds the request while it looks for a worker
                if si.since_start() < cfg.worker_up_s:
                    self._send(400, {"error": "no workers available"})
                    return None
            if path != "/ping" and not si.ready():
                t_end = time.monotonic() + cfg.lb_window_s
                while time.monotonic() < t_end and not si.ready():
                    time.sleep(0.02)
                if not si.ready():
                    self._send(400, {"error": "no workers available"})
                    return None
        elif cfg.platform == "cloudrun":
            want = f"Bearer {cfg.id_token}"
            if hdrs.get("x-serverless-authorization") == want:
                hdrs.pop("x-serverless-authorization")
            elif hdrs.get("authorization") == want:
                hdrs.pop("authorization")
            else:
                self._send(403, "<html><body>Error: Forbidden. Your client does not have permission to get URL "
                           f"{path} from this server.</body></html>", "text/html")
                return None
            if not si.ready():
                self._send(cfg.starting_status, "Service Unavailable", "text/plain")
                return None
        elif cfg.platform == "modal":
            if hdrs.get("modal-key") != cfg.modal_key or hdrs.get("modal-secret") != cfg.modal_secret:
                self._send(401, "modal-http: missing credentials for proxy authorization", "text/plain")
                return None
            if not si.ready():
                self._send(cfg.starting_status, "modal-http: app is starting", "text/plain")
                return None
        elif not si.ready():
            if path == "/ping":
                self._send(204)
            else:
                self._send(503, {"error": "loading"})
            return None
        if cfg.platform == "runpod" and path == "/ping" and not si.ready():
            self._send(204)
            return None
        return hdrs

    def _app_auth(self, hdrs: dict[str, str]) -> bool:
        cfg = self.standin.cfg
        if cfg.app_key and hdrs.get("authorization") != f"Bearer {cfg.app_key}":
            msg = f"Unauthorized: {hdrs.get('authorization')}" if cfg.echo_auth else "Unauthorized"
            self._send(401, {"error": {"message": msg, "type": "invalid_request_error"}})
            return False
        return True

    def _fault(self) -> bool:
        cfg = self.standin.cfg
        with self.standin.lock:
            cfg.gen_count += 1
            n = cfg.gen_count
        if cfg.slow_ms:
            time.sleep(cfg.slow_ms / 1000)
        if cfg.fail_every and n % cfg.fail_every == 0:
            self._send(500, {"error": "injected failure"})
            return True
        return False

    # -- verbs ------------------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802
        body = self._body()
        del body
        hdrs = self._front()
        if hdrs is None:
            return
        cfg = self.standin.cfg
        with self.standin.lock:
            cfg.seen.append(hdrs)
        path = self.path.split("?")[0]
        if path in ("/ping", cfg.health_path, "/health"):
            self._send(200, {"status": "healthy"})
            return
        k = cfg.kind
        if k == "whisper" and cfg.whisper_api == "openai" and path == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": cfg.model, "object": "model"}]})
            return
        if k in ("openai", "tgi") and path == "/v1/models":
            if self._app_auth(hdrs):
                self._send(200, {"object": "list", "data": [{"id": cfg.model if k == "openai" else "tgi",
                                                             "object": "model"}]})
            return
        if k == "tgi" and path == "/info":
            self._send(200, {"model_id": cfg.model, "version": "2.4.0"})
            return
        if k == "ollama" and path == "/":
            self._send(200, "Ollama is running", "text/plain")
            return
        if k == "ollama" and path == "/api/tags":
            self._send(200, {"models": [{"name": cfg.model, "model": cfg.model}]})
            return
        if k == "whisper" and path == "/openapi.json":
            route = {"openai": "/v1/audio/transcriptions", "asr": "/asr", "cog": "/predictions"}[cfg.whisper_api]
            self._send(200, {"openapi": "3.0.0", "paths": {route: {}}, "audio": True})
            return
        if k in ("generic", "whisper") and path == "/":
            self._send(200, "<html>ok</html>", "text/html")
            return
        self._send(404, {"detail": "Not Found"})

    def do_POST(self) -> None:  # noqa: N802
        body = self._body()
        hdrs = self._front()
        if hdrs is None:
            return
        cfg = self.standin.cfg
        with self.standin.lock:
            cfg.seen.append(hdrs)
        path = self.path.split("?")[0]
        k = cfg.kind
        if k in ("openai", "tgi") and path in ("/v1/chat/completions", "/v1/completions"):
            if not self._app_auth(hdrs) or self._fault():
                return
            req = json.loads(body)
            if path == "/v1/chat/completions" and not cfg.chat_template:
                self._send(400, {"object": "error", "message": "As of transformers v4.44, default chat template is "
                                 "no longer allowed, so you must provide a chat template if the tokenizer does not "
                                 "define one.", "code": 400})
                return
            completion = path == "/v1/completions"
            if k == "openai" and req.get("model") != cfg.model:
                self._send(404, {"error": {"message": f"The model `{req.get('model')}` does not exist."}})
                return
            words = [f"w{i} " for i in range(cfg.tokens)]
            if not req.get("stream"):
                choice = ({"index": 0, "text": "".join(words), "finish_reason": "length"} if completion else
                          {"index": 0, "message": {"role": "assistant", "content": "".join(words)},
                           "finish_reason": "length"})
                self._send(200, {"id": "x", "object": "text_completion" if completion else "chat.completion",
                                 "choices": [choice], "usage": {"completion_tokens": cfg.tokens}})
                return
            self._stream_start("text/event-stream")
            self._chunk(b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n')
            for w in words:
                if cfg.token_delay_s:
                    time.sleep(cfg.token_delay_s)
                ev = {"choices": [{"index": 0, "text": w} if completion else {"index": 0, "delta": {"content": w}}]}
                self._chunk(f"data: {json.dumps(ev)}\n\n".encode())
            self._chunk(b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}\n\n')
            if (req.get("stream_options") or {}).get("include_usage"):
                self._chunk(f'data: {{"choices":[],"usage":{{"completion_tokens":{cfg.tokens}}}}}\n\n'.encode())
            self._chunk(b"data: [DONE]\n\n")
            self._stream_end()
            return
        if k == "ollama" and path == "/api/generate":
            if self._fault():
                return
            req = json.loads(body)
            if req.get("model") != cfg.model:
                self._send(404, {"error": f"model '{req.get('model')}' not found"})
                return
            if not req.get("stream", True):
                self._send(200, {"model": cfg.model, "response": "4.", "done": True, "eval_count": 2})
                return
            self._stream_start("application/x-ndjson")
            for i in range(cfg.tokens):
                if cfg.token_delay_s:
                    time.sleep(cfg.token_delay_s)
                self._chunk((json.dumps({"model": cfg.model, "response": f"t{i} ", "done": False}) + "\n").encode())
            self._chunk((json.dumps({"model": cfg.model, "response": "", "done": True, "eval_count": cfg.tokens,
                                     "eval_duration": 1000000}) + "\n").encode())
            self._stream_end()
            return
        if k == "whisper":
            route = {"openai": "/v1/audio/transcriptions", "asr": "/asr", "cog": "/predictions"}[cfg.whisper_api]
            if path != route:
                self._send(404, {"detail": "Not Found"})
                return
            if self._fault():
                return
            if cfg.whisper_api == "cog":
                audio = json.loads(body)["input"]["audio"]
                ok = audio.startswith("data:audio/wav;base64,UklGR")  # base64 of "RIFF"
                self._send(200 if ok else 422, {"status": "succeeded", "output": {"transcription": " beep"}})
                return
            field_name = b'name="file"' if cfg.whisper_api == "openai" else b'name="audio_file"'
            ok = b"RIFF" in body and b"WAVE" in body and field_name in body
            if cfg.whisper_api == "openai" and f'name="model"\r\n\r\n{cfg.model}\r\n'.encode() not in body:
                self._send(404, {"detail": "model not found"})  # speaches / vLLM: only the model it serves
                return
            self._send(200 if ok else 422, {"text": " beep"} if ok else {"detail": "no audio file"})
            return
        self._send(404, {"detail": "Not Found"})
