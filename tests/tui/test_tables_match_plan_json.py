"""The walkthrough's tables are the plan JSON: what the TUI shows is what `flymigrate plan --format json` states.

For every app in tests/fixtures/apps, examples/ and ../shared/corpus/ (read in place) and every target in the
registry, the headless side of the TUI (:mod:`flymigrate.tui.core`, which the pages only render) is compared with
the plan JSON (schema ``flymigrate/plan/v2``, docs/plan-json.md) the CLI prints for the same inputs:

- the target table: GPU (the Deployment's GPU id and count, its VRAM and fit), scaling (min, max, idle timeout,
  concurrency), the steps that need you, the cost and cold start of the compare row that prices the Deployment,
  what is lost;
- each step page: title, status and summary (the plan page), and the plan-based previews: where the weights come
  from and go, the mount path and env, the secrets and their references, every base-URL hit's new text, the
  target's scaling config.

The expected cells are built from the JSON alone, so a value the TUI decided on its own (or read from another
field than the one the JSON carries) fails here. One pilot test at the end shows the widgets display what core
computed.
"""

from __future__ import annotations

import ast
import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from flymigrate.cli import main
from flymigrate.errors import UserError
from flymigrate.targets import names

from .conftest import ROOT, plain, settle

CORPUS = ROOT.parent / "shared" / "corpus"
STEP_SHORT = {"weights": "Weights", "dockerfile": "Dockerfile", "secrets": "Secrets", "base_urls": "Base URLs",
              "scaling": "Scaling"}


def _apps() -> list[Path]:
    out: list[Path] = []
    for root in (ROOT / "tests" / "fixtures" / "apps", ROOT / "examples", CORPUS):
        if root.is_dir():
            out += sorted(p.parent for p in root.rglob("fly.toml") if ".flymigrate" not in p.parts)
    return out


APPS = _apps()


def _id(p: Path) -> str:
    return ("corpus-" if CORPUS in p.parents else "") + p.name


