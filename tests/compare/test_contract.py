"""Contract: compare prices exactly the Deployment the planner decides, and the TUI shows the same numbers.

For every app in tests/fixtures/apps, examples/ and ../shared/corpus/ (read in place) and every registered target:
the compare row that prices the target's Deployment as planned has the plan JSON's GPU id and count, min / max
instances, concurrency and idle timeout; the steps it says need you are the plan's manual / blocked steps; the
TUI's target table shows that row's cost and the plan's scaling. Apps without a GPU anywhere get ``--gpu a10`` for
both sides (the same input: plan and compare must still agree).

The regression cases of issue 12 follow the corpus walk.
"""

from __future__ import annotations

import functools
import json
from datetime import date
from pathlib import Path

import pytest

from flymigrate import api
from flymigrate.cli import main
from flymigrate.compare import compare_plans, load_prices
from flymigrate.errors import UserError
from flymigrate.planner import build_plan, resolve_gpu
from flymigrate.render import render_json
from flymigrate.targets import get_target, names

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpus"
TODAY = date(2026, 11, 22)


def _apps() -> list[Path]:
    roots = [REPO / "tests" / "fixtures" / "apps", REPO / "examples", CORPUS]
    out: list[Path] = []
    for r in roots:
        if r.is_dir():
            out += sorted(p.parent for p in r.rglob("fly.toml") if ".flymigrate" not in p.parts)
    return out


APPS = _apps()


def _id(p: Path) -> str:
    return f"{p.parent.name}/{p.name}"


@functools.lru_cache(maxsize=None)
def _inputs(app_dir: Path):  # type: ignore[no-untyped-def]
    inp = api.load_inputs(app_dir)
    if resolve_gpu(inp)[0] is None:  # no GPU anywhere: both sides get the same --gpu
        inp = api.load_inputs(app_dir, gpu="a10")
    return inp


@functools.lru_cache(maxsize=None)
def _comparison(app_dir: Path):  # type: ignore[no-untyped-def]
    return compare_plans(_inputs(app_dir), None, prices=load_prices(), today=TODAY)


def _plan_json(app_dir: Path, target: str) -> dict:
    """The plan as `plan --format json` prints it (built here, apart from compare's own planning)."""
    return json.loads(render_json(build_plan(_inputs(app_dir), target)))


def test_the_walk_finds_every_source_of_apps():
    ids = {_id(p) for p in APPS}
    assert any(i.startswith("apps/") for i in ids) and any(i.startswith("examples/") for i in ids)
    if CORPUS.is_dir():
        assert sum(1 for p in APPS if CORPUS in p.parents) == len(list(CORPUS.rglob("fly.toml")))


@pytest.mark.parametrize("target", names())
@pytest.mark.parametrize("app_dir", APPS, ids=_id)
def test_compare_prices_the_plans_deployment(app_dir: Path, target: str):
    try:
        c = _comparison(app_dir)
    except UserError as exc:  # the planner refuses these inputs too: nothing to compare (stated, not hidden)
        with pytest.raises(UserError):
            build_plan(_inputs(app_dir), target)
        pytest.skip(f"plan refuses the inputs: {exc}")
    plan = _plan_json(app_dir, target)
    dep = plan["deployment"]
    sc = dep["scaling"]
    row = c.row_for(target)
    assert row.deployed and row.target == target
    assert row.gpu_name == dep["gpu"]["id"], "GPU id"
    assert row.gpu_count == dep["gpu"]["count"], "GPU count"
    assert row.offered is (dep["gpu"]["id"] is not None)
    assert row.min_instances == sc["min"], "min instances"
    assert row.max_instances == sc["max"], "max instances"
    assert row.concurrency == max(1, sc["max_concurrency"] or sc["target_concurrency"] or 1), "concurrency"
    assert row.idle_timeout_deployed_s == sc["idle_timeout_s"], "idle timeout"
    # the steps that need you are the plan's, not a table of their own
    manual = [s["id"] for s in plan["steps"] if s["status"] in ("manual", "blocked")]
    assert list(row.manual_steps) == manual
    if not row.offered:
        return
    # the numbers really use those counts: the idle timeout in the maths, and the warm instances in the cost
    if sc["idle_timeout_s"] is not None:
        assert row.idle_timeout_s == sc["idle_timeout_s"]
    if sc["min"] >= 1 and row.monthly_warm is not None:
        assert row.warm_instances == sc["min"]
        prices = load_prices()
        floor = sc["min"] * 86400 * row.rate_per_instance_s * prices.hours_per_month / 24
        assert row.monthly_warm == pytest.approx(floor, rel=1e-9) or row.monthly_warm > floor


