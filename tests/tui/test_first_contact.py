"""Issue 16 in the walkthrough: what a new user sees must not mislead (statuses, costs, advice, markup)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from .conftest import SIZE, plain, settle

pytestmark = pytest.mark.anyio


async def test_a_blocked_step_offers_no_run(make_app: Any) -> None:
    app = make_app()  # API_KEY has no value in the export: the secrets step is blocked
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("3")
        await settle(app, pilot)
        await pilot.press("r")  # r explains what is missing instead of asking "Run (y)?"
        await settle(app, pilot)
        assert type(app.screen).__name__ == "ErrorScreen"
        assert "API_KEY" in plain(app.screen.query_one("#error-message"))
        assert not app.screen.query("#confirm-yes")


async def test_error_text_with_brackets_is_not_markup(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.show_error("Weights: not run", "no such volume [acme_models] in app [acme-chat]", "see [b]this[/b]")
        await settle(app, pilot)
        assert "[acme_models]" in plain(app.screen.query_one("#error-message"))
        assert "[b]this[/b]" in plain(app.screen.query_one("#error-hint"))


async def test_always_on_app_shows_the_warm_cost_and_no_vllm_advice_for_whisper(
        make_app: Any, workdir: Path) -> None:
    corpus = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "fly-apps__cog-whisper"
    if not corpus.is_dir():
        pytest.skip("../shared/corpus is not present next to the repository")
    shutil.copytree(corpus, workdir / "whisper")  # fly.toml: min_machines_running = 1, no vLLM anywhere
    app = make_app(target="runpod", app_dir="whisper", secrets=[])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("t")
        await settle(app, pilot)
        facts = plain(app.query_one("#target-facts"))
        # the cost of the deployment as planned: min_machines_running = 1 keeps an instance warm, so the row is
        # the warm cost (compare's row for the Deployment), never the scale-to-zero price alone
        from flymigrate.tui import core

        session = core.load_session(workdir / "whisper")
        cost = dict(core.target_facts(session))["Cost (as planned)"]["runpod"]
        row = session.comparison.row_for("runpod") if session.comparison is not None else None
        assert "Cost (as planned)" in facts and row is not None and row.warm_instances >= 1
        assert cost == f"${row.monthly:,.0f}/month" and cost.split("/")[0] in facts
        assert "vLLM" not in facts and "max-num-seqs" not in facts
        await pilot.press("o")
        await settle(app, pilot)
        assert "vLLM" not in plain(app.query_one("#overview-body"))


async def test_volume_size_is_called_an_upper_bound(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert "upper bound" in plain(app.query_one("#overview-body"))
