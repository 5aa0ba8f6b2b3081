"""verify against platform-like fronts: cold starts, credentials, the 400/403/401/503 each platform answers."""

from __future__ import annotations


import pytest

from vhelpers import assert_no_secret, run, run_json, write_gcloud

FAST = ("--timeout", "8s", "--requests", "5")
RP_KEY = "rpa_CANARY_runpod_key_0c1d2e"
APP_KEY = "sk-CANARY-app-key-9f8e7d"
ID_TOKEN = "eyJCANARY.idtoken.cloudrun-5a4b3c"


def test_runpod_lb_scale_from_zero_then_loading_then_ready(serve, capsys, monkeypatch, tmp_path):
    # no worker for 0.6 s (400 after the LB window), then /ping 204 while loading until 1.2 s, then 200
    s = serve(platform="runpod", runpod_key=RP_KEY, worker_up_s=0.6, lb_window_s=0.2, cold_start_s=1.2)
    monkeypatch.setenv("RUNPOD_API_KEY", RP_KEY)
    out_file = tmp_path / "r.json"
    left = s.cold_left()
    rc, rep, err = run_json(capsys, "--url", s.url, "--to", "runpod", *FAST, "--out", str(out_file))
    assert rc == 0, rep
    assert rep["schema"] == "flymigrate/verify/v1" and rep["passed"] is True and rep["url"] == s.url
    assert left - 0.05 <= rep["cold_start_s"] < 5
    assert rep["server_kind"] == "openai" and rep["model"] == "Qwen/Qwen3-8B"
    names = [c["name"] for c in rep["checks"]]
    assert names[:3] == ["health /ping", "models listed (/v1/models)", "chat completion (streamed)"]
    chat = rep["checks"][2]
    assert chat["timings"]["tokens"] == 6 and chat["timings"]["ttft_ms"] > 0
    assert rep["latency"]["errors"] == 0 and rep["latency"]["p50_ms"] > 0 and rep["latency"]["requests"] == 5
    assert "waiting for /ping" in err and "400: no worker became ready" in err  # the 400s were retried
    assert rep["auth"] == "Authorization: RUNPOD_API_KEY from the environment"
    assert_no_secret([RP_KEY], err, out_file.read_text(), str(rep))


def test_runpod_without_key_is_a_failed_check_not_a_timeout(serve, capsys):
    s = serve(platform="runpod", runpod_key=RP_KEY)
    rc, out, err = run(capsys, "--url", s.url, "--to", "runpod", *FAST)
    assert rc == 5
    assert "[FAIL] credentials accepted: 401" in out and "RUNPOD_API_KEY" in out and out.rstrip().endswith("FAILED")


def test_runpod_app_key_collision_is_reported(serve, capsys, monkeypatch, tmp_path):
    s = serve(platform="runpod", runpod_key=RP_KEY)
    monkeypatch.setenv("RUNPOD_API_KEY", RP_KEY)
    monkeypatch.setenv("VLLM_API_KEY", APP_KEY)
    rc, rep, _ = run_json(capsys, "--url", s.url, "--to", "runpod", *FAST)
    assert rc == 0
    assert any("VLLM_API_KEY" in n and "RunPod" in n for n in rep["notes"])
    assert_no_secret([RP_KEY, APP_KEY], str(rep))


def test_cloudrun_without_identity_token_is_403(serve, capsys):
    s = serve(platform="cloudrun", id_token=ID_TOKEN)
    rc, rep, _ = run_json(capsys, "--url", s.url, "--to", "cloudrun", *FAST)
    assert rc == 5 and rep["passed"] is False and rep["reachable"] is True
    fail = rep["checks"][0]
    assert fail["name"] == "credentials accepted" and fail["detail"].startswith("403")
    assert "--id-token" in fail["detail"]
    assert any("no identity token" in n for n in rep["notes"])


def test_cloudrun_token_in_x_serverless_authorization_app_key_in_authorization(serve, capsys, tmp_path):
    s = serve(platform="cloudrun", id_token=ID_TOKEN, app_key=APP_KEY, cold_start_s=0.8)
    tok = tmp_path / "tok"
    tok.write_text(ID_TOKEN + "\n")
    env = tmp_path / "app.env"
    env.write_text(f"VLLM_API_KEY={APP_KEY}\n")
    env.chmod(0o600)
    rc, out, err = run(capsys, "--url", s.url, "--to", "cloudrun", *FAST, "--id-token", f"@{tok}",
                       "--secrets", str(env))
    assert rc == 0, out
    assert "X-Serverless-Authorization: --id-token" in out and "Authorization: VLLM_API_KEY from" in out
    # the app saw its own key, and never the identity token (the front took it off)
    assert all(h.get("authorization") == f"Bearer {APP_KEY}" for h in s.cfg.seen)
    assert not any("x-serverless-authorization" in h for h in s.cfg.seen)
    assert_no_secret([APP_KEY, ID_TOKEN], out, err)