@pytest.mark.parametrize("app_dir", [p for p in APPS if CORPUS not in p.parents], ids=_id)
def test_tui_shows_compare_and_plan_numbers(app_dir: Path):
    from flymigrate.tui import core

    try:
        session = core.load_session(app_dir)
    except UserError:
        pytest.skip("the planner refuses these inputs")
    c = session.comparison
    if c is None:
        assert resolve_gpu(_inputs(app_dir))[0] is None or api.load_inputs(app_dir).app.gpu is None
        pytest.skip("no GPU: the TUI shows no cost row")
    facts = dict(core.target_facts(session))
    for t, p in session.plans.items():
        row = c.row_for(t)
        dep = json.loads(render_json(p))["deployment"]
        assert (row.gpu_name, row.min_instances, row.max_instances) == (
            dep["gpu"]["id"], dep["scaling"]["min"], dep["scaling"]["max"])
        assert facts["Scaling"][t].startswith(f"{dep['scaling']['min']}-{dep['scaling']['max']}")
        want = f"${row.monthly:,.0f}/month" if row.monthly is not None else "n/a"
        assert facts["Cost (as planned)"][t] == want


# ---------------------------------------------------------------- issue 12 regressions


def _app(tmp_path: Path, body: str, **files: str) -> Path:
    (tmp_path / "fly.toml").write_text(body)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


ALWAYS_ON_L40S = """app = "warm-l40s"
primary_region = "ord"

[http_service]
  internal_port = 8000
  auto_stop_machines = false
  [http_service.concurrency]
    type = "requests"
    soft_limit = 4
    hard_limit = 16

[[vm]]
  size = "l40s"
"""


