"""Modal: modal_app.py uses @app.server for an HTTP server (proxy auth, port, startup timeout, concurrency from Fly's
settings or Fly's default), a plain function for an app without HTTP, python on PATH for python3-only images,
[build.args] passed to the build, and a missing Modal token is an input error.

modal_app.py is parsed with `ast` and imported with the real `modal` package (its decorators validate their
arguments at import) while MODAL_SERVER_URL points at the loopback Modal fake."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flymigrate.errors import EXIT_USAGE, UserError
from flymigrate.targets.modal import modal_credentials_missing, require_modal_credentials
from targets.conftest import plan_for, rendered

ROOT = Path(__file__).resolve().parents[2]
VLLM = 'FROM vllm/vllm-openai:v0.6.3\nCOPY start.sh /srv/start.sh\nENTRYPOINT ["/srv/start.sh"]\n'


def decorators(src: str) -> dict[str, dict[str, object]]:
    """decorator name -> its keyword arguments (literal ones; names as 'NAME')."""
    out: dict[str, dict[str, object]] = {}
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            for d in node.decorator_list:
                if isinstance(d, ast.Call):
                    name = ast.unparse(d.func)
                    kw: dict[str, object] = {}
                    for k in d.keywords:
                        try:
                            kw[str(k.arg)] = ast.literal_eval(k.value)
                        except ValueError:
                            kw[str(k.arg)] = ast.unparse(k.value)
                    out[name] = kw
    return out


@pytest.fixture(scope="module")
def modal_env() -> dict[str, str]:
    from servers.modal_fake import ModalFake

    fake = ModalFake().start()
    try:
        yield dict(fake.env(home=str(Path(os.environ.get("TMPDIR", "/tmp")))), PYTHONPATH=str(ROOT))
    finally:
        fake.stop()


def import_with_modal(app_dir: Path, src: str, env: dict[str, str]) -> str:
    """Import modal_app.py with the real modal package; print what Modal registered."""
    (app_dir / "modal_app.py").write_text(src)
    code = ("import importlib.util, modal\n"
            "spec = importlib.util.spec_from_file_location('modal_app', 'modal_app.py')\n"
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
            "print(sorted(type(getattr(m, n)).__name__ for n in ('Serve', 'run') if hasattr(m, n)))\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=app_dir, env=dict(os.environ, **env), capture_output=True,
                       text=True, check=False, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def test_http_server_uses_app_server_with_proxy_auth_and_flys_default_concurrency(make_app, modal_env) -> None:
    app = make_app(dockerfile=VLLM, size="a10", env={"MODEL": "Qwen/Qwen2.5-7B-Instruct"})
    (app / "start.sh").write_text("#!/bin/sh\nexec python3 -m vllm.entrypoints.openai.api_server --port 8000\n")
    public = plan_for(app, "modal")  # an http_service app was public on Fly: it stays public, with a warning
    assert public.deployment.public and public.deployment.auth_header is None
    assert decorators(rendered(public, "modal_app.py"))["app.server"]["unauthenticated"] is True
    assert any(f.code == "public-endpoint" for f in public.findings)
    p = plan_for(app, "modal", access="private")
    src = rendered(p, "modal_app.py")
    decs = decorators(src)
    assert set(decs) == {"app.server", "modal.enter", "modal.exit"}  # not web_server / concurrent / function
    kw = decs["app.server"]
    assert kw["port"] == "PORT" and kw["startup_timeout"] == "STARTUP_TIMEOUT" and kw["unauthenticated"] is False
    assert kw["target_concurrency"] == 20 and "max_concurrency" not in kw  # Fly's default: soft 20, no hard limit
    # vLLM with no --download-dir reads the default Hugging Face cache: the volume is mounted there
    assert kw["gpu"] == "A10" and kw["volumes"] == "{'/root/.cache/huggingface': weights}"
    assert p.deployment.auth_header.startswith("Modal-Key: ") and "Modal-Secret: " in p.deployment.auth_header
    assert ".modal.direct" in p.deployment.url
    assert "created them through the Modal API" not in src
    # python3-only image: `python` is linked (Modal starts `python`), no add_python shadowing the image's python3
    assert 'ln -sf "$(command -v python3)" /usr/local/bin/python' in src and "add_python" not in src
    assert import_with_modal(app, src, modal_env) == "['Server']"


def test_fly_concurrency_maps_to_target_and_max(make_app, modal_env) -> None:
    conc = '  [http_service.concurrency]\n    type = "requests"\n    soft_limit = 6\n    hard_limit = 9\n'
    app = make_app(dockerfile="FROM python:3.11-slim\nCMD python server.py\n", size="a10", concurrency=conc)
    kw = decorators(rendered(plan_for(app, "modal"), "modal_app.py"))["app.server"]
    assert kw["target_concurrency"] == 6 and kw["max_concurrency"] == 9


def test_an_image_without_python_gets_add_python_and_build_args_reach_the_build(make_app, modal_env) -> None:
    app = make_app(dockerfile="ARG OLLAMA_TAG\nFROM ollama/ollama:0.6.2\n", size="a10", port=11434,
                   env={"OLLAMA_MODELS": "/models"}, build_args={"OLLAMA_TAG": "0.6.2"})
    src = rendered(plan_for(app, "modal"), "modal_app.py")
    tree = ast.parse(src)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and ast.unparse(n.func).endswith("from_dockerfile")]
    assert len(calls) == 1
    kws = {k.arg: ast.unparse(k.value) for k in calls[0].keywords}
    assert kws["add_python"] == "'3.11'" and kws["build_args"] == "BUILD_ARGS"
    assert "BUILD_ARGS = {'OLLAMA_TAG': '0.6.2'}" in src
    assert import_with_modal(app, src, modal_env) == "['Server']"


def test_an_app_without_http_is_a_plain_function(make_app, modal_env) -> None:
    app = make_app(dockerfile="FROM python:3.11-slim\nCMD [\"python\", \"worker.py\"]\n", size="a10", http=False)
    p = plan_for(app, "modal")
    src = rendered(p, "modal_app.py")
    decs = decorators(src)
    assert "app.function" in decs and "app.server" not in decs and "web_server" not in src
    assert "PORT" not in src and p.deployment.auth_header is None
    assert any("no HTTP service" in n for n in p.deployment.notes)
    assert import_with_modal(app, src, modal_env) == "['Function']"


def test_a_modal_app_that_names_a_removed_parameter_fails_to_import(make_app, modal_env) -> None:
    """The import check is real: Modal rejects what it does not accept."""
    app = make_app(dockerfile="FROM python:3.11-slim\nCMD python s.py\n", size="a10")
    src = rendered(plan_for(app, "modal"), "modal_app.py").replace("port=PORT,", "port=PORT, keep_warm=1,")
    (app / "modal_app.py").write_text(src)
    p = subprocess.run([sys.executable, "-c", "import runpy; runpy.run_path('modal_app.py')"], cwd=app,
                       env=dict(os.environ, **modal_env), capture_output=True, text=True, check=False, timeout=120)
    assert p.returncode != 0 and "keep_warm" in p.stderr


def test_missing_modal_credentials_are_an_input_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MODAL_TOKEN_ID", raising=False)
    monkeypatch.delenv("MODAL_TOKEN_SECRET", raising=False)
    monkeypatch.delenv("MODAL_PROFILE", raising=False)
    cfg = tmp_path / ".modal.toml"
    monkeypatch.setenv("MODAL_CONFIG_PATH", str(cfg))
    assert modal_credentials_missing()
    with pytest.raises(UserError) as ei:
        require_modal_credentials("creating the Modal secret 'x'")
    assert ei.value.exit_code == EXIT_USAGE and "MODAL_TOKEN_ID" in str(ei.value) and ".modal.toml" in str(ei.value)
    cfg.write_text('[other]\ntoken_id = "ak-1"\ntoken_secret = "as-1"\nactive = true\n')
    assert not modal_credentials_missing()
    cfg.write_text('[other]\ntoken_id = "ak-1"\n')
    assert modal_credentials_missing()
    monkeypatch.setenv("MODAL_TOKEN_ID", "ak-2")
    monkeypatch.setenv("MODAL_TOKEN_SECRET", "as-2")
    assert not modal_credentials_missing()
