"""The weight transfer in the walkthrough: live progress, pause, quit mid-transfer, resume (TUI and CLI).

Against the loopback servers the transfer tests use: moto S3 behind a counting proxy that slows each
request down, so the transfer is reliably still running when the test quits.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, SIZE, plain, settle

pytestmark = pytest.mark.anyio

N_FILES = 30
FILE_SIZE = 96 * 1024


@pytest.fixture
def volume(moto: Any, monkeypatch: pytest.MonkeyPatch, workdir: Path) -> Iterator[dict[str, Any]]:
    """A RunPod network volume (moto behind a slow proxy) and local weights to move there."""
    from servers.faulty_proxy import FaultyProxy

    bucket = "vol" + uuid.uuid4().hex[:10]
    moto.client().create_bucket(Bucket=bucket)
    proxy = FaultyProxy(moto.host, int(moto.port), delay=0.25, only_methods={"PUT"}).start()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testkey")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testsecret")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("FLYMIGRATE_BACKOFF_BASE", "0.05")
    src = workdir / "weights"
    src.mkdir()
    files = {}
    for i in range(N_FILES):
        data = hashlib.sha256(str(i).encode()).digest() * (FILE_SIZE // 32)
        (src / f"shard-{i:02d}.bin").write_bytes(data)
        files[f"shard-{i:02d}.bin"] = data
    fields = {"from": str(src), "volume_id": bucket, "datacenter": "EU-RO-1", "endpoint_url": proxy.url}
    yield {"bucket": bucket, "fields": fields, "files": files, "proxy": proxy, "moto": moto}
    proxy.stop()


def dest_objects(vol: dict[str, Any]) -> dict[str, bytes]:
    c = vol["moto"].client()
    out = {}
    for obj in c.list_objects_v2(Bucket=vol["bucket"], Prefix="acme-chat/").get("Contents", []):
        out[obj["Key"].rsplit("/", 1)[1]] = c.get_object(Bucket=vol["bucket"], Key=obj["Key"])["Body"].read()
    return out


async def fill_in(app: Any, pilot: Any, fields: dict[str, str]) -> None:
    """Type the settings a person would on the weights page, then Enter to refresh the preview."""
    for key, value in fields.items():
        box = app.query_one(f"#weights-{key}")
        box.focus()
        box.value = value
    await pilot.press("enter")
    await settle(app, pilot)


async def start_transfer(app: Any, pilot: Any, volume: dict[str, Any]) -> None:
    """From the overview: the weights page, its settings, then run (r) and confirm (y)."""
    await settle(app, pilot)
    await pilot.press("1")
    await fill_in(app, pilot, volume["fields"])
    await pilot.press("r", "y")


async def wait_until(pilot: Any, cond: Any, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "timed out"
        await pilot.pause(0.05)


async def test_quit_mid_transfer_then_resume_in_the_tui(make_app: Any, volume: dict[str, Any],
                                                       workdir: Path) -> None:
    app = make_app(target="runpod")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("1")
        await fill_in(app, pilot, volume["fields"])
        assert f"runpod-volume://{volume['bucket']}/acme-chat/" in plain(app.query_one("#weights-dest"))
        await pilot.press("r")
        await pilot.pause()
        assert type(app.screen).__name__ == "ConfirmScreen"
        await pilot.press("y")
        stats = app.query_one("#transfer-stats")
        await wait_until(pilot, lambda: "/s" in plain(stats) and "files 0/" not in plain(stats))
        text = plain(stats)
        assert "ETA" in text and "retries 0" in text and f"/{N_FILES} done" in text
        assert app.query_one("#transfer-files").row_count == N_FILES  # every file, with its own progress
        assert app.query_one("#weights-from").disabled  # settings are locked while it runs
        assert app.saved.progress("runpod").steps["weights"].status == "running"
        await pilot.press("q")  # quit in the middle: the engine saves state, then the app exits
        await wait_until(pilot, lambda: not app.is_running, timeout=30)
    assert app.crash is None
    copied_before = dest_objects(volume)
    assert 0 < len(copied_before) < N_FILES, "the quit must land in the middle of the transfer"
    tui_json = json.loads((workdir / "acme-chat" / ".flymigrate" / "tui.json").read_text())
    assert tui_json["targets"]["runpod"]["steps"]["weights"]["status"] == "paused"
    assert tui_json["targets"]["runpod"]["weights_fields"]["volume_id"] == volume["bucket"]

    app = make_app(target=None)  # come back: it is where it was
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("1")
        await settle(app, pilot)
        for key, value in volume["fields"].items():
            assert app.query_one(f"#weights-{key}").value == value
        assert "Paused at" in plain(app.query_one("#transfer-stats"))
        assert "Paused" in plain(app.query_one("#page-weights .step-result"))
        assert "flymigrate apply acme-chat --to runpod --only weights" in plain(app.query_one("#transfer-cli"))
        volume["proxy"].delay = 0.0
        await pilot.press("r", "y")
        await wait_until(pilot, lambda: app.transfer_stop is None and
                         app.saved.progress("runpod").steps["weights"].status != "running", timeout=60)
        await settle(app, pilot)
        progress = app.saved.progress("runpod").steps["weights"]
        assert progress.status == "done", progress.result
        assert f"{len(copied_before)} already there" in progress.result
        assert "Done:" in plain(app.query_one("#transfer-stats"))
        assert "✓ 1. Weights" in plain(app.query_one("#nav-weights").query_one("Static"))
    assert dest_objects(volume) == volume["files"]


async def test_pause_in_the_tui_then_finish_with_the_cli(make_app: Any, volume: dict[str, Any],
                                                        workdir: Path) -> None:
    app = make_app(target="runpod")
    async with app.run_test(size=SIZE) as pilot:
        await start_transfer(app, pilot, volume)
        stats = app.query_one("#transfer-stats")
        await wait_until(pilot, lambda: "/s" in plain(stats) and "files 0/" not in plain(stats))
        await pilot.press("s")  # pause
        await wait_until(pilot, lambda: app.transfer_stop is None)
        await settle(app, pilot)
        assert app.saved.progress("runpod").steps["weights"].status == "paused"
        assert "Paused" in plain(app.query_one("#page-weights .step-result"))
        assert not app.query_one("#weights-from").disabled
        command = plain(app.query_one("#transfer-cli")).removeprefix("From a shell: ")
    before = dest_objects(volume)
    assert 0 < len(before) < N_FILES
    volume["proxy"].delay = 0.0
    argv = shlex.split(command)
    assert argv[0] == "flymigrate"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "flymigrate", *argv[1:], "--yes"], cwd=workdir,
                                env=env, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert dest_objects(volume) == volume["files"]
    app = make_app(target=None)  # the TUI sees what the CLI finished
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.saved.progress("runpod").steps["weights"].status == "done"


async def test_blocked_weights_step_is_a_readable_error(make_app: Any) -> None:
    app = make_app(target="runpod")  # no volume id yet: apply says the step is blocked
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("1", "r")  # blocked: no confirmation with a Run button, the panel says what is missing
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ErrorScreen")
        assert "placeholder" in plain(app.screen.query_one("#error-message"))
        assert "Fill in the fields above" in plain(app.screen.query_one("#error-hint"))
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.saved.progress("runpod").steps["weights"].status == "todo"  # nothing ran


async def test_retries_are_counted_live(make_app: Any, volume: dict[str, Any]) -> None:
    proxy = volume["proxy"]
    proxy.delay = 0.0
    proxy.error_rate = 1.0  # the first PUTs fail with 5xx; the engine retries them
    proxy.max_faults = 3
    app = make_app(target="runpod")
    async with app.run_test(size=SIZE) as pilot:
        await start_transfer(app, pilot, volume)
        await wait_until(pilot, lambda: app.transfer_stop is None and
                         app.saved.progress("runpod").steps["weights"].status != "running", timeout=60)
        await settle(app, pilot)
        assert app.saved.progress("runpod").steps["weights"].status == "done"
        assert "retries 3" in plain(app.query_one("#transfer-stats"))
    assert dest_objects(volume) == volume["files"]