def _json(capsys, *argv: str) -> tuple[int, dict, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, (json.loads(out) if rc == 0 else {}), err


@pytest.fixture(autouse=True)
def _today(monkeypatch):
    monkeypatch.setenv("FLYMIGRATE_TODAY", "2026-11-22")


def test_always_on_prices_two_warm_instances_at_sixteen(tmp_path, capsys):
    app = _app(tmp_path, ALWAYS_ON_L40S)
    rc, data, err = _json(capsys, "compare", str(app), "--format", "json")
    assert rc == 0, err
    prices = load_prices()
    for t in names():
        rows = [r for r in data["rows"] if r["target"] == t and r["deployed"]]
        assert len(rows) == 1, t
        r = rows[0]
        if not r.get("offered", True):  # the target blocks this app (e.g. an image stack it cannot run): no price
            continue
        assert (r["scaling"]["min"], r["scaling"]["max"], r["scaling"]["concurrency"]) == (2, 2, 16), t
        assert r["warm_instances"] == 2, t
        # two instances all month (the traffic fits in them)
        assert r["monthly_warm"] == pytest.approx(2 * r["rate_per_instance_s"] * 86400 * prices.hours_per_month / 24,
                                                  abs=0.01), t
    # the plan's embedded comparison is the same one
    rc = main(["plan", str(app), "--to", names()[0], "--format", "json"])
    plan = json.loads(capsys.readouterr().out)
    assert rc == 0
    first = next(r for r in plan["compare"]["rows"] if r["target"] == names()[0] and r["deployed"])
    assert (first["scaling"]["min"], first["scaling"]["concurrency"]) == (2, 16)
    assert plan["deployment"]["scaling"]["min"] == 2
    # and the TUI's target table: "2-2" next to the cost of 2 warm instances
    from flymigrate.tui import core

    session = core.load_session(app)
    facts = dict(core.target_facts(session))
    for t in names():
        r = next(x for x in data["rows"] if x["target"] == t and x["deployed"])
        if not r.get("offered", True):
            continue
        assert facts["Scaling"][t].startswith("2-2"), t
        assert facts["Cost (as planned)"][t] == f"${r['monthly_warm']:,.0f}/month", t


def test_weights_size_does_not_change_the_gpu_compare_prices(tmp_path, capsys):
    app = _app(tmp_path, ALWAYS_ON_L40S)
    rc, data, err = _json(capsys, "compare", str(app), "--weights-gb", "10", "--format", "json")
    assert rc == 0, err
    inp = api.load_inputs(app)
    for t in names():
        dep = build_plan(inp, t).deployment
        row = next(r for r in data["rows"] if r["target"] == t and r["deployed"])
        assert row["gpu"]["name"] == dep.gpu, t  # e.g. Cloud Run: the RTX PRO 6000 apply writes, not an L4


def test_cpus_and_memory_are_the_gpu_vms(tmp_path):
    body = """app = "two-vms"
[http_service]
  internal_port = 8000
  processes = ["app"]
[processes]
  app = "python serve.py"
  worker = "python worker.py"
[[vm]]
  size = "performance-8x"
  memory = "32gb"
  processes = ["worker"]
[[vm]]
  gpu_kind = "a10"
  cpus = 4
  memory = "16gb"
  processes = ["app"]
"""
    app = _app(tmp_path, body)
    inp = api.load_inputs(app)
    c = compare_plans(inp, None, prices=load_prices(), today=TODAY)
    billed = []
    for t in names():
        dep = build_plan(inp, t).deployment
        assert (dep.cpus, dep.memory_mb) == (4, 16384)
        row = c.row_for(t)
        text = " ".join(row.notes)
        if "billed with the GPU" in text:  # a target that bills the Deployment's host says what it billed
            assert "host: 4 vCPU + 16 GiB billed" in text, (t, text)
            assert "8 vCPU" not in text and "32 GiB" not in text
            billed.append(t)
    assert billed  # at least one bundled target bills vCPU / memory (Cloud Run: instance-based billing)


def test_gpu_hint_from_readme_is_used_like_plan(capsys):
    app = REPO / "tests" / "fixtures" / "apps" / "nogpu-hint"
    rc, data, err = _json(capsys, "compare", str(app), "--format", "json")
    assert rc == 0, err  # was: exit 2, "fly.toml has no GPU"
    plan = build_plan(api.load_inputs(app), names()[0])
    assert data["gpu"]["kind"] == plan.gpu["fly_kind"] and "--vm-gpu-kind" in data["gpu"]["origin"]
    assert any("confirm with --gpu" in a for a in data["assumptions"])


def test_huge_weights_answer_with_multi_gpu_options(tmp_path, capsys):
    app = _app(tmp_path, ALWAYS_ON_L40S)
    rc, data, err = _json(capsys, "compare", str(app), "--weights-gb", "200", "--format", "json")
    assert rc == 0, err
    rec = data["recommendation"]["text"]
    assert "No target can run this app" not in rec
    assert data["alternatives"], rec
    need = 200 * 1.2
    for a in data["alternatives"]:
        g = a["row"]["gpu"]
        assert g["count"] > 1 and g["vram_gb"] * g["count"] >= need
        assert f"--gpu {a['gpu_arg']}" in rec
    # the options are real: re-planning with the first one fits
    first = data["alternatives"][0]
    rc, again, err = _json(capsys, "compare", str(app), "--weights-gb", "200", "--gpu", first["gpu_arg"],
                           "--to", first["row"]["target"], "--format", "json")
    assert rc == 0, err
    assert again["recommendation"]["key"] is not None


def test_manual_steps_come_from_the_plan_not_the_price_file():
    prices = load_prices()
    for t in names():
        assert "effort" not in prices.data.get(get_target(t).price_key or t, {}), t
    app = REPO / "examples" / "acme-chat"
    inp = api.load_inputs(app)
    c = compare_plans(inp, None, prices=prices, today=TODAY)
    for t in names():
        plan = build_plan(inp, t)
        want = tuple(s.id for s in plan.steps if s.status in ("manual", "blocked"))
        for r in c.rows:
            if r.target == t:
                assert r.manual_steps == want, (t, r.key)
