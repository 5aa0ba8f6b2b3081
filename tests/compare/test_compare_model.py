"""Unit tests of the cost model against hand-computed cases (flymigrate/compare.py)."""

from __future__ import annotations

import math
from datetime import date

import pytest

from flymigrate import compare as cmp
from flymigrate.compare import Traffic, compare_app, load_prices, scale_to_zero_day, solve_break_even, warm_day
from flymigrate.errors import UserError
from flymigrate.planner import PlanInputs
from flymigrate.model import Build, Concurrency, FlyApp, GpuSpec, Service, Vm

TODAY = date(2026, 11, 22)
HOURS_PER_MONTH = 730.0
MONTH_S = HOURS_PER_MONTH * 3600


@pytest.fixture(scope="module")
def prices():
    return load_prices()


def resolve(app, traffic, prices, weights=None):
    """compare's inputs for ``app``: the plans' Deployments and the traffic derived from them."""
    inp = PlanInputs(app=app)
    cmp.inputs.resolve_gpu_spec(inp)
    return cmp.resolve_inputs(inp, cmp.plan_targets(inp), weights, traffic, prices)


def make_app(kind="a10", count=1, auto_stop="stop", min_running=0, concurrency=None, cpus=8, memory_mb=32768,
             service=True):
    svcs = (Service("http_service", 8000, auto_stop=auto_stop, auto_stop_set=True, min_machines_running=min_running,
                    concurrency=concurrency),) if service else ()
    # an image whose command flymigrate knows (vLLM >= 0.7 answers /ping): every target can run it, so the prices
    # compared are the targets', not a blocker's
    return FlyApp("fly.toml", app="t", vms=(Vm(cpus=cpus, memory_mb=memory_mb, gpu=GpuSpec(kind, count)),),
                  services=svcs, build=Build(image="vllm/vllm-openai:v0.8.5"))


# ---------------------------------------------------------------- the formulas, by hand


def test_single_request_pays_cold_start_request_and_idle_tail():
    # one request a day: 30 s cold start + 10 s of work + 5 s idle timeout = 45 s billed, one cold start
    billed, colds = scale_to_zero_day(1, 10, 8, 1, idle_s=5, cold_start_s=30)
    assert colds == 1.0
    assert billed == pytest.approx(45.0, abs=0.02)


def test_scale_to_zero_hand_computed():
    # R=100 in 10 h, S=2, T=60, cold 20: lam=1/360, hold=62, p = e^(-62/360) = 0.841792
    # up = 100 * (1 - p) * 360 = 5695.485 ; colds = 100 p / (1 + p * 20/360) = 84.1792 / 1.046766 = 80.4184
    billed, colds = scale_to_zero_day(100, 2, 10, 1, idle_s=60, cold_start_s=20)
    assert colds == pytest.approx(80.4184, abs=1e-3)
    assert billed == pytest.approx(5695.485 + 20 * 80.4184, abs=0.02)


def test_busy_all_day_is_capped_at_always_on():
    billed, colds = scale_to_zero_day(43200, 1, 24, 1, idle_s=60, cold_start_s=30)
    assert colds == pytest.approx(0.0, abs=1e-6)
    assert billed == 86400.0


def test_more_work_than_one_instance_bills_the_work():
    # 3 instances' worth of work in a 24 h window: billed = work (arrivals never leave a gap)
    billed, _ = scale_to_zero_day(3 * 86400, 1, 24, 1, idle_s=5, cold_start_s=10)
    assert billed == pytest.approx(3 * 86400)


def test_warm_capacity_and_overflow():
    assert warm_day(1000, 2, 24, 1, 60, 30, warm=2) == (2 * 86400.0, 0.0)
    # 10 h of work in an 8 h window with 1 warm: 2 h overflow + one extra instance (cold 30 s + idle 60 s)
    on, over = warm_day(18000, 2, 8, 1, 60, 30, warm=1)
    assert on == 86400.0
    assert over == pytest.approx(2 * 3600 + 90)


