"""`flymigrate plan` as a user runs it: exit codes, stdout/stderr, read-only, golden reports, the corpus."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import CORPUS, EXAMPLE, FIXTURES, REPO, run_cli

GOLDEN = Path(__file__).parent / "golden"
TARGETS = ("modal", "runpod", "cloudrun")
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
STEP_IDS = ["weights", "dockerfile", "secrets", "base_urls", "scaling"]


def tree_state(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            st = p.stat()
            out[str(p.relative_to(root))] = f"{st.st_mtime_ns}:{hashlib.sha256(p.read_bytes()).hexdigest()}"
        elif p.is_dir():
            out[str(p.relative_to(root)) + "/"] = "dir"
    return out


def example_args(app: Path) -> list[str]:
    return ["--secrets", str(app / "fly-secrets.json"), "--secrets", str(app / "example.env")]


def golden_cases():
    cases = [(d.name, d) for d in sorted(FIXTURES.iterdir()) if d.is_dir()]
    cases.append(("acme-chat", EXAMPLE))
    return [(name, path, t) for name, path in cases for t in TARGETS]


@pytest.mark.parametrize("name,app,target", golden_cases(), ids=lambda v: v if isinstance(v, str) else None)
def test_golden_json(name, app, target, tmp_path):
    work = tmp_path / name
    shutil.copytree(app, work, symlinks=True)
    if name == "acme-chat":
        (work / "example.env").chmod(0o600)
    extra = example_args(work) if name == "acme-chat" else []
    r = run_cli("plan", str(work), "--to", target, "--format", "json", *extra, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["schema"] == "flymigrate/plan/v2"
    assert [s["id"] for s in data["steps"]] == STEP_IDS
    text = json.dumps(data, indent=2, sort_keys=True).replace(str(tmp_path), "<TMP>") + "\n"
    gold = GOLDEN / f"{name}.{target}.json"
    if UPDATE:
        gold.parent.mkdir(exist_ok=True)
        gold.write_text(text)
    assert gold.exists(), f"missing golden file {gold}; run with UPDATE_GOLDEN=1"
    assert text == gold.read_text()


@pytest.mark.parametrize("fmt,ext", [("text", "txt"), ("markdown", "md")])
def test_golden_text_and_markdown(fmt, ext, tmp_path):
    work = tmp_path / "acme-chat"
    shutil.copytree(EXAMPLE, work)
    (work / "example.env").chmod(0o600)
    r = run_cli("plan", "acme-chat", "--to", "modal", "--format", fmt, *example_args(Path("acme-chat")), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "\x1b[" not in r.stdout  # not a TTY: no colour
    gold = GOLDEN / f"acme-chat.modal.{ext}"
    if UPDATE:
        gold.write_text(r.stdout)
    assert r.stdout == gold.read_text()


def test_plan_reads_only_and_writes_out(tmp_path):
    work = tmp_path / "app"
    shutil.copytree(EXAMPLE, work)
    state = tmp_path / "state"
    before = tree_state(work)
    r = run_cli("plan", str(work), "--to", "runpod", "--format", "markdown", "--out", str(tmp_path / "plan.md"),
                env={"FLYMIGRATE_STATE_DIR": str(state)})
    assert r.returncode == 0, r.stderr
    assert tree_state(work) == before
    assert not state.exists()
    assert (tmp_path / "plan.md").read_text() == r.stdout
    assert "Plan written to" in r.stderr


def test_plan_steps_order_and_content():
    r = run_cli("plan", str(EXAMPLE), "--to", "cloudrun", "--format", "json", *example_args(EXAMPLE))
    d = json.loads(r.stdout)
    steps = {s["id"]: s for s in d["steps"]}
    assert d["gpu"]["fly_kind"] == "a100-pcie-40gb" and d["gpu"]["target_gpu"] == "nvidia-l4"  # a 7B model fits in 24 GB (issue 15)
    assert steps["weights"]["status"] == "ready" and "hf://Qwen/Qwen2.5-7B-Instruct" in steps["weights"]["changes"][0]
    assert steps["secrets"]["status"] == "blocked"
    assert {s["name"]: s["has_value"] for s in d["secrets"]} == {"HF_TOKEN": True, "API_KEY": False}
    olds = sorted(h["old"] for h in d["base_urls"])
    assert "https://acme-chat.fly.dev" in olds and "http://acme-chat.flycast" in olds
    assert not any("admin" in o or "status." in o for o in olds)
    assert d["scaling"]["max_concurrency"] == 16 and d["scaling"]["min"] == 0
    assert d["base_url"]["placeholder"] is True
    kinds = {i["kind"] for i in d["dockerfile_issues"]}
    assert {"driver-shim", "files", "ipv6-bind"} <= kinds
    assert "no-cuda" not in kinds  # pip install vllm brings CUDA wheels: no CUDA base image needed


def test_cloudrun_blocks_two_gpus_plainly():
    r = run_cli("plan", str(FIXTURES / "bigvm-multi"), "--to", "cloudrun", "--format", "json")
    d = json.loads(r.stdout)
    assert d["gpu"]["blocked"] is True and d["gpu"]["target_gpu"] is None
    assert next(s for s in d["steps"] if s["id"] == "scaling")["status"] == "blocked"
    assert any(f["code"] == "gpu-not-offered" and f["severity"] == "error" for f in d["findings"])
    r = run_cli("plan", str(FIXTURES / "bigvm-multi"), "--to", "modal", "--format", "json")
    assert json.loads(r.stdout)["gpu"]["target_gpu"] == "A100-80GB:2"


def test_gpu_flag_and_hints():
    r = run_cli("plan", str(FIXTURES / "nogpu-hint"), "--to", "modal", "--format", "json")
    d = json.loads(r.stdout)
    assert d["gpu"]["fly_kind"] == "a100-pcie-40gb" and d["gpu"]["where"] == "README.md:4"
    assert any(f["code"] == "gpu-from-hint" for f in d["findings"])
    r = run_cli("plan", str(FIXTURES / "nogpu-hint"), "--to", "modal", "--gpu", "l40s:2", "--format", "json")
    assert json.loads(r.stdout)["gpu"]["target_gpu"] == "L40S:2"
    r = run_cli("plan", str(FIXTURES / "nogpu-hint"), "--to", "modal", "--gpu", "v100")
    assert r.returncode == 2 and "a100-sxm4-80gb" in r.stderr and "Traceback" not in r.stderr


def test_base_url_flag():
    r = run_cli("plan", str(EXAMPLE), "--to", "modal", "--format", "json", "--base-url", "https://api.acme.ai")
    d = json.loads(r.stdout)
    assert d["base_url"] == {"new": "https://api.acme.ai", "placeholder": False}
    assert {h["new"] for h in d["base_urls"]} <= {"https://api.acme.ai", "api.acme.ai"}
    r = run_cli("plan", str(EXAMPLE), "--to", "modal", "--base-url", "not a url")
    assert r.returncode == 2


@pytest.mark.parametrize("files,needle", [
    ({}, "no fly.toml"),
    ({"fly.toml": 'app = "x"\n[http_service]\ninternal_port = "eighty"\n'}, "fly.toml:3"),
    ({"fly.toml": "app = \n"}, "fly.toml:1"),
    ({"fly.toml": '[[vm]]\nsize = "a10"\nmemory = 0\n'}, "fly.toml:3"),
    ({"fly.toml": '[[mounts]]\nsource = "d"\ndestination = "/"\n'}, "fly.toml:3"),
    ({"fly.toml": '[[vm]]\ngpu_kind = "a100-pcie-80gb"\n'}, "legal kinds"),
])
def test_bad_input_exit_2_no_traceback(tmp_path, files, needle):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    r = run_cli("plan", str(tmp_path), "--to", "modal")
    assert r.returncode == 2
    assert needle in r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_bad_secrets_file_exit_2(tmp_path):
    shutil.copytree(EXAMPLE, tmp_path / "app")
    (tmp_path / "s.bin").write_bytes(b"\x00\x01\x02")
    r = run_cli("plan", str(tmp_path / "app"), "--to", "modal", "--secrets", str(tmp_path / "s.bin"))
    assert r.returncode == 2 and "binary" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("plan", str(tmp_path / "app"), "--to", "modal", "--secrets", str(tmp_path / "nope.env"))
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_usage_errors():
    r = run_cli("plan", str(EXAMPLE))
    assert r.returncode == 2 and "--to" in r.stderr
    r = run_cli("plan", str(EXAMPLE), "--to", "heroku")
    assert r.returncode == 2


def test_secret_values_never_printed(tmp_path):
    shutil.copytree(EXAMPLE, tmp_path / "app")
    canary = "canary-7f3a9c1e-value"
    env = tmp_path / "s.env"
    env.write_text(f"HF_TOKEN={canary}\nAPI_KEY='{canary}-2'\n")
    env.chmod(0o600)
    for fmt in ("text", "markdown", "json"):
        out = tmp_path / f"out.{fmt}"
        r = run_cli("plan", str(tmp_path / "app"), "--to", "runpod", "--secrets", str(env), "--format", fmt,
                    "--out", str(out))
        assert r.returncode == 0
        assert canary not in r.stdout + r.stderr + out.read_text()


def test_color_on_request():
    r = run_cli("plan", str(EXAMPLE), "--to", "modal", "--color", "always")
    assert "\x1b[" in r.stdout


CORPUS_APPS = sorted(d for d in CORPUS.iterdir() if d.is_dir()) if CORPUS.is_dir() else []


@pytest.mark.skipif(not CORPUS_APPS, reason="../shared/corpus is not present next to the repository")
@pytest.mark.parametrize("target", TARGETS)
def test_every_corpus_app_plans_without_traceback(target):
    # one process per target for speed: the CLI's main() with the same error boundary as the console script
    code = (
        "import sys, io, contextlib, json\n"
        "from flymigrate.cli import main\n"
        "res = {}\n"
        "for app in sys.argv[2:]:\n"
        "    out, err = io.StringIO(), io.StringIO()\n"
        "    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):\n"
        "        rc = main(['plan', app, '--to', sys.argv[1], '--format', 'json'])\n"
        "    res[app] = [rc, out.getvalue(), err.getvalue()]\n"
        "print(json.dumps(res))\n"
    )
    r = subprocess.run([sys.executable, "-c", code, target, *map(str, CORPUS_APPS)], capture_output=True, text=True,
                       timeout=300, cwd=REPO)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert len(res) == len(CORPUS_APPS)
    for app, (rc, out, err) in res.items():
        assert rc in (0, 2), (app, rc, err)
        assert "Traceback" not in err and "internal error" not in err, (app, err)
        if rc == 0:
            d = json.loads(out)
            assert [s["id"] for s in d["steps"]] == STEP_IDS
        else:
            assert err.strip(), app
