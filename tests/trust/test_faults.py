"""Faults: random kills (SIGKILL, SIGTERM, SIGINT), resets, 500/503/429, stalls mid-body, revoked credentials, a
full disk. Every run either completes with verified data or stops resumably with a clear message; reruns converge
to the same verified result; the source is never touched. `apply` is killed at random points too: the user's files
are always either the original or the finished version, and the originals survive in the backup."""

from __future__ import annotations

import filecmp
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, Sandbox
from rig import RESUMABLE, SIGNALS, MiB, Rig, make_weights, tree_hashes

SIZES = {"model-00001.safetensors": 9 * MiB, "model-00002.safetensors": 5 * MiB, "tokenizer.json": 300_000,
         "config.json": 700}


@pytest.fixture
def rig(moto, tmp_path: Path) -> Iterator[Rig]:
    r = Rig(moto, tmp_path, SIZES, seed=7, proxy_kw={"delay": 0.004})
    yield r
    r.stop()


def _converge(rig: Rig, tries: int = 4) -> None:
    for _ in range(tries):
        r = rig.run()
        assert "Traceback" not in r.stderr, r.stderr[-3000:]
        if r.returncode == 0:
            break
        assert r.returncode in RESUMABLE, (r.returncode, r.stderr[-2000:])
    assert r.returncode == 0, r.stderr[-2000:]
    assert rig.verified(), rig.corrupt_files()
    # "skipped": found identical at the destination (a kill landed between the upload and the journal write)
    assert all(st == "done" and sha or st == "skipped" for _, st, sha in rig.journal()), rig.journal()
    assert not rig.leftover_uploads()
    assert rig.source_intact()
    again = rig.run()  # converged: nothing more to do
    assert again.returncode == 0 and "4 already there" in again.stdout, again.stdout + again.stderr


def test_random_kills_then_converge(rig: Rig) -> None:
    rnd = random.Random(1234)
    for i in range(6):
        name = rnd.choice(list(SIGNALS))
        frac = rnd.uniform(0.05, 0.7)
        code, err, sent = rig.kill_at(frac, SIGNALS[name])
        assert "Traceback" not in err, err[-3000:]
        if not sent:
            assert code == 0, err
            break
        if name == "SIGKILL":
            assert code == -signal.SIGKILL
        else:
            assert code in (130, 0), (name, code, err[-2000:])  # 0: it finished while stopping
            if code == 130:
                assert "run the same command again" in err.lower(), err[-1000:]
        # nothing at the destination is ever a wrong-content object
        assert not rig.corrupt_files(), rig.corrupt_files()
        assert rig.source_intact()
    _converge(rig)
    # the bytes re-sent are bounded by the parts in flight per kill (plus the faults' retries)
    resent = rig.proxy.received_body_bytes - rig.total
    assert resent <= 7 * rig.parallel * MiB + 2 * MiB, resent


@pytest.mark.parametrize("faults", [
    {"reset_rate": 0.08, "error_rate": 0.08},
    {"reset_after_rate": 0.1, "throttle_rate": 0.1},
    {"throttle_rate": 0.3},
    {"error_rate": 0.6},  # a bad day: most requests fail; runs stop resumably, reruns get there
], ids=["reset+5xx", "reset-after+429", "429-storm", "5xx-storm"])
def test_connection_faults_converge(moto, tmp_path: Path, faults: dict) -> None:
    rig = Rig(moto, tmp_path, SIZES, seed=3, proxy_kw=faults)
    try:
        first = rig.run()
        assert "Traceback" not in first.stderr
        assert first.returncode in {0} | RESUMABLE, first.stderr[-2000:]
        if first.returncode:
            assert "run the same command again" in first.stderr.lower(), first.stderr[-1000:]
        assert not rig.corrupt_files()
        rig.proxy.error_rate = rig.proxy.reset_rate = rig.proxy.reset_after_rate = 0
        rig.proxy.throttle_rate = 0
        _converge(rig)
        assert sum(rig.proxy.faults.values()) > 0
    finally:
        rig.stop()


