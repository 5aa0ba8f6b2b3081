"""A small keep-alive HTTP client on :mod:`http.client` (standard library only).

Why not httpx/aiohttp (both installed): verify measures latency, so the client's own cost per request is
part of the number it reports. ``http.client`` on one persistent connection per worker thread adds the
least (see ``scripts/bench_verify``), needs no event loop, and keeps ``flymigrate verify`` free of an
optional dependency. Each worker thread owns one :class:`Client` (one connection); nothing is shared.

Header values handed in are revealed only here, when the request is written to the socket; they never
appear in an exception message this module raises.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..errors import UserError

HeaderSource = Callable[[], Mapping[str, str]]


@dataclass
class Response:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes
    elapsed_s: float  # request written -> whole body read
    ttfb_s: float  # request written -> status line and headers read

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    def text(self, limit: int = 200) -> str:
        t = self.body[:limit].decode("utf-8", "replace").strip()
        return " ".join(t.split())


@dataclass
class StreamResult:
    status: int
    reason: str
    ttfb_s: float
    first_event_s: float | None = None  # request written -> first content event
    elapsed_s: float = 0.0
    events: list[Any] = field(default_factory=list)  # decoded JSON events (SSE data: lines or NDJSON)
    done: bool = False  # the server ended the stream itself ([DONE] / done: true)
    error: str | None = None
    body_head: str = ""  # the start of a non-2xx body


class ConnectError(Exception):
    """The server could not be reached (refused, reset, DNS, TLS, timed out). ``str`` holds no header value."""


def split_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, base path) of an http(s) URL, or a UserError."""
    u = urlsplit(url.strip())
    if u.scheme not in ("http", "https") or not u.hostname:
        raise UserError(f"--url {url!r} is not an http(s) URL.", hint="Example: https://acme--serve.modal.run")
    if u.username or u.password:
        raise UserError("--url holds credentials (user:password@); give the bare URL and the credentials through "
                        "--secrets or the environment.")
    if u.query or u.fragment:
        raise UserError(f"--url {url!r} has a query or fragment; give the base URL the clients call.")
    try:
        port = u.port or (443 if u.scheme == "https" else 80)
    except ValueError:
        raise UserError(f"--url {url!r} has an invalid port.") from None
    return u.scheme, u.hostname, port, u.path.rstrip("/")


