#!/usr/bin/env python3
"""flymigrate's RunPod health adapter: answers RunPod's load-balancer health check for a server that has none.

A RunPod load-balancing worker must answer ``GET /ping`` on ``PORT_HEALTH``: 200 when ready, 204 while it is
initialising; any other answer marks it unhealthy and it leaves the routing pool (docs.runpod.io
serverless/load-balancing/overview, "Health checks"). Inference servers such as ollama, vLLM before 0.7 and most
hand-written apps have no ``/ping``. This process starts the app's own command as its child and answers ``/ping``
from the app's own health check:

* ``--check-path /health`` (the fly.toml ``[checks]`` / service check path): 200 once that route answers 2xx;
* no check path: 200 once the app's port accepts connections;
* before the app was ready once: 204 (initialising); after it was: 503 (unhealthy) when the check fails again.

The container's lifetime is the app's: when the app exits, the adapter exits with its code (RunPod then replaces
the worker); SIGTERM / SIGINT / SIGHUP are passed on to the app. Python standard library only (3.6+), no
dependencies: the image's own ``python3`` runs it. Usage (the rewritten Dockerfile's ENTRYPOINT + CMD)::

    python3 runpod-health.py --app-port 8000 [--check-path /health] [--health-port 8001] -- APP ARGV...

``PORT_HEALTH`` in the environment overrides ``--health-port`` (RunPod sets what the endpoint's env says).
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import ThreadingMixIn

PROBE_TIMEOUT_S = 5.0
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through an HTTP(S)_PROXY


class _Server(ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def _usage(msg):
    sys.stderr.write("runpod-health: %s\nusage: runpod-health.py --app-port N [--check-path /p] "
                     "[--health-port N] -- COMMAND...\n" % msg)
    sys.exit(2)


def parse_args(argv):
    opts = {"app_port": None, "check_path": None, "health_port": None}
    i = 0
    while i < len(argv) and argv[i] != "--":
        key = argv[i]
        if key not in ("--app-port", "--check-path", "--health-port") or i + 1 >= len(argv):
            _usage("unknown or incomplete option %r" % key)
        opts[key[2:].replace("-", "_")] = argv[i + 1]
        i += 2
    command = argv[i + 1:]
    if not command:
        _usage("no command after --")
    try:
        app_port = int(opts["app_port"] or os.environ.get("PORT", ""))
        health_port = int(os.environ.get("PORT_HEALTH") or opts["health_port"] or 0)
    except ValueError:
        _usage("ports must be numbers")
    if not health_port or health_port == app_port:
        _usage("PORT_HEALTH (%s) must be set and differ from the app's port %s" % (health_port, app_port))
    path = opts["check_path"]
    if path and not path.startswith("/"):
        path = "/" + path
    return app_port, path, health_port, command


def app_ready(app_port, check_path, timeout=PROBE_TIMEOUT_S):
    """True when the app answers: its check path with 2xx, or (no path) its port accepts a connection."""
    for host in ("127.0.0.1", "::1"):
        if check_path:
            url = "http://%s:%d%s" % ("[::1]" if host == "::1" else host, app_port, check_path)
            try:
                with _OPENER.open(url, timeout=timeout) as resp:
                    return 200 <= resp.status < 300
            except urllib.error.HTTPError as exc:
                return 200 <= exc.code < 300
            except (OSError, ValueError):
                continue  # refused / timed out on this address: try the other
        else:
            try:
                socket.create_connection((host, app_port), timeout=timeout).close()
                return True
            except OSError:
                continue
    return False


def make_handler(app_port, check_path, state):
    class Ping(BaseHTTPRequestHandler):
        def _answer(self, code, body):
            data = body.encode() if body and code != 204 else b""
            self.send_response(code)
            if data:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if data and self.command != "HEAD":
                self.wfile.write(data)

        def do_GET(self):
            if self.path.split("?", 1)[0] != "/ping":
                self._answer(404, '{"error": "only /ping is served on the health port"}')
                return
            if app_ready(app_port, check_path):
                state["ready"] = True
                self._answer(200, '{"status": "healthy"}')
            elif not state["ready"]:
                self._answer(204, "")  # initialising: the app is still loading
            else:
                self._answer(503, '{"status": "unhealthy"}')

        do_HEAD = do_GET

        def log_message(self, *args):
            pass  # RunPod polls often; the app's own log stays readable

    return Ping


def main(argv):
    app_port, check_path, health_port, command = parse_args(argv)
    try:
        child = subprocess.Popen(command)
    except OSError as exc:
        sys.stderr.write("runpod-health: cannot start %r: %s\n" % (command[0], exc))
        return 127
    state = {"ready": False}
    server = _Server(("", health_port), make_handler(app_port, check_path, state))
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def forward(signum, _frame):
        if child.poll() is None:
            child.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    while True:
        try:
            rc = child.wait()
            break
        except InterruptedError:  # pragma: no cover - Python < 3.5 semantics
            continue
    server.shutdown()
    return rc if rc >= 0 else 128 - rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
