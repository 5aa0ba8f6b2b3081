"""What only made sense on Fly, found in Dockerfiles, scripts and fly.toml."""

from __future__ import annotations

import pytest

from flymigrate.dockerplan import analyze
from flymigrate.model import FileInjection, FlyApp
from flymigrate.parse.dockerfile import env_names, parse_dockerfile_text

APP = FlyApp("fly.toml", app="x")


def kinds(df_text: str, scripts: dict[str, str] | None = None, app: FlyApp = APP, gpu: bool = True) -> set[str]:
    df = parse_dockerfile_text(df_text, "Dockerfile")
    return {i.kind for i in analyze(app, df, scripts or {}, uses_gpu=gpu)}


@pytest.mark.parametrize("text,expect", [
    # a CPU base with nothing that brings CUDA: relied on Fly's injected libraries
    ("FROM ubuntu:22.04\nRUN apt-get update && apt-get install -y python3-pip\nRUN pip install llama-cpp-python\n",
     True),
    ("ARG BASE=debian:bookworm-slim\nFROM ${BASE}\nRUN ./build.sh\n", True),
    # pip wheels / ollama / apt cuda packages bring their own CUDA user space
    ("FROM python:3.11-slim\nRUN pip install --no-cache-dir vllm==0.6.3\n", False),
    ("FROM python:3.11\nRUN python -m pip install torch torchvision\n", False),
    ("FROM debian:12\nRUN curl -fsSL https://ollama.com/install.sh | sh\n", False),
    ("FROM ubuntu:22.04\nRUN apt-get install -y libcublas-12-2 libcudnn8\n", False),
    ("FROM nvidia/cuda:12.4.1-runtime-ubuntu22.04\nRUN make\n", False),
    ("FROM pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime\n", False),
])
def test_no_cuda_detection(text, expect):
    assert ("no-cuda" in kinds(text)) is expect


def test_no_cuda_only_for_gpu_apps():
    assert "no-cuda" not in kinds("FROM ubuntu:22.04\n", gpu=False)


@pytest.mark.parametrize("text,kind", [
    ("FROM x\nRUN ldconfig\n", "driver-shim"),
    ('FROM x\nCMD ["sh", "-c", "nvidia-smi && python app.py"]\n', "driver-shim"),
    ("FROM x\nRUN rm -rf /usr/local/cuda/lib64/stubs\n", "driver-shim"),
    ("FROM x\nCOPY 45-flyio.sh /opt/nvidia/entrypoint.d/45-flyio.sh\n", "fly-entrypoint-d"),
    ('FROM x\nCMD ["sh", "-c", "serve --name $FLY_APP_NAME"]\n', "fly-env"),
    ("FROM x\nENV OLLAMA_HOST=[::]:11434\n", "ipv6-bind"),
    ("FROM x\nENV ELIXIR_ERL_OPTIONS=\"-proto_dist inet6_tcp\"\n", "ipv6-bind"),
    ("FROM x\nCMD uvicorn app:app --host ::\n", "ipv6-bind"),
    ("FROM x\nRUN huggingface-cli download org/model --local-dir /m\n", "baked-weights"),
    ("FROM x\nRUN python -c \"from huggingface_hub import snapshot_download; snapshot_download('a/b')\"\n",
     "baked-weights"),
    ("FROM x\nRUN ollama serve & sleep 5 && ollama pull llama3\n", "baked-weights"),
    ("FROM x\nRUN wget https://x.example/model.safetensors\n", "baked-weights"),
])
def test_fly_only_things(text, kind):
    assert kind in kinds(text)


def test_nothing_on_a_clean_dockerfile():
    assert kinds("FROM nvidia/cuda:12.4.1-runtime-ubuntu22.04\nRUN pip install fastapi\n"
                 'CMD ["uvicorn", "app:app", "--host", "0.0.0.0"]\n') == set()


def test_scripts_and_files():
    app = FlyApp("fly.toml", app="x", files=(FileInjection("/start.sh", "start.sh", where="fly.toml:9"),
                                             FileInjection("/opt/nvidia/entrypoint.d/45-flyio.sh", "45-flyio.sh")))
    issues = analyze(app, None, {"start.sh": "#!/bin/sh\nldconfig\nexec serve --host [::]\n"}, uses_gpu=True)
    got = {(i.kind, i.where) for i in issues}
    assert ("driver-shim", "start.sh:2") in got and ("ipv6-bind", "start.sh:3") in got
    assert ("files", "fly.toml:9") in got and any(k == "fly-entrypoint-d" for k, _ in got)


def test_dockerfile_parser_continuations_heredoc_and_env_names():
    df = parse_dockerfile_text(
        "# syntax=docker/dockerfile:1\nFROM a AS b\nRUN apt-get update \\\n  # a comment\n  && apt-get install -y x\n"
        "RUN <<EOF\nldconfig\nEOF\nENV A=1 B=\"two words\"\nENV LEGACY value\n", "Dockerfile")
    assert [i.keyword for i in df.instructions] == ["FROM", "RUN", "RUN", "ENV", "ENV"]
    assert df.instructions[1].line == 3 and df.instructions[1].end_line == 5
    assert "ldconfig" in df.instructions[2].args
    assert env_names(df) == ["A", "B", "LEGACY"]
