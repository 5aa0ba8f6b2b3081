"""End to end against the loopback Modal control plane and Hub: weights (HF cache layout), secrets, files."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from .conftest import CANARIES, HF_FILES, assert_no_canary, run_cli, tree

SNAP = "models--Qwen--Qwen2.5-7B-Instruct"


def _args(app: Path) -> list[str]:
    return ["apply", str(app), "--to", "modal", "--yes", "--secrets", str(app / "fly-secrets.json"),
            "--secrets", str(app / "full.env"), "--base-url", "https://ws--flymigrate-acme-chat-serve.modal.run"]


def test_modal_full_apply_then_rerun_is_noop(acme: Path, cli_env: dict[str, str], modal_fake, hf_hub) -> None:
    r = run_cli(_args(acme), cli_env)
    assert r.returncode == 0, r.stderr
    # weights: laid out as the HF cache under HF_HOME=/models/hf (mount /models = volume root)
    files = modal_fake.list_files("flymigrate-acme-chat-weights")
    commit = hf_hub.commits["Qwen/Qwen2.5-7B-Instruct"]
    for name in HF_FILES:
        assert f"hf/hub/{SNAP}/snapshots/{commit}/{name}" in files
    assert modal_fake.read_file("flymigrate-acme-chat-weights", f"hf/hub/{SNAP}/refs/main") == commit.encode()
    # secrets: created through the SDK with every key
    assert modal_fake.secret_values("flymigrate-acme-chat-secrets") == CANARIES
    # files
    assert (acme / "modal_app.py").is_file()
    assert "ldconfig" not in (acme / "Dockerfile").read_text().split("removed")[0]
    chat = (acme / "client" / "chat.py").read_text()
    assert "https://acme-chat.fly.dev" not in chat and "status.acme-chat.fly.dev.example.com" in chat
    assert (acme / ".flymigrate" / "backup" / "Dockerfile").read_bytes() == (
        Path(__file__).resolve().parents[2] / "examples" / "acme-chat" / "Dockerfile").read_bytes()
    st = acme / ".flymigrate" / "state.json"
    assert stat.S_IMODE(st.stat().st_mode) == 0o600
    assert stat.S_IMODE((acme / ".flymigrate").stat().st_mode) == 0o700
    state = json.loads(st.read_text())
    assert {k: v["status"] for k, v in state["targets"]["modal"]["steps"].items()} == {
        "weights": "done", "dockerfile": "done", "secrets": "done", "base_urls": "done", "scaling": "done"}
    before = tree(acme, skip_state=False)
    calls = len(modal_fake.calls) if hasattr(modal_fake, "calls") else None
    r2 = run_cli(_args(acme), cli_env)
    assert r2.returncode == 0, r2.stderr
    after = tree(acme, skip_state=False)
    assert {k: v for k, v in after.items() if k != ".flymigrate/state.json"} == \
        {k: v for k, v in before.items() if k != ".flymigrate/state.json"}
    assert "already done" in r2.stderr or "already_done" in r2.stdout
    # nothing secret anywhere
    for rel, data in after.items():
        assert_no_canary(data, where=rel) if rel != "full.env" and not rel.endswith("/full.env") else None
    assert_no_canary(r.stdout, r.stderr, r2.stdout, r2.stderr, where="output")
    for p in Path(cli_env["FLYMIGRATE_STATE_DIR"]).rglob("*"):
        if p.is_file():
            assert_no_canary(p.read_bytes(), where=str(p))
    del calls


def test_modal_secret_values_missing_is_blocking(acme: Path, cli_env: dict[str, str], modal_fake) -> None:
    r = run_cli(["apply", str(acme), "--to", "modal", "--yes", "--only", "secrets", "--secrets",
                 str(acme / "fly-secrets.json"), "--secrets", str(acme / "example.env")], cli_env)
    assert r.returncode == 2
    assert "API_KEY" in r.stdout + r.stderr


def test_no_tty_without_yes_refuses(acme: Path, cli_env: dict[str, str]) -> None:
    r = run_cli(["apply", str(acme), "--to", "modal"], cli_env)
    assert r.returncode == 2
    assert "--yes" in r.stderr
    assert not (acme / ".flymigrate").exists()


def test_dry_run_equals_plan(acme: Path, cli_env: dict[str, str]) -> None:
    a = run_cli(["apply", str(acme), "--to", "modal", "--dry-run"], cli_env)
    b = run_cli(["plan", str(acme), "--to", "modal"], cli_env)
    assert a.returncode == 0 and a.stdout == b.stdout
    assert not (acme / ".flymigrate").exists()
    assert not os.path.exists(acme / "modal_app.py")


def test_only_secrets_pushes_new_values(acme: Path, cli_env: dict[str, str], modal_fake) -> None:
    base = ["apply", str(acme), "--to", "modal", "--yes", "--only", "secrets", "--secrets", str(acme / "fly-secrets.json")]
    r = run_cli(base + ["--secrets", str(acme / "full.env")], cli_env)
    assert r.returncode == 0, r.stderr
    (acme / "rotated.env").write_text('HF_TOKEN="hf_rotated_1"\nAPI_KEY="sk-rotated-2"\n')
    r = run_cli(base + ["--secrets", str(acme / "rotated.env")], cli_env)
    assert r.returncode == 0, r.stderr
    assert modal_fake.secret_values("flymigrate-acme-chat-secrets") == {"HF_TOKEN": "hf_rotated_1",
                                                                       "API_KEY": "sk-rotated-2"}
