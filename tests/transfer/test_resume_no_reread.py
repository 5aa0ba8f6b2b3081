"""A resumed file re-reads nothing the destination already holds: the sha256 state is saved with every committed
prefix (flymigrate.transfer.hashing), so the Hub serves the data once plus what was in flight at each kill.

The counting source server is the loopback Hub (tests/servers/hf_hub.py): ``bytes_served`` counts body bytes as
they are written, including a body cut off by the kill."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from servers.hf_hub import FakeHub

from .conftest import HF_TOKEN, ROOT

MiB = 1024 * 1024
PART, PARALLEL = 1 * MiB, 3
IN_FLIGHT = (PARALLEL + 2) * PART  # parts fetched but not yet on the destination when a kill lands (buffer pool)


def _done_sha(state: Path, rel: str) -> str | None:
    for p in (state / "transfers").glob("*.sqlite"):
        db = sqlite3.connect(p)
        r = db.execute("SELECT status, sha256 FROM files WHERE path=?", (rel,)).fetchone()
        db.close()
        if r:
            return r[1] if r[0] == "done" else None
    return None


def _killed_then_resumed(env: dict[str, str], hub: FakeHub, args: list[str], size: int,
                         fractions: tuple[float, ...]) -> subprocess.CompletedProcess[str]:
    for frac in fractions:
        p = subprocess.Popen([sys.executable, "-m", "flymigrate", *args], env=env, cwd=str(ROOT),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 90
        while hub.bytes_served < frac * size and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert p.poll() is None, "finished before it could be killed"
        p.send_signal(signal.SIGKILL)
        p.wait()
    return subprocess.run([sys.executable, "-m", "flymigrate", *args], env=env, cwd=str(ROOT), capture_output=True,
                          text=True, timeout=180)


@pytest.mark.parametrize("dst_name", ["dst_runpod", "dst_gcs", "dst_modal"])
def test_hf_killed_at_several_fractions_serves_each_byte_once_plus_what_was_in_flight(
        request: pytest.FixtureRequest, base_env: dict[str, str], state: Path, dst_name: str) -> None:
    size = 16 * MiB + 7
    big = os.urandom(size)
    hub = FakeHub({"acme/model": {"model.safetensors": big}}, token=HF_TOKEN, conn_rate=4 * MiB).start()
    dst = request.getfixturevalue(dst_name)()
    try:
        env = dict(base_env, **dst.env, HF_ENDPOINT=hub.url, HF_TOKEN=HF_TOKEN)
        args = ["transfer", "hf://acme/model", dst.url, "--yes", "--part-size", "1MiB", "--parallel", str(PARALLEL),
                *dst.args]
        fractions = (0.3, 0.6, 0.85)
        r = _killed_then_resumed(env, hub, args, size, fractions)
        served = hub.bytes_served
    finally:
        hub.stop()
    assert r.returncode == 0, r.stderr[-3000:]
    assert "not read again" in r.stdout + r.stderr
    assert dst.read() == {"model.safetensors": big}
    assert _done_sha(state, "model.safetensors") == hashlib.sha256(big).hexdigest()  # still verified end to end
    # the goal: <= 1.0x the data plus the parts in flight at each kill (the old code re-read every held part)
    assert served <= size + len(fractions) * IN_FLIGHT, (served / size, served - size)


def test_without_a_saveable_sha256_state_the_resume_re_reads_and_says_so_once(base_env: dict[str, str],
                                                                            dst_runpod, state: Path) -> None:
    size = 12 * MiB + 3
    big = os.urandom(size)
    hub = FakeHub({"acme/model": {"model.safetensors": big, "b.safetensors": big[:3 * MiB]}}, token=HF_TOKEN,
                  conn_rate=4 * MiB).start()
    dst = dst_runpod()
    try:
        env = dict(base_env, **dst.env, HF_ENDPOINT=hub.url, HF_TOKEN=HF_TOKEN, FLYMIGRATE_SHA256_STATE="0")
        args = ["transfer", "hf://acme/model", dst.url, "--yes", "--part-size", "1MiB", "--parallel", str(PARALLEL),
                *dst.args]
        r = _killed_then_resumed(env, hub, args, size, (0.7,))
        served = hub.bytes_served
    finally:
        hub.stop()
    assert r.returncode == 0, r.stderr[-3000:]
    assert (r.stdout + r.stderr).count("FLYMIGRATE_SHA256_STATE=0") == 1, r.stderr
    assert _done_sha(state, "model.safetensors") == hashlib.sha256(big).hexdigest()
    assert served > size + 3 * MiB  # the parts on the server were fetched again, to rebuild the sha256
