"""Clients of a platform-bearer gateway (RunPod) send the platform key where they sent the app's own key."""

from __future__ import annotations

from pathlib import Path

from flymigrate import api
from flymigrate.apply import ApplyOptions
from flymigrate.scan import rename_env_reads

FLY = '''app = "keyed"
[http_service]
  internal_port = 8000
[[vm]]
  gpu_kind = "a10"
'''
CLIENT = '''import os
URL = "https://keyed.fly.dev/v1/chat/completions"
H = {"Authorization": f"Bearer {os.environ['VLLM_API_KEY']}"}
OTHER = os.environ["VLLM_API_KEY_ROTATED"]
'''


def test_rename_env_reads_only_touches_reads_of_that_name() -> None:
    t = "a = os.getenv('API_KEY')\nAPI_KEY = 1\nb = process.env.API_KEY\nc = '$API_KEY_2'\nd = \"${API_KEY}\"\n"
    assert rename_env_reads(t, [("API_KEY", "RUNPOD_API_KEY")]) == (
        "a = os.getenv('RUNPOD_API_KEY')\nAPI_KEY = 1\nb = process.env.RUNPOD_API_KEY\nc = '$API_KEY_2'\n"
        "d = \"${RUNPOD_API_KEY}\"\n")


def _app(tmp: Path) -> Path:
    (tmp / "fly.toml").write_text(FLY)
    (tmp / "Dockerfile").write_text('FROM vllm/vllm-openai:v0.8.5\nCMD ["org/m", "--api-key", "x"]\n')
    (tmp / "client.py").write_text(CLIENT)
    (tmp / "secrets.env").write_text('VLLM_API_KEY="sk-test-key-123456"\n')
    (tmp / "secrets.env").chmod(0o600)
    return tmp


def test_runpod_clients_send_the_runpod_key(tmp_path: Path) -> None:
    app = _app(tmp_path)
    secrets = [str(app / "secrets.env")]
    plan = api.plan(app, "runpod", secrets_paths=secrets, base_url="https://abc.api.runpod.ai")
    assert plan.deployment.client_env_renames == (("VLLM_API_KEY", "RUNPOD_API_KEY"),)
    assert any("read RUNPOD_API_KEY instead" in c for c in plan.step("base_urls").changes)
    api.apply(app, "runpod", options=ApplyOptions(target="runpod", yes=True, only=("base_urls",),
                                                  base_url="https://abc.api.runpod.ai"), secrets_paths=secrets)
    text = (app / "client.py").read_text()
    assert "os.environ['RUNPOD_API_KEY']" in text and "https://abc.api.runpod.ai/v1/chat" in text
    assert 'os.environ["VLLM_API_KEY_ROTATED"]' in text


def test_other_targets_keep_the_app_key(tmp_path: Path) -> None:
    app = _app(tmp_path)
    plan = api.plan(app, "modal", secrets_paths=[str(app / "secrets.env")], base_url="https://x.modal.run")
    assert plan.deployment.client_env_renames == ()
