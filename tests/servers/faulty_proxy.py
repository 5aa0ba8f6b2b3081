"""A loopback HTTP/1.1 proxy that counts bytes and injects faults. Reusable by any transfer test.

    proxy = FaultyProxy("127.0.0.1", upstream_port, reset_rate=0.1, error_rate=0.1, seed=1)
    proxy.start(); endpoint = proxy.url   # http://127.0.0.1:<port>
    ...
    proxy.request_body_bytes   # bytes of request bodies forwarded upstream (what the server received)
    proxy.stop()

Each request is read in full (headers + body by Content-Length or chunked), then, by a seeded
coin: the connection is reset (RST, optionally after the body was forwarded: ``reset_after_rate``,
the nastiest case -- the server did the work but the client never hears), or answered with
500/503 (``error_rate``; 503s carry ``Retry-After: 0``), or forwarded upstream and the response relayed.
``throttle_rate``: 429 with Retry-After: 0. ``stall_rate``: a GET response stops half-way, stays silent for
``stall_seconds`` and is then reset. ``deny_after``: credentials revoked -- every request after that many forwarded
ones is answered 403 InvalidAccessKeyId (``proxy.deny = True/False`` does it by hand).
``proxy.down = True`` is the network gone: every connection and request is reset until it is set back.
``only_methods`` limits faults to e.g. {"PUT", "POST"}. ``corrupt_rate``: flip one byte in the middle of
a forwarded request body (the server stores bad bytes and answers with their MD5: checksum tests). ``fault_after_bytes``: no faults until that many
body bytes went through (lets a test get past setup calls). ``delay`` slows every forwarded request.
Also usable as a plain counting proxy (all rates 0).
"""

from __future__ import annotations

