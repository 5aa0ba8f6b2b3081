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


# ------------------------------------------------------------------ a finding carries its fix (DockerIssue.auto)


def _issues(df_text: str | None, scripts: dict[str, str] | None = None, app: FlyApp = APP, **kw):
    df = parse_dockerfile_text(df_text, "Dockerfile") if df_text is not None else None
    return analyze(app, df, scripts or {}, uses_gpu=True, **kw)


def test_auto_says_whether_apply_fixes_it():
    got = {(i.kind, i.line): i.auto for i in _issues(
        "FROM x\nRUN ldconfig || true\nRUN echo $(nvidia-smi -L)\nRUN huggingface-cli download o/m\n"
        "ENV NAME=$FLY_APP_NAME OTHER=$FLY_NOT_A_THING\n")}
    assert got == {("driver-shim", 2): True, ("driver-shim", 3): False, ("baked-weights", 4): False,
                   ("fly-env", 5): False}
    # with a weights source the baked download is dropped, so it is automatic
    assert {i.kind: i.auto for i in _issues("FROM x\nRUN huggingface-cli download o/m\n", drop_baked=True)} == \
        {"baked-weights": True}


def test_fly_toml_items_are_auto_only_where_apply_writes_them():
    app = FlyApp("fly.toml", app="x", processes=(("app", "python serve.py --host ::"),),
                 files=(FileInjection("/start.sh", "start.sh", where="fly.toml:9"),
                        FileInjection("/etc/tls.pem", None, secret_name="TLS", where="fly.toml:12")),
                 env=(("HOST", "::"),))
    with_df = {(i.kind, i.where): i.auto for i in _issues("FROM x\n", app=app)}
    assert with_df[("processes", "fly.toml")] and with_df[("files", "fly.toml:9")]
    assert with_df[("files", "fly.toml:12")] is False  # a secret file is mounted by hand
    assert with_df[("ipv6-bind", "fly.toml")] is True  # the --host :: inside the [processes] command
    # no Dockerfile and no [build] image: nothing is written, so nothing is automatic
    without = {(i.kind, i.where): i.auto for i in _issues(None, app=app)}
    assert without[("processes", "fly.toml")] is False and without[("files", "fly.toml:9")] is False


def test_registry_image_is_manual():
    from flymigrate.model import Build

    app = FlyApp("fly.toml", app="x", build=Build(image="registry.fly.io/x:1", where="fly.toml:3"))
    (issue,) = [i for i in _issues(None, app=app) if i.kind == "registry"]
    assert issue.auto is False


@pytest.mark.parametrize("text", [
    "FROM x\nCMD serve --host  ::\n", "FROM x\nCMD serve --host=::\n", "FROM x\nCMD serve --bind [::]:8000\n",
    'FROM x\nENV HOST="::"\n', "FROM x\nENV HOST=::\n", "FROM x\nCMD serve --host=[::]\n",
    "FROM x\nENV BIND_ADDR fly-local-6pn\n", 'FROM x\nENV ERL="-proto_dist inet6_tcp"\n',
    'FROM x\nCMD ["serve", "--host", "::"]\n',
])
def test_ipv6_forms_are_found_and_fixed(text):
    issues = _issues(text)
    assert [(i.kind, i.auto) for i in issues] == [("ipv6-bind", True)]


@pytest.mark.parametrize("text", ["FROM x\nCMD serve --host 0.0.0.0\n", "FROM x\nCMD serve --host ::1\n",
                                  "FROM x\nENV URL=http://[::1]:8000\n", "FROM x\nRUN echo std::string\n"])
def test_not_ipv6_only(text):
    assert _issues(text) == []


def test_old_names_stay_importable():
    from flymigrate.apply.rewrite import (  # noqa: F401
        CUDA_BASE, MARK, RewriteContext, effective_command, fix_env_value, rewrite_dockerfile, rewrite_script,
        thin_dockerfile)
    from flymigrate.dockerplan import BAKED_RE, FLY_ENTRYPOINT_D_RE, IPV6_RE, SHIM_RE, needs_cuda_base  # noqa: F401

    assert SHIM_RE.search("/usr/bin/nvidia-smi -L") and IPV6_RE.search("--host  ::")
