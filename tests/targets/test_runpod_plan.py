"""What the RunPod plan decides: when the server needs the health adapter (and which build), the auth-header
collision, the load-balancer limits, and regressions (queue endpoints, "no secrets API", MAX_CONCURRENCY)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from flymigrate.api import load_inputs, plan
from flymigrate.deployment import DeployOptions
from flymigrate.targets import get_target
from flymigrate.targets import runpod_health as rh
from flymigrate.targets.runpod_files import runpod_spec

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "apps"

FLY = """app = "{name}"
primary_region = "ord"
{build}
{extra}
[http_service]
  internal_port = {port}
  auto_stop_machines = "stop"
  min_machines_running = 0
{checks}
[[vm]]
  size = "a100-80gb"
"""
CHECK = """  [[http_service.checks]]
    grace_period = "{grace}"
    interval = "15s"
    timeout = "5s"
    method = "GET"
    path = "{path}"
"""


def app(tmp_path: Path, name: str, *, image: str | None = None, dockerfile: str | None = None, extra: str = "",
        port: int = 8000, check: str | None = None, grace: str = "30s", secrets: dict[str, str] | None = None,
        opts: DeployOptions | None = None):  # type: ignore[no-untyped-def]
    d = tmp_path / name
    d.mkdir()
    build = f'[build]\n  image = "{image}"' if image else '[build]\n  dockerfile = "Dockerfile"'
    if dockerfile is not None:
        (d / "Dockerfile").write_text(dockerfile)
    checks = CHECK.format(grace=grace, path=check) if check else ""
    (d / "fly.toml").write_text(FLY.format(name=name, build=build, extra=extra, port=port, checks=checks))
    paths = None
    if secrets:
        (d / "secrets.env").write_text("".join(f'{k}="{v}"\n' for k, v in secrets.items()))
        paths = [str(d / "secrets.env")]
    p = plan(d, "runpod", secrets_paths=paths, options=opts or DeployOptions())
    return p, d


def test_vllm_06_image_gets_python_adapter_and_drops_its_own_api_key(tmp_path: Path) -> None:
    p, d = app(tmp_path, "old-vllm", image="vllm/vllm-openai:v0.6.3",
               extra='[experimental]\n  cmd = ["--model", "Qwen/Qwen2.5-7B-Instruct", "--api-key", "$VLLM_KEY"]',
               check="/health", secrets={"VLLM_API_KEY": "sk-x", "HF_TOKEN": "hf_x"})
    dep = p.deployment
    env = dep.env_map()
    assert env["PORT"] == "8000" and env["PORT_HEALTH"] == "18080"
    assert dep.dockerfile_is_thin and dep.dockerfile_text.startswith("# flymigrate: generated")
    assert f"COPY {rh.ADAPTER_PY} /opt/flymigrate/runpod-health.py" in dep.dockerfile_text
    assert list(dep.command[:9]) == ["python3", "/opt/flymigrate/runpod-health.py", "--app-port", "8000",
                                     "--check-path", "/health", "--health-port", "18080", "--"]
    # RunPod's gateway takes its key in Authorization: the server's own --api-key goes (the arguments the
    # fly.toml cmd gives the image's ENTRYPOINT), and so does VLLM_API_KEY, which vLLM would fall back to
    assert list(dep.command[9:]) == ["python3", "-m", "vllm.entrypoints.openai.api_server", "--model",
                                     "Qwen/Qwen2.5-7B-Instruct"]
    assert "--api-key" not in dep.dockerfile_text
    assert dep.app_key_envs_dropped == ("VLLM_API_KEY",) and "VLLM_API_KEY" not in dep.secret_names
    assert "VLLM_API_KEY" not in runpod_spec(dep)["endpoint"]["env"] and "HF_TOKEN" in dep.secret_names
    assert dep.image_ref == "<REGISTRY>/old-vllm:latest"  # it must be built now
    assert dep.auth_header == "Authorization: Bearer $RUNPOD_API_KEY"
    steps = {s.id: s for s in p.steps}
    text = " ".join(steps["dockerfile"].changes)
    assert "vLLM 0.6.3 has no /ping" in text
    assert "fly.toml: fly.toml's command uses `--api-key $VLLM_KEY`" in text  # rules.APP_KEY, a "will change"
    assert "VLLM_API_KEY is not passed to the worker" in text and "--keep-app-auth" in text
    assert not [i for i in p.docker_issues if i.kind == "app-auth" and not i.auto]
    found = get_target("runpod").findings(dep, load_inputs(d).app)
    assert not [f for f in found if f.code == "auth-header-collision"]
    files = get_target("runpod").render(dep, dockerfile_rel="Dockerfile", context_rel=".")
    assert {g.name: g.step for g in files} == {"runpod-endpoint.json": "scaling", rh.ADAPTER_PY: rh.ADAPTER_STEP}


def test_keep_app_auth_keeps_the_key_and_the_warning(tmp_path: Path) -> None:
    p, d = app(tmp_path, "keep-vllm", image="vllm/vllm-openai:v0.6.3",
               extra='[experimental]\n  cmd = ["--model", "m/n", "--api-key", "$VLLM_KEY"]', check="/health",
               secrets={"VLLM_API_KEY": "sk-x"}, opts=DeployOptions(keep_app_auth=True))
    dep = p.deployment
    assert dep.command[-2:] == ("--api-key", "$VLLM_KEY") and "VLLM_API_KEY" in dep.secret_names
    assert not dep.app_auth_dropped and not [i for i in p.docker_issues if i.kind == "app-auth"]
    text = " ".join(next(s for s in p.steps if s.id == "dockerfile").changes)
    assert "vLLM's --api-key / VLLM_API_KEY checks the same header" in text
    coll = [f for f in get_target("runpod").findings(dep, load_inputs(d).app) if f.code == "auth-header-collision"]
    assert coll and coll[0].severity == "warning" and "drop the app's own key" in coll[0].message


@pytest.mark.parametrize("target", ["modal", "cloudrun"])
def test_other_targets_keep_the_app_key(tmp_path: Path, target: str) -> None:
    """Modal's proxy auth (Modal-Key / Modal-Secret) and Cloud Run's identity token (X-Serverless-Authorization)
    leave Authorization to the app: its key stays, whether the service is public or private."""
    d = tmp_path / "vk"
    shutil.copytree(FIXTURES / "serve-vllm-key", d)
    for access in ("public", "private"):
        p = plan(d, target, secrets_paths=[str(d / "harness-secrets.env")], options=DeployOptions(access=access))
        dep = p.deployment
        assert not dep.app_auth_dropped and "VLLM_API_KEY" in dep.secret_names
        assert not [i for i in p.docker_issues if i.kind == "app-auth"]
        assert not any(rel == "start.sh" for rel, _ in dep.script_rewrites)


def test_the_key_flag_goes_from_a_start_script_and_the_plan_lists_it(tmp_path: Path) -> None:
    d = tmp_path / "vk"
    shutil.copytree(FIXTURES / "serve-vllm-key", d)
    p = plan(d, "runpod", secrets_paths=[str(d / "harness-secrets.env")], options=DeployOptions())
    dep = p.deployment
    start = dict(dep.script_rewrites)["start.sh"]
    assert "--api-key" not in start and start.rstrip().endswith("--host 0.0.0.0 --port 8000")
    assert ("start.sh", "rewrite", "dockerfile") in dep.files
    issue = next(i for i in p.docker_issues if i.kind == "app-auth")
    assert issue.auto and issue.where == "start.sh:8" and '--api-key "$VLLM_API_KEY"' in issue.message
    assert "VLLM_API_KEY" not in runpod_spec(dep)["endpoint"]["env"]
    assert dep.client_env_renames == (("VLLM_API_KEY", "RUNPOD_API_KEY"),)


@pytest.mark.parametrize("dockerfile,kept", [
    ('FROM vllm/vllm-openai:v0.6.3\nCMD ["--model", "m", "--api-key", "k", "--port", "8000"]\n',
     '["--model", "m", "--port", "8000"]'),
    ("FROM python:3.11\nRUN pip install vllm==0.6.3\nCMD vllm serve m --api-key=$K --port 8000\n",
     "vllm serve m --port 8000"),
    ('FROM python:3.11\nRUN pip install vllm==0.6.3\nENTRYPOINT ["sh", "-c", "exec vllm serve m --api-key \\"$K\\" -tp 2"]\n',
     'exec vllm serve m -tp 2'),
    ("FROM python:3.11\nRUN pip install vllm==0.6.3\nENTRYPOINT exec python3 -m vllm.entrypoints.openai.api_server \\\n"
     "  --api-key \"$K\" \\\n  --port 8000\n", "api_server"),
    ('FROM ghcr.io/huggingface/text-generation-inference:2.4.0\nCMD ["--model-id", "m", "--api-key", "k"]\n',
     '"--model-id", "m"'),
])
def test_the_key_flag_goes_from_each_form(tmp_path: Path, dockerfile: str, kept: str) -> None:
    p, _ = app(tmp_path, "forms", dockerfile=dockerfile)
    text = p.deployment.dockerfile_text
    code = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))
    assert "--api-key" not in code and kept in code, text
    assert "--api-key" not in " ".join(p.deployment.command)
    issue = next(i for i in p.docker_issues if i.kind == "app-auth")
    assert issue.auto, issue


def test_a_literal_key_is_dropped_and_never_shown(tmp_path: Path) -> None:
    from flymigrate.render import render

    p, _ = app(tmp_path, "lit", dockerfile='FROM vllm/vllm-openai:v0.6.3\nCMD ["--model", "m", "--api-key", '
               '"sk-literal-4242"]\n')
    assert "sk-literal-4242" not in " ".join(p.deployment.command)
    for fmt in ("text", "json", "markdown"):
        out = render(p, fmt, color=False)
        assert "sk-literal-4242" not in out and "--api-key <a literal key, not shown>" in out


def test_a_key_check_in_another_program_is_left_alone(tmp_path: Path) -> None:
    p, _ = app(tmp_path, "other", dockerfile="FROM python:3.11\nCMD [\"myserver\", \"--api-key\", \"k\"]\n")
    assert '"--api-key", "k"' in p.deployment.dockerfile_text and not p.deployment.app_auth_dropped


def test_current_vllm_answers_ping_itself(tmp_path: Path) -> None:
    p, d = app(tmp_path, "new-vllm", image="vllm/vllm-openai:v0.8.5",
               extra='[experimental]\n  cmd = ["--model", "Qwen/Qwen2.5-7B-Instruct"]', check="/health")
    dep = p.deployment
    assert dep.env_map()["PORT_HEALTH"] == "8000"
    assert rh.BEGIN not in (dep.dockerfile_text or "")
    assert "vLLM 0.8.5 answers /ping" in " ".join(next(s for s in p.steps if s.id == "dockerfile").changes)
    assert runpod_spec(dep)["endpoint"]["ports"] == ["8000/http"]
    assert not [f for f in get_target("runpod").findings(dep, load_inputs(d).app)
                if f.code == "auth-header-collision"]


def test_ollama_gets_static_adapter_in_a_build_stage(tmp_path: Path) -> None:
    p, _ = app(tmp_path, "llama", image="ollama/ollama:0.3.6", port=11434,
               opts=DeployOptions(image="registry.example.com/llama:1"))
    dep = p.deployment
    text = dep.dockerfile_text
    stage = text.index(f"FROM {rh.BUILD_BASE} AS {rh.BUILD_STAGE}")
    assert stage < text.index("FROM ollama/ollama:0.3.6")  # the build stage is not the final one
    assert f"COPY --from={rh.BUILD_STAGE} /runpod-health /opt/flymigrate/runpod-health" in text
    assert list(dep.command) == ["/opt/flymigrate/runpod-health", "--app-port", "11434", "--health-port", "18080",
                                 "--", "/bin/ollama", "serve"]
    assert dep.image_ref == "registry.example.com/llama:1"
    names = {g.name for g in get_target("runpod").render(dep, dockerfile_rel="Dockerfile", context_rel="app")}
    assert f"app/{rh.ADAPTER_C}" in names  # rendered into the build context


def test_tgi_polls_its_health_route_through_the_adapter(tmp_path: Path) -> None:
    p, _ = app(tmp_path, "tgi", image="ghcr.io/huggingface/text-generation-inference:2.0.4", port=80,
               extra='[experimental]\n  cmd = ["--model-id", "org/m"]', check="/health")
    dep = p.deployment
    assert "--check-path" in dep.command and "/health" in dep.command
    assert dep.command[dep.command.index("--") + 1] == "text-generation-launcher"
    assert f"COPY {rh.ADAPTER_PY} " in dep.dockerfile_text  # TGI's image runs Python shards: python3 is there


@pytest.mark.parametrize("fixture", ["dotted-services-table", "nogpu-hint"])
def test_adapter_block_is_idempotent(tmp_path: Path, fixture: str) -> None:
    d = tmp_path / fixture
    shutil.copytree(FIXTURES / fixture, d)
    first = plan(d, "runpod").deployment
    (d / "Dockerfile").write_text(first.dockerfile_text)  # what apply wrote
    again = plan(d, "runpod").deployment
    assert again.dockerfile_text == first.dockerfile_text
    assert again.command == first.command
    assert first.dockerfile_text.count(rh.BEGIN) == 1


def test_lb_limits_are_findings(tmp_path: Path) -> None:
    p, d = app(tmp_path, "whisper-slow", dockerfile='FROM python:3.11-slim\nRUN pip install faster-whisper\n'
               'CMD ["python3", "transcribe_server.py"]\n', check="/health", grace="5m")
    found = {f.code: f for f in get_target("runpod").findings(p.deployment, load_inputs(d).app)}
    assert "lb-cold-start-400" in found and "400" in found["lb-cold-start-400"].message
    assert "lb-payload-limit" in found and "30 MB" in found["lb-payload-limit"].message
    # in the plan itself too (from fly.toml, through the scaling translation)
    assert "lb-cold-start-400" in {f.code for f in p.findings}
    p2, d2 = app(tmp_path, "fast", dockerfile='FROM python:3.11-slim\nCMD ["python3", "s.py"]\n', check="/h")
    assert not get_target("runpod").findings(p2.deployment, load_inputs(d2).app)
    assert not {f.code for f in p2.findings} & {"lb-cold-start-400", "lb-payload-limit", "lb-processing-cap"}


def test_regressions_queue_secrets_api_max_concurrency() -> None:
    p = plan(ROOT / "examples" / "acme-chat", "runpod",
             secrets_paths=[str(ROOT / "examples" / "acme-chat" / "fly-secrets.json")])
    # the plan's own text (steps and findings; the price data in data/prices.toml belongs to compare)
    text = json.dumps([s.__dict__ for s in p.steps], default=str) + json.dumps([f.to_json() for f in p.findings])
    text += json.dumps(p.deployment.to_json())
    assert "no secrets API" not in text and "add them in the console" not in text
    assert "MAX_CONCURRENCY" not in text
    spec = runpod_spec(p.deployment)
    assert spec["endpoint"]["type"] == "LOAD_BALANCER" and "QUEUE_DELAY" not in json.dumps(spec)
    assert spec["endpoint"]["env"]["HF_TOKEN"] == "{{ RUNPOD_SECRET_flymigrate-acme-chat-HF_TOKEN }}"
    assert "POST /v2/account/secrets" in next(s for s in p.steps if s.id == "secrets").changes[0]


def test_no_concurrency_means_flys_default_soft_limit(tmp_path: Path) -> None:
    p, _ = app(tmp_path, "plain", dockerfile='FROM python:3.11-slim\nCMD ["python3", "s.py"]\n')
    assert runpod_spec(p.deployment)["endpoint"]["scaling"] == {"type": "REQUEST_COUNT", "requestCount": 20}


def test_secret_names_are_valid_for_runpod() -> None:
    from flymigrate.targets.runpod import _SECRET_NAME_RE, secret_name

    for app_name, name in (("acme-chat", "HF_TOKEN"), ("9lives", "X"), ("runpod-app", "RUNPOD_KEY"),
                           ("a" * 300, "B")):
        n = secret_name(app_name, name)
        assert _SECRET_NAME_RE.match(n) and len(n) <= 191 and not n.lower().startswith("runpod"), n
    assert secret_name("A", "K") != secret_name("B", "K")


def test_arguments_to_an_unknown_entrypoint_are_not_wrapped(tmp_path: Path) -> None:
    """`cmd = ["--port", ...]` on an image whose ENTRYPOINT flymigrate does not know: wrapping would run "--port"."""
    p, _ = app(tmp_path, "llamacpp", image="ghcr.io/ggerganov/llama.cpp:server",
               extra='[experimental]\n  cmd = ["-m", "/models/m.gguf", "--port", "8000"]', check="/health")
    dep = p.deployment
    assert rh.BEGIN not in (dep.dockerfile_text or "")
    env = dep.env_map()
    # RunPod polls only /ping (the path is not configurable): no worker would ever be routed to, so it is blocked
    assert "HEALTH_CHECK_PATH" not in env and env["PORT_HEALTH"] == "8000"
    assert dep.blockers and "GET /ping" in dep.blockers[0] and "[processes]" in dep.blockers[0]
    assert next(s for s in p.steps if s.id == "scaling").status == "blocked"
    assert runpod_spec(dep)["health"]["path"] == "/ping"


def test_an_image_cog_built_is_wrapped_with_cogs_own_command(tmp_path: Path) -> None:
    """[build] image built by Cog (cog.yaml beside fly.toml): its command is Cog's, so the adapter can wrap it."""
    d = tmp_path / "cogapp"
    d.mkdir()
    (d / "cog.yaml").write_text("build:\n  gpu: true\npredict: predict.py:Predictor\n")
    (d / "fly.toml").write_text(FLY.format(name="cogapp", build='[build]\n  image = "ghcr.io/acme/cogapp:latest"',
                                           extra="", port=5000, checks=CHECK.format(grace="60s", path="/health-check")))
    dep = plan(d, "runpod", options=DeployOptions()).deployment
    assert not dep.blockers
    assert list(dep.command[-3:]) == ["python", "-m", "cog.server.http"]
    assert rh.BEGIN in dep.dockerfile_text and "--check-path" in dep.command
    # without cog.yaml the same image's command is unknown: blocked on RunPod, with the fix
    (d / "cog.yaml").unlink()
    assert plan(d, "runpod", options=DeployOptions()).deployment.blockers