def test_break_even_solver_linear_case_runpod_ratio():
    # without start-up or idle overheads, flex vs active breaks even at active/flex = 0.00013/0.00019 = 68.42%
    flex, active = 0.00019, 0.00013
    u = solve_break_even(lambda u: u * 86400 * flex - 86400 * active, 1.0)
    assert u == pytest.approx(active / flex, abs=1e-6)
    assert solve_break_even(lambda u: u - 2.0, 1.0) is None


# ---------------------------------------------------------------- data-driven figures


def test_fly_reference_monthly_is_the_old_price_times_730h(prices):
    c = compare_app(make_app("a10"), 14_000_000_000, Traffic(200, 2, 8), prices=prices, today=TODAY)
    assert c.row("fly").monthly_warm == pytest.approx(0.75 * 730)  # $547.50
    c = compare_app(make_app("a100-sxm4-80gb", 2), None, Traffic(200, 2, 8), prices=prices, today=TODAY)
    assert c.row("fly").monthly_warm == pytest.approx(2 * 1.50 * 730)  # $2,190


def test_runpod_active_one_worker(prices):
    c = compare_app(make_app("a10"), 14_000_000_000, Traffic(200, 2, 8), prices=prices, today=TODAY)
    r = c.row("runpod-active")
    assert r.gpu_name == "AMPERE_24"
    assert r.monthly_warm == pytest.approx(0.00013 * MONTH_S)  # $341.64
    assert c.row("runpod-flex").price_per_gpu_s == pytest.approx(0.00019)


def test_cloud_run_l4_matches_the_worked_example(prices):
    # research (braindrip, 3rd-party): "~$1.40/active-hour: roughly $0.67 GPU + ~$0.75 for 8 vCPU / 32 GiB";
    # pinned awake 24/7 "~$800-1,000/month". Our rate: 0.67 + 8 x 0.000018 x 3600 + 32 x 0.000002 x 3600
    app = make_app("a10", auto_stop="off", min_running=1)
    c = compare_app(app, 14_000_000_000, Traffic(200, 2, 8), prices=prices, today=TODAY)
    r = c.row("cloudrun")
    assert r.gpu_name == "nvidia-l4"
    assert r.rate_per_instance_s * 3600 == pytest.approx(0.67 + 0.5184 + 0.2304)  # $1.4188/h
    assert r.host_per_s * 3600 == pytest.approx(0.7488)  # the "~$0.75" part
    # auto_stop off, no volume: the plan keeps minScale = maxScale = 2 instances, so 2 are priced
    assert (r.min_instances, r.max_instances, r.warm_instances) == (2, 2, 2)
    assert r.monthly_warm == pytest.approx(2 * 1.4188 * 730)  # $1,035.72 each: 3.6% above the blog's upper bound


def test_cloud_run_raises_cpu_and_memory_to_the_gpu_minimum(prices):
    app = make_app("a10", cpus=2, memory_mb=4096)
    r = compare_app(app, None, Traffic(200, 2, 8), prices=prices, today=TODAY).row("cloudrun")
    assert r.host_per_s == pytest.approx(4 * 0.000018 + 16 * 0.000002)  # L4 minimum: 4 vCPU / 16 GiB


# worked by hand: 200 req/day over 8 h (lam = 200/28800 /s), hold = 2 s + 300 s idle, 29 s cold start,
# rate = 1.10/3600 + 1 core x 0.0000131 + 16 GiB x 0.00000222 per s -> (up + colds x 29) x rate x 730/24
HAND_MODAL_MONTHLY = 279.65


