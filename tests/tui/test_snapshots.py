"""SVG snapshots of the main screens at 80x24 (pytest-textual-snapshot).

Deterministic: fixed size, the example app copied under a fixed relative name, no clock on screen.
Update with ``pytest tests/tui/test_snapshots.py --snapshot-update`` after looking at the report.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .conftest import SIZE
from .conftest import settle as settle_app

Press = Callable[[Any], Any]


def settle_then(*keys: str) -> Press:
    async def settle(pilot: Any) -> None:
        # workers, then focus-driven scrolling (scroll_visible animates): wait until the screen stops moving
        for _ in range(3):
            await pilot.app.workers.wait_for_complete()
            await pilot.wait_for_scheduled_animations()
            await pilot.pause()

    async def run_before(pilot: Any) -> None:
        await settle_app(pilot.app, pilot)  # the first read of the app has started and ended
        await settle(pilot)
        if keys:
            await pilot.press(*keys)
        await settle(pilot)

    return run_before


class TestScreens:
    def test_overview(self, snap_compare: Any, make_app: Any) -> None:
        """The app as understood: GPU, volume, services, secrets (names only), URLs, findings."""
        assert snap_compare(make_app(), terminal_size=SIZE, run_before=settle_then())

    def test_target_choice(self, snap_compare: Any, make_app: Any) -> None:
        """No target chosen yet: the three targets side by side."""
        assert snap_compare(make_app(target=None), terminal_size=SIZE, run_before=settle_then())

    def test_dockerfile_step(self, snap_compare: Any, make_app: Any) -> None:
        """Step 2: preview of the Dockerfile changes, with Run / Mark done in the footer."""
        assert snap_compare(make_app(), terminal_size=SIZE, run_before=settle_then("2"))

    def test_weights_step_light_theme(self, snap_compare: Any, make_app: Any) -> None:
        """Step 1 for RunPod on the light theme, scrolled to apply's settings and the blocked destination."""
        assert snap_compare(make_app(target="runpod"), terminal_size=SIZE,
                            run_before=settle_then("1", "d", "tab", "end"))

    def test_confirm_before_running(self, snap_compare: Any, make_app: Any) -> None:
        """Nothing runs before the confirmation."""
        assert snap_compare(make_app(), terminal_size=SIZE, run_before=settle_then("5", "r"))

    def test_error_panel(self, snap_compare: Any, make_app: Any) -> None:
        """A blocked step is a readable panel with what to do (no Run offered), never a traceback."""
        assert snap_compare(make_app(target="runpod"), terminal_size=SIZE, run_before=settle_then("1", "r"))

    def test_help(self, snap_compare: Any, make_app: Any) -> None:
        """The whole dialog, Close button included, fits at 80x24 (the keys scroll inside it)."""
        assert snap_compare(make_app(), terminal_size=SIZE, run_before=settle_then("question_mark"))

    def test_target_chosen(self, snap_compare: Any, make_app: Any) -> None:
        """A chosen target: the choices say "chosen" / "cheapest" in words, not only in colour."""
        assert snap_compare(make_app(target="runpod"), terminal_size=SIZE, run_before=settle_then("t"))

    def test_secrets_step_blocked(self, snap_compare: Any, make_app: Any) -> None:
        """Step 3 with a value missing: blocked, and Run is dimmed in the footer."""
        assert snap_compare(make_app(), terminal_size=SIZE, run_before=settle_then("3"))

    def test_base_urls_step(self, snap_compare: Any, make_app: Any) -> None:
        """Step 4: every occurrence, old -> new."""
        assert snap_compare(make_app(), terminal_size=SIZE, run_before=settle_then("4"))

    def test_scaling_step(self, snap_compare: Any, make_app: Any) -> None:
        """Step 5 for Cloud Run: the generated service's scaling, spelled as YAML spells it."""
        assert snap_compare(make_app(target="cloudrun"), terminal_size=SIZE, run_before=settle_then("5"))