def test_stalls_mid_body_from_s3_and_hub_sources(moto, tmp_path: Path) -> None:
    """The server stops half-way through a download, stays silent, then the connection dies."""
    from rig import ROOT as R
    from servers.faulty_proxy import FaultyProxy
    from servers.hf_hub import FakeHub

    files = {"a.safetensors": os.urandom(3 * MiB), "b.json": os.urandom(200_000)}
    c = moto.client()
    src_b, dst_b = "st-" + uuid.uuid4().hex[:10], "sd-" + uuid.uuid4().hex[:10]
    c.create_bucket(Bucket=src_b)
    c.create_bucket(Bucket=dst_b)
    for k, v in files.items():
        c.put_object(Bucket=src_b, Key=f"w/{k}", Body=v)
    hub = FakeHub({"acme/m": files}).start()
    hub_proxy = FaultyProxy("127.0.0.1", int(hub.url.rsplit(":", 1)[1]), stall_rate=0.5, stall_seconds=1.0,
                            seed=11).start()
    s3_proxy = FaultyProxy("127.0.0.1", moto.port, stall_rate=0.5, stall_seconds=1.0, seed=11,
                           only_methods={"GET"}).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HF_", "FLYMIGRATE_"))}
    env.update(FLYMIGRATE_STATE_DIR=str(tmp_path / "state"), AWS_ACCESS_KEY_ID="AKID", AWS_SECRET_ACCESS_KEY="s" * 20,
               AWS_REGION="us-east-1", AWS_ENDPOINT_URL_S3=s3_proxy.url, HF_ENDPOINT=hub_proxy.url,
               FLYMIGRATE_BACKOFF_BASE="0.02", PYTHONPATH=str(R))
    try:
        for src, pfx in ((f"s3://{src_b}/w", "from-s3"), ("hf://acme/m", "from-hf")):
            for _ in range(4):
                r = subprocess.run([sys.executable, "-m", "flymigrate", "transfer", src,
                                    f"runpod-volume://{dst_b}/{pfx}", "--yes", "--endpoint-url", moto.url,
                                    "--part-size", "1MiB"], env=env, cwd=str(R), capture_output=True, check=False, text=True,
                                   timeout=180)
                assert "Traceback" not in r.stderr, r.stderr[-3000:]
                if r.returncode == 0:
                    break
                assert r.returncode in RESUMABLE, r.stderr[-2000:]
            assert r.returncode == 0, r.stderr[-2000:]
            got = {k: c.get_object(Bucket=dst_b, Key=f"{pfx}/{k}")["Body"].read() for k in files}
            assert got == files
        assert hub_proxy.faults["stall"] + s3_proxy.faults["stall"] > 0
    finally:
        hub_proxy.stop()
        s3_proxy.stop()
        hub.stop()


def test_credentials_revoked_halfway(rig: Rig) -> None:
    rig.proxy.deny_after = 8  # a few parts in, every request gets 403 InvalidAccessKeyId
    r = rig.run()
    assert "Traceback" not in r.stderr
    assert r.returncode in (2, 3, 4), (r.returncode, r.stderr[-2000:])
    assert "credentials" in r.stderr.lower(), r.stderr[-1000:]
    assert not rig.corrupt_files()
    sent_before = rig.proxy.request_body_bytes
    rig.proxy.deny_after = None  # the user fixes the keys
    _converge(rig)
    # what had been uploaded before the revocation was kept, not sent again
    assert rig.proxy.request_body_bytes - sent_before <= rig.total - sent_before + 3 * rig.parallel * MiB


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    d = tmp_path / "tiny"
    d.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a small tmpfs")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m,mode=0700", "tmpfs", str(d)], capture_output=True, check=False)
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode()[:200]}")
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], capture_output=True, check=False)


def test_full_disk_for_the_journal_then_space_freed(rig: Rig, tiny_disk: Path) -> None:
    rig.state = tiny_disk / "state"
    rig.env["FLYMIGRATE_STATE_DIR"] = str(rig.state)
    filler = tiny_disk / "filler"
    with open(filler, "wb") as fh:  # leave almost nothing
        try:
            while True:
                fh.write(b"\0" * 65536)
        except OSError:
            pass
    r = rig.run()
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    assert r.returncode in (2, 4), (r.returncode, r.stderr[-2000:])
    assert "space" in r.stderr.lower() or "full" in r.stderr.lower(), r.stderr[-1000:]
    assert not rig.corrupt_files()
    filler.unlink()
    _converge(rig)


