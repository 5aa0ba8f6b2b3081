"""verify from an app folder (URL from apply's state, checks from fly.toml and the Dockerfile), failures,
the baseline, whisper routes, `status` showing the last verdict, and the command line end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vhelpers import assert_no_secret, run, run_json

ROOT = Path(__file__).resolve().parents[2]
FAST = ("--timeout", "8s", "--requests", "5")
APP_KEY = "sk-CANARY-vllm-key-4d3c2b1a"


def make_app(tmp_path: Path, fly: str, dockerfile: str | None = None, url: str | None = None,
             target: str = "modal") -> Path:
    app = tmp_path / "app"
    app.mkdir()
    (app / "fly.toml").write_text(fly)
    if dockerfile is not None:
        (app / "Dockerfile").write_text(dockerfile)
    if url is not None:
        from flymigrate.apply.state import ApplyState

        st = ApplyState(app)
        st.target(target)["deployed_url"] = url
        st.save()
    return app


VLLM_FLY = """app = "acme-chat"
primary_region = "ord"
[build]
  image = "vllm/vllm-openai:v0.6.3"
[experimental]
  cmd = ["--model", "Qwen/Qwen3-8B", "--port", "8000"]
[http_service]
  internal_port = 8000
  [[http_service.checks]]
    path = "/healthz"
    interval = "30s"
    timeout = "5s"
[[vm]]
  size = "a100-40gb"
