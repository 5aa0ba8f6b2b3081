"""Issue 16, as a new user meets flymigrate: inputs that forgive, output that reads well, next commands."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .helpers import EXAMPLE, run_cli, write


def test_empty_and_comment_only_fly_toml_are_input_errors(tmp_path: Path) -> None:
    write(tmp_path, "a/fly.toml", "")
    write(tmp_path, "b/fly.toml", "# app = 'x'\n\n")
    for d, needle in (("a", "the file is empty"), ("b", "only comments")):
        r = run_cli("plan", str(tmp_path / d), "--to", "modal")
        assert r.returncode == 2 and needle in r.stderr and r.stdout == "", r.stderr


def test_duplicate_key_and_table_name_both_lines(tmp_path: Path) -> None:
    write(tmp_path, "a/fly.toml", 'app = "one"\nprimary_region = "ams"\napp = "two"\n')
    r = run_cli("plan", str(tmp_path / "a"), "--to", "modal")
    assert r.returncode == 2 and "`app` is set twice, on line 1 and again on line 3" in r.stderr
    write(tmp_path, "b/fly.toml", 'app = "x"\n[http_service]\ninternal_port = 8080\n[http_service]\n')
    r = run_cli("plan", str(tmp_path / "b"), "--to", "modal")
    assert r.returncode == 2 and "[http_service] is declared twice (first on line 2)" in r.stderr


def test_dangling_symlink_is_named(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    os.symlink("../gone.toml", tmp_path / "app" / "fly.toml")
    r = run_cli("plan", str(tmp_path / "app"), "--to", "modal")
    assert r.returncode == 2 and "dangling" in r.stderr and "../gone.toml" in r.stderr


def test_plan_from_a_subfolder_finds_the_app_and_says_so(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLE, tmp_path / "acme-chat")
    r = run_cli("plan", "--to", "modal", cwd=tmp_path / "acme-chat" / "client")
    assert r.returncode == 0, r.stderr
    assert "found in a parent folder" in r.stdout and "acme-chat -> Modal" in r.stdout
    (tmp_path / "elsewhere" / ".git").mkdir(parents=True)  # a repository's top: the search stops there
    r = run_cli("plan", "--to", "modal", cwd=tmp_path / "elsewhere")
    assert r.returncode == 2 and "no fly.toml" in r.stderr and "current folder" in r.stderr


def test_no_fly_toml_plans_from_the_dockerfile_with_assumptions(tmp_path: Path) -> None:
    write(tmp_path, "llama/Dockerfile", "FROM nvidia/cuda:12.1.0-runtime-ubuntu22.04\nEXPOSE 8000\nCMD [\"serve\"]\n")
    write(tmp_path, "llama/README.md", "# llama\n")
    r = run_cli("plan", str(tmp_path / "llama"), "--to", "runpod", "--gpu", "l40s", "--app", "my-llama",
                "--format", "json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["app"] == "my-llama" and d["gpu"]["fly_kind"] == "l40s"
    f = next(f for f in d["findings"] if f["code"] == "no-fly-toml")
    assert "port 8000 (EXPOSE)" in f["message"] and "scale to zero" in f["message"]
    r = run_cli("plan", str(tmp_path / "nothing"), "--to", "modal")
    assert r.returncode == 2


def test_cpu_only_app_is_told_what_cpu_means_not_to_pass_gpu(tmp_path: Path) -> None:
    write(tmp_path, "web/fly.toml", 'app = "web"\n[http_service]\ninternal_port = 3000\n')
    write(tmp_path, "web/Dockerfile", "FROM node:20-slim\nCMD [\"node\", \"server.js\"]\n")
    r = run_cli("plan", str(tmp_path / "web"), "--to", "runpod")
    assert r.returncode == 0, r.stderr
    assert "runs on CPU" in r.stdout and "CPU endpoint" in r.stdout
    assert "pass --gpu KIND[:N]" not in r.stdout and "Say which Fly GPU" not in r.stdout


def test_no_app_key_takes_the_name_from_the_apps_own_url(tmp_path: Path) -> None:
    write(tmp_path, "svc/fly.toml", '[http_service]\ninternal_port = 8080\n[[vm]]\nsize = "l40s"\n')
    write(tmp_path, "svc/README.md", "curl http://whisper-x.flycast/predict\n")
    r = run_cli("plan", str(tmp_path / "svc"), "--to", "modal", "--format", "json")
    d = json.loads(r.stdout)
    assert d["app"] == "whisper-x"
    assert [h["old"] for h in d["base_urls"]] == ["http://whisper-x.flycast"]  # its own URL, not "another app"
    assert any(f["code"] == "app-name-derived" and "README.md:1" in f["message"] for f in d["findings"])
    assert not any(f["code"] in ("no-app-name", "urls-unsearchable") for f in d["findings"])
    r = run_cli("plan", str(tmp_path / "svc"), "--to", "modal", "--app", "given", "--format", "json")
    assert json.loads(r.stdout)["app"] == "given"


def test_text_fits_100_columns_off_a_tty_and_ends_with_commands(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLE, tmp_path / "acme-chat")
    (tmp_path / "acme-chat" / "example.env").chmod(0o600)
    r = run_cli("plan", "acme-chat", "--to", "runpod", "--secrets", "acme-chat/fly-secrets.json",
                "--secrets", "acme-chat/example.env", cwd=tmp_path)
    lines = r.stdout.splitlines()
    assert max(len(x) for x in lines) <= 100
    head = "\n".join(lines[:14])
    assert "GPU" in head and "Blocked" in head and "API_KEY" in head  # the summary comes first
    tail = r.stdout.rsplit("\nNext\n", 1)[1]
    assert "flymigrate plan acme-chat --to runpod --secrets acme-chat/fly-secrets.json" in tail
    assert "flymigrate apply acme-chat --to runpod" in tail
    assert "True" not in r.stdout and "flashboot = true" in r.stdout


def test_markdown_keeps_placeholders_visible() -> None:
    r = run_cli("plan", str(EXAMPLE), "--to", "modal", "--format", "markdown")
    body = r.stdout.replace("`https://<workspace>", "")  # inside code spans they are literal
    assert "https://\\<workspace>" in body
    assert "https://<workspace>" not in "".join(x for i, x in enumerate(body.split("`")) if i % 2 == 0)


def test_compare_says_what_the_user_needs_not_internal_notes() -> None:
    r = run_cli("compare", str(EXAMPLE))
    assert r.returncode == 0
    for internal in ("research/", "project brief", "is a recollection", "recollection:"):
        assert internal not in r.stdout, internal
    assert "unverified price" in r.stdout and "read on 2026-11-22 from" in r.stdout
    assert max(len(x) for x in r.stdout.splitlines()) <= 100


def test_help_lists_what_a_user_types() -> None:
    r = run_cli("apply", "--help")
    assert "weights, dockerfile, secrets, base_urls, scaling" in " ".join(r.stdout.split())
    r = run_cli("status", "--help")
    assert "Show every weight transfer" in " ".join(r.stdout.split())
    r = run_cli("plan", "--help")
    text = " ".join(r.stdout.split())
    assert "flymigrate/plan/v2" in text and "NO_COLOR" in text
    r = run_cli("tui", "--help")
    assert all(opt in r.stdout for opt in ("--config", "--gpu", "--app"))


def test_apply_keeps_its_state_out_of_git_and_warns_on_a_dirty_tree(tmp_path: Path) -> None:
    import subprocess

    if shutil.which("git") is None:
        import pytest

        pytest.skip("git is not installed")
    app = tmp_path / "acme-chat"
    shutil.copytree(EXAMPLE, app)
    git = ["git", "-C", str(app), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "app"], check=True)
    (app / "README.md").write_text("edited, not committed\n")
    r = run_cli("apply", "acme-chat", "--to", "modal", "--only", "dockerfile", "--yes", cwd=tmp_path,
                env={"FLYMIGRATE_STATE_DIR": str(tmp_path / "state")})
    assert r.returncode == 0, r.stderr
    assert "uncommitted changes (README.md)" in r.stderr  # a warning: it still ran
    status = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True, check=True).stdout
    assert ".flymigrate" not in status and "Dockerfile" in status
