"""The RunPod health adapter, run for real: a stand-in server with no /ping behind it, probed the way RunPod's load
balancer probes (GET /ping on PORT_HEALTH: 204 while the app loads, 200 once it is ready), for the Python adapter
and the static C one; and the generated Dockerfile's ENTRYPOINT + CMD started as the container would start it."""

from __future__ import annotations

import http.client
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flymigrate.api import plan
from flymigrate.deployment import DeployOptions
from flymigrate.targets import get_target
from flymigrate.targets import runpod_health as rh

ADAPTER_PY = Path(rh.__file__).with_name("runpod_health_adapter.py")
ADAPTER_C = Path(rh.__file__).with_name("runpod_health.c")

STANDIN = r'''
import os, sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer
port, delay, flag = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
time.sleep(delay)  # "loading the model": the port is closed meanwhile
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        if self.path == "/quit":
            self.send_response(200); self.end_headers(); self.wfile.flush(); os._exit(7)
        code = {"/health": 503 if os.path.exists(flag) else 200, "/v1/models": 200}.get(self.path, 404)
        self.send_response(code); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"{}")
HTTPServer(("127.0.0.1", port), H).serve_forever()
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str) -> int | None:
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", path)
        code = c.getresponse().status
        c.close()
        return code
    except OSError:
        return None


def wait_for(port: int, path: str, want: int, deadline: float = 20.0) -> list[int | None]:
    seen: list[int | None] = []
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        code = get(port, path)
        if not seen or seen[-1] != code:
            seen.append(code)
        if code == want:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"/ping never answered {want}: {seen}")


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="fm-rp-health-"))
    (d / "standin.py").write_text(STANDIN)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def c_adapter(workdir: Path) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler here to build the static adapter")
    out = workdir / "runpod-health"
    subprocess.run([cc, "-Os", "-Wall", "-Werror", "-o", str(out), str(ADAPTER_C)], check=True)
    return out


def adapter_argv(kind: str, c_adapter_path: Path | None) -> list[str]:
    return [sys.executable, str(ADAPTER_PY)] if kind == "python" else [str(c_adapter_path)]


@pytest.mark.parametrize("kind", ["python", "c"])
@pytest.mark.parametrize("check_path", ["/health", None])
def test_adapter_204_then_200_then_503_and_exit_code(kind: str, check_path: str | None, workdir: Path,
                                                      request: pytest.FixtureRequest) -> None:
    c_path = request.getfixturevalue("c_adapter") if kind == "c" else None
    app, health = free_port(), free_port()
    flag = workdir / f"unhealthy-{kind}-{bool(check_path)}"
    flag.unlink(missing_ok=True)
    argv = adapter_argv(kind, c_path) + ["--app-port", str(app)] + (["--check-path", check_path] if check_path else [])
    argv += ["--health-port", "1", "--", sys.executable, str(workdir / "standin.py"), str(app), "1.5", str(flag)]
    proc = subprocess.Popen(argv, env={"PATH": "/usr/bin:/bin", "PORT_HEALTH": str(health)})
    try:
        seen = wait_for(health, "/ping", 204, 10)  # the adapter is up, the app is still "loading"
        assert get(app, "/v1/models") is None  # (its port is really closed)
        seen += wait_for(health, "/ping", 200)
        assert 204 in seen and seen[-1] == 200, seen
        assert get(health, "/other") == 404  # only /ping on the health port
        if check_path:
            flag.touch()  # the app's own check now fails: unhealthy, not "initialising"
            assert get(health, "/ping") == 503
            flag.unlink()
            assert get(health, "/ping") == 200
        get(app, "/quit")  # the app exits with 7: so does the container
        assert proc.wait(10) == 7
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("kind", ["python", "c"])
def test_adapter_passes_sigterm_to_the_app(kind: str, workdir: Path, request: pytest.FixtureRequest) -> None:
    c_path = request.getfixturevalue("c_adapter") if kind == "c" else None
    app, health = free_port(), free_port()
    argv = adapter_argv(kind, c_path) + ["--app-port", str(app), "--health-port", str(health), "--",
                                         sys.executable, str(workdir / "standin.py"), str(app), "0", "/nonexistent"]
    proc = subprocess.Popen(argv, env={"PATH": "/usr/bin:/bin"})
    try:
        wait_for(health, "/ping", 200)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 128 + signal.SIGTERM  # the app died of the forwarded SIGTERM
        assert get(app, "/v1/models") is None
    finally:
        if proc.poll() is None:
            proc.kill()


def test_adapter_refuses_health_port_equal_to_app_port() -> None:
    r = subprocess.run([sys.executable, str(ADAPTER_PY), "--app-port", "8000", "--", "true"],
                       env={"PATH": "/usr/bin:/bin", "PORT_HEALTH": "8000"}, capture_output=True, text=True)
    assert r.returncode == 2 and "must be set and differ" in r.stderr


# ---------------------------------------------------------------- the generated Dockerfile, run as RunPod would

FLY = """app = "tiny-llm"
primary_region = "ord"
[build]
  dockerfile = "Dockerfile"
[http_service]
  internal_port = {port}
  auto_stop_machines = "stop"
  min_machines_running = 0
  [[http_service.checks]]
    grace_period = "30s"
    interval = "15s"
    timeout = "5s"
    method = "GET"
    path = "/health"
[[vm]]
  size = "a10"
"""
DOCKERFILE = 'FROM python:3.11-slim\nCOPY server.py /app/server.py\nCMD ["python3", "/app/server.py"]\n'


def test_generated_entrypoint_serves_ping_like_runpod(tmp_path: Path, workdir: Path) -> None:
    app_port = free_port()
    d = tmp_path / "app"
    d.mkdir()
    (d / "fly.toml").write_text(FLY.format(port=app_port))
    (d / "Dockerfile").write_text(DOCKERFILE)
    (d / "server.py").write_text("print('stand-in')\n")
    dep = plan(d, "runpod", options=DeployOptions(image="r.example/tiny:1")).deployment
    env = dep.env_map()
    assert env["PORT"] == str(app_port) and env["PORT_HEALTH"] == str(rh.HEALTH_PORT)
    # the Dockerfile's ENTRYPOINT + CMD, by Docker's rules, is the adapter wrapped around the app's command
    argv = list(rh.wrapped_command(dep.dockerfile_text) or ())
    assert argv == list(dep.command)
    assert argv[:2] == ["python3", "/opt/flymigrate/runpod-health.py"] and argv[-2:] == ["python3", "/app/server.py"]
    files = {g.name: g for g in get_target("runpod").render(dep, dockerfile_rel="Dockerfile", context_rel=".")}
    assert files[rh.ADAPTER_PY].step == rh.ADAPTER_STEP
    assert f"COPY {rh.ADAPTER_PY} /opt/flymigrate/runpod-health.py" in dep.dockerfile_text
    # start it as the container would: image paths mapped onto this machine, env from the endpoint config
    (workdir / "adapter-from-render.py").write_text(files[rh.ADAPTER_PY].text)
    health = free_port()
    mapped = {"python3": sys.executable, "/opt/flymigrate/runpod-health.py": str(workdir / "adapter-from-render.py"),
              "/app/server.py": str(workdir / "standin.py")}
    run = [mapped.get(a, a) for a in argv] + [str(app_port), "1.0", str(workdir / "nope")]
    proc = subprocess.Popen(run, env={"PATH": "/usr/bin:/bin", **env, "PORT_HEALTH": str(health)})
    try:
        seen = wait_for(health, "/ping", 204, 10) + wait_for(health, "/ping", 200)
        assert seen[-1] == 200 and 204 in seen
        assert get(app_port, "/v1/models") == 200  # and the app itself serves on PORT
    finally:
        proc.terminate()
        proc.wait(10)
