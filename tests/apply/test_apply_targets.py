"""RunPod (weights into a network volume via moto, endpoint via a loopback GraphQL fake reached through
RUNPOD_API_BASE_URL) and Cloud Run (weights into GCS via the emulator, create-secrets.sh and deploy through a fake
gcloud that records its argv and stdin): values only ever travel on stdin."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from servers.gcs_emulator import GcsEmulator
from servers.moto_s3 import MotoS3

from .conftest import CANARIES, HF_FILES, assert_no_canary, run_cli, tree

SNAP = "models--Qwen--Qwen2.5-7B-Instruct"


class RunPodGraphQL:
    """POST /graphql: answers saveTemplate / saveEndpoint / updateEndpointTemplate, records the queries (loopback only)."""

    def __init__(self) -> None:
        self.queries: list[str] = []
        self.auth: list[str] = []
        self.templates = 0
        fake = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                q = body["query"]
                fake.queries.append(q)
                fake.auth.append(self.headers.get("Authorization", ""))
                if "saveTemplate" in q:
                    fake.templates += 1
                    data = {"saveTemplate": {"id": f"tpl-{122 + fake.templates}", "name": "x"}}
                elif "updateEndpointTemplate" in q:
                    data = {"updateEndpointTemplate": {"id": "ep-456", "templateId": "?"}}
                elif "saveEndpoint" in q:
                    data = {"saveEndpoint": {"id": "ep-456", "name": "x"}}
                else:
                    data = {}
                out = json.dumps({"data": data}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"

    def stop(self) -> None:
        self.srv.shutdown()


@pytest.fixture(scope="module")
def moto() -> Any:
    m = MotoS3()
    yield m
    m.stop()


def test_runpod_apply_weights_secrets_deploy(acme: Path, cli_env: dict[str, str], moto, hf_hub) -> None:
    moto.client().create_bucket(Bucket="vol7x2k9")
    gql = RunPodGraphQL()
    env = dict(cli_env, RUNPOD_API_BASE_URL=gql.url, RUNPOD_API_KEY="rp-test-key",
               RUNPOD_S3_ACCESS_KEY_ID="AKIDRUNPOD", RUNPOD_S3_SECRET_ACCESS_KEY="runpod-s3-secret")
    args = ["apply", str(acme), "--to", "runpod", "--yes", "--secrets", str(acme / "fly-secrets.json"),
            "--secrets", str(acme / "full.env"), "--volume-id", "vol7x2k9", "--datacenter", "EU-RO-1",
            "--endpoint-url", moto.url, "--image", "registry.example.com/acme-chat:1", "--deploy"]
    try:
        r = run_cli(args, env)
        assert r.returncode == 0, r.stderr
        # the exact command/API call is shown before it runs
        assert "runpod.create_template" in r.stderr
        # weights in the network volume under /runpod-volume/acme-chat, as the app's HF cache
        c = moto.client()
        keys = {o["Key"] for o in c.list_objects_v2(Bucket="vol7x2k9")["Contents"]}
        commit = hf_hub.commits["Qwen/Qwen2.5-7B-Instruct"]
        for name in HF_FILES:
            assert f"acme-chat/hf/hub/{SNAP}/snapshots/{commit}/{name}" in keys
        assert f"acme-chat/hf/hub/{SNAP}/refs/main" in keys
        # the endpoint was created with secret references, never values
        q = "\n".join(gql.queries)
        assert "saveTemplate" in q and "saveEndpoint" in q
        assert "{{ RUNPOD_SECRET_HF_TOKEN }}" in q and "{{ RUNPOD_SECRET_API_KEY }}" in q
        assert "vol7x2k9" in q and "EU-RO-1" in q and "REQUEST_COUNT" in q
        assert all(a == "Bearer rp-test-key" for a in gql.auth)
        assert_no_canary(q, r.stdout, r.stderr, where="runpod run")
        # the exact list of secrets the user must add in the console is printed
        assert "HF_TOKEN" in r.stderr and "API_KEY" in r.stderr
        # the base URLs were rewritten with the deployed endpoint's URL
        assert "https://ep-456.api.runpod.ai" in (acme / "client" / "chat.py").read_text()
        spec = json.loads((acme / "runpod-endpoint.json").read_text())
        assert spec["endpoint"]["networkVolumeId"] == "vol7x2k9"
        # re-run: nothing created twice, nothing rewritten
        n = len(gql.queries)
        before = tree(acme)
        r2 = run_cli(args, env)
        assert r2.returncode == 0, r2.stderr
        assert len(gql.queries) == n
        assert {k: v for k, v in tree(acme).items()} == before
        # a new image: a new template version, the endpoint pointed at it, no second endpoint
        r3 = run_cli([a if a != "registry.example.com/acme-chat:1" else "registry.example.com/acme-chat:2" for a in args], env)
        assert r3.returncode == 0, r3.stderr
        new = gql.queries[n:]
        assert sum("saveTemplate" in q for q in new) == 1 and not any("saveEndpoint" in q for q in new), new
        assert any("updateEndpointTemplate" in q and "ep-456" in q and "tpl-124" in q for q in new), new
        assert "acme-chat:2" in "".join(new) and "the template changed" in r3.stderr
        assert "https://ep-456.api.runpod.ai" in (acme / "client" / "chat.py").read_text()
        # endpoint settings changed in fly.toml: said plainly (the SDK cannot edit an endpoint), nothing created
        fly = acme / "fly.toml"
        text = fly.read_text()
        assert "min_machines_running = 0" in text
        fly.write_text(text.replace("min_machines_running = 0", "min_machines_running = 1"))
        m = len(gql.queries)
        r4 = run_cli([a if a != "registry.example.com/acme-chat:1" else "registry.example.com/acme-chat:2" for a in args], env)
        assert r4.returncode == 0, r4.stderr
        assert not any("saveEndpoint" in q for q in gql.queries[m:])
        assert "WARNING: endpoint ep-456 was created with other settings" in r4.stderr and "workersMin 0 -> 1" in r4.stderr
    finally:
        gql.stop()


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