def test_cloudrun_token_from_gcloud(serve, capsys, clean_env):
    write_gcloud(clean_env, ID_TOKEN)
    s = serve(platform="cloudrun", id_token=ID_TOKEN, kind="generic")
    rc, out, err = run(capsys, "--url", s.url, "--to", "cloudrun", *FAST)
    assert rc == 0, out
    assert "Authorization: gcloud auth print-identity-token" in out
    assert_no_secret([ID_TOKEN], out, err)


@pytest.mark.parametrize("starting", [503, 429])
def test_modal_proxy_auth_and_busy_while_starting(serve, capsys, monkeypatch, starting):
    s = serve(platform="modal", modal_key="wk-CANARYkey1", modal_secret="ws-CANARYsecret2", cold_start_s=1.0,
              kind="ollama", model="llama3:latest", starting_status=starting)
    monkeypatch.setenv("MODAL_PROXY_TOKEN_ID", "wk-CANARYkey1")
    monkeypatch.setenv("MODAL_PROXY_TOKEN_SECRET", "ws-CANARYsecret2")
    left = s.cold_left()
    rc, rep, err = run_json(capsys, "--url", s.url, "--to", "modal", *FAST)
    assert rc == 0, rep
    assert rep["cold_start_s"] >= left - 0.05 and rep["server_kind"] == "ollama"
    assert [c["name"] for c in rep["checks"]][:3] == ["health /", "models listed (/api/tags)",
                                                       "generate (streamed, /api/generate)"]
    assert_no_secret(["wk-CANARYkey1", "ws-CANARYsecret2"], str(rep), err)
    assert f"{starting} " in err  # the progress line showed what the front answered while starting


def test_modal_without_proxy_token_fails_with_the_variable_names(serve, capsys):
    s = serve(platform="modal", modal_key="wk-x1234567", modal_secret="ws-y1234567")
    rc, out, _ = run(capsys, "--url", s.url, "--to", "modal", *FAST)
    assert rc == 5 and "MODAL_PROXY_TOKEN_ID" in out and "401" in out


def test_connection_refused_while_starting(serve, capsys):
    s = serve(listen_after_s=1.0, kind="generic")
    left = s.cold_left(1.0)
    rc, rep, _ = run_json(capsys, "--url", s.url, "--to", "modal", *FAST)
    assert rc == 0, rep
    assert rep["cold_start_s"] >= left - 0.05 > 0


@pytest.mark.parametrize("listening", [True, False])
def test_unreachable_after_timeout_is_exit_3(serve, capsys, listening, tmp_path):
    if listening:
        url = serve(cold_start_s=60).url  # /ping 204 forever (for this test)
    else:
        import socket

        sk = socket.socket()
        sk.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sk.getsockname()[1]}"
        sk.close()
    rc, rep, err = run_json(capsys, "--url", url, "--to", "runpod" if listening else "modal", "--timeout", "1s")
    assert rc == 3
    assert rep["passed"] is False and rep["reachable"] is False and rep["cold_start_s"] is None
    assert rep["latency"]["errors"] == 0 and rep["checks"] == []
    text = run(capsys, "--url", url, "--to", "modal", "--timeout", "0.5s")[1]
    assert "UNREACHABLE" in text and ("connection refused" in text or "503" in text or "204" in text)


def test_a_server_that_echoes_the_key_back_is_redacted(serve, capsys, monkeypatch, tmp_path):
    wrong = "sk-CANARY-wrong-key-1a2b3c4d"
    s = serve(app_key=APP_KEY, echo_auth=True)
    monkeypatch.setenv("VLLM_API_KEY", wrong)
    out_file = tmp_path / "out.txt"
    rc, out, err = run(capsys, "--url", s.url, "--to", "modal", *FAST, "--out", str(out_file))
    assert rc == 5 and "401" in out and "Unauthorized: <redacted>" in out
    assert_no_secret([wrong], out, err, out_file.read_text())
