"""The plan is a promise: for every app (fixtures, examples, the corpus read in place) and every registered target,
``apply --yes --skip weights`` does what the plan said and nothing else.

Checked per app x target, each a separate assertion counted in ``CHECKS`` (printed at the end of the session):
- the files apply changed or created are exactly the Deployment's planned files (``plan.deployment.files``);
  every planned "write" exists, every planned "rewrite" changed;
- every generated file is byte-for-byte the target's render of the plan's Deployment;
- every Fly-only item the plan lists as an automatic Dockerfile/script fix is gone from the written files
  (the same detectors run on the output), and nothing the plan lists as "fix by hand" was claimed as a change;
- no base URL of this app is left in the files the plan listed (when the new URL is known);
- a step the plan calls blocked or manual is not reported done by apply, and a step apply did is one the plan
  called ready.
"""

from __future__ import annotations

import hashlib
import shutil
from collections import Counter
from pathlib import Path

import pytest

from flymigrate import api
from flymigrate.apply import ApplyOptions
from flymigrate.errors import UserError
from flymigrate.targets import get_target, names

from .conftest import EXAMPLE, write_env
from .test_golden import APPS, BASE_URL

CHECKS: Counter[str] = Counter()
FAILED: list[str] = []
OPTS = dict(base_url=BASE_URL, volume_id="vol-test", datacenter="EU-RO-1", bucket="test-bucket",
            image="registry.example.com/app:1")
DOCKER_KINDS = ("driver-shim", "ipv6-bind", "fly-entrypoint-d", "fly-env")


