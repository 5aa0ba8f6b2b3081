"""A loopback server speaking the part of the Hugging Face Hub API that huggingface_hub uses.

    hub = FakeHub({"org/model": {"config.json": b"{}", "model.safetensors": bytes(...)}},
                  lfs={"model.safetensors"}, token="hf_secret").start()
    env["HF_ENDPOINT"] = hub.url     # set BEFORE huggingface_hub is imported (run the CLI in a subprocess)

Routes:
* ``GET /api/models/{repo}`` and ``/api/models/{repo}/revision/{rev}`` (``?blobs=true``): model info
  with ``sha`` and ``siblings`` (``size``, ``blobId``, ``lfs: {size, sha256, pointerSize}``);
* ``POST /api/models/{repo}/paths-info/{rev}``: path infos (for ``get_paths_info``);
* ``GET /api/models/{repo}/tree/{rev}``: file listing;
* ``HEAD|GET /{repo}/resolve/{rev}/{path}``: with ``Range``, and the headers ``hf_hub_download``
  needs: ``ETag``, ``X-Repo-Commit``, ``Content-Length``, ``X-Linked-Size`` / ``X-Linked-Etag`` for LFS.
The revision may be ``main`` (a branch) or the commit sha. ``bytes_served`` counts body bytes sent, as they are written (a counting source
server: a body cut off by a killed client counts what went out).
``corrupt`` is a set of paths served with one byte flipped (for verify tests). ``conn_rate`` limits each
connection's body to that many bytes/s (a CDN's per-stream speed); ``max_active`` and ``ranges`` record
how many resolve GETs were sending at once and which ranges were asked for. ``fail_every``: every
Nth resolve GET is cut off half-way (connection closed) to exercise ranged resume.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit


class FakeHub:
    def __init__(self, repos: dict[str, dict[str, bytes]], *, lfs: set[str] | None = None, token: str | None = None,
                 corrupt: set[str] | None = None, fail_every: int = 0, conn_rate: float = 0.0) -> None:
        self.repos = repos
        self.conn_rate = conn_rate  # bytes/s per connection (a CDN's per-stream speed); 0 = unlimited
        self.active = 0  # resolve GETs sending a body right now, and the most seen at once
        self.max_active = 0
        self.ranges: list[tuple[str, str | None]] = []  # (path, Range header) of every resolve GET
        self.lfs = lfs if lfs is not None else {p for r in repos.values() for p, d in r.items() if len(d) > 100_000}
        self.token = token
        self.corrupt = corrupt or set()
        self.fail_every = fail_every
        self.commits = {name: hashlib.sha1(name.encode()).hexdigest() for name in repos}
        self.bytes_served = 0
        self.gets = 0
        self._mu = threading.Lock()
        self._srv: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------------------------------ model
    def _sibling(self, path: str, data: bytes) -> dict[str, Any]:
        blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        s: dict[str, Any] = {"rfilename": path, "size": len(data), "blobId": blob}
        if path in self.lfs:
            s["lfs"] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "pointerSize": 134}
            s["size"] = len(data)
        return s

    def _etag(self, path: str, data: bytes) -> str:
        if path in self.lfs:
            return hashlib.sha256(data).hexdigest()
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()

    def start(self) -> FakeHub:
        hub = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def _auth_ok(self) -> bool:
                if hub.token is None:
                    return True
                return self.headers.get("authorization") == f"Bearer {hub.token}"

            def _json(self, code: int, obj: Any, extra: dict[str, str] | None = None) -> None:
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _repo_rev(self, repo: str, rev: str | None) -> tuple[dict[str, bytes], str] | None:
                if repo not in hub.repos:
                    self._json(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
                    return None
                commit = hub.commits[repo]
                if rev not in (None, "main", commit):
                    self._json(404, {"error": "Invalid rev id"}, {"X-Error-Code": "RevisionNotFound"})
                    return None
                return hub.repos[repo], commit

            def do_POST(self) -> None:
                n = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(n) if n else b""
                m = re.match(r"^/api/models/(.+?)/paths-info/([^/]+)$", urlsplit(self.path).path)
                if not m:
                    return self._json(404, {"error": "not found"})
                if not self._auth_ok():
                    return self._json(401, {"error": "Invalid credentials"})
                rr = self._repo_rev(m.group(1), unquote(m.group(2)))
                if rr is None:
                    return None
                files, commit = rr
                try:
                    paths = json.loads(raw).get("paths", [])
                except ValueError:
                    from urllib.parse import parse_qs

                    paths = parse_qs(raw.decode()).get("paths", [])
                out = []
                for p in paths:
                    if p in files:
                        s = hub._sibling(p, files[p])
                        d = {"type": "file", "path": p, "size": s["size"], "oid": s["blobId"]}
                        if "lfs" in s:
                            d["lfs"] = {"oid": s["lfs"]["sha256"], "size": s["size"], "pointerSize": 134}
                        out.append(d)
                return self._json(200, out)

            def do_HEAD(self) -> None:
                self._resolve(head=True)

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                m = re.match(r"^/api/models/(.+?)(?:/revision/([^/]+))?$", path)
                if m and "/tree/" not in path:
                    if not self._auth_ok():
                        return self._json(401, {"error": "Invalid credentials"})
                    rr = self._repo_rev(m.group(1), unquote(m.group(2)) if m.group(2) else None)
                    if rr is None:
                        return None
                    files, commit = rr
                    return self._json(200, {"id": m.group(1), "modelId": m.group(1), "sha": commit, "private": False,
                                            "siblings": [hub._sibling(p, d) for p, d in sorted(files.items())]})
                m = re.match(r"^/api/models/(.+?)/tree/([^/]+)(?:/(.*))?$", path)
                if m:
                    if not self._auth_ok():
                        return self._json(401, {"error": "Invalid credentials"})
                    rr = self._repo_rev(m.group(1), unquote(m.group(2)))
                    if rr is None:
                        return None
                    files, _ = rr
                    out = []
                    for p, d in sorted(files.items()):
                        s = hub._sibling(p, d)
                        e = {"type": "file", "path": p, "size": s["size"], "oid": s["blobId"]}
                        if "lfs" in s:
                            e["lfs"] = {"oid": s["lfs"]["sha256"], "size": s["size"], "pointerSize": 134}
                        out.append(e)
                    return self._json(200, out)
                self._resolve(head=False)

            def _resolve(self, head: bool) -> None:
                path = urlsplit(self.path).path
                m = re.match(r"^/(.+?)/resolve/([^/]+)/(.+)$", path)
                if not m:
                    return self._json(404, {"error": "not found"})
                if not self._auth_ok():
                    return self._json(401, {"error": "Invalid credentials"})
                rr = self._repo_rev(m.group(1), unquote(m.group(2)))
                if rr is None:
                    return None
                files, commit = rr
                fpath = unquote(m.group(3))
                if fpath not in files:
                    return self._json(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
                data = files[fpath]
                etag = hub._etag(fpath, data)
                if fpath in hub.corrupt:
                    data = bytes([data[0] ^ 0xFF]) + data[1:]
                start, end = 0, len(data) - 1
                rng = self.headers.get("range")
                status = 200
                if rng:
                    mm = re.match(r"bytes=(\d+)-(\d*)", rng)
                    if mm:
                        start = int(mm.group(1))
                        end = int(mm.group(2)) if mm.group(2) else len(data) - 1
                        status = 206
                        if start >= len(data):
                            self.send_response(416)
                            self.send_header("Content-Length", "0")
                            self.end_headers()
                            return None
                body = data[start : end + 1]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", f'"{etag}"')
                self.send_header("X-Repo-Commit", commit)
                self.send_header("Accept-Ranges", "bytes")
                if fpath in hub.lfs:
                    self.send_header("X-Linked-Size", str(len(data)))
                    self.send_header("X-Linked-Etag", f'"{etag}"')
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
                self.end_headers()
                if head:
                    return None
                with hub._mu:
                    hub.gets += 1
                    hub.ranges.append((fpath, rng))
                    cut = hub.fail_every and hub.gets % hub.fail_every == 0
                if cut:
                    half = body[: len(body) // 2]
                    self.wfile.write(half)
                    with hub._mu:
                        hub.bytes_served += len(half)
                    self.close_connection = True
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return None
                with hub._mu:
                    hub.active += 1
                    hub.max_active = max(hub.max_active, hub.active)
                try:
                    # counted as it is written (a body cut off by a killed client counts what went out)
                    import time

                    t0 = time.monotonic()
                    step = 64 * 1024 if hub.conn_rate else 1024 * 1024
                    for i in range(0, len(body), step):
                        piece = body[i : i + step]
                        try:
                            self.wfile.write(piece)
                        except (BrokenPipeError, ConnectionResetError):
                            self.close_connection = True
                            return None  # the client is gone (killed): what it got is counted
                        with hub._mu:
                            hub.bytes_served += len(piece)
                        if hub.conn_rate:
                            ahead = (i + step) / hub.conn_rate - (time.monotonic() - t0)
                            if ahead > 0:
                                time.sleep(ahead)
                finally:
                    with hub._mu:
                        hub.active -= 1
                return None

        self._srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self._srv.daemon_threads = True
        threading.Thread(target=self._srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self._srv is not None
        return f"http://127.0.0.1:{self._srv.server_address[1]}"

    def stop(self) -> None:
        if self._srv is not None:
            self._srv.shutdown()
            self._srv.server_close()
            self._srv = None
