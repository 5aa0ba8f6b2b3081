"""`apply --deploy --to runpod` against a loopback fake of RunPod's REST API v2: a LOAD_BALANCER endpoint with
REQUEST_COUNT scaling, the app's secrets created through the secrets API (values only in request bodies), updates by
PATCH, idempotent re-runs, an old queue endpoint replaced, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

from apply.conftest import CANARIES, assert_no_canary, run_cli, tree

from .runpod_api_fake import RunPodFake

KEY = "rp-test-key"


def _args(acme: Path, image: str = "registry.example.com/acme-chat:1", *extra: str) -> list[str]:
    return ["apply", str(acme), "--to", "runpod", "--yes", "--skip", "weights", "--secrets",
            str(acme / "fly-secrets.json"), "--secrets", str(acme / "full.env"), "--volume-id", "vol7x2k9",
            "--datacenter", "EU-RO-1", "--image", image, "--deploy", *extra]


def _env(cli_env: dict[str, str], fake: RunPodFake) -> dict[str, str]:
    return dict(cli_env, RUNPOD_API_BASE_URL=fake.url, RUNPOD_API_KEY=KEY)


def _state_text(acme: Path, cli_env: dict[str, str]) -> str:
    out = ""
    for root in (acme / ".flymigrate", Path(cli_env["FLYMIGRATE_STATE_DIR"])):
        if root.exists():
            out += "".join(p.read_text("utf-8", "replace") for p in root.rglob("*") if p.is_file())
    return out


def test_deploy_creates_lb_endpoint_and_secrets(acme: Path, cli_env: dict[str, str], runpod_api: RunPodFake) -> None:
    env = _env(cli_env, runpod_api)
    r = run_cli(_args(acme), env)
    assert r.returncode == 0, r.stderr
    # secrets: through the API, namespaced per app, values only in the request bodies
    posts = runpod_api.calls("POST", "/v2/account/secrets")
    assert sorted(p["body"]["name"] for p in posts) == ["flymigrate-acme-chat-API_KEY", "flymigrate-acme-chat-HF_TOKEN"]
    by_name = {s["name"]: s["value"] for s in runpod_api.secrets.values()}
    assert by_name == {"flymigrate-acme-chat-API_KEY": CANARIES["API_KEY"],
                       "flymigrate-acme-chat-HF_TOKEN": CANARIES["HF_TOKEN"]}
    assert all(CANARIES["HF_TOKEN"] not in (r["path"] + r["query"]) for r in runpod_api.requests)
    # one load-balancing endpoint, exactly the fields the v2 API takes
    (create,) = runpod_api.calls("POST", "/v2/serverless")
    body = create["body"]
    assert body["type"] == "LOAD_BALANCER"
    assert body["scaling"] == {"type": "REQUEST_COUNT", "requestCount": 8}  # fly.toml soft_limit 8
    assert body["workers"] == {"min": 0, "max": 1, "idleTimeout": 300}
    assert body["image"] == "registry.example.com/acme-chat:1"
    assert body["gpu"] == {"pools": ["AMPERE_48"], "count": 1}
    assert body["networkVolumes"] == ["vol7x2k9"] and body["dataCenterIds"] == ["EU-RO-1"]
    assert body["ports"] == ["8000/http", "18080/http"]
    assert body["env"]["PORT"] == "8000" and body["env"]["PORT_HEALTH"] == "18080"
    assert body["env"]["HF_TOKEN"] == "{{ RUNPOD_SECRET_flymigrate-acme-chat-HF_TOKEN }}"
    assert body["env"]["API_KEY"] == "{{ RUNPOD_SECRET_flymigrate-acme-chat-API_KEY }}"
    assert all(req["auth"] == f"Bearer {KEY}" for req in runpod_api.requests)
    # never a value in output, state or written files; the secrets never on an argv (only urllib in-process)
    assert_no_canary(r.stdout, r.stderr, _state_text(acme, cli_env), where="runpod deploy")
    for rel, data in tree(acme).items():
        if rel not in ("full.env",) and not rel.startswith(".flymigrate/backup/"):
            assert_no_canary(data, where=rel)
    # the client now calls the endpoint's own host
    eid = next(iter(runpod_api.endpoints))
    assert f"https://{eid}.api.runpod.ai" in (acme / "client" / "chat.py").read_text()
    spec = json.loads((acme / "runpod-endpoint.json").read_text())
    assert spec["endpoint"] == {k: v for k, v in body.items()}
    assert spec["auth_header"] == "Authorization: Bearer $RUNPOD_API_KEY"

    # re-run: nothing created or changed twice
    n = len(runpod_api.requests)
    r2 = run_cli(_args(acme), env)
    assert r2.returncode == 0, r2.stderr
    assert not [q for q in runpod_api.requests[n:] if q["method"] in ("POST", "PATCH")], runpod_api.requests[n:]

    # a new image: the same endpoint is PATCHed (no type: it is fixed at create), no second endpoint
    m = len(runpod_api.requests)
    r3 = run_cli(_args(acme, "registry.example.com/acme-chat:2"), env)
    assert r3.returncode == 0, r3.stderr
    new = runpod_api.requests[m:]
    assert not [q for q in new if q["method"] == "POST" and q["path"] == "/v2/serverless"]
    (patch,) = [q for q in new if q["method"] == "PATCH" and q["path"] == f"/v2/serverless/{eid}"]
    assert patch["body"]["image"] == "registry.example.com/acme-chat:2" and "type" not in patch["body"]
    assert runpod_api.endpoints[eid]["image"] == "registry.example.com/acme-chat:2"
    assert len(runpod_api.endpoints) == 1

    # endpoint settings changed in fly.toml: applied by PATCH, not a console note
    fly = acme / "fly.toml"
    fly.write_text(fly.read_text().replace("min_machines_running = 0", "min_machines_running = 1"))
    k = len(runpod_api.requests)
    r4 = run_cli(_args(acme, "registry.example.com/acme-chat:2"), env)
    assert r4.returncode == 0, r4.stderr
    assert runpod_api.endpoints[eid]["workers"]["min"] == 1
    assert [q["method"] for q in runpod_api.requests[k:] if q["path"].startswith("/v2/serverless/")] == ["PATCH"]


def test_existing_secret_gets_the_new_value(acme: Path, cli_env: dict[str, str], runpod_api: RunPodFake) -> None:
    runpod_api.secrets["sec9"] = {"id": "sec9", "name": "flymigrate-acme-chat-HF_TOKEN", "value": "old-value"}
    r = run_cli(["apply", str(acme), "--to", "runpod", "--yes", "--only", "secrets", "--secrets",
                 str(acme / "fly-secrets.json"), "--secrets", str(acme / "full.env")], _env(cli_env, runpod_api))
    assert r.returncode == 0, r.stderr
    assert runpod_api.secrets["sec9"]["value"] == CANARIES["HF_TOKEN"]
    patches = runpod_api.calls("PATCH", "/v2/account/secrets/sec9")
    assert len(patches) == 1 and set(patches[0]["body"]) == {"value"}
    assert "1 RunPod secret(s) created, 1 updated" in r.stderr + r.stdout
    assert_no_canary(r.stdout, r.stderr, where="secret update")


def test_old_queue_endpoint_is_replaced_by_a_load_balancer(acme: Path, cli_env: dict[str, str],
                                                          runpod_api: RunPodFake) -> None:
    """State from before (runpod.create_endpoint made a queue endpoint, which never calls the server)."""
    old = runpod_api.add_endpoint(name="flymigrate-acme-chat", type="QUEUE", image="x")
    state = acme / ".flymigrate"
    env = _env(cli_env, runpod_api)
    r0 = run_cli([a for a in _args(acme) if a != "--deploy"] + ["--only", "dockerfile"], env)
    assert r0.returncode == 0, r0.stderr
    files = list(state.rglob("state.json")) or list(Path(cli_env["FLYMIGRATE_STATE_DIR"]).rglob("*.json"))
    assert files, "no apply state written"
    st = json.loads(files[0].read_text())
    st.setdefault("targets", {}).setdefault("runpod", {}).update(endpoint_id=old, template_id="tpl-1")
    files[0].write_text(json.dumps(st))
    r = run_cli(_args(acme), env)
    assert r.returncode == 0, r.stderr
    assert f"endpoint {old} is a queue endpoint" in r.stderr
    (create,) = runpod_api.calls("POST", "/v2/serverless")
    assert create["body"]["type"] == "LOAD_BALANCER"
    new = [e for e in runpod_api.endpoints if e != old]
    assert len(new) == 1 and f"https://{new[0]}.api.runpod.ai" in (acme / "client" / "chat.py").read_text()


def test_crash_after_create_adopts_the_endpoint_by_name(acme: Path, cli_env: dict[str, str],
                                                       runpod_api: RunPodFake) -> None:
    eid = runpod_api.add_endpoint(name="flymigrate-acme-chat", type="LOAD_BALANCER", image="old")
    r = run_cli(_args(acme), _env(cli_env, runpod_api))
    assert r.returncode == 0, r.stderr
    assert not runpod_api.calls("POST", "/v2/serverless")
    assert runpod_api.endpoints[eid]["image"] == "registry.example.com/acme-chat:1"


def test_missing_api_key_is_an_input_error(acme: Path, cli_env: dict[str, str]) -> None:
    r = run_cli(["apply", str(acme), "--to", "runpod", "--yes", "--only", "secrets", "--secrets",
                 str(acme / "fly-secrets.json"), "--secrets", str(acme / "full.env")], cli_env)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "RUNPOD_API_KEY is not set" in r.stderr and "Traceback" not in r.stderr


def test_api_error_is_a_remote_error_and_scrubbed(acme: Path, cli_env: dict[str, str],
                                                  runpod_api: RunPodFake) -> None:
    # a server that echoes the request (as some proxies do) must not make flymigrate print the value
    runpod_api.fail_next.append((500, {"title": "Internal", "status": 500,
                                       "detail": "could not store value " + CANARIES["API_KEY"]}))
    r = run_cli(["apply", str(acme), "--to", "runpod", "--yes", "--only", "secrets", "--secrets",
                 str(acme / "fly-secrets.json"), "--secrets", str(acme / "full.env")], _env(cli_env, runpod_api))
    assert r.returncode == 3, (r.returncode, r.stderr)
    assert "RunPod API" in r.stderr and "HTTP 500" in r.stderr and "Traceback" not in r.stderr
    assert_no_canary(r.stdout, r.stderr, where="api error")


def test_wrong_key_says_so(acme: Path, cli_env: dict[str, str], runpod_api: RunPodFake) -> None:
    env = dict(_env(cli_env, runpod_api), RUNPOD_API_KEY="wrong")
    r = run_cli(["apply", str(acme), "--to", "runpod", "--yes", "--only", "secrets", "--secrets",
                 str(acme / "fly-secrets.json"), "--secrets", str(acme / "full.env")], env)
    assert r.returncode == 2 and "RunPod rejected RUNPOD_API_KEY" in r.stderr, r.stderr