def test_modal_monthly_scale_to_zero_by_hand(prices):
    # a10 on Modal: GPU 1.10/h + host 1 core x 0.0000131 + 16 GiB x 0.00000222 (recollection figures)
    rate = 1.10 / 3600 + 0.0000131 + 16 * 0.00000222
    cold = 5 + 10 + 14e9 / 1000e6  # platform + engine init + 14 GB from a Volume at 1 GB/s = 29 s
    c = compare_app(make_app("a10"), 14_000_000_000, Traffic(200, 2, 8), prices=prices, today=TODAY)
    r = c.row("modal")
    assert r.cold_start_s == pytest.approx(29.0)
    # the idle timeout is the one flymigrate configures (scaledown_window 300 s), not Modal's 60 s default
    assert r.idle_timeout_s == 300
    lam = 200 / (8 * 3600)
    up = 200 * (1 - math.exp(-lam * 302)) / lam
    p = math.exp(-lam * 302)
    colds = 200 * p / (1 + p * lam * cold)
    assert r.cold_starts_per_day == pytest.approx(colds)
    assert r.monthly_scale_to_zero == pytest.approx((up + colds * cold) * rate * 730 / 24)
    assert r.monthly_scale_to_zero == pytest.approx(HAND_MODAL_MONTHLY, abs=0.01)


def test_cold_start_uses_each_platforms_weight_store(prices):
    c = compare_app(make_app("a10"), 20_000_000_000, Traffic(200, 2, 8), prices=prices, today=TODAY)
    assert c.row("modal").cold_start_s == pytest.approx(5 + 10 + 20)  # 1000 MB/s
    assert c.row("runpod-flex").cold_start_s == pytest.approx(7 + 10 + 100)  # 200 MB/s, measured 7 s start used
    assert c.row("cloudrun").cold_start_s == pytest.approx(5 + 10 + 80)  # 250 MB/s


def test_fit_is_weights_times_1_2_against_vram(prices):
    c = compare_app(make_app("a10"), 19_000_000_000, Traffic(200, 2, 8), prices=prices, today=TODAY)
    assert c.row("modal").fits == "yes"  # 22.8 GB <= 24
    c = compare_app(make_app("a10"), 21_000_000_000, Traffic(200, 2, 8), prices=prices, today=TODAY)
    assert c.row("modal").fits == "no"  # 25.2 GB > 24
    assert c.recommendation.key is None
    # answered with the larger GPUs that fit (each target's map_gpu), priced for the same traffic
    assert "No target can run this app" not in c.recommendation.text and "--gpu " in c.recommendation.text
    assert c.alternatives and all(a.row.vram_gb * a.row.gpu_count >= 25.2 for a in c.alternatives)
    assert [a.monthly for a in c.alternatives] == sorted(a.monthly for a in c.alternatives)
    c = compare_app(make_app("a10"), None, Traffic(200, 2, 8), prices=prices, today=TODAY)
    assert c.row("modal").fits == "likely"


def test_cloud_run_prices_the_gpu_the_plan_writes_even_when_l4_would_fit(prices):
    # issue 12: `compare --weights-gb 10` priced an L4 while apply writes the GPU the plan chose. Whatever the
    # target decides (an L4, the RTX PRO 6000, or BLOCKED because the image's stack is unknown), compare prices it
    from flymigrate.planner import PlanInputs, build_plan

    app = make_app("l40s")
    dep = build_plan(PlanInputs(app=app), "cloudrun").deployment
    for gb in (10_000_000_000, 30_000_000_000):
        r = compare_app(app, gb, Traffic(200, 2, 8), prices=prices, today=TODAY).row("cloudrun")
        assert r.gpu_name == dep.gpu and r.offered is (dep.gpu is not None and not dep.blockers)


def test_cloud_run_two_gpus_not_offered(prices):
    c = compare_app(make_app("a100-sxm4-80gb", 2), None, Traffic(200, 2, 8), prices=prices, today=TODAY)
    r = c.row("cloudrun")
    assert not r.offered and "one GPU per instance" in r.reason
    assert r.monthly_scale_to_zero is None and r.monthly_warm is None
    assert c.recommendation.key != "cloudrun"


