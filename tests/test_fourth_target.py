"""Proof that a new target is one module: a fourth target defined only here, registered with
``flymigrate.targets.register``, works through ``plan``, ``compare``, ``apply --yes --skip weights`` and ``status``
(in-process, through ``flymigrate.cli.main``, so the registration is visible) with no edit anywhere else.

"Koyeb-like": a YAML service spec, its own GPU table, its own scaling translation and its own cost rows (one
per-second GPU price, no host charge). The figures are this test's, not a platform's.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from flymigrate import targets
from flymigrate.cli import main
from flymigrate.gpus import FLY_GPU_KINDS
from flymigrate.model import Finding, ScalingPlan
from flymigrate.naming import slug
from flymigrate.targets.base import BaseTarget, CostRow, GeneratedFile, TargetGpu
from flymigrate.targets.common import FLY_IDLE_EQUIVALENT_S, read_fly_scaling

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "acme-chat"
NAME = "koyebish"

# Fly kind -> (gpu id, VRAM GB, $/GPU-second). Test figures.
_GPUS = {"a10": ("L4-24", 24, 0.0002), "l40s": ("L40S-48", 48, 0.0005),
         "a100-pcie-40gb": ("A100-80", 80, 0.0008), "a100-sxm4-80gb": ("A100-80", 80, 0.0008)}
_PRICE = {gid: p for gid, _, p in _GPUS.values()}


def expected_gpu() -> str:
    from flymigrate import api

    return _GPUS[api.load_app(EXAMPLE).gpu.kind][0]


class FourthTarget(BaseTarget):
    name = NAME
    label = "Koyebish Serverless"
    short_label = "Koyebish"
    blurb = "a fourth target that lives in a test module"
    weights_fields = ("from",)

    def map_gpu(self, kind: str, count: int) -> TargetGpu:
        gid, vram, _ = _GPUS[kind]
        if count > 2:
            return TargetGpu(self.name, None, "not offered", None, count, False, True, "at most 2 GPUs per instance")
        return TargetGpu(self.name, gid if count == 1 else f"{gid}x{count}", f"{gid} ({vram} GB)", vram, count,
                         vram >= FLY_GPU_KINDS[kind], False, "the test's table")

    def scaling(self, app: Any, svc: Any, max_guess: int) -> tuple[ScalingPlan, list[Finding]]:
        fs, findings = read_fly_scaling(svc, max_guess)
        mx = fs.max_guess
        mn = mx if fs.always_on else fs.min_running
        idle = None if fs.always_on else FLY_IDLE_EQUIVALENT_S
        conc = fs.hard or fs.soft or 8
        config = (("min", mn), ("max", mx), ("concurrency", conc)) + ((("sleep_after", idle),) if idle else ())
        return ScalingPlan(mn, mx, idle, conc, None, config, ("the test's translation",)), findings

    def weights_destination(self, app_name: str) -> str:
        return f"s3://<BUCKET>/{slug(app_name)}/"

    def secret_ref(self, app_name: str, name: str) -> str:
        return f"{{{{ secret.{name} }}}}"

    def placeholder_url(self, app_name: str) -> str:
        return f"https://{slug(app_name)}-<ORG>.koyebish.test"

    def render(self, dep: Any, *, dockerfile_rel: str | None = None,
               context_rel: str | None = None) -> list[GeneratedFile]:
        sc = dep.scaling
        lines = [f"name: {dep.slug}", f"image: {dep.image_ref}", f"port: {dep.port}",
                 f"gpu: {dep.gpu or 'NONE'}", f"min: {sc.min if sc else 0}", f"max: {sc.max if sc else 1}",
                 f"concurrency: {sc.max_concurrency if sc else 1}", "env:"]
        lines += [f"  {k}: {json.dumps(v)}" for k, v in dep.env]
        lines += [f"  {n}: {r}" for n, r in dep.secret_refs]
        return [GeneratedFile("koyebish.yaml", "\n".join(lines) + "\n")]

    def cost_rows(self, dep: Any, prices: Any) -> list[CostRow]:
        if not dep.gpu:
            return [CostRow(self.name, self.label, "Koyebish", offered=False, reason=dep.gpu_reason or "no GPU")]
        p = _PRICE[dep.gpu.split("x")[0]]
        return [CostRow(self.name, self.label, "Koyebish", price_id=dep.gpu, warm_per_gpu_s=p, ondemand_per_gpu_s=p,
                        basis="assumption", source="tests/test_fourth_target.py", default_idle_s=60.0,
                        platform_start_s=3.0, platform_start_note="platform start used: 3 s (the test's figure)",
                        store_label="the test's bucket", store_mb_per_s=500.0)]

    def deploy_commands(self, dep: Any) -> list[str]:
        return ["koyebish deploy koyebish.yaml"]


@pytest.fixture
def fourth():
    targets.register(NAME, FourthTarget())
    try:
        yield targets.get_target(NAME)
    finally:
        targets.unregister(NAME)


@pytest.fixture
def app_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "app"
    shutil.copytree(EXAMPLE, dst, ignore=shutil.ignore_patterns(".flymigrate", "__pycache__"))
    return dst


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path):
    monkeypatch.setenv("FLYMIGRATE_TODAY", "2026-11-22")
    monkeypatch.setenv("FLYMIGRATE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("NO_COLOR", "1")


def test_registered_everywhere_names_are_listed(fourth):
    assert NAME in targets.names() and targets.LABELS[NAME] == "Koyebish Serverless"


def test_plan(fourth, app_copy, capsys):
    rc, out, err = run(capsys, "plan", str(app_copy), "--to", NAME, "--format", "json")
    assert rc == 0, err
    plan = json.loads(out)
    dep = plan["deployment"]
    assert dep["target"] == NAME and dep["gpu"]["id"] == expected_gpu()
    assert dep["url"].endswith(".koyebish.test")
    assert [s["id"] for s in plan["steps"]] == ["weights", "dockerfile", "secrets", "base_urls", "scaling"]
    rc, out, err = run(capsys, "plan", str(app_copy), "--to", NAME)
    assert rc == 0, err and "Koyebish" in out


def test_compare(fourth, app_copy, capsys):
    rc, out, err = run(capsys, "compare", str(app_copy), "--format", "json")
    assert rc == 0, err
    data = json.loads(out)
    mine = [r for r in data["rows"] if r["target"] == NAME]
    assert len(mine) == 1 and mine[0]["deployed"] and mine[0]["offered"]
    assert mine[0]["gpu"]["name"] == expected_gpu()
    assert mine[0]["price_per_gpu_s"] == pytest.approx(_PRICE[expected_gpu()])
    rc, out, err = run(capsys, "compare", str(app_copy), "--to", NAME, "--format", "json")
    assert rc == 0, err
    data = json.loads(out)
    assert {r["target"] for r in data["rows"]} == {NAME, "fly"}
    assert data["recommendation"]["key"] == NAME


def test_apply_and_status(fourth, app_copy, capsys):
    rc, out, err = run(capsys, "apply", str(app_copy), "--to", NAME, "--yes", "--skip", "weights")
    assert rc == 0, err + out
    gen = list(app_copy.rglob("koyebish.yaml"))
    assert len(gen) == 1
    text = gen[0].read_text()
    assert f"gpu: {expected_gpu()}" in text and "min: 0" in text
    rc, out, err = run(capsys, "status", str(app_copy))
    assert rc == 0, err
    assert NAME in out or "Koyebish" in out


def test_tui_table_lists_it(fourth, app_copy):
    from flymigrate.tui import core

    session = core.load_session(app_copy)
    assert NAME in session.plans
    facts = dict(core.target_facts(session))
    assert facts["GPU"][NAME].startswith(expected_gpu())
    row = session.comparison.row_for(NAME)
    assert facts["Cost (as planned)"][NAME] == f"${row.monthly:,.0f}/month"


def test_gone_after_unregister(app_copy, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["plan", str(app_copy), "--to", NAME])
    assert exc.value.code == 2 and NAME in capsys.readouterr().err


class UnpricedTarget(FourthTarget):
    """The same target without its own cost rows: the default reads a [koyebish] price section there is not."""

    cost_rows = BaseTarget.cost_rows


def test_a_target_without_prices_is_shown_not_priced(app_copy, capsys):
    targets.register(NAME, UnpricedTarget())
    try:
        rc, out, err = run(capsys, "compare", str(app_copy), "--format", "json")
    finally:
        targets.unregister(NAME)
    assert rc == 0, err
    data = json.loads(out)
    mine = [r for r in data["rows"] if r["target"] == NAME]
    assert len(mine) == 1 and not mine[0]["offered"]
    assert "cannot be priced" in mine[0]["reason"] and f"[{NAME}]" in mine[0]["reason"]
    assert data["recommendation"]["key"] not in (None, NAME)  # the other targets are still compared