"""


def test_app_dir_url_from_apply_state_model_and_health_from_fly_toml(serve, capsys, tmp_path):
    s = serve(model="Qwen/Qwen3-8B", health_path="/healthz", app_key=APP_KEY)
    app = make_app(tmp_path, VLLM_FLY, url=s.url)
    env = app / "app.env"
    env.write_text(f'VLLM_API_KEY="{APP_KEY}"\n')
    env.chmod(0o600)
    rc, rep, err = run_json(capsys, str(app), "--to", "modal", "--secrets", str(env), *FAST)
    assert rc == 0, rep
    assert rep["url"] == s.url and rep["app"] == "acme-chat"
    assert rep["server_kind"] == "openai" and "image" in rep["server_kind_from"]
    assert rep["checks"][0]["name"] == "health /healthz" and "fly.toml" in rep["checks"][0]["detail"]
    assert rep["checks"][1]["detail"] == "lists Qwen/Qwen3-8B"
    saved = (app / ".flymigrate" / "verify.json")
    assert oct(saved.stat().st_mode & 0o777) == "0o600"
    assert json.loads(saved.read_text())["modal"]["passed"] is True
    assert_no_secret([APP_KEY], str(rep), err, saved.read_text())

    # `status APP_DIR` shows the last verdict
    from flymigrate.cli import main

    assert main(["status", str(app)]) == 0
    out = capsys.readouterr().out
    assert "verify -> modal: passed at " in out and s.url in out
    assert main(["status", str(app), "--format", "json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["verify"]["modal"]["passed"] is True and st["verify"]["modal"]["url"] == s.url


def test_model_the_fly_app_served_is_missing(serve, capsys, tmp_path):
    s = serve(model="meta-llama/Llama-3.1-8B-Instruct", health_path="/healthz")
    app = make_app(tmp_path, VLLM_FLY, url=s.url)
    rc, out, _ = run(capsys, str(app), "--to", "modal", *FAST)
    assert rc == 5
    assert "[FAIL] models listed (/v1/models): Qwen/Qwen3-8B (what the Fly app served) is not listed" in out
    assert "meta-llama/Llama-3.1-8B-Instruct" in out
    from flymigrate.cli import main

    main(["status", str(app)])
    assert "verify -> modal: FAILED (models listed (/v1/models))" in capsys.readouterr().out


def test_app_key_missing_is_a_failed_check_with_what_to_do(serve, capsys, tmp_path):
    s = serve(model="Qwen/Qwen3-8B", health_path="/healthz", app_key=APP_KEY)
    app = make_app(tmp_path, VLLM_FLY, url=s.url)
    names = app / "secrets.json"
    names.write_text(json.dumps([{"Name": "VLLM_API_KEY", "Digest": "abc", "CreatedAt": "2024-01-01"}]))
    rc, out, _ = run(capsys, str(app), "--to", "modal", "--secrets", str(names), *FAST)
    assert rc == 5
    assert "401" in out and "the app wants its own key" in out and "VLLM_API_KEY" in out


def test_no_url_anywhere_is_a_usage_error(capsys, tmp_path):
    app = make_app(tmp_path, VLLM_FLY)
    rc, out, err = run(capsys, str(app), "--to", "runpod")
    assert rc == 2 and "no deployed URL for runpod" in err and "--deploy" in err and "Traceback" not in err


@pytest.mark.parametrize("url", ["ftp://x.example", "http://user:pw123456@127.0.0.1:9/", "not a url"])
def test_bad_url_is_a_usage_error(capsys, url):
    rc, out, err = run(capsys, "--url", url, "--to", "modal")
    assert rc == 2 and "--url" in err and "pw123456" not in err


def test_injected_500s_fail_the_warm_latency_check(serve, capsys):
    s = serve(fail_every=4)  # the streamed check is request 1; warm requests 2..9 -> #4 and #8 fail
    rc, rep, _ = run_json(capsys, "--url", s.url, "--to", "modal", "--timeout", "5s", "--requests", "8")
    assert rc == 5
    assert rep["latency"]["errors"] == 2 and rep["latency"]["error_examples"][0].startswith("500")
    lat = next(c for c in rep["checks"] if c["name"] == "warm latency")
    assert lat["passed"] is False and "6/8 answered" in lat["detail"]


def test_a_broken_stream_fails_the_chat_check(serve, capsys):
    s = serve(tokens=0)  # the server streams no token at all
    rc, out, _ = run(capsys, "--url", s.url, "--to", "modal", *FAST)
    assert rc == 5 and "[FAIL] chat completion (streamed): 200, but no token came back" in out


def test_baseline_slower_p95_and_new_failures_fail(serve, capsys, tmp_path):
    s = serve(kind="ollama", model="llama3:latest", slow_ms=40)
    base = tmp_path / "base.json"
    many = ("--timeout", "8s", "--requests", "20")  # p95 of 20 is the 19th: one scheduler hiccup is not a fail
    rc, _, _ = run(capsys, "--url", s.url, "--to", "modal", *many, "--format", "json", "--out", str(base))
    assert rc == 0
    # same server: passes against its own baseline
    rc, rep, _ = run_json(capsys, "--url", s.url, "--to", "modal", *many, "--baseline", str(base))
    assert rc == 0, rep["checks"][-1]
    assert rep["checks"][-1]["name"] == "against the baseline" and rep["checks"][-1]["passed"]
    # slow responses: p95 well above 1.5x the baseline's
    s.cfg.slow_ms = 200
    rc, rep, _ = run_json(capsys, "--url", s.url, "--to", "modal", *FAST, "--baseline", str(base))
    assert rc == 5
    b = rep["checks"][-1]
    assert b["passed"] is False and "more than 1.5x" in b["detail"]
    # a failure the baseline did not have
    s.cfg.slow_ms = 0
    s.cfg.fail_every = 3
    rc, rep, _ = run_json(capsys, "--url", s.url, "--to", "modal", *FAST, "--baseline", str(base))
    assert rc == 5 and "new failure" in rep["checks"][-1]["detail"]


@pytest.mark.parametrize("content", ["{not json", '{"schema": "flymigrate/plan/v1"}', None])
def test_bad_baseline_is_a_usage_error_before_any_request(capsys, tmp_path, content):
    p = tmp_path / "b.json"
    if content is not None:
        p.write_text(content)
    rc, _, err = run(capsys, "--url", "http://127.0.0.1:9", "--to", "modal", "--baseline", str(p))
    assert rc == 2 and "--baseline" in err and "Traceback" not in err


@pytest.mark.parametrize("api", ["openai", "asr", "cog"])
def test_whisper_transcribes_the_bundled_clip(serve, capsys, tmp_path, api):
    s = serve(kind="whisper", whisper_api=api, health_path="/health-check", model="Systran/faster-whisper-small")
    fly = ('app = "whisperplz"\n[build]\n  image = "ghcr.io/fly-apps/cog-whisper:latest"\n[http_service]\n'
           '  internal_port = 5000\n  [[http_service.checks]]\n    path = "/health-check"\n')
    app = make_app(tmp_path, fly, url=s.url)
    rc, rep, _ = run_json(capsys, str(app), "--to", "modal", *FAST)
    assert rc == 0, rep
    assert rep["server_kind"] == "whisper"
    t = next(c for c in rep["checks"] if c["name"] == "transcribe the bundled clip")
    assert t["passed"] and "'beep'" in t["detail"]
    assert "transcription" in rep["latency"]["what"]


def test_ollama_app_model_from_the_command(serve, capsys, tmp_path):
    s = serve(kind="ollama", model="llama3.1:8b")
    fly = ('app = "ollama-app"\n[build]\n  image = "ollama/ollama:latest"\n[processes]\n'
           '  app = "sh -c \'ollama serve & sleep 5; ollama pull llama3.1:8b; wait\'"\n'
           '[http_service]\n  internal_port = 11434\n')
    app = make_app(tmp_path, fly, url=s.url)
    rc, rep, _ = run_json(capsys, str(app), "--to", "modal", *FAST)
    assert rc == 0, rep
    assert rep["model"] == "llama3.1:8b" and rep["checks"][1]["detail"] == "lists llama3.1:8b"
    s.cfg.model = "mistral:7b"  # the model was never pulled on the new platform
    rc, out, _ = run(capsys, str(app), "--to", "modal", *FAST)
    assert rc == 5 and "llama3.1:8b is not pulled" in out


def test_concurrency_is_capped_at_the_targets(serve, capsys, tmp_path):
    s = serve(health_path="/healthz")
    fly = VLLM_FLY.replace("[http_service]\n", "[http_service]\n  [http_service.concurrency]\n    type = \"requests\"\n"
                           "    soft_limit = 2\n    hard_limit = 3\n", 1)
    app = make_app(tmp_path, fly, url=s.url)
    rc, rep, _ = run_json(capsys, str(app), "--to", "modal", "--timeout", "5s", "--requests", "6",
                          "--concurrency", "50")
    assert rc == 0, rep
    assert rep["latency"]["concurrency"] < 50 and any("--concurrency 50" in n for n in rep["notes"])


def test_progress_line_overwrites_on_a_terminal():
    import io

    from flymigrate.verify.ready import Progress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    t = Tty()
    p = Progress(t)
    p.update("waiting: 1s")
    p.update("waiting: 2s")
    p.done("ready")
    assert t.getvalue().startswith("\rwaiting: 1s\rwaiting: 2s") and t.getvalue().endswith("ready\n")
    f = io.StringIO()
    p = Progress(f, every_s=3600)
    p.update("a")
    p.update("b")  # within the interval: not repeated
    assert f.getvalue() == "a\n"


def test_cli_subprocess_end_to_end_secrets_never_in_output_or_files(serve, tmp_path):
    s = serve(platform="runpod", runpod_key="rpa_CANARY_sub_77aa66", cold_start_s=0.5, app_key="")
    out_file = tmp_path / "report.txt"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RUNPOD_API_KEY": "rpa_CANARY_sub_77aa66"}
    p = subprocess.run([sys.executable, "-m", "flymigrate", "verify", "--url", s.url, "--to", "runpod",
                        "--timeout", "8s", "--requests", "3", "--out", str(out_file)],
                       capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.rstrip().endswith("PASSED") and out_file.read_text() == p.stdout
    assert_no_secret(["rpa_CANARY_sub_77aa66"], p.stdout, p.stderr, out_file.read_text())


CORPUS = ROOT.parent / "shared" / "corpus"


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared corpus is not here")
@pytest.mark.parametrize("name, cfg, expect", [
    ("fly-apps__cog-whisper", {"kind": "whisper", "whisper_api": "cog", "health_path": "/health-check"},
     ["health /health-check", "transcribe the bundled clip"]),
    ("informaticker__vllm-fly", {"kind": "openai", "model": "informatiker/agpt-lines-10epochsmed"},
     ["health /health", "models listed (/v1/models)", "chat completion (streamed)"]),
    ("fly-apps__ollama-demo", {"kind": "ollama", "model": "llama3:latest"},
     ["health /", "models listed (/api/tags)", "generate (streamed, /api/generate)"]),
])
def test_real_fly_apps_choose_their_checks(serve, capsys, tmp_path, name, cfg, expect):
    import shutil

    app = tmp_path / name
    shutil.copytree(CORPUS / name, app)  # a copy: verify keeps its verdict in APP_DIR/.flymigrate
    s = serve(**cfg)
    rc, rep, _ = run_json(capsys, str(app), "--url", s.url, "--to", "modal", *FAST)
    assert rc == 0, rep
    assert rep["server_kind"] == cfg["kind"]
    assert "answered" not in rep["server_kind_from"]  # from the app's files, not from asking the server
    assert [c["name"] for c in rep["checks"]][:len(expect)] == expect


def test_base_model_without_chat_template_uses_plain_completions(serve, capsys):
    s = serve(model="facebook/opt-125m", chat_template=False)  # vLLM's default model in fly-apps/vllm-demo
    rc, rep, _ = run_json(capsys, "--url", s.url, "--to", "modal", *FAST)
    assert rc == 0, rep
    comp = rep["checks"][2]
    assert comp["name"] == "completion (streamed, /v1/completions)" and "chat template" in comp["detail"]
    assert rep["latency"]["what"] == "completion (8 tokens)" and rep["latency"]["errors"] == 0


def test_runpod_queue_endpoint_url_is_explained(capsys):
    rc, _, err = run(capsys, "--url", "https://api.runpod.ai/v2/abc123", "--to", "runpod")
    assert rc == 2 and "queue endpoint" in err and "load-balancing" in err