def _tree(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if rel.startswith(".flymigrate/") or rel == ".flymigrate" or not p.is_file() or p.is_symlink():
            continue
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def check(name: str, ok: bool, why: str) -> None:
    CHECKS[name] += 1
    if not ok:
        FAILED.append(f"{name}: {why}")
    assert ok, why


@pytest.fixture(autouse=True)
def _modal_env(modal_fake, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    for k, v in modal_fake.env(home=str(home)).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("FLYMIGRATE_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture(autouse=True)
def _runpod_env(monkeypatch):  # type: ignore[no-untyped-def]
    """RunPod creates the secrets through its API: a loopback fake of it (tests/targets/runpod_api_fake.py)."""
    from targets.runpod_api_fake import RunPodFake

    fake = RunPodFake()
    monkeypatch.setenv("RUNPOD_API_BASE_URL", fake.url)
    monkeypatch.setenv("RUNPOD_API_KEY", fake.key)
    yield
    fake.stop()


@pytest.mark.parametrize("target", names())
@pytest.mark.parametrize("name,app_dir", APPS, ids=[a[0] for a in APPS])
def test_apply_does_what_the_plan_says(name: str, app_dir: Path, target: str, tmp_path: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(app_dir, app, symlinks=True)
    secrets = None
    if app_dir == EXAMPLE:
        write_env(app / "values.env", {"HF_TOKEN": "hf_CONTRACTtok3n_5e1f0c", "API_KEY": "sk-CONTRACT-key-77c2d9"})
        (app / "values.env").chmod(0o600)
        secrets = [str(app / "fly-secrets.json"), str(app / "values.env")]
    before = _tree(app)
    try:
        plan = api.plan(app, target, secrets_paths=secrets, options=api.DeployOptions(**OPTS))
    except UserError as exc:
        pytest.skip(f"the planner refuses this app: {exc}")
    dep = plan.deployment
    opts = ApplyOptions(target=target, yes=True, skip=("weights",), **OPTS)
    result = api.apply(app, target, options=opts, secrets_paths=secrets)
    after = _tree(app)
    changed = {p for p in after if before.get(p) != after[p]}
    planned = {p: (action, step) for p, action, step in dep.files}
    outcomes = {o.step: o.status for o in result.outcomes}
    plan_status = {s.id: s.status for s in plan.steps}

    # steps: apply does no step the plan did not call ready
    for sid, status in outcomes.items():
        if status == "done":
            check("step-done-was-ready", plan_status.get(sid) == "ready",
                  f"{name}/{target}: apply did {sid} but the plan said {plan_status.get(sid)}")
        if plan_status.get(sid) in ("blocked", "manual"):
            check("step-held-not-done", status != "done",
                  f"{name}/{target}: the plan said {sid} is {plan_status[sid]}, apply did it")
    ran = {sid for sid, st in outcomes.items() if st in ("done", "already_done")}
    # files: changed == planned (for the steps that ran)
    for p in sorted(changed):
        check("changed-was-planned", p in planned, f"{name}/{target}: apply changed {p}, which the plan did not list")
    for p, (action, step) in planned.items():
        if step not in ran:
            continue
        if action == "write":
            check("planned-write-exists", p in after, f"{name}/{target}: the plan said write {p}; it is missing")
        else:
            check("planned-rewrite-changed", p in changed,
                  f"{name}/{target}: the plan said {p} changes in step {step}; it did not")
    # generated files are the render of the plan's Deployment
    t = get_target(target)
    df_rel = dep.dockerfile_path
    for g in t.render(dep, dockerfile_rel=df_rel, context_rel="." if df_rel else None):
        if g.step in ran and g.name in after:
            check("generated-is-render", (app / g.name).read_text("utf-8") == g.text,
                  f"{name}/{target}: {g.name} differs from the render of the plan's Deployment")
    # the Dockerfile step's automatic fixes took effect (same detectors on the written files)
    if "dockerfile" in ran:
        listed = [i for i in plan.docker_issues if i.kind in DOCKER_KINDS and i.fix and getattr(i, "auto", True)]
        if listed:
            after_inp = api.load_inputs(app, gpu="l40s" if plan.gpu is None else None)
            from flymigrate.dockerplan import analyze

            left = [i for i in analyze(after_inp.app, after_inp.dockerfile, after_inp.scripts,
                                       uses_gpu=plan.gpu is not None)
                    if i.kind in DOCKER_KINDS and i.where and not i.where.startswith(("fly.toml", "[env]"))
                    and i.where.split(":")[0] in planned]
            check("dockerfile-fixes-took-effect", not left,
                  f"{name}/{target}: the plan said it fixes these, they are still there: "
                  + "; ".join(f"{i.where} {i.kind}" for i in left))
    # base URLs: none of this app's left in the files the plan listed
    if "base_urls" in ran and not dep.url_is_placeholder:
        from flymigrate.scan import find_in_text, read_text_enc

        for p, (_a, step) in planned.items():
            if step not in ("base_urls", "dockerfile") or p not in after:
                continue
            got = read_text_enc(app / p)
            if got is None:
                continue
            hits, _ = find_in_text(got[0], plan.app, p)
            left = [h for h in hits if h.kind != "fdaa"]
            check("urls-rewritten", not left, f"{name}/{target}: {p} still has {[h.old for h in left][:3]}")
            # the client-auth lines hold: every request to the new URL in these files now sends the target's header
            # (the same analysis, run on the written file with the new URL in place of the Fly one)
            if dep.client_auth:
                from flymigrate.model import BaseUrlHit
                from flymigrate.requestauth import analyze

                text = got[0]
                host = BASE_URL.split("://", 1)[1]
                new_hits = [BaseUrlHit(p, i + 1, col + 1, host, "fly.dev")
                            for i, ln in enumerate(text.split("\n")) for col in _finds(ln, host)]
                if new_hits:
                    missing = analyze(text, p, new_hits, dep.client_auth, dep.client_env_renames).changes
                    check("client-auth-holds", not missing, f"{name}/{target}: {p} still has requests without "
                          f"the target's auth: {[s.plan_line for s in missing][:3]}")


def _finds(line: str, needle: str) -> list[int]:
    out, i = [], line.find(needle)
    while i != -1:
        out.append(i)
        i = line.find(needle, i + 1)
    return out
