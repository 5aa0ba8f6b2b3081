"""The weight transfer in the walkthrough: live progress, pause, quit mid-transfer, resume (TUI and CLI).

Against the loopback servers the transfer tests use: moto S3 behind a counting proxy that slows each
request down, so the transfer is reliably still running when the test quits.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, SIZE, plain, settle

pytestmark = pytest.mark.anyio

N_FILES = 18
FILE_SIZE = 96 * 1024


@pytest.fixture
def s3_dest(moto: Any, monkeypatch: pytest.MonkeyPatch, workdir: Path) -> Iterator[dict[str, Any]]:
    from servers.faulty_proxy import FaultyProxy

    bucket = "tui-" + uuid.uuid4().hex[:10]
    moto.client().create_bucket(Bucket=bucket)
    proxy = FaultyProxy(moto.host, int(moto.port), delay=0.25, only_methods={"PUT"}).start()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testkey")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testsecret")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
    monkeypatch.setenv("FLYMIGRATE_BACKOFF_BASE", "0.05")
    src = workdir / "weights"
    src.mkdir()
    files = {}
    for i in range(N_FILES):
        data = hashlib.sha256(str(i).encode()).digest() * (FILE_SIZE // 32)
        (src / f"shard-{i:02d}.bin").write_bytes(data)
        files[f"shard-{i:02d}.bin"] = data
    yield {"bucket": bucket, "src": str(src), "dst": f"s3://{bucket}/models/acme", "files": files, "proxy": proxy,
           "moto": moto}
    proxy.stop()


def dest_objects(s3: dict[str, Any]) -> dict[str, bytes]:
    c = s3["moto"].client()
    out = {}
    for obj in c.list_objects_v2(Bucket=s3["bucket"], Prefix="models/acme/").get("Contents", []):
        out[obj["Key"].rsplit("/", 1)[1]] = c.get_object(Bucket=s3["bucket"], Key=obj["Key"])["Body"].read()
    return out


async def set_urls(app: Any, pilot: Any, src: str, dst: str) -> None:
    app.query_one("#weights-src").value = src
    app.query_one("#weights-dst").value = dst
    await pilot.pause()


async def wait_until(pilot: Any, cond: Any, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "timed out"
        await pilot.pause(0.05)


async def test_quit_mid_transfer_then_resume_in_the_tui(make_app: Any, s3_dest: dict[str, Any],
                                                       workdir: Path) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("1")
        await set_urls(app, pilot, s3_dest["src"], s3_dest["dst"])
        await pilot.press("r")
        await pilot.pause()
        assert type(app.screen).__name__ == "ConfirmScreen"
        await pilot.press("y")
        stats = app.query_one("#transfer-stats")
        await wait_until(pilot, lambda: "files " in plain(stats) and not plain(stats).startswith("0 B")
                         and "files 0/" not in plain(stats))
        text = plain(stats)
        assert "/s" in text and "ETA" in text and "retries 0" in text
        assert f"/{N_FILES}" in text and app.query_one("#transfer-files").row_count >= 1
        assert app.query_one("#weights-src").disabled  # URLs are locked while it runs
        assert app.saved.progress("modal").steps["weights"].status == "running"
        await pilot.press("q")  # quit in the middle: the engine saves state, then the app exits
        await wait_until(pilot, lambda: not app.is_running, timeout=30)
    assert app.crash is None
    copied_before = dest_objects(s3_dest)
    assert 0 < len(copied_before) < N_FILES, "the quit must land in the middle of the transfer"
    tui_json = (workdir / "acme-chat" / ".flymigrate" / "tui.json").read_text()
    assert '"status": "paused"' in tui_json and s3_dest["dst"] in tui_json

    app = make_app(target=None)  # come back: it is where it was
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("1")
        await pilot.pause()
        assert app.query_one("#weights-src").value == s3_dest["src"]
        assert app.query_one("#weights-dst").value == s3_dest["dst"]
        assert "Paused at" in plain(app.query_one("#transfer-stats"))
        assert "Paused" in plain(app.query_one("#page-weights .step-result"))
        assert f"flymigrate transfer {s3_dest['src']} {s3_dest['dst']}" in plain(app.query_one("#transfer-cli"))
        s3_dest["proxy"].delay = 0.0
        await pilot.press("r", "y")
        await wait_until(pilot, lambda: app.transfer_stop is None and
                         app.saved.progress("modal").steps["weights"].status != "running", timeout=60)
        await settle(app, pilot)
        progress = app.saved.progress("modal").steps["weights"]
        assert progress.status == "done", progress.result
        assert "already there" in progress.result
        skipped = [r for r in app.query_one("#transfer-files").rows]
        assert len(skipped) == N_FILES
        assert "✓ 1. Weights" in plain(app.query_one("#nav-weights").query_one("Static"))
    assert dest_objects(s3_dest) == s3_dest["files"]


async def test_pause_in_the_tui_then_finish_with_the_cli(make_app: Any, s3_dest: dict[str, Any]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("1")
        await set_urls(app, pilot, s3_dest["src"], s3_dest["dst"])
        await pilot.press("r", "y")
        stats = app.query_one("#transfer-stats")
        await wait_until(pilot, lambda: "files " in plain(stats) and "files 0/" not in plain(stats))
        await pilot.press("s")  # pause
        await wait_until(pilot, lambda: app.transfer_stop is None)
        await settle(app, pilot)
        assert app.saved.progress("modal").steps["weights"].status == "paused"
        assert "Paused" in plain(app.query_one("#page-weights .step-result"))
        assert not app.query_one("#weights-src").disabled
    before = dest_objects(s3_dest)
    assert 0 < len(before) < N_FILES
    s3_dest["proxy"].delay = 0.0
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "flymigrate", "transfer", s3_dest["src"], s3_dest["dst"], "--yes"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"{len(before)} already there" in r.stdout
    assert dest_objects(s3_dest) == s3_dest["files"]


async def test_placeholder_url_is_a_readable_error(make_app: Any) -> None:
    app = make_app(target="runpod")  # runpod-volume://<VOLUME_ID>/... until the user fills it in
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("1", "r", "y")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ErrorScreen")
        assert "placeholder" in plain(app.screen.query_one("#error-message"))
        assert "Edit the source or destination" in plain(app.screen.query_one("#error-hint"))
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.saved.progress("runpod").steps["weights"].status == "failed"
