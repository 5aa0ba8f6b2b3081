"""Where the server reads its weights (flymigrate.servers.find_lookup), and the layout the Deployment picks."""

from __future__ import annotations

from pathlib import Path

import pytest

from flymigrate import api
from flymigrate.servers import find_lookup

CASES = [
    # (command, scripts, env, runs) -> (server, kind, path)
    (("vllm", "serve", "org/m", "--download-dir", "/data/cache"), {}, {}, [], ("vllm", "hf-cache", "/data/cache")),
    (("python3", "-m", "vllm.entrypoints.openai.api_server", "--model", "org/m"), {}, {"HF_HUB_CACHE": "/c/hub"}, [],
     ("vllm", "hf-cache", "/c/hub")),
    (("vllm", "serve", "org/m"), {}, {"HF_HOME": "/models/hf"}, [], ("vllm", "hf-cache", "/models/hf/hub")),
    (("vllm", "serve", "org/m"), {}, {}, [], ("vllm", "hf-cache", "/root/.cache/huggingface/hub")),
    (("vllm", "serve", "/models/llama"), {}, {}, [], ("vllm", "dir", "/models/llama")),
    (("/srv/start.sh",), {"start.sh": 'exec python3 -m vllm.entrypoints.openai.api_server \\\n  --model "$MODEL" \\\n'
                                      "  --download-dir /data/hf-cache --port 8000\n"}, {"MODEL": "o/m"}, [],
     ("vllm", "hf-cache", "/data/hf-cache")),
    (("text-generation-launcher", "--huggingface-hub-cache", "/cache"), {}, {}, [], ("tgi", "hf-cache", "/cache")),
    (("text-generation-launcher",), {}, {"HUGGINGFACE_HUB_CACHE": "/data"}, [], ("tgi", "hf-cache", "/data")),
    (("/bin/ollama", "serve"), {}, {"OLLAMA_MODELS": "/data/ollama/models"}, [], ("ollama", "ollama", "/data/ollama/models")),
    (("/bin/ollama", "serve"), {}, {}, [], ("ollama", "ollama", "/root/.ollama/models")),
    (("./llama-server", "-m", "/models/q4.gguf", "--port", "8080"), {}, {}, [], ("llama.cpp", "file", "/models/q4.gguf")),
    (("python3", "server.py"), {}, {"WHISPER_MODEL_DIR": "/weights/large-v3"},
     ["huggingface-cli download Systran/faster-whisper-large-v3 --local-dir /weights/large-v3"],
     ("app", "dir", "/weights/large-v3")),
    (("python3", "app.py"), {}, {}, [], ("unknown", "unknown", None)),
]


@pytest.mark.parametrize("command,scripts,env,runs,want", CASES)
def test_find_lookup(command, scripts, env, runs, want) -> None:  # type: ignore[no-untyped-def]
    lk = find_lookup(command, scripts, env, runs)
    assert (lk.server, lk.kind, lk.path) == want


def _app(tmp: Path, fly: str, dockerfile: str, files: dict[str, str] | None = None) -> Path:
    (tmp / "fly.toml").write_text(fly)
    (tmp / "Dockerfile").write_text(dockerfile)
    for k, v in (files or {}).items():
        (tmp / k).write_text(v)
    return tmp


def test_vllm_download_dir_is_the_cache_dir_not_a_hub_subfolder(tmp_path: Path) -> None:
    app = _app(tmp_path, 'app = "v"\n[env]\nMODEL = "org/tiny"\n[mounts]\nsource = "d"\ndestination = "/data"\n'
               "[http_service]\ninternal_port = 8000\n[[vm]]\ngpu_kind = \"a10\"\n",
               "FROM vllm/vllm-openai:v0.6.3\nENTRYPOINT [\"python3\", \"-m\", \"vllm.entrypoints.openai.api_server\", "
               "\"--model\", \"org/tiny\", \"--download-dir\", \"/data/dl\"]\n")
    dep = api.plan(app, "modal").deployment
    assert dep.layout.kind == "hf-cache" and dep.layout.mount_path == "/data"
    assert dep.layout.subdir == "dl/models--org--tiny"  # /data/dl/models--org--tiny, never /data/dl/hub/...


def test_unknown_server_is_said_not_claimed_unchanged(tmp_path: Path) -> None:
    app = _app(tmp_path, 'app = "u"\n[env]\nMODEL_ID = "org/tiny"\n[http_service]\ninternal_port = 8000\n'
               "[[vm]]\ngpu_kind = \"a10\"\n", "FROM python:3.11\nCMD [\"python\", \"app.py\"]\n")
    dep = api.plan(app, "modal").deployment
    assert "cannot tell" in dep.layout.note and "unchanged" not in dep.layout.note