def test_full_disk_while_staging_for_modal(sandbox: Sandbox, tiny_disk: Path) -> None:
    """An HTTP source is staged to local disk for Modal: a full disk is a clear error, then a clean resume.
    A local source needs no staging at all, so the same tiny disk is no obstacle for it."""
    from servers.hf_hub import FakeHub
    from servers.modal_fake import ModalFake

    fake = ModalFake().start()
    src = sandbox.root / "w"
    hashes = make_weights(src, {"big.safetensors": 9 * MiB, "small.json": 1000})
    hub = FakeHub({"acme/w": {p.name: p.read_bytes() for p in src.iterdir()}}).start()
    try:
        env = dict(sandbox.env, **fake.env(home=str(sandbox.home)), FLYMIGRATE_STATE_DIR=str(tiny_disk / "state"),
                   HF_ENDPOINT=hub.url)
        local = [sys.executable, "-m", "flymigrate", "transfer", str(src), "modal-volume://localvol/m", "--yes"]
        r = subprocess.run(local, env=env, cwd=str(ROOT), capture_output=True, check=False, text=True, timeout=180)
        assert r.returncode == 0, r.stderr[-2000:]
        args = [sys.executable, "-m", "flymigrate", "transfer", "hf://acme/w", "modal-volume://diskvol/m", "--yes"]
        r = subprocess.run(args, env=env, cwd=str(ROOT), capture_output=True, check=False, text=True, timeout=180)
        assert "Traceback" not in r.stderr, r.stderr[-3000:]
        assert r.returncode in (2, 4), (r.returncode, r.stderr[-2000:])
        assert "disk" in r.stderr.lower() or "space" in r.stderr.lower(), r.stderr[-1000:]
        assert tree_hashes(src) == hashes
        # more room: the same command finishes, with the right bytes
        env["FLYMIGRATE_STATE_DIR"] = str(sandbox.state)
        r = subprocess.run(args, env=env, cwd=str(ROOT), capture_output=True, check=False, text=True, timeout=180)
        assert r.returncode == 0, r.stderr[-2000:]
        import hashlib

        got = {p[2:]: hashlib.sha256(fake.read_file("diskvol", p)).hexdigest() for p in fake.list_files("diskvol")}
        assert got == hashes
    finally:
        hub.stop()
        fake.stop()


# -------------------------------------------------------------------------------------------------- apply
def _apply_args(app: Path) -> list[str]:
    return [sys.executable, "-m", "flymigrate", "apply", str(app), "--to", "cloudrun", "--yes", "--skip", "weights",
            "--secrets", str(app / "example.env"), "--base-url", "https://new.example.com"]


def _user_files(app: Path) -> dict[str, str]:
    return {k: v for k, v in tree_hashes(app).items() if not k.startswith(".flymigrate/")}


def test_apply_killed_at_random_points_never_loses_or_half_writes(sandbox: Sandbox, example_app: Path) -> None:
    # the reference: one clean run on a copy
    ref_app = sandbox.root / "ref"
    shutil.copytree(example_app, ref_app)
    env = dict(sandbox.env)
    pristine = sandbox.root / "pristine"
    shutil.copytree(example_app, pristine)
    t0 = time.monotonic()
    r = subprocess.run(_apply_args(ref_app), env=env, cwd=str(ROOT), capture_output=True, check=False, text=True, timeout=120)
    whole = time.monotonic() - t0  # how long one full apply takes on this machine, now
    assert r.returncode in (0, 2), r.stderr[-2000:]
    final = _user_files(ref_app)
    original = _user_files(example_app)
    rnd = random.Random(99)
    kills = 0
    for i in range(8):
        p = subprocess.Popen(_apply_args(example_app), env=env, cwd=str(ROOT), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        delay = rnd.uniform(0.1, 0.8) * whole  # somewhere inside a run, whatever the machine's speed
        try:
            p.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            p.send_signal(rnd.choice([signal.SIGKILL, signal.SIGTERM, signal.SIGINT]))
            kills += 1
        else:
            if p.returncode in (0, 2) and i < 7:
                # it finished before the kill: start the next round from the untouched app so there is work left
                p.communicate(timeout=60)
                shutil.rmtree(example_app)
                shutil.copytree(pristine, example_app)
                continue
        _, err = p.communicate(timeout=60)
        assert "Traceback" not in err, err[-3000:]
        now = _user_files(example_app)
        for path, h in now.items():
            assert h in (original.get(path), final.get(path)), f"{path} is neither the original nor the result"
        assert set(original) <= set(now), "a user file disappeared"
        # every changed original is kept in the backup
        backup = example_app / ".flymigrate" / "backup"
        changed = [k for k in original if now.get(k) != original[k]]
        if changed:
            kept = set(tree_hashes(backup).values()) if backup.exists() else set()
            assert all(original[k] in kept for k in changed), changed
    r = subprocess.run(_apply_args(example_app), env=env, cwd=str(ROOT), capture_output=True, check=False, text=True, timeout=120)
    assert "Traceback" not in r.stderr
    assert _user_files(example_app) == final
    assert kills > 0
    assert filecmp.cmp(example_app / "fly.toml", ref_app / "fly.toml", shallow=False)