import http.client
import random
import socket
import socketserver
import struct
import threading
import time


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        f = sock.makefile("rb", buffering=1 << 16)
        p = self.server.proxy
        if p.down:
            p.faults["down"] += 1
            _rst(sock)
            return
        upstream: http.client.HTTPConnection | None = None
        try:
            while True:
                line = f.readline(65537)
                if not line or line in (b"\r\n", b"\n"):
                    if not line:
                        return
                    continue
                method, target, _ = line.decode("latin-1").split(" ", 2)
                headers: list[tuple[str, str]] = []
                while True:
                    h = f.readline(65537)
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = h.decode("latin-1").partition(":")
                    headers.append((k.strip(), v.strip()))
                hmap = {k.lower(): v for k, v in headers}
                body = b""
                if "content-length" in hmap:
                    want = int(hmap["content-length"])
                    buf = bytearray()
                    while len(buf) < want:
                        try:
                            chunk = f.read1(min(1 << 20, want - len(buf)))
                        except OSError:
                            chunk = b""
                        if not chunk or p.down:
                            break
                        buf += chunk
                        with p._mu:
                            p.received_body_bytes += len(chunk)
                    body = bytes(buf)
                    if len(body) < want:
                        return  # the client went away mid-body: never forward a truncated request
                elif hmap.get("transfer-encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(f.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while f.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            break
                        chunks.append(f.read(size))
                        f.readline()
                    body = b"".join(chunks)
                    with p._mu:
                        p.received_body_bytes += len(body)
                    headers = [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]
                    headers.append(("Content-Length", str(len(body))))
                if p.down:
                    p.faults["down"] += 1
                    _rst(sock)
                    return
                fault = p._pick(method)
                if p._denied():
                    p.faults["403"] += 1
                    msg = b"<Error><Code>InvalidAccessKeyId</Code><Message>revoked</Message></Error>"
                    sock.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: "
                                 + str(len(msg)).encode() + b"\r\n\r\n" + msg)
                    continue
                if fault == "429":
                    p.faults["429"] += 1
                    msg = b"<Error><Code>SlowDown</Code><Message>Too Many Requests</Message></Error>"
                    sock.sendall(b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 0\r\nContent-Type: application/xml"
                                 b"\r\nContent-Length: " + str(len(msg)).encode() + b"\r\n\r\n" + msg)
                    continue
                if fault == "reset":
                    p.faults["reset"] += 1
                    _rst(sock)
                    return
                if fault in ("500", "503"):
                    p.faults[fault] += 1
                    msg = b"<Error><Code>InternalError</Code><Message>injected</Message></Error>"
                    if fault == "503":
                        msg = b"<Error><Code>SlowDown</Code><Message>injected</Message></Error>"
                    extra = b"Retry-After: 0\r\n" if fault == "503" else b""
                    sock.sendall(b"HTTP/1.1 " + fault.encode() + b" Injected\r\nContent-Type: application/xml\r\n" + extra
                                 + b"Content-Length: " + str(len(msg)).encode() + b"\r\n\r\n" + msg)
                    continue
                if body and p._corrupt(method):
                    i = len(body) // 2
                    body = body[:i] + bytes([body[i] ^ 0x55]) + body[i + 1 :]
                if p.delay:
                    time.sleep(p.delay)
                if upstream is None:
                    upstream = http.client.HTTPConnection(p.upstream_host, p.upstream_port, timeout=120)
                upstream.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
                for k, v in headers:
                    upstream.putheader(k, v)
                upstream.endheaders(body if body else None)
                with p._mu:
                    p.request_body_bytes += len(body)
                    p.requests += 1
                    p.by_method[method] = p.by_method.get(method, 0) + len(body)
                resp = upstream.getresponse()
                data = resp.read()
                if fault == "reset_after":
                    p.faults["reset_after"] += 1
                    _rst(sock)
                    return
                stall = fault == "stall" and method == "GET" and len(data) > 1
                out = [f"HTTP/1.1 {resp.status} {resp.reason}\r\n".encode("latin-1")]
                for k, v in resp.getheaders():
                    if k.lower() in ("transfer-encoding", "content-length", "connection"):
                        continue
                    out.append(f"{k}: {v}\r\n".encode("latin-1"))
                if method != "HEAD":
                    out.append(f"Content-Length: {len(data)}\r\n".encode())
                else:
                    cl = resp.getheader("content-length")
                    if cl is not None:
                        out.append(f"Content-Length: {cl}\r\n".encode())
                out.append(b"\r\n")
                if stall:  # headers and half the body, then silence, then the connection dies
                    p.faults["stall"] += 1
                    sock.sendall(b"".join(out) + data[: len(data) // 2])
                    time.sleep(p.stall_seconds)
                    _rst(sock)
                    return
                sock.sendall(b"".join(out) + (data if method != "HEAD" else b""))
                with p._mu:
                    p.response_body_bytes += len(data)
        except (ConnectionError, OSError, ValueError):
            return
        finally:
            if upstream is not None:
                upstream.close()


def _rst(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    except OSError:
        pass


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: FaultyProxy


class FaultyProxy:
    def __init__(self, upstream_host: str, upstream_port: int, *, reset_rate: float = 0.0, error_rate: float = 0.0,
                 reset_after_rate: float = 0.0, seed: int = 0, only_methods: set[str] | None = None,
                 fault_after_bytes: int = 0, delay: float = 0.0, max_faults: int | None = None,
                 corrupt_rate: float = 0.0, throttle_rate: float = 0.0, stall_rate: float = 0.0,
                 stall_seconds: float = 2.0, deny_after: int | None = None) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.reset_rate = reset_rate
        self.error_rate = error_rate
        self.reset_after_rate = reset_after_rate
        self.only_methods = only_methods
        self.fault_after_bytes = fault_after_bytes
        self.delay = delay
        self.max_faults = max_faults
        self.corrupt_rate = corrupt_rate  # flip one byte of a forwarded request body (checksum tests)
        self.throttle_rate = throttle_rate  # answer 429 + Retry-After: 0
        self.stall_rate = stall_rate  # GET responses: half the body, stall_seconds of silence, then RST
        self.stall_seconds = stall_seconds
        self.deny_after = deny_after  # credentials "revoked": every request after this many forwarded gets 403
        self.deny = False  # or revoke by hand (set True), restore with False
        self.down = False  # "network gone": every connection and request is reset until set back to False
        self._rng = random.Random(seed)
        self._mu = threading.Lock()
        self.request_body_bytes = 0  # forwarded upstream (complete requests)
        self.received_body_bytes = 0  # read from clients, including bodies cut off by a dying client
        self.response_body_bytes = 0
        self.requests = 0
        self.by_method: dict[str, int] = {}
        self.faults: dict[str, int] = {"reset": 0, "500": 0, "503": 0, "reset_after": 0, "corrupt": 0, "429": 0, "stall": 0,
                                          "403": 0, "down": 0}
        self._srv: _Server | None = None
        self._thread: threading.Thread | None = None

    def _pick(self, method: str) -> str | None:
        with self._mu:
            if self.only_methods and method not in self.only_methods:
                return None
            if self.request_body_bytes < self.fault_after_bytes:
                return None
            if self.max_faults is not None and sum(self.faults.values()) >= self.max_faults:
                return None
            r = self._rng.random()
            if r < self.reset_rate:
                return "reset"
            r -= self.reset_rate
            if r < self.error_rate:
                return "500" if self._rng.random() < 0.5 else "503"
            r -= self.error_rate
            if r < self.reset_after_rate:
                return "reset_after"
            r -= self.reset_after_rate
            if r < self.throttle_rate:
                return "429"
            r -= self.throttle_rate
            if r < self.stall_rate:
                return "stall"
            return None

    def _denied(self) -> bool:
        with self._mu:
            return self.deny or (self.deny_after is not None and self.requests >= self.deny_after)

    def _corrupt(self, method: str) -> bool:
        with self._mu:
            if not self.corrupt_rate or (self.only_methods and method not in self.only_methods):
                return False
            if self.max_faults is not None and sum(self.faults.values()) >= self.max_faults:
                return False
            if self._rng.random() < self.corrupt_rate:
                self.faults["corrupt"] += 1
                return True
            return False

    def start(self) -> FaultyProxy:
        self._srv = _Server(("127.0.0.1", 0), _Handler)
        self._srv.proxy = self
        self._thread = threading.Thread(target=self._srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        assert self._srv is not None
        return int(self._srv.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset_counters(self) -> None:
        with self._mu:
            self.request_body_bytes = 0
            self.received_body_bytes = 0
            self.response_body_bytes = 0
            self.requests = 0
            self.by_method = {}
            self.faults = {k: 0 for k in self.faults}

    def stop(self) -> None:
        if self._srv is not None:
            self._srv.shutdown()
            self._srv.server_close()
            self._srv = None

    def __enter__(self) -> FaultyProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:  # python tests/servers/faulty_proxy.py UPSTREAM_PORT [reset_rate error_rate]
    import sys

    up = int(sys.argv[1])
    rr = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    er = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    p = FaultyProxy("127.0.0.1", up, reset_rate=rr, error_rate=er).start()
    print(p.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        p.stop()


if __name__ == "__main__":
    main()