# ---------------------------------------------------------------- traffic defaults from fly.toml


def test_defaults_for_a_scale_to_zero_app(prices):
    inp = resolve(make_app(), Traffic(), prices)
    assert (inp.requests_per_day, inp.seconds_per_request, inp.busy_hours, inp.concurrency, inp.warm_instances) == (
        200.0, 2.0, 8.0, 20, 0)  # no concurrency in fly.toml: Fly's default soft_limit 20, as the plans translate
    assert inp.given == ()
    assert any("scaled to zero on Fly" in a for a in inp.assumptions)
    assert any("Fly applied its default" in a for a in inp.assumptions)


def test_defaults_for_a_warm_app_with_concurrency(prices):
    app = make_app("l40s", auto_stop="off", min_running=2, concurrency=Concurrency("requests", 8, 12))
    inp = resolve(app, Traffic(seconds_per_request=4), prices)
    assert inp.warm_instances == 2 and inp.concurrency == 8 and inp.busy_hours == 24.0
    # 25% of 2 warm instances x 24 h x 3600 s x 8 at a time / 4 s per request
    assert inp.requests_per_day == pytest.approx(0.25 * 2 * 24 * 3600 * 8 / 4)
    assert inp.given == ("seconds_per_request",)


def test_min_machines_running_keeps_warm_capacity(prices):
    inp = resolve(make_app(auto_stop="stop", min_running=3), Traffic(), prices)
    assert inp.warm_instances == 3
    assert {p.min_instances for p in inp.planned} == {3}
    # no service: one always-on worker, and the plans keep min = max = 2 (fly deploy creates 2 machines)
    inp = resolve(make_app(service=False), Traffic(), prices)
    assert inp.warm_instances == 2 and {(p.min_instances, p.max_instances) for p in inp.planned} == {(2, 2)}


def test_warm_mode_compares_warm_costs(prices):
    c = compare_app(make_app("a10", auto_stop="off", min_running=1), 14_000_000_000, Traffic(2000, 2, 24),
                    prices=prices, today=TODAY)
    assert c.recommendation.mode == "warm"
    # RunPod active (0.00013/s) is the cheapest warm GPU; the plan keeps workersMin = 2: 2 x $341.64
    assert c.recommendation.key == "runpod-active"
    assert c.recommendation.monthly == pytest.approx(2 * 341.64, abs=0.01)


def test_bad_inputs_are_user_errors(prices):
    with pytest.raises(UserError, match="busy-hours"):
        resolve(make_app(), Traffic(busy_hours=25), prices)
    with pytest.raises(UserError, match="seconds-per-request"):
        resolve(make_app(), Traffic(seconds_per_request=0), prices)
    with pytest.raises(UserError, match="no GPU"):
        compare_app(FlyApp("fly.toml", app="x"), None, Traffic(), prices=prices)


# ---------------------------------------------------------------- recommendation and sensitivity


def test_recommendation_and_sensitivity_flip_points_are_real(prices):
    app = make_app("a10")
    c = compare_app(app, 14_000_000_000, Traffic(2000, 2, 24), prices=prices, today=TODAY)
    assert c.recommendation.key == "runpod-active"
    assert c.recommendation.monthly == pytest.approx(0.00013 * MONTH_S)
    sens = {s.input: s for s in c.sensitivity}
    down = sens["requests_per_day"].down
    assert down is not None and down[1] == "runpod-flex"
    thr = down[0]
    assert 100 < thr < 1000  # with the 300 s idleTimeout flymigrate configures, active wins early
    # the reported threshold really flips the answer, and just above it does not
    below = compare_app(app, 14_000_000_000, Traffic(thr * 0.99, 2, 24), prices=prices, today=TODAY)
    above = compare_app(app, 14_000_000_000, Traffic(thr * 1.01, 2, 24), prices=prices, today=TODAY)
    assert below.recommendation.key == "runpod-flex"
    assert above.recommendation.key == "runpod-active"
    # ... and agrees with the independently solved flex-vs-active break-even utilisation
    be = c.row("runpod-flex").break_even_own
    assert be is not None and be * 86400 / 2 == pytest.approx(thr, rel=0.005)
    price = sens["price"].up
    assert price is not None and 1.05 < price[0] < 1.5 and price[1] == "runpod-flex"


