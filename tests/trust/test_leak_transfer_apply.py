"""No canary secret reaches output, journals, logs, state or argv: `transfer` and `apply`; and servers that
echo credentials back in their error messages (as some S3 gateways and proxies do) cannot make us print them."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import Sandbox
from leak import Canaries, flymigrate, run_watched


def _files(root: Path, files: dict[str, bytes]) -> Path:
    for k, v in files.items():
        p = root / k
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(v)
    return root


@pytest.fixture
def s3_env(sandbox: Sandbox, moto, canaries: Canaries) -> dict[str, str]:
    env = canaries.env(sandbox.env)
    env.update(AWS_ACCESS_KEY_ID="AKIDTRUST", RUNPOD_S3_ACCESS_KEY_ID="AKIDTRUST", AWS_REGION="us-east-1",
               AWS_ENDPOINT_URL_S3=moto.url)
    return env


def test_transfer_local_to_s3_and_runpod_leaks_nothing(sandbox: Sandbox, moto, canaries: Canaries,
                                                       s3_env: dict[str, str]) -> None:
    src = _files(sandbox.root / "w", {"model.safetensors": os.urandom(3 << 20), "config.json": b"{}"})
    moto.client().create_bucket(Bucket="trustleak")
    for dst in ("s3://trustleak/w", "runpod-volume://trustleak/v"):
        for extra in ([], ["--json"], ["--dry-run"]):
            run = run_watched(flymigrate("transfer", str(src), dst, "--yes", "--part-size", "1MiB",
                                         "--endpoint-url", moto.url, *extra), env=s3_env)
            assert run.returncode == 0, run.stderr
            canaries.assert_clean(run=run, paths=[sandbox.root])


def test_transfer_from_hf_with_token_leaks_nothing(sandbox: Sandbox, moto, canaries: Canaries,
                                                   s3_env: dict[str, str]) -> None:
    from servers.hf_hub import FakeHub

    hub = FakeHub({"acme/m": {"config.json": b"{}", "w.safetensors": os.urandom(400_000)}},
                  token=canaries.values["HF_TOKEN"]).start()
    try:
        moto.client().create_bucket(Bucket="trustleakhf")
        env = dict(s3_env, HF_ENDPOINT=hub.url)
        run = run_watched(flymigrate("transfer", "hf://acme/m", "s3://trustleakhf/m", "--yes"), env=env)
        assert run.returncode == 0, run.stderr
        canaries.assert_clean(run=run, paths=[sandbox.root])
        # a wrong token: access denied, clearly, without echoing the token we sent
        env["HF_TOKEN"] = canaries.values["HUGGING_FACE_HUB_TOKEN"]
        run = run_watched(flymigrate("transfer", "hf://acme/m", "s3://trustleakhf/m2", "--yes"), env=env)
        assert run.returncode == 2 and "access denied" in run.stderr, run.stderr
        canaries.assert_clean(run=run, paths=[sandbox.root])
    finally:
        hub.stop()


class _Echo(BaseHTTPRequestHandler):
    """Answers every request with an error whose message quotes the request's credentials back."""

    status = 400
    protocol_version = "HTTP/1.1"

    def log_message(self, *a: object) -> None:
        pass

    def _answer(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        echoed = " | ".join(f"{k}: {v}" for k, v in self.headers.items())
        st = self.server.status  # type: ignore[attr-defined]
        if self.command == "HEAD" and self.path.count("/") <= 1:  # HeadBucket passes, so the next call is reached
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if "/api/" in self.path:  # the Hub: JSON error
            body = json.dumps({"error": f"bad request, you sent {echoed}"}).encode()
            ctype = "application/json"
        else:
            body = (f"<?xml version='1.0'?><Error><Code>InvalidArgument</Code><Message>bad header, you sent "
                    f"{echoed}</Message><RequestId>1</RequestId></Error>").encode()
            ctype = "application/xml"
        self.send_response(st)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Echo", echoed[:2000].encode("latin-1", "replace").decode("latin-1"))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _answer


@pytest.fixture(params=[400, 500])
def echo_server(request: pytest.FixtureRequest) -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    srv.status = request.param  # type: ignore[attr-defined]
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_server_echoing_credentials_is_never_repeated(sandbox: Sandbox, canaries: Canaries, echo_server: str) -> None:
    src = _files(sandbox.root / "w", {"a.bin": b"x" * 1000})
    env = canaries.env(sandbox.env)
    env.update(AWS_ACCESS_KEY_ID="AKIDTRUST", RUNPOD_S3_ACCESS_KEY_ID="AKIDTRUST", AWS_REGION="us-east-1",
               AWS_ENDPOINT_URL_S3=echo_server, HF_ENDPOINT=echo_server, FLYMIGRATE_MAX_ATTEMPTS="2")
    for args in (("transfer", str(src), "s3://bucket/p", "--yes"),
                 ("transfer", str(src), "runpod-volume://vol/p", "--yes", "--endpoint-url", echo_server),
                 ("transfer", "s3://bucket/p", "s3://bucket2/q", "--yes"),
                 ("transfer", "hf://acme/m", "s3://bucket/q", "--yes")):
        run = run_watched(flymigrate(*args), env=env, timeout=120)
        assert run.returncode in (2, 3, 4), (args, run.returncode, run.stderr)
        no_traceback_run(run)
        canaries.assert_clean(run=run, paths=[sandbox.root])


def no_traceback_run(run) -> None:
    assert "Traceback" not in run.stderr, run.stderr[-2000:]


# -------------------------------------------------------------------------------------------------- apply


@pytest.fixture(scope="module")
def modal_fake() -> Iterator[object]:
    from servers.modal_fake import ModalFake

    f = ModalFake(token_secret="as-" + Canaries().values["MODAL_TOKEN_SECRET"]).start()
    yield f
    f.stop()


def test_apply_every_target_leaks_nothing(sandbox: Sandbox, example_app: Path, canaries: Canaries, modal_fake) -> None:
    # the Modal fake checks its own token pair; every other credential is a canary
    env = canaries.env(sandbox.env, keep=("MODAL_TOKEN_SECRET",))
    env.update(modal_fake.env(home=str(sandbox.home)))  # type: ignore[attr-defined]
    canaries.values["MODAL_TOKEN_SECRET"] = env["MODAL_TOKEN_SECRET"]
    secrets = canaries.write_secrets(sandbox.root / "secrets.env")
    names = canaries.write_secrets(sandbox.root / "names.json", "fly-json")
    from targets.runpod_api_fake import RunPodFake  # RunPod's secrets API, on loopback, taking the canary key

    runpod = RunPodFake(key=env["RUNPOD_API_KEY"])
    env["RUNPOD_API_BASE_URL"] = runpod.url
    for target in ("modal", "runpod", "cloudrun"):
        out = sandbox.root / f"out-{target}"
        run = run_watched(flymigrate("apply", str(example_app), "--to", target, "--yes", "--skip", "weights",
                                     "--secrets", str(names), "--secrets", str(secrets), "--out", str(out),
                                     "--base-url", "https://new.example.com"), env=env, timeout=240)
        assert run.returncode in (0, 4), (target, run.returncode, run.stderr[-3000:])
        assert "Traceback" not in run.stderr
        canaries.assert_clean(run=run, paths=[sandbox.root], exclude=[secrets])
    # the secret did reach Modal (through the API, not argv)
    vals = modal_fake.secret_values("flymigrate-acme-chat-secrets")  # type: ignore[attr-defined]
    assert vals.get("OPENAI_API_KEY") == canaries.values["OPENAI_API_KEY"]
    # and to RunPod's secrets API (in the request body only)
    rp = {s["name"]: s["value"] for s in runpod.secrets.values()}
    runpod.stop()
    assert rp.get("flymigrate-acme-chat-OPENAI_API_KEY") == canaries.values["OPENAI_API_KEY"]


def test_fly_volume_source_children_argv_hold_no_token(sandbox: Sandbox, moto, canaries: Canaries,
                                                       s3_env: dict[str, str]) -> None:
    """fly-volume:// runs flyctl (the stand-in) as child processes: their argv is sampled while they run."""
    from transfer_dest.fixtures import FlyWorld

    world = FlyWorld(sandbox.root / "fly")
    world.add_volume("acme_models", {"config.json": b"{}", "w.safetensors": os.urandom(600_000)})
    moto.client().create_bucket(Bucket="trustleakfly")
    env = dict(s3_env, **world.env())
    env["FLY_API_TOKEN"] = "FlyV1 " + canaries.values["FLY_API_TOKEN"]
    run = run_watched(flymigrate("transfer", "fly-volume://acme-chat/acme_models/models/hf", "s3://trustleakfly/f",
                                 "--yes"), env=env, interval=0.002)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.max_children >= 1 and any("flyctl" in a for a in run.argv_seen), run.argv_seen
    canaries.assert_clean(run=run, paths=[sandbox.root])
