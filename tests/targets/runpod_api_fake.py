"""A loopback fake of the parts of RunPod's REST API v2 that flymigrate calls, recording every request.

It checks what the real API checks for these calls (runpod/docs ``api-reference-v2/openapi.json``, snapshot
2026-08-20; docs.runpod.io api-reference-v2/account/create-a-secret / update-a-secret):

* ``POST /v2/serverless`` (CreateEndpointRequest, ``unevaluatedProperties: false``): ``name``, ``type`` and
  ``scaling`` required; ``type`` QUEUE | LOAD_BALANCER; a LOAD_BALANCER endpoint needs REQUEST_COUNT scaling;
  ``env`` is an object of strings; ``ports`` like ``8000/http``; unknown fields -> 400. 201 + Endpoint.
* ``PATCH /v2/serverless/{id}`` (UpdateEndpointRequest: no ``type``), ``GET /v2/serverless[/{id}]``.
* ``POST /v2/account/secrets`` (name pattern, not RUNPOD*, 409 when it exists), ``GET ?name=``, ``PATCH /{id}``.
* every call needs ``Authorization: Bearer <key>`` (401 otherwise); errors are RFC 9457 problem objects.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

CONTAINER = {"args", "disk", "env", "image", "ports", "registry"}
CREATE_FIELDS = CONTAINER | {"name", "type", "scaling", "gpu", "cpu", "dataCenterIds", "flashboot", "networkVolumes",
                             "templateId", "timeout", "workers"}
UPDATE_FIELDS = CREATE_FIELDS - {"type"}
SECRET_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.\-/]*$")


class RunPodFake:
    def __init__(self, key: str = "rp-test-key") -> None:
        self.key = key
        self.requests: list[dict[str, Any]] = []
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.secrets: dict[str, dict[str, Any]] = {}  # id -> {id, name, value}
        self.fail_next: list[tuple[int, dict[str, Any]]] = []  # forced answers for the next calls
        self._n = 0
        fake = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def _body(self) -> Any:
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                return json.loads(raw) if raw else None

            def _send(self, code: int, doc: Any) -> None:
                out = json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/problem+json" if code >= 400 else "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def _handle(self) -> None:
                body = self._body()
                url = urlsplit(self.path)
                fake.requests.append({"method": self.command, "path": url.path, "query": url.query,
                                      "auth": self.headers.get("Authorization", ""), "body": body})
                if self.headers.get("Authorization") != f"Bearer {fake.key}":
                    return self._send(401, problem(401, "Unauthorized", "invalid API key"))
                if fake.fail_next:
                    return self._send(*fake.fail_next.pop(0))
                code, doc = fake.route(self.command, url.path, parse_qs(url.query), body)
                self._send(code, doc)

            do_GET = do_POST = do_PATCH = do_DELETE = _handle

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"

    def stop(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()

    def calls(self, method: str, path_prefix: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == method and r["path"].startswith(path_prefix)]

    def _id(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n:04d}"

    # ---------------------------------------------------------------- routes
    def route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        m = re.fullmatch(r"/v2/serverless(?:/([^/]+))?", path)
        if m:
            return self.serverless(method, m.group(1), body)
        m = re.fullmatch(r"/v2/account/secrets(?:/([^/]+))?", path)
        if m:
            return self.secret(method, m.group(1), query, body)
        return 404, problem(404, "Not Found", path)

    def add_endpoint(self, **fields: Any) -> str:
        eid = self._id("ep")
        self.endpoints[eid] = {"id": eid, **fields}
        return eid

    def serverless(self, method: str, eid: str | None, body: Any) -> tuple[int, Any]:
        if method == "GET" and eid is None:
            return 200, {"endpoints": list(self.endpoints.values())}
        if method == "GET":
            return (200, self.endpoints[eid]) if eid in self.endpoints else (404, problem(404, "Not Found", eid))
        if method == "POST" and eid is None:
            errs = check_endpoint(body, CREATE_FIELDS, create=True)
            if errs:
                return 400, problem(400, "Bad Request", "invalid endpoint", errs)
            eid = self._id("ep")
            self.endpoints[eid] = {"id": eid, **body}
            return 201, self.endpoints[eid]
        if method == "PATCH" and eid is not None:
            if eid not in self.endpoints:
                return 404, problem(404, "Not Found", eid)
            errs = check_endpoint(body, UPDATE_FIELDS, create=False)
            if errs:
                return 400, problem(400, "Bad Request", "invalid update", errs)
            self.endpoints[eid].update(body)
            return 200, self.endpoints[eid]
        return 405, problem(405, "Method Not Allowed", method)

    def secret_by_name(self, name: str) -> dict[str, Any] | None:
        return next((s for s in self.secrets.values() if s["name"] == name), None)

    def secret(self, method: str, sid: str | None, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        if method == "POST" and sid is None:
            name, value = (body or {}).get("name"), (body or {}).get("value")
            if not isinstance(name, str) or not SECRET_NAME.match(name) or len(name) > 191 or \
                    name.lower().startswith("runpod"):
                return 400, problem(400, "Bad Request", "invalid secret name")
            if not isinstance(value, str) or not value:
                return 400, problem(400, "Bad Request", "value required")
            if self.secret_by_name(name):
                return 409, problem(409, "Conflict", "a secret with this name exists")
            sid = self._id("sec")
            self.secrets[sid] = {"id": sid, "name": name, "value": value, "description": body.get("description")}
            return 201, meta(self.secrets[sid])
        if method == "GET" and sid is None:
            want = (query.get("name") or [None])[0]
            return 200, {"secrets": [meta(s) for s in self.secrets.values() if want in (None, s["name"])]}
        if method == "PATCH" and sid is not None:
            if sid not in self.secrets:
                return 404, problem(404, "Not Found", sid)
            if "name" in (body or {}):
                return 400, problem(400, "Bad Request", "name is immutable")
            self.secrets[sid].update({k: v for k, v in (body or {}).items() if k in ("value", "description")})
            return 200, meta(self.secrets[sid])
        return 405, problem(405, "Method Not Allowed", method)


def meta(s: dict[str, Any]) -> dict[str, Any]:
    return {"id": s["id"], "name": s["name"], "description": s.get("description"), "createdAt": "2026-11-28T00:00:00Z"}


def problem(status: int, title: str, detail: str, errors: list[str] | None = None) -> dict[str, Any]:
    return {"title": title, "status": status, "detail": detail, **({"errors": errors} if errors else {})}


def check_endpoint(body: Any, allowed: set[str], *, create: bool) -> list[str]:
    if not isinstance(body, dict):
        return ["body must be an object"]
    errs = [f"unknown field {k}" for k in body if k not in allowed]
    if create:
        errs += [f"{k} is required" for k in ("name", "type", "scaling") if k not in body]
        if body.get("type") not in ("QUEUE", "LOAD_BALANCER"):
            errs.append("type must be QUEUE or LOAD_BALANCER")
        if not body.get("image") and not body.get("templateId"):
            errs.append("image is required without templateId")
    sc = body.get("scaling")
    if sc is not None:
        if sc.get("type") == "REQUEST_COUNT":
            if not isinstance(sc.get("requestCount"), int) or sc["requestCount"] < 1 or set(sc) != {"type",
                                                                                                  "requestCount"}:
                errs.append("REQUEST_COUNT scaling needs requestCount >= 1 and nothing else")
        elif sc.get("type") == "QUEUE_DELAY":
            if body.get("type") == "LOAD_BALANCER":
                errs.append("load-balancing endpoints need REQUEST_COUNT scaling")
        else:
            errs.append("scaling.type must be QUEUE_DELAY or REQUEST_COUNT")
    env = body.get("env")
    if env is not None and (not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values())):
        errs.append("env must be an object of strings")
    for p in body.get("ports") or []:
        if not re.fullmatch(r"\d+/(http|tcp)", str(p)):
            errs.append(f"bad port {p}")
    w = body.get("workers") or {}
    if "idleTimeout" in w and not 1 <= w["idleTimeout"] <= 3600:
        errs.append("workers.idleTimeout must be 1..3600")
    g = body.get("gpu")
    if g is not None and (not g.get("pools") and create):
        errs.append("gpu.pools is required")
    if body.get("flashboot") not in (None, "OFF", "FLASHBOOT", "PRIORITY_FLASHBOOT"):
        errs.append("bad flashboot")
    return errs
