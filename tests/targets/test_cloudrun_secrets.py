"""Cloud Run secrets reach Secret Manager exactly as flymigrate's parser reads them: multi-line (\"\"\") values,
quotes, '=' and a byte-order mark. A fake `gcloud` on PATH records its argv and the bytes on its stdin (or in the
--data-file it was given); values must never be in argv."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest

from flymigrate.parse.secrets import parse_secrets
from flymigrate.targets.cloudrun import create_secrets
from targets.conftest import plan_for, rendered

ROOT = Path(__file__).resolve().parents[2]
FAKE_GCLOUD = r"""#!/usr/bin/env python3
import base64, json, os, sys
args = sys.argv[1:]
data = b""
for a in args:
    if a == "--data-file=-":
        data = sys.stdin.buffer.read()
    elif a.startswith("--data-file="):
        data = open(a.split("=", 1)[1], "rb").read()
with open(os.environ["FAKE_GCLOUD_LOG"], "a") as fh:
    fh.write(json.dumps({"argv": args, "data": base64.b64encode(data).decode()}) + "\n")
if args[:2] == ["secrets", "describe"] and args[2] not in os.environ.get("FAKE_EXISTS", "").split(","):
    sys.exit(1)
"""

PEM = "-----BEGIN KEY-----\nMIIB\"quoted\" it's\n=tail==\n-----END KEY-----"
EXPORT = ('\ufeffHF_TOKEN="hf_CANARY \'q\' = x # not a comment"\n'
          f'TLS_KEY="""{PEM}"""\n'
          "API_KEY='sk-CANARY $HOME `x`'\n")


@pytest.fixture
def gcloud(tmp_path: Path) -> dict[str, str]:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "gcloud").write_text(FAKE_GCLOUD)
    (bindir / "gcloud").chmod(0o755)
    return {"PATH": f"{bindir}:{os.environ['PATH']}", "FAKE_GCLOUD_LOG": str(tmp_path / "gcloud.log"),
            "PYTHONPATH": str(ROOT)}


def calls(env: dict[str, str]) -> list[dict]:
    log = Path(env["FAKE_GCLOUD_LOG"])
    out = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    for c in out:
        c["data"] = base64.b64decode(c["data"]).decode("utf-8")
    return out


def stored(env: dict[str, str]) -> dict[str, str]:
    return {c["argv"][2] if c["argv"][1] == "create" else c["argv"][3]: c["data"] for c in calls(env)
            if c["argv"][:2] == ["secrets", "create"] or c["argv"][:3] == ["secrets", "versions", "add"]}


def parsed(export: str) -> dict[str, str]:
    exp = parse_secrets(export.encode("utf-8"), "test.env")
    return {s.name: s.value.reveal() for s in exp.secrets if s.value is not None}


def assert_values_not_in_argv(env: dict[str, str], values: dict[str, str]) -> None:
    for c in calls(env):
        argv = " ".join(c["argv"])
        for v in values.values():
            assert v not in argv and v.splitlines()[0] not in argv


def test_the_parser_reads_the_hard_values() -> None:
    v = parsed(EXPORT)
    assert v["TLS_KEY"] == PEM and "\n" in v["TLS_KEY"]
    assert v["HF_TOKEN"].startswith("hf_CANARY") and v["API_KEY"].startswith("sk-CANARY")


def test_apply_stores_each_value_exactly_as_parsed(gcloud: dict[str, str], monkeypatch) -> None:
    for k, v in gcloud.items():
        monkeypatch.setenv(k, v)
    values = parsed(EXPORT)
    ids = {n: f"app-{n.lower()}" for n in values}
    monkeypatch.setenv("FAKE_EXISTS", "app-api_key")  # one exists already: a new version, not a create
    assert create_secrets(values, ids) == list(ids.values())
    assert stored(gcloud) == {ids[n]: v for n, v in values.items()}
    kinds = {c["argv"][2] if c["argv"][1] == "create" else c["argv"][3]: c["argv"][1] for c in calls(gcloud)
             if c["argv"][1] != "describe"}
    assert kinds == {"app-hf_token": "create", "app-tls_key": "create", "app-api_key": "versions"}
    assert_values_not_in_argv(gcloud, values)


def script_for(make_app, tmp: Path) -> Path:  # type: ignore[no-untyped-def]
    app = make_app(dockerfile="FROM vllm/vllm-openai:v0.6.3\n", size="a10")
    (app / "secrets.env").write_text(EXPORT, encoding="utf-8")
    p = plan_for_with_secrets(app)
    script = tmp / "create-secrets.sh"
    script.write_text(rendered(p, "create-secrets.sh"))
    return script


def plan_for_with_secrets(app: Path):  # type: ignore[no-untyped-def]
    from flymigrate import api

    return api.plan(app, "cloudrun", secrets_paths=[str(app / "secrets.env")])


def test_script_from_the_export_on_stdin(make_app, tmp_path: Path, gcloud: dict[str, str]) -> None:
    script = script_for(make_app, tmp_path)
    env = dict(os.environ, **gcloud)
    p = subprocess.run(["bash", str(script)], input=EXPORT.encode("utf-8"), env=env, capture_output=True,
                       check=False, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    values = parsed(EXPORT)
    assert stored(gcloud) == {f"gpu-app-{n.lower().replace('_', '-')}": v for n, v in values.items()}
    assert_values_not_in_argv(gcloud, values)
    for v in values.values():
        assert v.splitlines()[0] not in (p.stdout + p.stderr).decode()


def test_script_from_a_folder_of_files_and_a_missing_one(make_app, tmp_path: Path, gcloud: dict[str, str]) -> None:
    script = script_for(make_app, tmp_path)
    env = dict(os.environ, **gcloud)
    d = tmp_path / "vals"
    d.mkdir()
    values = parsed(EXPORT)
    values["API_KEY"] += "\n"  # a trailing newline in the file is part of the value
    for n, v in values.items():
        (d / n).write_bytes(v.encode("utf-8"))
    p = subprocess.run(["bash", str(script), str(d)], env=env, capture_output=True, check=False, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    assert stored(gcloud) == {f"gpu-app-{n.lower().replace('_', '-')}": v for n, v in values.items()}
    (d / "TLS_KEY").unlink()
    p = subprocess.run(["bash", str(script), str(d)], env=env, capture_output=True, check=False, timeout=60)
    assert p.returncode == 1 and "missing: TLS_KEY" in p.stderr.decode()


def test_script_reports_a_bad_export_without_values(make_app, tmp_path: Path, gcloud: dict[str, str]) -> None:
    script = script_for(make_app, tmp_path)
    env = dict(os.environ, **gcloud)
    p = subprocess.run(["bash", str(script)], input=b'HF_TOKEN="""never closed sk-CANARY-x\n', env=env,
                       capture_output=True, check=False, timeout=60)
    assert p.returncode != 0
    assert not calls(gcloud) or all(c["argv"][1] == "describe" for c in calls(gcloud))
