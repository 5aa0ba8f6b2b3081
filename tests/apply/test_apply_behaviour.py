"""Behaviour of apply through the API (in process, fast): base URLs, conflicts, --out, --only/--skip,
--weights-from, confirmation, previews, Modal deploy through a fake `modal` on PATH."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import pytest

from flymigrate import api
from flymigrate.apply import ApplyOptions
from flymigrate.errors import UserError

from .conftest import CANARIES, assert_no_canary, run_cli, tree

URL = "https://ws--flymigrate-acme-chat-serve.modal.run"


def _apply(app: Path, **kw):
    events = []
    opts = ApplyOptions(target=kw.pop("target", "modal"), **{k: v for k, v in kw.items() if k != "confirm"})
    res = api.apply(app, opts.target, options=opts, reporter=events.append, confirm=kw.get("confirm"))
    return res, events


def test_base_urls_keep_rest_of_line_binary_and_decoys_untouched(acme: Path) -> None:
    (acme / "client" / "blob.bin").write_bytes(b"\x00\x01https://acme-chat.fly.dev/v1\x00")
    (acme / "client" / "other.py").write_text('A = "https://acme-chat-admin.fly.dev"\nB = "https://acme-chat.fly.dev:443/v1/x?q=1#f"  # keep\n')
    res, _ = _apply(acme, only=("base_urls",), base_url=URL)
    assert res.ok
    assert (acme / "client" / "blob.bin").read_bytes() == b"\x00\x01https://acme-chat.fly.dev/v1\x00"
    other = (acme / "client" / "other.py").read_text()
    assert 'A = "https://acme-chat-admin.fly.dev"' in other
    assert f'B = "{URL}/v1/x?q=1#f"  # keep' in other
    chat = (acme / "client" / "chat.py").read_text()
    assert "status.acme-chat.fly.dev.example.com" in chat  # decoy
    before = tree(acme)
    res2, _ = _apply(acme, only=("base_urls",), base_url=URL)
    assert tree(acme) == before and res2.outcomes[0].status in ("nothing_to_do", "already_done")


def test_placeholder_never_written_into_code(acme: Path) -> None:
    before = tree(acme)
    res, _events = _apply(acme, only=("base_urls",))
    assert res.outcomes[0].status == "skipped"
    assert "--base-url" in res.outcomes[0].message
    assert {k: v for k, v in tree(acme).items() if not k.startswith(".flymigrate")} == before


def test_private_urls_get_an_auth_note(acme: Path) -> None:
    prev = api.preview(acme, "modal", options=ApplyOptions(target="modal", only=("base_urls",), base_url=URL))
    assert any("authentication" in n for n in prev[0].notes)
    assert prev[0].changes and all(c.diff().startswith("--- a/") for c in prev[0].changes if c.changed)


def test_user_edit_after_rewrite_is_not_clobbered(acme: Path) -> None:
    _apply(acme, only=("dockerfile",))
    df = acme / "Dockerfile"
    df.write_text(df.read_text() + "RUN echo mine\n")
    # a different rewrite is now wanted (runpod adds a volume link): refuse, keep the edit
    with pytest.raises(UserError, match="changed since flymigrate rewrote it"):
        _apply(acme, target="runpod", only=("dockerfile",), volume_id="v", datacenter="EU-RO-1")
    assert df.read_text().endswith("RUN echo mine\n")


def test_switching_target_rewrites_from_the_original(acme: Path) -> None:
    _apply(acme, only=("dockerfile",))
    _apply(acme, target="runpod", only=("dockerfile",), volume_id="v", datacenter="EU-RO-1")
    text = (acme / "Dockerfile").read_text()
    assert text.count("COPY start.sh /app/start.sh") == 1 and "/runpod-volume/acme-chat" in text
    assert (acme / ".flymigrate" / "backup" / "Dockerfile").read_text().startswith("FROM python:3.11-slim")


def test_out_dir_holds_generated_files(acme: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res, _ = _apply(acme, only=("scaling",), out_dir=str(out))
    assert res.ok and (out / "modal_app.py").is_file() and not (acme / "modal_app.py").exists()
    text = (out / "modal_app.py").read_text()
    rel = os.path.relpath(acme, out)
    assert f"HERE / {rel + '/Dockerfile'!r}" in text and f"context_dir=HERE / {rel!r}" in text


def test_only_and_skip(acme: Path) -> None:
    res, _ = _apply(acme, skip=("weights", "secrets", "base_urls"))
    assert [o.step for o in res.outcomes] == ["dockerfile", "scaling"]
    with pytest.raises(UserError):
        _apply(acme, only=("nope",))


def test_weights_from_local_folder_to_modal(acme: Path, tmp_path: Path, cli_env, modal_fake) -> None:
    src = tmp_path / "weights"
    (src / "sub").mkdir(parents=True)
    (src / "model.gguf").write_bytes(os.urandom(50_000))
    (src / "sub" / "x.json").write_text("{}")
    app = tmp_path / "app2"
    shutil.copytree(acme, app)
    (app / "fly.toml").write_text((app / "fly.toml").read_text().replace('acme-chat"', 'acme-local"', 1))
    r = run_cli(["apply", str(app), "--to", "modal", "--yes", "--only", "weights", "--weights-from", str(src)],
                cli_env)
    assert r.returncode == 0, r.stderr
    files = modal_fake.list_files("flymigrate-acme-local-weights")
    assert "model.gguf" in files and "sub/x.json" in files


def test_confirm_no_skips_the_step(acme: Path) -> None:
    seen = []

    def confirm(p) -> bool:
        seen.append(p.step)
        assert p.render()
        return p.step != "dockerfile"

    _apply(acme, skip=("weights", "secrets"), base_url=URL, confirm=confirm)
    assert seen == ["dockerfile", "base_urls", "scaling"]
    assert (acme / ".flymigrate" / "backup" / "Dockerfile").exists() is False
    assert "ldconfig" in (acme / "Dockerfile").read_text()
    assert (acme / "modal_app.py").exists()


def test_preview_lists_secret_names_never_values(acme: Path) -> None:
    prev = api.preview(acme, "cloudrun", options=ApplyOptions(target="cloudrun", bucket="b"),
                       secrets_paths=[str(acme / "fly-secrets.json"), str(acme / "full.env")])
    text = "".join(p.render() for p in prev)
    sec = next(p for p in prev if p.step == "secrets")
    assert sec.secrets == ["HF_TOKEN", "API_KEY"]
    assert "create-secrets.sh" in text
    assert_no_canary(text, repr(prev), where="preview")


def test_stop_event_stops_before_next_step(acme: Path) -> None:
    stop = threading.Event()
    stop.set()
    from flymigrate.errors import ResumableError

    with pytest.raises(ResumableError):
        api.apply(acme, "modal", options=ApplyOptions(target="modal", skip=("weights",)), stop=stop)


def test_modal_deploy_runs_modal_deploy_and_uses_its_url(acme: Path, tmp_path: Path, cli_env, modal_fake) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "modal.log"
    (bindir / "modal").write_text("#!/bin/sh\necho \"$@\" >> " + str(log) + "\n"
                                  "echo '✓ Created web function serve => https://ws--flymigrate-acme-chat-serve.modal.run'\n")
    (bindir / "modal").chmod(0o755)
    env = dict(cli_env, PATH=f"{bindir}:{os.environ['PATH']}")
    r = run_cli(["apply", str(acme), "--to", "modal", "--yes", "--skip", "weights", "--secrets",
                 str(acme / "fly-secrets.json"), "--secrets", str(acme / "full.env"), "--deploy"], env)
    assert r.returncode == 0, r.stderr
    assert log.read_text().strip() == "deploy modal_app.py"
    assert "modal deploy modal_app.py" in r.stderr
    assert URL in (acme / "client" / "chat.py").read_text()
    state = json.loads((acme / ".flymigrate" / "state.json").read_text())
    assert state["targets"]["modal"]["deployed_url"] == URL
    assert_no_canary(r.stdout, r.stderr, json.dumps(state), where="deploy")
    assert CANARIES["HF_TOKEN"] == modal_fake.secret_values("flymigrate-acme-chat-secrets")["HF_TOKEN"]


def test_deploy_held_back_while_a_step_is_blocked(acme: Path) -> None:
    opts = ApplyOptions(target="modal", skip=("weights",), deploy=True)
    res = api.apply(acme, "modal", options=opts, secrets_paths=[str(acme / "fly-secrets.json"),
                                                                str(acme / "example.env")])
    out = {o.step: o for o in res.outcomes}
    assert out["secrets"].status == "blocked"
    assert out["deploy"].status == "blocked" and "secrets" in out["deploy"].message


def test_status_shows_apply_state(acme: Path, cli_env) -> None:
    _apply(acme, only=("dockerfile",))
    r = run_cli(["status", str(acme)], cli_env)
    assert r.returncode == 0 and "apply -> modal:" in r.stdout and "dockerfile done" in " ".join(r.stdout.split())
    j = json.loads(run_cli(["status", str(acme), "--format", "json"], cli_env).stdout)
    assert j["apply"]["modal"]["steps"]["dockerfile"]["status"] == "done"
