"""The sensitivity's fast path decides exactly what the full rows decide.

``rows.best_key`` prices each option from the numbers only (no Row, no texts, no break-even searches) and
``rows._probe`` copies the Inputs without re-running ``__init__``: the sensitivity asks ~300 times per comparison,
which ``plan`` embeds. Here every probe the sensitivity can make is decided both ways and must agree, and the
whole sensitivity computed with the full rows must equal the fast one.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from flymigrate.api import load_inputs
from flymigrate.compare import Traffic, compare_plans, load_prices
from flymigrate.compare import rows as R

HERE = Path(__file__).parent
REPO = HERE.parent.parent

# (app, weights GB, traffic): the compare goldens' cases (warm, scale-to-zero, multi-GPU, worker) and the example
CASES = {
    "ondemand-a10": (HERE / "fixtures" / "ondemand-a10", 14.5, Traffic()),
    "steady-l40s": (HERE / "fixtures" / "steady-l40s", None, Traffic(seconds_per_request=4)),
    "multi-a100-80": (HERE / "fixtures" / "multi-a100-80", 120, Traffic(requests_per_day=3000,
                                                                          seconds_per_request=6, busy_hours=12)),
    "worker-a100-40": (HERE / "fixtures" / "worker-a100-40", None, Traffic()),
    "acme-chat": (REPO / "examples" / "acme-chat", None, Traffic()),
}


def _full_best(inp, prices):  # type: ignore[no-untyped-def]
    """The recommendation as the full rows give it (what best_key stands in for)."""
    opts = R.options(R.build_rows(inp, prices, with_break_even=False))
    return opts[0].key if opts else None


@pytest.fixture(scope="module")
def prices():  # type: ignore[no-untyped-def]
    return load_prices()


def _comparison(name: str, prices):  # type: ignore[no-untyped-def]
    app, gb, traffic = CASES[name]
    return compare_plans(load_inputs(app), None if gb is None else int(gb * 1e9), traffic, prices=prices)


def _probes(inp):  # type: ignore[no-untyped-def]
    """The inputs the sensitivity varies, over its whole range of factors, plus each row's price."""
    factors = R._FACTORS_UP + R._FACTORS_DOWN
    P = max(1, inp.concurrency)
    for f in factors:
        yield replace(inp, requests_per_day=inp.requests_per_day * f)
        yield replace(inp, seconds_per_request=inp.seconds_per_request * f)
        yield replace(inp, busy_hours=min(24.0, inp.busy_hours * f))
        yield replace(inp, concurrency_override=max(1, round(P * f)))
        yield replace(inp, load_bytes=inp.load_bytes * f,
                      weights_bytes=None if inp.weights_bytes is None else int(inp.weights_bytes * f))
        for pl in inp.planned:
            for cr in pl.costs:
                yield replace(inp, price_scale=((cr.key, f),))


@pytest.mark.parametrize("name", sorted(CASES))
def test_best_key_agrees_with_the_full_rows_on_every_probe(name, prices):
    inp = _comparison(name, prices).inputs
    seen = set()
    n = 0
    for probe in _probes(inp):
        full = _full_best(probe, prices)
        assert R.best_key(probe, prices) == full, probe
        seen.add(full)
        n += 1
    assert n > 100
    if name in ("multi-a100-80", "ondemand-a10"):
        assert len(seen) > 1, "the probes should cross at least one change of winner"


@pytest.mark.parametrize("name", sorted(CASES))
def test_sensitivity_is_the_same_with_the_full_rows(name, prices, monkeypatch):
    c = _comparison(name, prices)
    if c.recommendation.key is None:
        pytest.skip("no recommendation, no sensitivity")
    fast = R.sensitivity(c.inputs, prices, c.recommendation.key, list(c.rows))
    monkeypatch.setattr(R, "best_key", _full_best)
    monkeypatch.setattr(R, "_probe", replace)
    slow = R.sensitivity(c.inputs, prices, c.recommendation.key, list(c.rows))
    assert fast == slow
    assert fast == c.sensitivity


def test_probe_is_replace(prices):
    inp = _comparison("steady-l40s", prices).inputs
    for change in ({"requests_per_day": 7.5}, {"price_scale": (("modal", 1.3),)}, {"concurrency_override": 4},
                   {"load_bytes": 1e9, "weights_bytes": 10**9}):
        probe = R._probe(inp, **change)
        assert probe == replace(inp, **change)
        assert type(probe) is type(inp)
        assert inp != probe  # the original is untouched
