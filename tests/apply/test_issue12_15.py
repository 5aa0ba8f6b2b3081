"""Regression tests: what issues 12 and 15 found apply doing differently from the plan, or unsafely."""

from __future__ import annotations

import os
from pathlib import Path

from flymigrate import api
from flymigrate.apply import ApplyOptions
from flymigrate.apply.state import ApplyLock

from .conftest import run_cli

WHISPER_FLY = '''app = "wb"
[env]
  WHISPER_MODEL_DIR = "/weights/large-v3"
[http_service]
  internal_port = 8080
[[vm]]
  gpu_kind = "a10"
'''
WHISPER_DF = '''FROM nvidia/cuda:12.3.2-cudnn9-runtime-ubuntu22.04
RUN pip3 install faster-whisper==1.0.3 "huggingface_hub[cli]"
RUN huggingface-cli download Systran/faster-whisper-large-v3 --local-dir /weights/large-v3
CMD ["python3", "server.py"]
'''


def _whisper(tmp: Path) -> Path:
    (tmp / "fly.toml").write_text(WHISPER_FLY)
    (tmp / "Dockerfile").write_text(WHISPER_DF)
    return tmp


def test_skip_weights_keeps_the_baked_download(tmp_path: Path) -> None:
    app = _whisper(tmp_path)
    api.apply(app, "runpod", options=ApplyOptions(target="runpod", yes=True, skip=("weights", "secrets"),
                                                  volume_id="v", datacenter="EU-RO-1"))
    text = (app / "Dockerfile").read_text()
    assert "RUN huggingface-cli download Systran/faster-whisper-large-v3 --local-dir /weights/large-v3" in text


def test_the_plan_drops_the_baked_download_when_the_weights_step_runs(tmp_path: Path) -> None:
    app = _whisper(tmp_path)
    dep = api.plan(app, "runpod").deployment
    assert dep.weights_source == "hf://Systran/faster-whisper-large-v3"
    assert "RUN huggingface-cli download" not in "\n".join(
        ln for ln in (dep.dockerfile_text or "").splitlines() if not ln.startswith("#"))
    assert dep.layout.mount_path == "/weights/large-v3"


def test_a_second_apply_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    app = _whisper(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODAL_", "RUNPOD_"))}
    env["FLYMIGRATE_STATE_DIR"] = str(tmp_path / "state")
    with ApplyLock(app):
        r = run_cli(["apply", str(app), "--to", "cloudrun", "--yes", "--skip", "weights"], env)
    assert r.returncode == 2, r.stderr
    assert "another `flymigrate apply` is running" in r.stderr
    assert "Traceback" not in r.stderr
    r = run_cli(["apply", str(app), "--to", "cloudrun", "--yes", "--skip", "weights"], env)
    assert r.returncode == 0, r.stderr  # the lock went with its holder


def test_no_modal_token_is_an_input_error_and_local_steps_still_run(acme: Path, tmp_path: Path) -> None:
    home = tmp_path / "emptyhome"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODAL_", "RUNPOD_", "HF_"))}
    env.update(HOME=str(home), FLYMIGRATE_STATE_DIR=str(tmp_path / "state"))
    r = run_cli(["apply", str(acme), "--to", "modal", "--yes", "--skip", "weights", "--base-url",
                 "https://new.example.com", "--secrets", str(acme / "fly-secrets.json"), "--secrets",
                 str(acme / "full.env")], env)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "modal token new" in r.stderr + r.stdout
    assert (acme / "modal_app.py").exists()  # the scaling step (local) ran after the blocked secrets step
    assert "https://new.example.com" in (acme / "client" / "chat.py").read_text()


def test_env_url_rewrite_is_the_url_rewriter_not_str_replace(tmp_path: Path) -> None:
    (tmp_path / "fly.toml").write_text('app = "myapp"\n[env]\n  ALLOWED = "myapp.fly.dev,admin-myapp.fly.dev"\n'
                                       "[http_service]\n  internal_port = 8000\n[[vm]]\n  gpu_kind = \"a10\"\n")
    (tmp_path / "Dockerfile").write_text("FROM python:3.11\nCMD [\"python\", \"app.py\"]\n")
    dep = api.plan(tmp_path, "cloudrun", base_url="https://new.example.com").deployment
    assert dict(dep.env)["ALLOWED"] == "new.example.com,admin-myapp.fly.dev"


def test_hf_home_under_a_mount_with_a_common_prefix_is_not_repointed(tmp_path: Path) -> None:
    (tmp_path / "fly.toml").write_text('app = "p"\n[env]\n  HF_HOME = "/models-cache/hf"\n[mounts]\n  source = "m"\n'
                                       '  destination = "/models"\n[http_service]\n  internal_port = 8000\n'
                                       "[[vm]]\n  gpu_kind = \"a10\"\n")
    (tmp_path / "Dockerfile").write_text("FROM python:3.11\nCMD [\"python\", \"app.py\"]\n")
    dep = api.plan(tmp_path, "runpod").deployment
    assert dict(dep.env)["HF_HOME"] == "/models-cache/hf"


def test_secrets_exports_are_inputs_never_rewritten(acme: Path) -> None:
    export = acme / "with-url.env"
    export.write_text('BACKEND_URL="https://acme-chat.fly.dev/v1"\nAPI_KEY="sk-a-real-looking-key-123"\n')
    before = export.read_bytes()
    api.apply(acme, "cloudrun", options=ApplyOptions(target="cloudrun", yes=True, skip=("weights",),
                                                     base_url="https://new.example.com", bucket="b"),
              secrets_paths=[str(export)])
    assert export.read_bytes() == before
    assert not (acme / ".flymigrate" / "backup" / "with-url.env").exists()


def test_latin1_client_file_is_rewritten_in_its_encoding(acme: Path) -> None:
    f = acme / "client" / "legacy.py"
    f.write_bytes("# caf\xe9\nURL = 'https://acme-chat.fly.dev/v1'\n".encode("latin-1"))
    api.apply(acme, "cloudrun", options=ApplyOptions(target="cloudrun", yes=True, only=("base_urls",),
                                                     base_url="https://new.example.com"))
    assert f.read_bytes() == "# caf\xe9\nURL = 'https://new.example.com/v1'\n".encode("latin-1")
