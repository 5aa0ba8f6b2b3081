"""The harness itself: it must say "serves" for a deployment that honours the platform's contract, and
"does not serve" with the right reason for each way a deployment can break it (so its verdicts on generated
deployments mean something). The deployments here are hand-written, as ``flymigrate apply`` would write them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from serve import dockerimage, harness

COMMIT = "c0ffee" + "0" * 34
CLIENT = """import os, sys, urllib.request, json
req = urllib.request.Request("{url}", data=json.dumps({{"model": "{model}", "messages": []}}).encode(),
                             method="POST", headers={{"Authorization": "Bearer " + os.environ["{keyvar}"],
                                                      "Content-Type": "application/json"}})
print(urllib.request.urlopen(req, timeout=10).read()[:80])
"""


def hf_cache(root: Path, repo: str = "harness-org/tiny-chat") -> None:
    """The Hugging Face cache layout (what the transfer writes): refs/main + snapshots/<commit>/."""
    d = root / ("models--" + repo.replace("/", "--"))
    (d / "refs").mkdir(parents=True)
    (d / "refs" / "main").write_text(COMMIT)
    snap = d / "snapshots" / COMMIT
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    (snap / "model.safetensors").write_bytes(bytes(64))


def runpod_app(tmp: Path, *, dockerfile: str, env: dict[str, str], lb: bool = True, port: int = 8000,
               model: str = "harness-org/tiny-chat", keyvar: str = "RUNPOD_API_KEY", path: str = "/v1/chat/completions"
               ) -> Path:
    app = tmp / "app"
    app.mkdir()
    (app / "Dockerfile").write_text(dockerfile)
    endpoint: dict[str, object] = {"name": "t", "gpuIds": "AMPERE_24", "gpuCount": 1, "networkVolumeId": "v1"}
    if lb:
        endpoint["type"] = "LB"
    (app / "runpod-endpoint.json").write_text(json.dumps({
        "template": {"env": [{"key": k, "value": v} for k, v in {"PORT": str(port), "PORT_HEALTH": str(port),
                                                                  **env}.items()], "dockerArgs": ""},
        "endpoint": endpoint}))
    (app / "client.py").write_text(CLIENT.format(url=f"https://abc123.api.runpod.ai{path}", model=model,
                                                 keyvar=keyvar))
    return app


VLLM_085 = 'FROM vllm/vllm-openai:v0.8.5\nCMD ["--model", "harness-org/tiny-chat", "--port", "8000"]\n'


@pytest.fixture
def volume(work: Path) -> Path:
    v = work / "volume"
    hf_cache(v / "hf")
    return v


def test_serves_when_the_contract_is_met(namespaces: None, work: Path, volume: Path) -> None:
    app = runpod_app(work, dockerfile=VLLM_085, env={"HF_HUB_CACHE": "/runpod-volume/hf", "HF_HUB_OFFLINE": "1"})
    r = harness.run(app, "runpod", volumes={"volume": volume}, secrets={})
    assert r.serves, r
    assert any("GET /ping on PORT_HEALTH 8000 -> 200" in x for x in r.log)
    assert any("/v1/chat/completions -> 200" in x for x in r.log)
    # nothing was created at the host's / (the container's paths live in the namespace)
    assert not os.path.exists("/runpod-volume")


def test_wrong_argv_does_not_serve(namespaces: None, work: Path, volume: Path) -> None:
    app = runpod_app(work, dockerfile='FROM python:3.11-slim\nWORKDIR /app\nCMD ["python3 server.py"]\n', env={})
    r = harness.run(app, "runpod", volumes={"volume": volume}, secrets={})
    assert not r.serves
    assert "exec 'python3 server.py': executable file not found" in r.reason


def test_weights_where_the_server_does_not_look(namespaces: None, work: Path, volume: Path) -> None:
    # the transfer wrote /runpod-volume/hf/models--...; the server is told HF_HUB_CACHE=/runpod-volume/hub
    app = runpod_app(work, dockerfile=VLLM_085, env={"HF_HUB_CACHE": "/runpod-volume/hub", "HF_HUB_OFFLINE": "1"})
    r = harness.run(app, "runpod", volumes={"volume": volume}, secrets={})
    assert not r.serves
    assert "weights not found at /runpod-volume/hub/models--harness-org--tiny-chat" in r.reason


def test_download_dir_is_the_cache_dir(namespaces: None, work: Path, volume: Path) -> None:
    # vLLM's --download-dir D is huggingface_hub's cache_dir: D/models--ORG--NAME, so D=/runpod-volume/hf serves
    df = ('FROM vllm/vllm-openai:v0.8.5\nCMD ["--model", "harness-org/tiny-chat", "--download-dir", '
          '"/runpod-volume/hf", "--port", "8000"]\n')
    app = runpod_app(work, dockerfile=df, env={"HF_HUB_OFFLINE": "1"})
    assert harness.run(app, "runpod", volumes={"volume": volume}, secrets={}).serves
    # ... and D=/runpod-volume (where HF_HOME-style layouts put hub/) does not
    (work / "app").rename(work / "app-ok")
    app = runpod_app(work, dockerfile=df.replace('"/runpod-volume/hf"', '"/runpod-volume"'),
                     env={"HF_HUB_OFFLINE": "1"})
    r = harness.run(app, "runpod", volumes={"volume": volume}, secrets={})
    assert "weights not found at /runpod-volume/models--harness-org--tiny-chat" in r.reason


def test_no_ping_on_port_health(namespaces: None, work: Path, volume: Path) -> None:
    # vLLM 0.6.x has /health but no /ping (added for SageMaker in 0.7): RunPod never marks the worker ready
    app = runpod_app(work, dockerfile=VLLM_085.replace("v0.8.5", "v0.6.3"),
                     env={"HF_HUB_CACHE": "/runpod-volume/hf", "HF_HUB_OFFLINE": "1"})
    r = harness.run(app, "runpod", volumes={"volume": volume}, secrets={})
    assert not r.serves
    assert r.reason.startswith("no /ping on PORT_HEALTH 8000")


def test_queue_endpoint_is_a_static_failure(namespaces: None, work: Path, volume: Path) -> None:
    app = runpod_app(work, dockerfile=VLLM_085, env={"HF_HUB_CACHE": "/runpod-volume/hf", "HF_HUB_OFFLINE": "1"},
                     lb=False)
    r = harness.run(app, "runpod", volumes={"volume": volume}, secrets={})
    assert not r.serves
    assert r.reason.startswith("RunPod queue endpoint: an HTTP server is never called")
    assert "[static check]" in r.reason
    assert "run (ignoring the static checks): serves" in r.log  # everything else was right


def test_app_key_collides_with_runpod_key(namespaces: None, work: Path, volume: Path) -> None:
    # vLLM checks its own key in Authorization; RunPod's LB wants its key there: whichever the client sends, one fails
    df = VLLM_085.replace('"8000"]', '"8000", "--api-key", "sk-app"]')
    app = runpod_app(work, dockerfile=df, env={"HF_HUB_CACHE": "/runpod-volume/hf", "HF_HUB_OFFLINE": "1"})
    r = harness.run(app, "runpod", volumes={"volume": volume}, secrets={})
    assert not r.serves
    assert "-> 401 (from the app)" in r.reason


def _cloudrun_app(tmp: Path, dockerfile: str, *, read_only: bool) -> Path:
    import yaml

    app = tmp / "app"
    app.mkdir()
    (app / "Dockerfile").write_text(dockerfile)
    svc = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": "t", "annotations": {}},
           "spec": {"template": {"metadata": {"annotations": {"run.googleapis.com/invoker-iam-disabled": "true"}},
                                 "spec": {"nodeSelector": {"run.googleapis.com/accelerator": "nvidia-l4"},
                                          "containers": [{"image": "x", "ports": [{"containerPort": 8000}],
                                                          "env": [{"name": "HF_HUB_OFFLINE", "value": "1"}],
                                                          "startupProbe": {"httpGet": {"path": "/health",
                                                                                       "port": 8000}},
                                                          "volumeMounts": [{"name": "w", "mountPath": "/models"}]}],
                                          "volumes": [{"name": "w", "csi": {
                                              "driver": "gcsfuse.run.googleapis.com", "readOnly": read_only,
                                              "volumeAttributes": {"bucketName": "b",
                                                                   "mountOptions": "implicit-dirs,only-dir=app"}}}]}}}}
    (app / "service.yaml").write_text(yaml.safe_dump(svc))
    (app / "client.py").write_text(CLIENT.format(url="https://t-abc-uc.a.run.app/v1/chat/completions",
                                                 model="harness-org/tiny-chat", keyvar="HOME"))
    return app


def test_read_only_download_dir_fails_like_vllm(namespaces: None, work: Path) -> None:
    bucket = work / "bucket"
    hf_cache(bucket / "app" / "hf")
    df = ('FROM vllm/vllm-openai:v0.8.5\nCMD ["--model", "harness-org/tiny-chat", "--download-dir", "/models/hf", '
          '"--port", "8000"]\n')
    r = harness.run(_cloudrun_app(work, df, read_only=True), "cloudrun", volumes={"volume": bucket}, secrets={})
    assert not r.serves
    assert "cannot create the download lock /models/hf/" in r.reason and "Read-only file system" in r.reason
    (work / "app").rename(work / "app-ro")
    r = harness.run(_cloudrun_app(work, df, read_only=False), "cloudrun", volumes={"volume": bucket}, secrets={})
    assert r.serves, r


def test_modal_string_command_and_python(namespaces: None, work: Path) -> None:
    app = work / "app"
    app.mkdir()
    (app / "Dockerfile").write_text("FROM python:3.11-slim\nWORKDIR /app\nCOPY server.py /app/server.py\n")
    (app / "server.py").write_text("import http.server as h\nh.ThreadingHTTPServer(('0.0.0.0', 8000), "
                                   "h.SimpleHTTPRequestHandler).serve_forever()\n")
    (app / "client.py").write_text("import urllib.request\nprint(urllib.request.urlopen("
                                   "'https://w--a-serve.modal.run/server.py', timeout=10).status)\n")
    src = """import subprocess
