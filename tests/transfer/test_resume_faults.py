"""kill -9 / SIGTERM and resume; injected faults (resets, 500/503); flaky HF downloads; bad bytes."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from servers.faulty_proxy import FaultyProxy
from servers.hf_hub import FakeHub

from .conftest import HF_TOKEN, ROOT, local_or_hf_source, make_files, read_s3, run_cli

MiB = 1024 * 1024


def _journal_rows(state: Path) -> list[tuple[str, str, str | None]]:
    rows = []
    for p in (state / "transfers").glob("*.sqlite"):
        db = sqlite3.connect(p)
        rows += db.execute("SELECT path, status, sha256 FROM files ORDER BY path").fetchall()
        db.close()
    return rows


def test_kill9_several_times_then_resume(tmp_path: Path, moto, bucket: str, base_env: dict[str, str], state: Path) -> None:
    size = 24 * MiB
    part, parallel = 1 * MiB, 4
    data = os.urandom(size)
    small = os.urandom(100_000)
    src = make_files(tmp_path / "w", {"model.safetensors": data, "config.json": small})
    proxy = FaultyProxy("127.0.0.1", moto.port, delay=0.01).start()
    try:
        args = [sys.executable, "-m", "flymigrate", "transfer", str(src), f"runpod-volume://{bucket}/m", "--yes",
                "--endpoint-url", proxy.url, "--part-size", "1MiB", "--parallel", str(parallel)]
        kills = 0
        for frac in (0.15, 0.45, 0.8):
            p = subprocess.Popen(args, env=base_env, cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 60
            while proxy.received_body_bytes < frac * size and p.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            assert p.poll() is None, "finished before it could be killed: make the file bigger"
            p.send_signal(signal.SIGKILL)
            p.wait()
            kills += 1
        r = subprocess.run(args, env=base_env, cwd=str(ROOT), capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert "already on the server" in r.stdout
    finally:
        proxy.stop()
    got = read_s3(moto, bucket, "m")
    assert got["model.safetensors"] == data and got["config.json"] == small
    rows = _journal_rows(state)
    assert all(status == "done" and sha for _, status, sha in rows), rows
    resent = proxy.received_body_bytes - size - len(small)
    # at most the parts in flight per kill (plus buffered-but-unacked ones the server kept are NOT re-sent)
    assert resent <= kills * parallel * part, (resent, kills)
    # no multipart upload left behind
    assert not moto.client().list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_sigterm_saves_state_and_exits_130(tmp_path: Path, moto, bucket: str, base_env: dict[str, str]) -> None:
    data = os.urandom(12 * MiB)
    src = make_files(tmp_path / "w", {"big.bin": data})
    proxy = FaultyProxy("127.0.0.1", moto.port, delay=0.05).start()
    try:
        args = [sys.executable, "-m", "flymigrate", "transfer", str(src), f"runpod-volume://{bucket}/m", "--yes",
                "--endpoint-url", proxy.url, "--part-size", "1MiB", "--parallel", "2"]
        p = subprocess.Popen(args, env=base_env, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while proxy.received_body_bytes < 3 * MiB and p.poll() is None:
            time.sleep(0.01)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=60)
        assert p.returncode == 130, err
        assert "run the same command again" in err.lower()
        st = run_cli(["status"], base_env)
        assert "incomplete" in st.stdout and "1 in flight" in st.stdout, st.stdout
        assert f"continue with: flymigrate transfer {src} runpod-volume://{bucket}/m --endpoint-url {proxy.url} " \
            "--part-size 1MiB --parallel 2 --yes" \
            in st.stdout, st.stdout
        r = subprocess.run(args, env=base_env, cwd=str(ROOT), capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
    finally:
        proxy.stop()
    assert read_s3(moto, bucket, "m")["big.bin"] == data


def test_transfer_completes_through_resets_and_5xx(tmp_path: Path, moto, bucket: str, base_env: dict[str, str]) -> None:
    files = {"big.bin": os.urandom(6 * MiB + 7), **{f"s/{i}.bin": os.urandom(50_000 + i) for i in range(8)}}
    src = make_files(tmp_path / "w", files)
    with FaultyProxy("127.0.0.1", moto.port, reset_rate=0.08, error_rate=0.12, reset_after_rate=0.05, seed=7) as proxy:
        r = run_cli(["transfer", str(src), f"runpod-volume://{bucket}/m", "--yes", "--endpoint-url", proxy.url,
                     "--part-size", "1MiB", "--parallel", "4"], base_env)
        faults = dict(proxy.faults)
    assert r.returncode == 0, r.stderr
    assert sum(faults.values()) >= 3, faults
    assert "retry" in r.stderr
    assert read_s3(moto, bucket, "m") == files


def test_remote_that_keeps_failing_exits_3_then_resumes(tmp_path: Path, moto, bucket: str, base_env: dict[str, str]) -> None:
    files = {"a.bin": os.urandom(3 * MiB)}
    src = make_files(tmp_path / "w", files)
    env = dict(base_env, FLYMIGRATE_MAX_ATTEMPTS="3")
    with FaultyProxy("127.0.0.1", moto.port, error_rate=1.0, only_methods={"PUT"}) as proxy:
        r = run_cli(["transfer", str(src), f"runpod-volume://{bucket}/m", "--yes", "--endpoint-url", proxy.url,
                     "--part-size", "1MiB"], env)
    assert r.returncode == 3, r.stderr
    assert "kept failing" in r.stderr
    r = run_cli(["transfer", str(src), f"runpod-volume://{bucket}/m", "--yes", "--endpoint-url", moto.url,
                 "--part-size", "1MiB"], env)
    assert r.returncode == 0, r.stderr
    assert read_s3(moto, bucket, "m") == files


def test_unreachable_endpoint_exits_4(tmp_path: Path, base_env: dict[str, str]) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    src = make_files(tmp_path / "w", {"a.bin": b"x" * 10})
    env = dict(base_env, FLYMIGRATE_MAX_ATTEMPTS="2")
    r = run_cli(["transfer", str(src), "runpod-volume://vol/m", "--yes", "--endpoint-url", f"http://127.0.0.1:{port}"], env)
    assert r.returncode == 4, r.stderr
    assert "run the same command again" in r.stderr.lower()


def test_hf_download_cut_midway_resumes_with_range(moto, bucket: str, base_env: dict[str, str]) -> None:
    big = os.urandom(5 * MiB + 3)
    files = {"config.json": b"{}", "model.safetensors": big}
    hub = FakeHub({"acme/model": files}, token=HF_TOKEN, fail_every=2).start()
    try:
        env = dict(base_env, HF_ENDPOINT=hub.url, HF_TOKEN=HF_TOKEN)
        r = run_cli(["transfer", "hf://acme/model", f"runpod-volume://{bucket}/m", "--yes", "--endpoint-url", moto.url,
                     "--part-size", "1MiB"], env)
        served = hub.bytes_served
    finally:
        hub.stop()
    assert r.returncode == 0, r.stderr
    assert "retry" in r.stderr
    assert read_s3(moto, bucket, "m") == files
    # ranged resume: the cut-off halves are the only bytes read twice
    assert served < len(big) * 1.7, served


def test_hf_sha256_mismatch_is_never_marked_done(moto, bucket: str, base_env: dict[str, str], state: Path) -> None:
    files = {"config.json": b"{}", "bad.safetensors": os.urandom(2 * MiB + 1), "good.safetensors": os.urandom(300_000)}
    hub = FakeHub({"acme/model": files}, token=HF_TOKEN, corrupt={"bad.safetensors"},
                  lfs={"bad.safetensors", "good.safetensors"}).start()
    try:
        env = dict(base_env, HF_ENDPOINT=hub.url, HF_TOKEN=HF_TOKEN)
        r = run_cli(["transfer", "hf://acme/model", f"runpod-volume://{bucket}/m", "--yes", "--endpoint-url", moto.url,
                     "--part-size", "1MiB"], env)
    finally:
        hub.stop()
    assert r.returncode == 3, r.stderr
    assert "bad.safetensors" in r.stderr and "sha256 mismatch" in r.stderr
    got = read_s3(moto, bucket, "m")
    assert "bad.safetensors" not in got
    assert got["good.safetensors"] == files["good.safetensors"]
    status = {p: s for p, s, _ in _journal_rows(state)}
    assert status["bad.safetensors"] == "failed" and status["good.safetensors"] == "done"
    assert not moto.client().list_multipart_uploads(Bucket=bucket).get("Uploads")


@pytest.mark.parametrize("source", ["local", "hf"])
def test_parts_corrupted_in_transit_are_detected_and_resent(tmp_path: Path, moto, bucket: str, base_env: dict[str, str],
                                                            source: str) -> None:
    files = {"big.bin": os.urandom(5 * MiB + 11), "small.bin": os.urandom(70_000)}
    env = dict(base_env)
    with local_or_hf_source(source, tmp_path / "w", files, env) as src, \
            FaultyProxy("127.0.0.1", moto.port, corrupt_rate=0.3, only_methods={"PUT"}, seed=3, max_faults=4) as proxy:
        r = run_cli(["transfer", src, f"runpod-volume://{bucket}/m", "--yes", "--endpoint-url", proxy.url,
                     "--part-size", "1MiB"], env)
        corrupted = proxy.faults["corrupt"]
    assert r.returncode == 0, r.stderr
    assert corrupted >= 1
    assert "re-sending" in r.stderr
    assert read_s3(moto, bucket, "m") == files


def _cut_network_midway(proxy: FaultyProxy, args: list[str], env: dict[str, str], outage: float) -> subprocess.CompletedProcess[str]:
    """Run the CLI; once a few parts went through, take the network down for ``outage`` seconds."""
    p = subprocess.Popen([sys.executable, "-m", "flymigrate", *args], env=env, cwd=str(ROOT),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while proxy.request_body_bytes < 3 * MiB and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proxy.down = True
    time.sleep(outage)
    proxy.down = False
    out, err = p.communicate(timeout=120)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def _outage_case(tmp_path: Path, bucket: str, base_env: dict[str, str], proxy: FaultyProxy,
                 retry_for: str) -> tuple[dict[str, bytes], list[str], dict[str, str]]:
    files = {"model.bin": os.urandom(16 * MiB)}
    src = make_files(tmp_path / "w", files)
    # 2 attempts alone give up after ~0.1 s of backoff
    env = dict(base_env, FLYMIGRATE_MAX_ATTEMPTS="2", FLYMIGRATE_BACKOFF_BASE="0.05")
    args = ["transfer", str(src), f"runpod-volume://{bucket}/m", "--yes", "--endpoint-url", proxy.url,
            "--part-size", "1MiB", "--parallel", "2", "--retry-for", retry_for]
    return files, args, env


def test_network_outage_is_waited_out_then_the_copy_finishes(tmp_path: Path, moto, bucket: str,
                                                             base_env: dict[str, str]) -> None:
    with FaultyProxy("127.0.0.1", moto.port, delay=0.02) as proxy:
        files, args, env = _outage_case(tmp_path, bucket, base_env, proxy, "60s")
        r = _cut_network_midway(proxy, args, env, outage=3.0)
        assert proxy.faults["down"] >= 2, proxy.faults
    assert r.returncode == 0, r.stderr
    assert "network looks down" in r.stderr
    assert read_s3(moto, bucket, "m") == files


def test_network_outage_longer_than_retry_for_exits_4_and_resumes(tmp_path: Path, moto, bucket: str,
                                                                  base_env: dict[str, str]) -> None:
    with FaultyProxy("127.0.0.1", moto.port, delay=0.02) as proxy:
        files, args, env = _outage_case(tmp_path, bucket, base_env, proxy, "1s")
        r = _cut_network_midway(proxy, args, env, outage=4.0)
        assert r.returncode == 4, r.stderr
        assert "run the same command again" in r.stderr.lower()
        sent_before = proxy.request_body_bytes
        r = run_cli(args, env)
        assert r.returncode == 0, r.stderr
        assert proxy.request_body_bytes - sent_before <= 16 * MiB - 2 * MiB  # parts already there were not re-sent
    assert read_s3(moto, bucket, "m") == files


def test_retry_for_rejects_nonsense(tmp_path: Path, base_env: dict[str, str]) -> None:
    r = run_cli(["transfer", str(tmp_path), "runpod-volume://vol/m", "--retry-for", "soon"], base_env)
    assert r.returncode == 2 and "not a duration" in r.stderr


def test_hf_parts_of_one_file_are_fetched_in_parallel_with_bounded_ranges(moto, bucket: str,
                                                                          base_env: dict[str, str]) -> None:
    """A CDN serves each connection at its own speed: one stream per file would cap a single 30 GB shard at
    that speed. Parts are fetched as exact ranges, several at once, each byte once, and still hashed in order."""
    big = os.urandom(8 * MiB + 5)
    files = {"config.json": b"{}", "model.safetensors": big}
    hub = FakeHub({"acme/model": files}, token=HF_TOKEN, conn_rate=8 * MiB).start()
    try:
        env = dict(base_env, HF_ENDPOINT=hub.url, HF_TOKEN=HF_TOKEN)
        t0 = time.monotonic()
        r = run_cli(["transfer", "hf://acme/model", f"runpod-volume://{bucket}/m", "--yes", "--endpoint-url", moto.url,
                     "--part-size", "1MiB", "--parallel", "4"], env)
        took = time.monotonic() - t0
        ranges = [rng for p, rng in hub.ranges if p == "model.safetensors"]
        served, most = hub.bytes_served, hub.max_active
    finally:
        hub.stop()
    assert r.returncode == 0, r.stderr
    assert read_s3(moto, bucket, "m") == files
    assert most >= 3, (most, took)
    assert len(ranges) == 9 and all(rng and re.fullmatch(r"bytes=\d+-\d+", rng) for rng in ranges), ranges
    assert served == len(big) + 2, served  # every byte once (config.json is 2 bytes)


def test_hf_kill9_while_parts_arrive_out_of_order_then_resume(moto, bucket: str, base_env: dict[str, str],
                                                              state: Path) -> None:
    """Parallel ranged reads finish out of order; a kill -9 in the middle leaves uploaded parts that are not a
    prefix of the file. The rerun re-reads them (for the sha256), checks them against their ETags, does not
    re-send them, and ends verified against the LFS sha256."""
    size, parallel = 20 * MiB + 11, 4
    big = os.urandom(size)
    files = {"config.json": b"{}", "model.safetensors": big}
    hub = FakeHub({"acme/model": files}, token=HF_TOKEN, conn_rate=6 * MiB).start()
    proxy = FaultyProxy("127.0.0.1", moto.port).start()
    try:
        env = dict(base_env, HF_ENDPOINT=hub.url, HF_TOKEN=HF_TOKEN)
        args = [sys.executable, "-m", "flymigrate", "transfer", "hf://acme/model", f"runpod-volume://{bucket}/m", "--yes",
                "--endpoint-url", proxy.url, "--part-size", "1MiB", "--parallel", str(parallel)]
        p = subprocess.Popen(args, env=env, cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while proxy.received_body_bytes < 0.4 * size and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert p.poll() is None, "finished before it could be killed"
        p.send_signal(signal.SIGKILL)
        p.wait()
        r = subprocess.run(args, env=env, cwd=str(ROOT), capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert "already on the server" in r.stdout
        resent = proxy.received_body_bytes - size - 2  # beyond one copy of each file: sent twice
    finally:
        proxy.stop()
        hub.stop()
    assert read_s3(moto, bucket, "m") == files
    rows = dict((p_, (st, sha)) for p_, st, sha in _journal_rows(state))
    assert rows["model.safetensors"] == ("done", hashlib.sha256(big).hexdigest())
    assert resent <= parallel * MiB, resent
