"""The price data file: complete for every Fly GPU kind x target, dated, and the staleness warning."""

from __future__ import annotations

from datetime import date

import pytest

from flymigrate import gpus
from flymigrate.compare import Traffic, compare_app, load_prices, render, resolve_today
from flymigrate.errors import UserError
from flymigrate.model import FlyApp, GpuSpec, Service, Vm

COUNTS = (1, 2, 4, 8)


@pytest.fixture(scope="module")
def prices():
    return load_prices()


def app_with(kind: str, count: int) -> FlyApp:
    return FlyApp("fly.toml", app="t", vms=(Vm(gpu=GpuSpec(kind, count)),),
                  services=(Service("http_service", 8000, auto_stop="stop", auto_stop_set=True),))


@pytest.mark.parametrize("kind", sorted(gpus.FLY_GPU_KINDS))
@pytest.mark.parametrize("count", COUNTS)
def test_every_kind_and_target_has_a_price_or_says_not_offered(prices, kind, count):
    c = compare_app(app_with(kind, count), None, Traffic(500, 3, 10), prices=prices, today=date(2026, 11, 22))
    assert [r.key for r in c.rows] == ["modal", "runpod-flex", "runpod-active", "cloudrun", "fly"]
    for r in c.rows:
        if r.offered:
            assert r.price_per_gpu_s is not None and r.price_per_gpu_s > 0, (kind, count, r.key)
            assert r.price_source and r.price_basis, (kind, count, r.key)
            cost = r.monthly_warm if r.key in ("runpod-active", "fly") else r.monthly_scale_to_zero
            assert cost is not None and cost > 0, (kind, count, r.key)
        else:
            assert r.reason, (kind, count, r.key)
            assert "not offered" in render(c, "text")
    # the facts we know: Cloud Run has one GPU per instance, Modal at most 4 x A10
    if count != 1:  # one GPU per instance (with one, Cloud Run may still block on the image's stack)
        assert not c.row("cloudrun").offered
    if kind == "a10":
        assert c.row("modal").offered is (count <= 4)


@pytest.mark.parametrize("kind", sorted(gpus.FLY_GPU_KINDS))
def test_data_file_has_an_entry_for_every_mapped_gpu(prices, kind):
    assert kind in prices.platform("fly")["gpus"]
    for target in ("modal", "runpod", "cloudrun"):
        tg = gpus.map_gpu(target, kind, 1)
        assert (tg.name or "").split(":")[0] in prices.platform(target)["gpus"], (target, kind)
        for alt in tg.alternatives:
            assert alt in prices.platform(target)["gpus"], (target, kind, alt)


def test_every_figure_is_dated_and_sourced(prices):
    def walk(node, path):
        if isinstance(node, dict):
            if "value" in node or "per_gpu_hour" in node or "flex_per_gpu_s" in node or "value_s" in node \
                    or "mb_per_s" in node or "per_vcpu_s" in node or "per_core_s" in node or "default_s" in node:
                assert "source" in node and "read_on" in node, path
                assert isinstance(node["read_on"], date), path
            for k, v in node.items():
                walk(v, f"{path}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]")

    walk(prices.data, "prices")
    assert prices.data_date == date(2026, 11, 22)
    for target in ("modal", "runpod", "cloudrun", "fly"):
        used = [f for f in prices.platform(target)["platform_start"] if f.get("used")]
        assert len(used) == 1, target  # where sources disagree, exactly one is used


def test_staleness_warning_after_90_days(prices, monkeypatch):
    app = app_with("a10", 1)
    monkeypatch.setenv("FLYMIGRATE_TODAY", "2027-02-20")  # 90 days after 2026-11-22: not stale yet
    c = compare_app(app, None, Traffic(), prices=prices)
    assert c.age_days == 90 and not c.stale
    assert not any("days ago" in w for w in c.warnings)
    monkeypatch.setenv("FLYMIGRATE_TODAY", "2027-02-21")  # 91 days
    c = compare_app(app, None, Traffic(), prices=prices)
    assert c.age_days == 91 and c.stale
    assert any("from 2026-11-22, 91 days ago (over 90)" in w for w in c.warnings)
    assert "WARNING: The price data is from 2026-11-22, 91 days ago" in render(c, "text")
    assert c.to_json()["data"]["stale"] is True


def test_today_env_must_be_a_date(monkeypatch):
    monkeypatch.setenv("FLYMIGRATE_TODAY", "yesterday")
    with pytest.raises(UserError, match="FLYMIGRATE_TODAY"):
        resolve_today()
    assert resolve_today(date(2030, 1, 1)) == date(2030, 1, 1)


def test_bad_price_file_is_a_user_error(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text("[meta]\nschema = 'other'\n")
    with pytest.raises(UserError, match="schema"):
        load_prices(p)
    p.write_text("not toml = [")
    with pytest.raises(UserError, match="not valid TOML"):
        load_prices(p)
    with pytest.raises(UserError, match="cannot read"):
        load_prices(tmp_path / "missing.toml")