def plan_json(app_dir: Path, target: str) -> dict[str, Any] | None:
    """`flymigrate plan APP --to TARGET --format json`, run as the CLI runs it (None: the CLI refused, exit 2)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            rc = main(["plan", str(app_dir), "--to", target, "--format", "json"])
        except SystemExit as exc:
            rc = int(exc.code or 0)
    if rc == 2:
        return None
    assert rc == 0, err.getvalue()
    return json.loads(out.getvalue())


def neutral(session: Any, text: str) -> str:
    from flymigrate.tui import core

    return core.server_neutral(session, text)


# ---- the expected cells, from the JSON alone -------------------------------------------------------------------


def want_gpu(j: dict[str, Any]) -> str:
    g, dep = j["gpu"], j["deployment"]["gpu"]
    if g is None:  # no GPU in the app: the Deployment has none either
        assert dep is None or dep["id"] is None, dep
        cpu = any(f["code"] == "cpu-only" for f in j["findings"])
        return "CPU only (no GPU)" if cpu else "no GPU in fly.toml"
    fit = "fits" if g["fits"] else ("BLOCKED" if g["blocked"] else "does not fit")
    count = f"{dep['count']} x " if dep["count"] > 1 else ""
    return f"{dep['id'] or 'not offered'}, {count}{g.get('target_vram_gb', '?')} GB, {fit}"


def want_scaling(j: dict[str, Any]) -> str:
    s = j["deployment"]["scaling"]
    if s is None:
        return "n/a"
    idle = f", idle {s['idle_timeout_s']}s" if s["idle_timeout_s"] is not None else ""
    conc = f", {s['max_concurrency']} per instance" if s["max_concurrency"] else ""
    return f"{s['min']}-{s['max']}{idle}{conc}"


def want_manual(j: dict[str, Any]) -> str:
    return ", ".join(STEP_SHORT[s["id"]] for s in j["steps"] if s["status"] in ("manual", "blocked")) or "none"


def priced_row(j: dict[str, Any], target: str) -> dict[str, Any] | None:
    rows = (j.get("compare") or {}).get("rows") or []
    return next((r for r in rows if r["target"] == target and r["deployed"]), None)


def want_cost(row: dict[str, Any] | None) -> str:
    if row is None:
        return "n/a"
    monthly = row["monthly_warm"] if row["warm_instances"] >= 1 else row["monthly_scale_to_zero"]
    return f"${monthly:,.0f}/month" if monthly is not None else "n/a"


def want_cold(row: dict[str, Any] | None) -> str:
    if row is None or row.get("cold_start_s") is None:
        return "n/a"
    return f"~{row['cold_start_s']:.0f}s"


# ---- core level: every app x every registered target ------------------------------------------------------------


@pytest.mark.parametrize("app_dir", APPS, ids=_id)
def test_tui_tables_equal_the_plan_json(app_dir: Path) -> None:
    from flymigrate.tui import core

    try:
        session = core.load_session(app_dir)
    except UserError:
        session = None
    jsons = {t: plan_json(app_dir, t) for t in names()}
    if session is None:  # the TUI refuses exactly what the CLI refuses
        assert all(j is None for j in jsons.values()), "the TUI refused inputs the CLI plans"
        pytest.skip("the planner refuses these inputs")
    assert sorted(session.plans) == sorted(names())  # one column per registered target
    facts = dict(core.target_facts(session))
    shown_cost = "Cost (as planned)" in facts
    for t in names():
        j = jsons[t]
        assert j is not None, f"{t}: the CLI refused inputs the TUI plans"
        assert j["schema"] == "flymigrate/plan/v2"
        where = f"{app_dir.name} -> {t}"
        # the target table
        assert facts["GPU"][t] == want_gpu(j), where
        assert facts["Scaling"][t] == want_scaling(j), where
        assert facts["Steps needing you"][t] == want_manual(j), where
        lost = [neutral(session, c) for s in j["steps"] for c in s["cannot_translate"]]
        assert facts["What is lost"][t] == ("; ".join(lost) or "nothing"), where
        assert shown_cost == (j["compare"] is not None), where  # the cost rows are there when plan prices
        if shown_cost:
            row = priced_row(j, t)
            assert facts["Cost (as planned)"][t] == want_cost(row), where
            assert facts["Cold start"][t] == want_cold(row), where
        # each step page: its heading, and the plan-based preview
        for s in j["steps"]:
            title, status, summary = core.step_heading(session, t, s["id"])
            assert (title, status, summary) == (s["title"], s["status"], neutral(session, s["summary"])), where
            lines = core.step_preview(session, t, s["id"])
            for n in s["needs"]:
                assert f"? {n}" in lines, (where, s["id"], n)
            for c in s["cannot_translate"]:
                assert f"! {c}" in lines, (where, s["id"], c)
        check_previews(session, t, j, where)


def check_previews(session: Any, t: str, j: dict[str, Any], where: str) -> None:
    from flymigrate.tui import core

    w = j["weights"]
    lines = core.step_preview(session, t, "weights")
    assert f"@ from  {w['source'] or '(no source found)'}" in lines, where
    assert f"@ to    {w['destination'] or '(no destination)'}" in lines, where
    mounts = [x for x in lines if x.startswith("  mounted where the app expects it: ")]
    assert mounts == ([f"  mounted where the app expects it: {w['mount_path']}"] if w["mount_path"] else []), where
    assert [x for x in lines if x.startswith("+ env ")] == [f"+ env {k}={v}" for k, v in w["env"].items()], where

    lines = core.step_preview(session, t, "secrets")
    shown = [x[2:] for x in lines if x[:2] in ("+ ", "? ") and "  ->  " in x]
    assert shown == ([f"{s['name']}  ->  {s['target_ref']}" for s in j["secrets"] if s["has_value"]]
                     + [f"{s['name']}  ->  {s['target_ref']}" for s in j["secrets"] if not s["has_value"]]), where

    lines = core.step_preview(session, t, "base_urls")
    added = "\n".join(x for x in lines if x.startswith("+ "))
    for h in j["base_urls"]:
        assert f"@ {h['path']}" in lines, where
        assert (h["new"] or h["old"]) in added, (where, h)  # a hit not rewritten (fdaa:) keeps its text

    cfg = (j["deployment"]["scaling"] or {}).get("config") or {}
    lines = core.step_preview(session, t, "scaling")
    if cfg:
        got = {}
        for x in lines:
            if x.startswith("+ ") and " = " in x:
                k, v = x[2:].split(" = ", 1)
                got[k] = ast.literal_eval(v)
        assert got == cfg, where
        assert j["scaling"]["config"] == cfg, where  # the JSON's own two copies agree


def test_the_app_list_is_the_three_roots():
    names_ = {_id(p) for p in APPS}
    assert "acme-chat" in names_ and any(n.startswith("corpus-") for n in names_) or not CORPUS.is_dir()
    assert len(APPS) >= 10


# ---- the widgets show what core computed (one app, one pilot) ----------------------------------------------------

@pytest.mark.anyio
async def test_the_pages_show_what_core_computed(make_app: Any, workdir: Path) -> None:
    from flymigrate.tui import core
    from flymigrate.tui.widgets import STATUS_LABEL

    app = make_app(target="runpod", secrets=[])  # the same inputs as the plan below (no --secrets)
    async with app.run_test(size=(200, 60)) as pilot:
        await settle(app, pilot)
        session = app.session
        table = plain(app.query_one("#target-facts"))
        flat = " ".join(table.split())
        for label, cells in core.target_facts(session):
            assert label in flat
            for t in names():  # long cells fold over several lines of the table: their first words
                assert (cells[t] if len(cells[t]) < 40 else cells[t][:20]) in flat, (label, t, cells[t])
        j = plan_json(workdir / "acme-chat", "runpod")
        assert j is not None
        assert want_scaling(j) in table and want_gpu(j) in table
        for s in j["steps"]:
            await pilot.press(str([x["id"] for x in j["steps"]].index(s["id"]) + 1))
            await settle(app, pilot)
            head = plain(app.query_one(f"#page-{s['id']} .step-head"))
            title, status, summary = core.step_heading(session, "runpod", s["id"])
            assert title == s["title"] and title in head and summary.split("\n")[0][:60] in " ".join(head.split())
            assert f"[{STATUS_LABEL[status]}]" in head and status == s["status"]