class Client:
    """One persistent connection to one server. Not thread-safe: one per worker thread."""

    def __init__(self, base_url: str, headers: HeaderSource, *, timeout: float = 60.0) -> None:
        self.scheme, self.host, self.port, self.base_path = split_url(base_url)
        self._headers = headers
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None
        self.connects = 0

    # -- connection ------------------------------------------------------------------------------------
    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        if self._conn is None:
            if self.scheme == "https":
                self._conn = http.client.HTTPSConnection(self.host, self.port, timeout=timeout,
                                                         context=ssl.create_default_context())
            else:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
            self._conn.connect()
            if self._conn.sock is not None:
                self._conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.connects += 1
        elif self._conn.sock is not None:
            self._conn.sock.settimeout(timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def _send(self, method: str, path: str, body: bytes | None, extra: Mapping[str, str] | None,
              timeout: float) -> http.client.HTTPResponse:
        hdrs = {"User-Agent": "flymigrate-verify", "Accept": "*/*"}
        hdrs.update(self._headers())
        if extra:
            hdrs.update(extra)
        if body is not None:
            hdrs["Content-Length"] = str(len(body))
        full = self.base_path + path
        for attempt in (0, 1):
            reused = self._conn is not None
            try:
                conn = self._connect(timeout)
                conn.request(method, full, body=body, headers=hdrs)
                return conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                    http.client.CannotSendRequest, http.client.ResponseNotReady) as exc:
                self.close()
                if attempt == 0 and reused:
                    continue  # the server closed an idle keep-alive connection: once more on a new one
                raise ConnectError(_describe(exc)) from None
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise ConnectError(_describe(exc)) from None
        raise ConnectError("connection failed")  # pragma: no cover

    # -- requests --------------------------------------------------------------------------------------
    def request(self, method: str, path: str, *, body: bytes | None = None, headers: Mapping[str, str] | None = None,
                timeout: float | None = None, max_body: int = 4 * 1024 * 1024) -> Response:
        t = self.timeout if timeout is None else timeout
        t0 = time.perf_counter()
        resp = self._send(method, path, body, headers, t)
        t1 = time.perf_counter()
        try:
            data = resp.read(max_body + 1)
            if len(data) > max_body:
                self.close()  # the rest is unread: do not reuse this connection
                data = data[:max_body]
            elif resp.will_close:
                self.close()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise ConnectError(_describe(exc)) from None
        t2 = time.perf_counter()
        return Response(resp.status, resp.reason, {k.lower(): v for k, v in resp.getheaders()}, data, t2 - t0, t1 - t0)

    def get(self, path: str, **kw: Any) -> Response:
        return self.request("GET", path, **kw)

    def post_json(self, path: str, payload: Any, **kw: Any) -> Response:
        return self.request("POST", path, body=json.dumps(payload).encode(),
                            headers={"Content-Type": "application/json"}, **kw)

    def stream_json(self, path: str, payload: Any, *, timeout: float | None = None,
                    max_events: int = 10_000) -> StreamResult:
        """POST ``payload`` and read a streamed answer: SSE (``data: {...}`` / ``data: [DONE]``) or NDJSON."""
        t = self.timeout if timeout is None else timeout
        t0 = time.perf_counter()
        resp = self._send("POST", path, json.dumps(payload).encode(),
                          {"Content-Type": "application/json", "Accept": "text/event-stream, application/x-ndjson"}, t)
        out = StreamResult(resp.status, resp.reason, time.perf_counter() - t0)
        try:
            if not 200 <= resp.status < 300:
                out.body_head = " ".join(resp.read(400).decode("utf-8", "replace").split())[:200]
                self.close()
                return out
            for ev in _events(resp):
                if ev is _DONE:
                    out.done = True
                    break
                if out.first_event_s is None and _has_content(ev):
                    out.first_event_s = time.perf_counter() - t0
                out.events.append(ev)
                if isinstance(ev, dict) and ev.get("done") is True:
                    out.done = True
                    break
                if len(out.events) >= max_events:
                    break
            resp.read()  # drain what is left so the connection can be reused
            if resp.will_close:
                self.close()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            out.error = _describe(exc)
        except ValueError as exc:
            self.close()
            out.error = f"the stream is not JSON events: {exc}"
        out.elapsed_s = time.perf_counter() - t0
        return out


_DONE = object()


def _events(resp: http.client.HTTPResponse) -> Iterator[Any]:
    while True:
        line = resp.readline(1024 * 1024)
        if not line:
            return
        s = line.strip()
        if not s or s.startswith(b":") or s.startswith((b"event:", b"id:", b"retry:")):
            continue
        if s.startswith(b"data:"):
            s = s[5:].strip()
            if s == b"[DONE]":
                yield _DONE
                return
        yield json.loads(s)


def _has_content(ev: Any) -> bool:
    if not isinstance(ev, dict):
        return False
    if ev.get("response"):  # ollama /api/generate
        return True
    msg = ev.get("message")
    if isinstance(msg, dict) and msg.get("content"):  # ollama /api/chat
        return True
    for ch in ev.get("choices") or ():
        if not isinstance(ch, dict):
            continue
        delta = ch.get("delta") or {}
        if isinstance(delta, dict) and (delta.get("content") or delta.get("reasoning_content")):
            return True
        if ch.get("text"):
            return True
    return bool(ev.get("token"))  # TGI generate_stream


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return "the host name does not resolve"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error ({exc.reason or type(exc).__name__})"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the server closed the connection without answering"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return type(exc).__name__
