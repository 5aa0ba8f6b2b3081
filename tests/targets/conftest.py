"""Fixtures for the target tests: small apps written per test and planned through the public API (Cloud Run,
Modal); the apply fixtures (acme-chat copy, canary secrets, loopback HF Hub / Modal fakes, CLI runner) and a
loopback fake of RunPod's REST API v2 (:mod:`.runpod_api_fake`)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from apply.conftest import acme, cli_env, hf_hub, modal_fake, tmp_path  # noqa: E402,F401  (fixtures)

from .runpod_api_fake import RunPodFake  # noqa: E402


@pytest.fixture
def runpod_api() -> Iterator[RunPodFake]:
    f = RunPodFake()
    yield f
    f.stop()


FLY_TOML = """app = "{name}"
primary_region = "{region}"

[build]
  dockerfile = "Dockerfile"
{build_args}
[env]
{env}
{mounts}
{service}
[[vm]]
  size = "{size}"
"""

HTTP_SERVICE = """[http_service]
  internal_port = {port}
  auto_stop_machines = "stop"
  auto_start_machines = true
  min_machines_running = 0
{concurrency}
  [[http_service.checks]]
    grace_period = "60s"
    interval = "15s"
    timeout = "5s"
    method = "GET"
    path = "/health"
"""


def write_app(root: Path, *, name: str = "gpu-app", dockerfile: str = "FROM python:3.11-slim\nCMD [\"python\", \"s.py\"]\n",
              size: str = "a100-80gb", region: str = "ord", env: dict[str, str] | None = None, port: int = 8000,
              mount: str | None = "/models", http: bool = True, concurrency: str = "",
              build_args: dict[str, str] | None = None) -> Path:
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "Dockerfile").write_text(dockerfile)
    svc = HTTP_SERVICE.format(port=port, concurrency=concurrency) if http else ""
    mounts = f'[[mounts]]\n  source = "data"\n  destination = "{mount}"\n' if mount else ""
    ba = ("[build.args]\n" + "".join(f'  {k} = "{v}"\n' for k, v in build_args.items())) if build_args else ""
    (d / "fly.toml").write_text(FLY_TOML.format(
        name=name, region=region, size=size, env="".join(f'  {k} = "{v}"\n' for k, v in (env or {}).items()),
        mounts=mounts, service=svc, build_args=ba))
    return d


@pytest.fixture
def make_app(tmp_path: Path) -> Callable[..., Path]:
    return lambda **kw: write_app(tmp_path, **kw)


def plan_for(app_dir: Path, target: str, **opts: object):  # type: ignore[no-untyped-def]
    from flymigrate import api
    from flymigrate.deployment import DeployOptions

    return api.plan(app_dir, target, options=DeployOptions(**opts))  # type: ignore[arg-type]


def rendered(plan, name: str) -> str:  # type: ignore[no-untyped-def]
    from flymigrate.targets import get_target

    files = get_target(plan.target).render(plan.deployment, dockerfile_rel="Dockerfile", context_rel=".")
    return next(f.text for f in files if f.name == name)