import modal
from pathlib import Path
HERE = Path(__file__).resolve().parent
COMMAND = {cmd!r}
app = modal.App('a')
image = modal.Image.from_dockerfile(HERE / 'Dockerfile', context_dir=HERE)
@app.function(image=image, gpu='L4')
@modal.web_server(8000)
def serve():
    subprocess.Popen(COMMAND)
"""
    (app / "modal_app.py").write_text(src.format(cmd="python3 server.py"))
    r = harness.run(app, "modal", volumes={}, secrets={})
    assert "exec 'python3 server.py': executable file not found" in r.reason
    (app / "modal_app.py").write_text(src.format(cmd=["python3", "server.py"]))
    r = harness.run(app, "modal", volumes={}, secrets={})
    assert r.serves, r
    # the same on an image with only python3: Modal cannot run the function (a static check)
    (app / "Dockerfile").write_text("FROM vllm/vllm-openai:v0.8.5\nWORKDIR /app\nCOPY server.py /app/server.py\n")
    r = harness.run(app, "modal", volumes={}, secrets={})
    assert not r.serves and "no `python`" in r.reason


def test_ollama_default_host_is_loopback(namespaces: None, work: Path) -> None:
    app = runpod_app(work, dockerfile='FROM ubuntu:22.04\nRUN curl -fsSL https://ollama.com/install.sh | sh\n'
                                      'CMD ["ollama", "serve"]\n', env={}, port=11434, path="/api/tags")
    r = harness.run(app, "runpod", volumes={"volume": work}, secrets={})
    assert not r.serves
    # RunPod probes /ping first: nothing answers on 0.0.0.0:11434, because ollama bound 127.0.0.1
    assert "127.0.0.1:11434" in r.reason


@pytest.mark.parametrize("text,argv", [
    ('FROM python:3.11\nCMD python3 app.py --port 80\n', ["/bin/sh", "-c", "python3 app.py --port 80"]),
    ('FROM python:3.11\nENTRYPOINT ["python3"]\nCMD ["app.py"]\n', ["python3", "app.py"]),
    ('FROM ollama/ollama:0.3.14\nENTRYPOINT ["/start.sh"]\n', ["/start.sh"]),  # ENTRYPOINT resets the base CMD
    ('FROM ollama/ollama:0.3.14\n', ["/bin/ollama", "serve"]),
    ('FROM python:3.11\nENTRYPOINT exec srv\nCMD ["ignored"]\n', ["/bin/sh", "-c", "exec srv"]),
    ('FROM vllm/vllm-openai:v0.6.3\nCMD ["--model", "m"]\n',
     ["python3", "-m", "vllm.entrypoints.openai.api_server", "--model", "m"]),
    ('FROM x AS build\nRUN make\nFROM python:3.11-slim\nCMD ["a", \\\n  "b"]\n', ["a", "b"]),
])
def test_docker_argv_rules(tmp_path: Path, text: str, argv: list[str]) -> None:
    p = tmp_path / "Dockerfile"
    p.write_text(text)
    assert dockerimage.load(p).argv() == argv


def test_secret_values_are_redacted_from_the_verdict() -> None:
    r = harness.Result(False, "exec failed: argv ['srv', '--api-key', 'sk-very-secret-1']",
                       ["env API_KEY=sk-very-secret-1"], ["x sk-very-secret-1"])
    out = harness._redact(r, {"API_KEY": "sk-very-secret-1"})
    assert "sk-very-secret-1" not in out.reason + "".join(out.log) + "".join(out.static)
    assert "<secret API_KEY>" in out.reason


@pytest.mark.parametrize("value,host,port", [("", "127.0.0.1", 11434), ("0.0.0.0", "0.0.0.0", 11434),
                                             ("[::]:11434", "::", 11434), ("0.0.0.0:8080", "0.0.0.0", 8080),
                                             ("http://0.0.0.0:9000", "0.0.0.0", 9000)])
def test_ollama_host_parsing(value: str, host: str, port: int) -> None:
    from serve.standins import ollama_server

    assert ollama_server.parse_host(value) == (host, port)


def test_a_c_build_stage_is_read_from_its_own_lines(tmp_path: Path) -> None:
    """``COPY --from=STAGE PATH DEST``: the stage, and the RUN that compiles PATH from a context file (through the
    stage's COPY), are found by reading the Dockerfile; no file name is special."""
    (tmp_path / "Dockerfile").write_text(
        "FROM alpine:3.20 AS tools\nWORKDIR /b\nRUN apk add --no-cache gcc musl-dev\nCOPY src/probe.c ./p.c\n"
        "RUN cc -static -O2 -o out/probe p.c && strip out/probe\n"
        "FROM alpine:3.20 AS other\nRUN echo unrelated > /x\n"
        "FROM ollama/ollama:0.3.14\nCOPY --from=tools /b/out/probe /usr/local/bin/\nCOPY --from=other /x /x\n")
    img = dockerimage.load(tmp_path / "Dockerfile")
    (st, path, dest, _line), (other, opath, _d, _l) = img.stage_copies
    assert (st.name, path, dest) == ("tools", "/b/out/probe", "/usr/local/bin/")
    assert dockerimage.compile_step(st, path) == (["-static", "-O2"], ["src/probe.c"], 5)
    assert dockerimage.compile_step(other, opath) is None  # nothing compiles /x: the harness says it cannot play it
