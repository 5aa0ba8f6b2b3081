"""RunPod (weights into a network volume via moto, endpoint and secrets via a loopback fake of RunPod's REST API v2
reached through RUNPOD_API_BASE_URL) and Cloud Run (weights into GCS via the emulator, create-secrets.sh and deploy through a fake
gcloud that records its argv and stdin): values only ever travel on stdin."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from servers.gcs_emulator import GcsEmulator
from servers.moto_s3 import MotoS3

from .conftest import CANARIES, HF_FILES, assert_no_canary, run_cli, tree

SNAP = "models--Qwen--Qwen2.5-7B-Instruct"


@pytest.fixture(scope="module")
def moto() -> Any:
    m = MotoS3()
    yield m
    m.stop()


def test_runpod_apply_weights_secrets_deploy(acme: Path, cli_env: dict[str, str], moto, hf_hub) -> None:
    """Weights into the volume, secrets and a load-balancing endpoint through RunPod's REST API v2 (loopback fake;
    the detailed endpoint/secret checks are in tests/targets/test_runpod_deploy.py)."""
    from targets.runpod_api_fake import RunPodFake

    moto.client().create_bucket(Bucket="vol7x2k9")
    api = RunPodFake()
    env = dict(cli_env, RUNPOD_API_BASE_URL=api.url, RUNPOD_API_KEY="rp-test-key",
               RUNPOD_S3_ACCESS_KEY_ID="AKIDRUNPOD", RUNPOD_S3_SECRET_ACCESS_KEY="runpod-s3-secret")
    args = ["apply", str(acme), "--to", "runpod", "--yes", "--secrets", str(acme / "fly-secrets.json"),
            "--secrets", str(acme / "full.env"), "--volume-id", "vol7x2k9", "--datacenter", "EU-RO-1",
            "--endpoint-url", moto.url, "--image", "registry.example.com/acme-chat:1", "--deploy"]
    try:
        r = run_cli(args, env)
        assert r.returncode == 0, r.stderr
        # the exact API call is shown before it runs
        assert "POST /v2/serverless" in r.stderr
        # weights in the network volume under /runpod-volume/acme-chat, as the app's HF cache
        c = moto.client()
        keys = {o["Key"] for o in c.list_objects_v2(Bucket="vol7x2k9")["Contents"]}
        commit = hf_hub.commits["Qwen/Qwen2.5-7B-Instruct"]
        for name in HF_FILES:
            assert f"acme-chat/hf/hub/{SNAP}/snapshots/{commit}/{name}" in keys
        assert f"acme-chat/hf/hub/{SNAP}/refs/main" in keys
        # a load-balancing endpoint with secret references, never values, in its env
        (create,) = api.calls("POST", "/v2/serverless")
        body = create["body"]
        assert body["type"] == "LOAD_BALANCER" and body["scaling"]["type"] == "REQUEST_COUNT"
        assert body["env"]["HF_TOKEN"] == "{{ RUNPOD_SECRET_flymigrate-acme-chat-HF_TOKEN }}"
        assert body["networkVolumes"] == ["vol7x2k9"] and body["dataCenterIds"] == ["EU-RO-1"]
        assert all(q["auth"] == "Bearer rp-test-key" for q in api.requests)
        assert_no_canary(json.dumps(body), r.stdout, r.stderr, where="runpod run")
        # the secrets went to RunPod's secrets API
        assert {s["name"] for s in api.secrets.values()} == {"flymigrate-acme-chat-HF_TOKEN",
                                                              "flymigrate-acme-chat-API_KEY"}
        # the base URLs were rewritten with the deployed endpoint's URL
        eid = next(iter(api.endpoints))
        assert f"https://{eid}.api.runpod.ai" in (acme / "client" / "chat.py").read_text()
        spec = json.loads((acme / "runpod-endpoint.json").read_text())
        assert spec["endpoint"]["networkVolumes"] == ["vol7x2k9"]
        # re-run: nothing created twice, nothing rewritten
        n = len(api.requests)
        before = tree(acme)
        r2 = run_cli(args, env)
        assert r2.returncode == 0, r2.stderr
        assert not [q for q in api.requests[n:] if q["method"] in ("POST", "PATCH")]
        assert {k: v for k, v in tree(acme).items()} == before
    finally:
        api.stop()


FAKE_GCLOUD = r"""#!/usr/bin/env python3
import json, os, sys
log = os.environ["FAKE_GCLOUD_LOG"]
data = sys.stdin.read() if "--data-file=-" in sys.argv else ""
with open(log, "a") as fh:
    fh.write(json.dumps({"argv": sys.argv[1:], "stdin": data}) + "\n")
if sys.argv[1:4] == ["secrets", "describe", sys.argv[3]] and not os.environ.get("FAKE_EXISTS"):
    sys.exit(1)
if sys.argv[1:4] == ["run", "services", "describe"]:
    print("https://acme-chat-123456.us-central1.run.app")