def test_scale_to_zero_recommendation_with_few_requests(prices):
    c = compare_app(make_app("a10"), 14_000_000_000, Traffic(200, 2, 8), prices=prices, today=TODAY)
    assert c.recommendation.key == "runpod-flex" and c.recommendation.mode == "scale-to-zero"
    assert "cold start" in c.recommendation.text
    # 8 busy hours: an always-on worker (24 h) never beats flex within one instance's capacity
    assert c.row("runpod-flex").break_even_own is None


def test_targets_filter(prices):
    c = compare_app(make_app("a10"), 14_000_000_000, Traffic(200, 2, 8), targets=["modal"], prices=prices,
                    today=TODAY)
    assert [r.key for r in c.rows] == ["modal", "fly"]
    assert c.recommendation.key == "modal"


def test_json_schema_and_determinism(prices):
    a = compare_app(make_app("l40s"), None, Traffic(), prices=prices, today=TODAY).to_json()
    b = compare_app(make_app("l40s"), None, Traffic(), prices=prices, today=TODAY).to_json()
    assert a == b
    assert a["schema"] == "flymigrate/compare/v2"
    assert [r["key"] for r in a["rows"]] == ["modal", "runpod-flex", "runpod-active", "cloudrun", "fly"]
    assert a["data"]["date"] == "2026-11-22" and a["data"]["stale"] is False


def test_render_for_embedding(prices):
    c = compare_app(make_app("a10"), 14_000_000_000, Traffic(200, 2, 8), prices=prices, today=TODAY)
    full, short = cmp.render(c, "text"), cmp.render(c, "text", details=False)
    assert "Details:" in full and "Details:" not in short and short in full.split("\nDetails:")[0] + "\n"
    md = cmp.render(c, "markdown", details=False, heading_level=3)
    assert md.startswith("### Target comparison for t:") and "<details>" not in md
    with pytest.raises(UserError, match="unknown format"):
        cmp.render(c, "yaml")


def test_a_blocked_deployment_is_priced_but_never_recommended(prices):
    """No image flymigrate can start on RunPod (its command is unknown, so no /ping adapter): the RunPod rows carry
    the plan's blocker and the recommendation is another target, even though RunPod active is the cheapest."""
    from dataclasses import replace

    app = replace(make_app("a10"), build=Build())
    c = compare_app(app, 14_000_000_000, Traffic(2000, 2, 24), prices=prices, today=TODAY)
    rp = [r for r in c.rows if r.target == "runpod"]
    assert rp and all("GET /ping" in r.blocked for r in rp)
    assert c.recommendation.key is not None and not c.recommendation.key.startswith("runpod")
    assert all(r["blocked"] for r in c.to_json()["rows"] if r["target"] == "runpod")
def test_every_traffic_input_given_is_used_and_named_in_order(prices):
    app = make_app("l40s", auto_stop="off", min_running=2, concurrency=Concurrency("requests", 8, 12))
    inp = resolve(app, Traffic(requests_per_day=5000, seconds_per_request=3, busy_hours=10, concurrency=4), prices)
    assert (inp.requests_per_day, inp.seconds_per_request, inp.busy_hours, inp.concurrency) == (5000.0, 3.0, 10.0, 4)
    assert inp.given == ("concurrency", "seconds_per_request", "busy_hours", "requests_per_day")
    assert not any(a.startswith(("requests/day", "busy hours/day", "seconds/request", "concurrency "))
                   for a in inp.assumptions)
