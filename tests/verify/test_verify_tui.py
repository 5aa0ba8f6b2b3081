"""The walkthrough offers verify on its last step (key v) and shows the verdict in a panel."""

from __future__ import annotations

from pathlib import Path

import pytest

from vhelpers import assert_no_secret

pytestmark = pytest.mark.anyio
APP_KEY = "sk-CANARY-tui-verify-3e2d1c"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_verify_from_the_last_step(serve, tmp_path: Path) -> None:
    from flymigrate.apply.state import ApplyState
    from flymigrate.tui.app import create_app
    from flymigrate.tui.screens import ErrorScreen

    s = serve(model="Qwen/Qwen3-8B", app_key=APP_KEY)
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "fly.toml").write_text('app = "tui-app"\n[build]\n  image = "vllm/vllm-openai:v0.6.3"\n'
                                      '[experimental]\n  cmd = ["--model", "Qwen/Qwen3-8B"]\n'
                                      '[http_service]\n  internal_port = 8000\n[[vm]]\n  size = "l40s"\n')
    env = app_dir / "app.env"
    env.write_text(f"VLLM_API_KEY={APP_KEY}\n")
    env.chmod(0o600)
    app = create_app(app_dir, target="modal", secrets_paths=[str(env)])
    async with app.run_test(size=(100, 30)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.check_action("verify", ()) is False  # not offered before the last step
        app.show_page("scaling")
        await pilot.pause()
        assert app.check_action("verify", ()) is False  # nothing deployed yet
        st = ApplyState(app_dir)
        st.target("modal")["deployed_url"] = s.url  # what `apply --deploy` records
        st.save()
        assert app.check_action("verify", ()) is True
        await pilot.press("v")
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ErrorScreen)
        assert screen.title_text == "Verify: passed"
        assert "[pass] chat completion (streamed)" in screen.message and s.url in screen.message
        assert_no_secret([APP_KEY], screen.message, screen.hint)
    assert (app_dir / ".flymigrate" / "verify.json").exists()