"""


def test_cloudrun_apply_gcs_weights_secrets_script_and_deploy(acme: Path, cli_env: dict[str, str], hf_hub,
                                                              tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "gcloud").write_text(FAKE_GCLOUD)
    (bindir / "gcloud").chmod(0o755)
    log = tmp_path / "gcloud.log"
    with GcsEmulator(bucket="acme-weights") as emu:
        env = dict(cli_env, **emu.env(), PATH=f"{bindir}:{os.environ['PATH']}", FAKE_GCLOUD_LOG=str(log))
        args = ["apply", str(acme), "--to", "cloudrun", "--yes", "--secrets", str(acme / "fly-secrets.json"),
                "--secrets", str(acme / "full.env"), "--bucket", "acme-weights",
                "--image", "us-central1-docker.pkg.dev/p/r/acme-chat:1", "--deploy"]
        r = run_cli(args, env)
        assert r.returncode == 0, r.stderr
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        client = storage.Client(project="test-project", credentials=AnonymousCredentials(),
                                client_options={"api_endpoint": emu.env()["STORAGE_EMULATOR_HOST"]})
        names = {b.name for b in client.list_blobs("acme-weights")}
        commit = hf_hub.commits["Qwen/Qwen2.5-7B-Instruct"]
        for name in HF_FILES:
            assert f"acme-chat/hf/hub/{SNAP}/snapshots/{commit}/{name}" in names
        assert f"acme-chat/hf/hub/{SNAP}/refs/main" in names
        calls = [json.loads(line) for line in log.read_text().splitlines()]
        # --deploy created the secrets first (values on stdin only), then replaced the service
        creates = {c["argv"][2]: c["stdin"] for c in calls if c["argv"][:2] == ["secrets", "create"]}
        assert creates == {"acme-chat-hf-token": CANARIES["HF_TOKEN"], "acme-chat-api-key": CANARIES["API_KEY"]}
        replace = [c for c in calls if c["argv"][:4] == ["run", "services", "replace", "service.yaml"]]
        assert replace and calls.index(replace[0]) > 0
        for c in calls:
            assert_no_canary(" ".join(c["argv"]), where="gcloud argv")
        assert "https://acme-chat-123456.us-central1.run.app" in (acme / "client" / "chat.py").read_text()
        script = acme / "create-secrets.sh"
        assert stat.S_IMODE(script.stat().st_mode) & 0o100
        assert_no_canary(script.read_bytes(), (acme / "service.yaml").read_bytes(), r.stdout, r.stderr,
                         where="cloudrun files")
        assert "create-secrets.sh <" in r.stderr + r.stdout
        # the script: values arrive on gcloud's stdin, never in its argv
        log.unlink()
        p = subprocess.run(["bash", str(script)], input=(acme / "full.env").read_text(), env=env,
                           capture_output=True, check=False, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        calls = [json.loads(line) for line in log.read_text().splitlines()]
        creates = {c["argv"][2]: c["stdin"] for c in calls if c["argv"][:2] == ["secrets", "create"]}
        assert creates == {"acme-chat-hf-token": CANARIES["HF_TOKEN"], "acme-chat-api-key": CANARIES["API_KEY"]}
        for c in calls:
            assert_no_canary(" ".join(c["argv"]), where="gcloud argv")
        # a missing value makes the script fail and name it
        p = subprocess.run(["bash", str(script)], input='HF_TOKEN="x"\n', env=env, capture_output=True, check=False, text=True,
                           timeout=60)
        assert p.returncode == 1 and "API_KEY" in p.stderr


def test_apply_reads_tigris_weights_with_the_credentials_in_the_secrets_export(acme: Path, cli_env: dict[str, str],
                                                                                 moto: MotoS3) -> None:
    """The app's weights lived in Tigris behind AWS_* secrets: apply reads them with the export's values."""
    c = moto.client()
    c.create_bucket(Bucket="tigris-acme")
    c.create_bucket(Bucket="vol9tigris")
    data = os.urandom(2 * 1024 * 1024 + 9)
    c.put_object(Bucket="tigris-acme", Key="models/qwen/model.safetensors", Body=data)
    c.put_object(Bucket="tigris-acme", Key="models/qwen/config.json", Body=b"{}")
    secret = "tsec_CANARY_apply_tigris"
    tig = acme / "tigris.env"
    tig.write_text(f"AWS_ACCESS_KEY_ID=tid_apply\nAWS_SECRET_ACCESS_KEY={secret}\nAWS_ENDPOINT_URL_S3={moto.url}\n"
                   "AWS_REGION=auto\n")
    tig.chmod(0o600)
    env = dict(cli_env, RUNPOD_S3_ACCESS_KEY_ID="AKIDRUNPOD", RUNPOD_S3_SECRET_ACCESS_KEY="runpod-s3-secret")
    args = ["apply", str(acme), "--to", "runpod", "--yes", "--only", "weights", "--weights-from", "s3://tigris-acme/models/qwen",
            "--volume-id", "vol9tigris", "--datacenter", "EU-RO-1", "--endpoint-url", moto.url]
    r = run_cli(args, env)
    assert r.returncode != 0 and "credentials" in r.stderr, r.stderr  # no AWS_* in the environment
    r = run_cli([*args, "--secrets", str(tig)], env)
    assert r.returncode == 0, r.stderr
    keys = {o["Key"]: o["Size"] for o in c.list_objects_v2(Bucket="vol9tigris")["Contents"]}
    assert any(k.endswith("model.safetensors") and s == len(data) for k, s in keys.items()), keys
    assert secret not in r.stdout + r.stderr
