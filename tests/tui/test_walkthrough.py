"""Pilot tests: what a person does in the walkthrough, at 80x24, and what is saved."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import HF_TOKEN_VALUE, ROOT, SECRETS, SIZE, plain, screen_text, settle

pytestmark = pytest.mark.anyio


def saved(workdir: Path) -> dict[str, Any]:
    return json.loads((workdir / "acme-chat" / ".flymigrate" / "tui.json").read_text())


async def test_overview_shows_the_app_and_never_a_secret_value(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        text = plain(app.query_one("#overview-body"))
        assert "acme-chat" in text and "a100-pcie-40gb x1" in text and "acme_models at /models" in text
        assert "HF_TOKEN" in text and "value known" in text
        assert "API_KEY" in text and "no value: add it by hand" in text
        assert "client/chat.py:5" in text
        # findings: blocking (error) first, each with file:line
        findings = text.split("Findings")[1]
        assert findings.index("ERROR") < findings.index("WARNING") < findings.index("INFO")
        assert "fly.toml:47" in findings
        for page in ("overview", "target", "weights", "dockerfile", "secrets", "base_urls", "scaling"):
            app.show_page(page)
            await pilot.pause()
            assert HF_TOKEN_VALUE not in screen_text(app)
        assert HF_TOKEN_VALUE not in plain(app.query_one("#page-secrets .step-preview"))


async def test_no_target_yet_opens_the_choice_and_it_is_saved(make_app: Any, workdir: Path) -> None:
    app = make_app(target=None)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.page == "target"
        assert "Choose where to move" in plain(app.query_one("#page-weights .step-preview"))
        facts = plain(app.query_one("#target-facts"))
        for label in ("GPU", "Scaling", "Cost (scale to zero)", "Cold start", "What is lost"):
            assert label in facts
        await pilot.click("#target-runpod")
        await pilot.pause()
        assert app.target == "runpod"
    assert saved(workdir)["target"] == "runpod"


async def test_changing_target_keeps_progress(make_app: Any, workdir: Path) -> None:
    app = make_app(target="modal")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("2")  # Dockerfile step
        await pilot.press("m")  # mark done by hand
        app.query_one("#page-dockerfile .check-item").focus()
        await pilot.press("space")  # tick the first check
        await pilot.pause()
        await pilot.press("t")
        app.query_one("#target-choice").focus()
        await pilot.press("down", "enter")  # RunPod Serverless
        await pilot.pause()
        assert app.target == "runpod"
        assert app.saved.progress("runpod").steps["dockerfile"].status == "todo"
        assert "RunPod" in plain(app.query_one("#titlebar"))
    data = saved(workdir)
    assert data["target"] == "runpod"
    assert data["targets"]["modal"]["steps"]["dockerfile"] == {"status": "done", "result": "marked done by hand",
                                                              "checks": [0]}
    app = make_app(target=None)  # comes back on the saved target, with modal's progress intact
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.target == "runpod"
        await pilot.press("t")
        app.query_one("#target-choice").focus()
        await pilot.press("up", "enter")
        await pilot.press("2")
        await pilot.pause()
        assert app.target == "modal"
        assert "Done: marked done by hand" in plain(app.query_one("#page-dockerfile .step-result"))
        assert app.query_one("#page-dockerfile").checked() == [0]
        assert "[x]" in plain(app.query_one("#page-dockerfile .check-item .check-mark"))
        assert "✓ 2. Dockerfile" in plain(app.query_one("#nav-dockerfile").query_one("Static"))


@pytest.mark.parametrize("step", ["dockerfile", "secrets", "base_urls", "scaling"])
async def test_step_preview_confirm_run_result_checks(make_app: Any, workdir: Path, monkeypatch: pytest.MonkeyPatch,
                                                      step: str) -> None:
    from flymigrate.tui import core

    ran: list[tuple[str, str]] = []

    def fake_run_step(session: Any, target: str, step_id: str, stop: Any = None) -> str:
        ran.append((target, step_id))
        return f"{step_id} applied"

    monkeypatch.setattr(core, "run_step", fake_run_step)
    expected_preview = {"dockerfile": "-RUN ldconfig", "secrets": "API_KEY",
                        "base_urls": "client/chat.py:5: https://acme-chat.fly.dev",
                        "scaling": "scaledown_window=300"}[step]
    extra = workdir / "extra.env"  # every value known: a blocked step offers no Run (test_first_contact.py)
    extra.write_text("API_KEY=sk-test-not-a-real-key\n")
    extra.chmod(0o600)
    app = make_app(secrets=[*SECRETS, "extra.env"])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press(str(["weights", "dockerfile", "secrets", "base_urls", "scaling"].index(step) + 1))
        await pilot.pause()
        page = app.query_one(f"#page-{step}")
        assert expected_preview in plain(page.query_one(".step-preview"))
        assert "Not run yet" in plain(page.query_one(".step-result"))
        await pilot.press("r")  # preview first: nothing runs before the answer
        await pilot.pause()
        assert type(app.screen).__name__ == "ConfirmScreen" and ran == []
        await pilot.press("n")
        await pilot.pause()
        assert ran == [] and app.saved.progress("modal").steps[step].status == "todo"
        await pilot.press("r")
        await pilot.pause()
        await pilot.press("y")
        await settle(app, pilot)
        assert ran == [("modal", step)]
        assert f"Done: {step} applied" in plain(page.query_one(".step-result"))
        items = list(page.query(".check-item"))
        assert len(items) >= 2
        items[0].focus()
        await pilot.press("down", "space")
        await pilot.pause()
    data = saved(workdir)["targets"]["modal"]["steps"][step]
    assert data == {"status": "done", "result": f"{step} applied", "checks": [1]}


async def test_step_without_executor_shows_a_readable_panel(make_app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from flymigrate import api

    monkeypatch.delattr(api, "apply", raising=False)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("2", "r", "y")  # (step 3 is blocked here: it would explain that instead)
        await settle(app, pilot)
        assert type(app.screen).__name__ == "ErrorScreen"
        text = screen_text(app)
        assert "What to do" in text and "Traceback" not in text
        assert "mark the step done" in plain(app.screen.query_one("#error-hint"))
        await pilot.press("escape")
        await pilot.pause()
        assert app.saved.progress("modal").steps["dockerfile"].status == "todo"


async def test_missing_fly_toml_is_an_error_panel_not_a_traceback(make_app: Any, workdir: Path) -> None:
    (workdir / "empty").mkdir()
    app = make_app(app_dir="empty", secrets=[])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert type(app.screen).__name__ == "ErrorScreen"
        assert "no fly.toml" in plain(app.screen.query_one("#error-message"))
        assert "Fly app's folder" in plain(app.screen.query_one("#error-hint"))
        await pilot.press("escape", "q")
    assert app.crash is None


async def test_unreadable_state_file_is_reported_and_left_alone(make_app: Any, workdir: Path) -> None:
    state = workdir / "acme-chat" / ".flymigrate"
    state.mkdir()
    (state / "tui.json").write_text("{not json")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert type(app.screen).__name__ == "ErrorScreen"
        await pilot.press("escape", "2", "m")
        await pilot.pause()
    assert (state / "tui.json").read_text() == "{not json"


async def test_help_theme_and_navigation_keys(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen"
        assert "mark a step done" in plain(app.screen.query_one("#help-text"))
        await pilot.press("escape")
        assert app.current_theme.dark
        await pilot.press("d")
        await pilot.pause()
        assert not app.current_theme.dark
        pages = []
        for _ in range(7):
            pages.append(app.page)
            await pilot.press("n")
        assert pages == ["overview", "target", "weights", "dockerfile", "secrets", "base_urls", "scaling"]
        await pilot.press("b", "b")
        assert app.page == "secrets"
        await pilot.click("#nav-weights")  # the mouse works too
        await pilot.pause()
        assert app.page == "weights"
        footer = screen_text(app)
        assert "Run" in footer and "Help" in footer


def test_importing_the_command_leaves_textual_out() -> None:
    code = "import sys, flymigrate.cli, flymigrate.commands.tui; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


async def test_dockerfile_step_runs_flymigrate_apply_for_real(make_app: Any, workdir: Path) -> None:
    """No fakes: r, y writes the same Dockerfile `flymigrate apply --only dockerfile` writes."""
    dockerfile = workdir / "acme-chat" / "Dockerfile"
    assert "RUN ldconfig" in dockerfile.read_text()
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("2")
        await pilot.pause()
        assert "-RUN ldconfig" in plain(app.query_one("#page-dockerfile .step-preview"))
        await pilot.press("r", "y")
        await settle(app, pilot)
        assert type(app.screen).__name__ != "ErrorScreen"
        assert "Done" in plain(app.query_one("#page-dockerfile .step-result"))
        head = plain(app.query_one("#page-dockerfile .step-head"))
        assert "[done]" in head and "Before this step ran: Dockerfile" in head  # not "[ready]", "5 to fix"
        # the preview now shows what is left to change: nothing
        assert "-RUN ldconfig" not in plain(app.query_one("#page-dockerfile .step-preview"))
    assert "\nRUN ldconfig" not in dockerfile.read_text()
    state = json.loads((workdir / "acme-chat" / ".flymigrate" / "state.json").read_text())
    assert state["targets"]["modal"]["steps"]["dockerfile"]["status"] == "done"


async def test_an_unexpected_error_is_kept_off_the_screen(make_app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from flymigrate.tui.widgets import OverviewPage

    def boom(*args: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(OverviewPage, "show", boom)
    app = make_app()
    with pytest.raises(RuntimeError):
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
    assert isinstance(app.crash, RuntimeError)
    app._print_error_renderables()  # what Textual would print on exit: nothing
    assert not app._exit_renderables


def test_the_command_hands_a_crash_to_the_cli_error_boundary(workdir: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from flymigrate import cli
    from flymigrate.tui import app as tui_app

    class CrashedApp:
        crash = RuntimeError("boom")

        def run(self) -> None:
            return None

    monkeypatch.setattr(tui_app, "create_app", lambda *a, **k: CrashedApp())
    assert cli.main(["tui", "acme-chat"]) == 1
    err = capsys.readouterr().err
    assert "internal error: RuntimeError" in err and "Traceback" not in err
    assert cli.main(["tui", "no-such-folder"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_session_that_died_mid_step_comes_back_paused(workdir: Path) -> None:
    from flymigrate.tui.state import load_state

    state_file = workdir / "acme-chat" / ".flymigrate" / "tui.json"
    state_file.parent.mkdir()
    state_file.write_text(json.dumps({"schema": "flymigrate/tui/v1", "target": "modal", "targets": {"modal": {
        "steps": {"weights": {"status": "running"}, "dockerfile": {"status": "running"}}}}}))
    st = load_state(workdir / "acme-chat")
    assert st.progress("modal").steps["weights"].status == "paused"
    assert st.progress("modal").steps["dockerfile"].status == "todo"


async def enter_secrets(app: Any, pilot: Any, value: str) -> None:
    """Type the secrets export(s) on the secrets page, as a person would, and press Enter."""
    await pilot.press("3")
    box = app.query_one("#setting-secrets")
    box.focus()
    box.value = value
    await pilot.press("enter")
    await settle(app, pilot)


async def test_secrets_export_and_new_url_can_be_given_in_the_walkthrough(make_app: Any, workdir: Path) -> None:
    """Plain `flymigrate` has no --secrets: the export and, later, the new URL are typed on their pages."""
    app = make_app(secrets=[])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert "none found" in plain(app.query_one("#overview-body"))
        await enter_secrets(app, pilot, "acme-chat/fly-secrets.json, acme-chat/example.env")
        overview = plain(app.query_one("#overview-body"))
        assert "HF_TOKEN" in overview and "value known" in overview and HF_TOKEN_VALUE not in screen_text(app)
        await pilot.press("4")
        box = app.query_one("#setting-base_urls")
        box.focus()
        box.value = "https://acme--serve.modal.run"
        await pilot.press("enter")
        await settle(app, pilot)
        preview = plain(app.query_one("#page-base_urls .step-preview"))
        assert "acme--serve.modal.run" in preview and "client/chat.py" in preview
        await pilot.press("r", "y")
        await settle(app, pilot)
        assert app.saved.progress("modal").steps["base_urls"].status == "done", screen_text(app)
    assert "https://acme--serve.modal.run" in (workdir / "acme-chat" / "client" / "chat.py").read_text()
    saved_text = (workdir / "acme-chat" / ".flymigrate" / "tui.json").read_text()
    assert HF_TOKEN_VALUE not in saved_text
    data = json.loads(saved_text)
    assert data["targets"]["modal"]["base_url"] == "https://acme--serve.modal.run"
    assert [Path(p).name for p in data["secrets_paths"]] == ["fly-secrets.json", "example.env"]
    app = make_app(secrets=[])  # the export is remembered (its path, never its values)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert "value known" in plain(app.query_one("#overview-body"))


async def test_the_mouse_works_for_dialogs_and_checks(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.click("#nav-scaling")
        await pilot.press("r")
        await pilot.pause()
        assert type(app.screen).__name__ == "ConfirmScreen"
        await pilot.click("#confirm-no")
        await pilot.pause()
        assert type(app.screen).__name__ != "ConfirmScreen"
        assert app.saved.progress("modal").steps["scaling"].status == "todo"
        page = app.query_one("#page-scaling")
        item = page.query(".check-item").first()
        page.scroll_to_widget(item, animate=False, top=True)
        await pilot.pause()
        await pilot.click(item)
        await pilot.pause()
        assert page.checked() == [0]
        assert app.saved.progress("modal").steps["scaling"].checks == [0]


async def test_an_unreadable_secrets_export_is_refused_and_not_remembered(make_app: Any, workdir: Path) -> None:
    (workdir / "bad.json").write_text("{ this is not a secrets export")
    app = make_app(secrets=[])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await enter_secrets(app, pilot, "bad.json")
        assert type(app.screen).__name__ == "ErrorScreen"
        assert "bad.json" in plain(app.screen.query_one("#error-message"))
        await pilot.press("escape")
        assert app.saved.secrets_paths == [] and app.session is not None
