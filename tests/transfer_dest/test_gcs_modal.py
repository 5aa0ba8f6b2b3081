"""GCS (gcp-storage-emulator) and Modal (loopback fake) destinations: kill -9 and resume, faults, errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from servers.faulty_proxy import FaultyProxy
from servers.gcs_emulator import GcsEmulator
from servers.modal_fake import BLOCK_SIZE, ModalFake

from .conftest import ROOT, run_cli
from .fixtures import MODAL_TOKEN_SECRET, modal_env, read_gcs, read_modal

MiB = 1024 * 1024


def _src(tmp_path: Path, files: dict[str, bytes]) -> Path:
    root = tmp_path / ("src-" + uuid.uuid4().hex[:6])
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def _bucket(emu: GcsEmulator) -> str:
    b = "t-" + uuid.uuid4().hex[:12]
    emu.client().create_bucket(b)
    return b


def _popen(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "flymigrate", *args], env=env, cwd=str(ROOT),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kill_when(proc: subprocess.Popen[str], cond: Any, timeout: float = 60) -> None:
    t0 = time.monotonic()
    while not cond():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < timeout, "the copy never got far enough to be killed"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


# ----------------------------------------------------------------------------------------- GCS


def test_gcs_kill9_mid_file_then_resume(gcs_emu: GcsEmulator, env: dict[str, str], tmp_path: Path) -> None:
    big = os.urandom(12 * MiB + 12345)
    files = {"model.safetensors": big, "config.json": b"{}"}
    src = _src(tmp_path, files)
    b = _bucket(gcs_emu)
    e = {**env, **gcs_emu.env()}
    args = ["transfer", str(src), f"gs://{b}/w", "--yes", "--part-size", "1MiB", "--parallel", "2"]
    gcs_emu.reset_counters()
    p = _popen(args, e)
    _kill_when(p, lambda: gcs_emu.bytes_received >= 4 * MiB)
    first = gcs_emu.bytes_received
    assert read_gcs(gcs_emu, b, "w").get("model.safetensors") is None  # not finished
    gcs_emu.reset_counters()
    r = run_cli([*args, "--json"], e)
    assert r.returncode == 0, r.stderr
    second = gcs_emu.bytes_received
    assert read_gcs(gcs_emu, b, "w") == files
    resent = first + second - sum(len(v) for v in files.values())
    assert 0 <= resent <= 1 * MiB, (first, second, resent)  # at most the chunk in flight
    events = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    assert any(ev["kind"] == "resume" for ev in events)
    # the crc32c record survived the kill (side file), so nothing had to be read back, and it is cleaned up
    assert not list((Path(env["FLYMIGRATE_STATE_DIR"]) / "transfers" / "gcs-crc32c").glob("*.json"))


def test_gcs_faults_resets_errors_and_lost_acks(gcs_emu: GcsEmulator, env: dict[str, str], tmp_path: Path) -> None:
    files = {"a.bin": os.urandom(5 * MiB + 7), "b.bin": os.urandom(300_000), "c.txt": b"hello"}
    src = _src(tmp_path, files)
    b = _bucket(gcs_emu)
    with FaultyProxy("127.0.0.1", gcs_emu.port, reset_rate=0.1, error_rate=0.1, reset_after_rate=0.1,
                     only_methods={"PUT", "POST"}, seed=7, max_faults=12) as proxy:
        e = {**env, **gcs_emu.env(), "STORAGE_EMULATOR_HOST": proxy.url}
        r = run_cli(["transfer", str(src), f"gs://{b}/w", "--yes", "--part-size", "1MiB"], e)
        faults = dict(proxy.faults)
        assert r.returncode == 0, r.stderr
        # (read while the proxy is up: the emulator wrote the proxy's address into the objects' mediaLink)
        assert read_gcs(gcs_emu, b, "w") == files
    assert sum(faults.values()) >= 3, faults
    assert faults["reset_after"] >= 1, faults  # the server applied a chunk whose answer was lost


def test_gcs_resume_without_crc_record_reads_back_only_the_gap(gcs_emu: GcsEmulator, tmp_path: Path) -> None:
    from flymigrate.transfer.base import AdapterOptions, Entry, open_destination, parse_url

    b = _bucket(gcs_emu)
    opts = AdapterOptions(env={**gcs_emu.env(), "FLYMIGRATE_STATE_DIR": str(tmp_path / "st")})
    d = open_destination(parse_url(f"gs://{b}/p"), opts)
    data = bytearray(os.urandom(4 * 256 * 1024 + 99))
    e = Entry("f.bin", len(data))
    u = d.open_upload(e, None, None)
    st = dict(u.begin())
    u.write_chunk(0, memoryview(data)[: 512 * 1024], False)
    for f in (tmp_path / "st").rglob("*.json"):
        f.unlink()  # as if the side file had been lost
    u2 = d.open_upload(e, {"session_url": st["session_url"], "size": len(data)}, None)
    off = u2.committed()
    assert off == 512 * 1024
    u2.write_chunk(off, memoryview(data)[off:], True)
    de = u2.complete()
    assert de.size == len(data)
    assert u2.readback_bytes == 512 * 1024  # exactly the part sent by the "killed" handle
    assert read_gcs(gcs_emu, b, "p")["f.bin"] == bytes(data)


def test_gcs_crc_mismatch_is_detected_and_object_removed(gcs_emu: GcsEmulator, tmp_path: Path) -> None:
    from flymigrate.errors import RemoteError
    from flymigrate.transfer.base import AdapterOptions, Entry, open_destination, parse_url

    b = _bucket(gcs_emu)
    d = open_destination(parse_url(f"gs://{b}/p"), AdapterOptions(env={**gcs_emu.env(), "FLYMIGRATE_STATE_DIR": str(tmp_path)}))
    data = os.urandom(300_000)
    u = d.open_upload(Entry("x.bin", len(data)), None, None)
    u.begin()
    u.write_chunk(0, memoryview(bytearray(data)), True)
    u.state["segments"][0][2] ^= 1  # what we "sent" differs from what the server stored
    with pytest.raises(RemoteError, match="crc32c mismatch"):
        u.complete()
    assert "x.bin" not in read_gcs(gcs_emu, b, "p")


def test_gcs_md5_from_source_checked(gcs_emu: GcsEmulator, tmp_path: Path) -> None:
    from flymigrate.errors import RemoteError
    from flymigrate.transfer.base import AdapterOptions, Entry, open_destination, parse_url

    b = _bucket(gcs_emu)
    d = open_destination(parse_url(f"gs://{b}/p"), AdapterOptions(env={**gcs_emu.env(), "FLYMIGRATE_STATE_DIR": str(tmp_path)}))
    data = os.urandom(1000)
    u = d.open_upload(Entry("y.bin", len(data), extra={"md5": "0" * 32}), None, None)
    u.begin()
    u.write_chunk(0, memoryview(bytearray(data)), True)
    with pytest.raises(RemoteError, match="md5 mismatch"):
        u.complete()


def test_gcs_without_credentials_is_a_usage_error(env: dict[str, str], tmp_path: Path) -> None:
    src = _src(tmp_path, {"a": b"1"})
    e = {**env, "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "missing.json"), "NO_GCE_CHECK": "True",
         "GCE_METADATA_HOST": "127.0.0.1:9", "GCE_METADATA_IP": "127.0.0.1:9"}
    r = run_cli(["transfer", str(src), "gs://some-bucket/x", "--yes"], e, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "application-default login" in r.stderr or "GOOGLE_APPLICATION_CREDENTIALS" in r.stderr


def test_gcs_missing_bucket(gcs_emu: GcsEmulator, env: dict[str, str], tmp_path: Path) -> None:
    src = _src(tmp_path, {"a": b"1"})
    r = run_cli(["transfer", str(src), "gs://no-such-bucket-x/x", "--yes"], {**env, **gcs_emu.env()})
    assert r.returncode == 2 and "bucket not found" in r.stderr, r.stderr


# --------------------------------------------------------------------------------------- Modal


def test_modal_kill9_during_block_upload_then_resume(modal_fake: ModalFake, env: dict[str, str], tmp_path: Path) -> None:
    big = os.urandom(5 * BLOCK_SIZE + 4321)  # 6 blocks
    files = {"model.safetensors": big, "tokenizer.json": os.urandom(5000)}
    src = _src(tmp_path, files)
    vol = "kill-" + uuid.uuid4().hex[:8]
    e = {**env, **modal_env(modal_fake, tmp_path)}
    args = ["transfer", str(src), f"modal-volume://{vol}/llama", "--yes", "--part-size", "4MiB", "--parallel", "2"]
    modal_fake.reset_counters()
    modal_fake.put_delay, modal_fake.serialize_puts = 0.3, True
    try:
        p = _popen(args, e)
        # kill once two 8 MiB blocks are stored, while the others are still in flight
        _kill_when(p, lambda: modal_fake.bytes_stored >= 2 * BLOCK_SIZE)
    finally:
        modal_fake.put_delay, modal_fake.serialize_puts = 0.0, False
    time.sleep(1.0)  # let the server drain what the killed client had already pushed into its sockets
    first = modal_fake.bytes_received
    stored_before = modal_fake.bytes_stored
    known = set(modal_fake.blocks)
    modal_fake.reset_counters()
    r = run_cli(args, e)
    assert r.returncode == 0, r.stderr
    second = modal_fake.bytes_received
    assert read_modal(modal_fake, vol, "llama") == files
    total = sum(len(v) for v in files.values())
    resent = first + second - total
    # only blocks that were in flight at the kill are sent again (never a block the server already had)
    assert not known & {bytes.fromhex(h) for h in modal_fake.put_shas}  # no stored block is sent again
    assert second <= total - stored_before, (first, second, stored_before)
    assert resent <= 6 * BLOCK_SIZE
    # the staging area is empty afterwards
    staging = Path(env["FLYMIGRATE_STATE_DIR"]) / "modal-staging"
    assert not list(staging.glob("*"))
    print(f"modal resume: first run sent {first} B, rerun {second} B, re-sent {max(0, resent)} B "
          f"of {total} B; blocks stored before rerun: {stored_before}")


def test_modal_kill9_during_staging_then_resume(modal_fake: ModalFake, env: dict[str, str], tmp_path: Path) -> None:
    """An HTTP source is staged to a private file first (Modal uploads whole local files); killed while staging,
    the rerun continues the staging file where it stopped."""
    from servers.hf_hub import FakeHub

    big = os.urandom(3 * BLOCK_SIZE)
    hub = FakeHub({"acme/w": {"w.bin": big}}, conn_rate=4 * MiB).start()
    vol = "stage-" + uuid.uuid4().hex[:8]
    e = {**env, **modal_env(modal_fake, tmp_path), "HF_ENDPOINT": hub.url}
    args = ["transfer", "hf://acme/w", f"modal-volume://{vol}/m", "--yes", "--part-size", "1MiB", "--parallel", "1"]
    staging = Path(env["FLYMIGRATE_STATE_DIR"]) / "modal-staging"

    def staged() -> bool:
        return any(f.stat().st_size >= 4 * MiB for f in staging.glob("*.part")) if staging.exists() else False

    modal_fake.reset_counters()
    try:
        p = _popen(args, e)
        _kill_when(p, staged, timeout=30)
        parts = list(staging.glob("*.part"))
        assert len(parts) == 1 and oct(parts[0].stat().st_mode & 0o777) == "0o600"
        r = run_cli([*args, "--json"], e)
    finally:
        hub.stop()
    assert r.returncode == 0, r.stderr
    assert read_modal(modal_fake, vol, "m") == {"w.bin": big}
    ev = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    assert any(x["kind"] == "resume" for x in ev)
    assert modal_fake.bytes_received <= len(big)  # nothing had reached Modal before the kill
    assert not list(staging.glob("*"))


def test_modal_local_source_is_uploaded_in_place_without_a_staging_copy(modal_fake: ModalFake, env: dict[str, str],
                                                                       tmp_path: Path) -> None:
    """Modal's put_file wants a local file; a local source already is one: no second copy on disk."""
    import threading as _t

    files = {"model.safetensors": os.urandom(2 * BLOCK_SIZE + 5), "config.json": b"{}"}
    src = _src(tmp_path, files)
    vol = "direct-" + uuid.uuid4().hex[:8]
    staging = Path(env["FLYMIGRATE_STATE_DIR"]) / "modal-staging"
    seen: list[str] = []
    done = _t.Event()

    def watch() -> None:
        while not done.is_set():
            if staging.exists():
                seen.extend(str(x) for x in staging.glob("*"))
            time.sleep(0.002)

    w = _t.Thread(target=watch, daemon=True)
    w.start()
    try:
        r = run_cli(["transfer", str(src), f"modal-volume://{vol}/m", "--yes"], {**env, **modal_env(modal_fake, tmp_path)})
    finally:
        done.set()
        w.join()
    assert r.returncode == 0, r.stderr
    assert read_modal(modal_fake, vol, "m") == files
    assert not seen, seen


def test_modal_faults_block_puts_fail_and_reset(modal_fake: ModalFake, env: dict[str, str], tmp_path: Path) -> None:
    """Block PUTs answered 500/503, or cut off (reset before / after the server stored the block).

    A reset leaves the SDK's aiohttp request waiting forever (no timeout in modal 1.6.4): the adapter's
    deadline abandons that attempt and the engine retries; only missing blocks are sent again.
    """
    files = {"a.bin": os.urandom(2 * BLOCK_SIZE + 3), "b.bin": os.urandom(100)}
    src = _src(tmp_path, files)
    vol = "faults-" + uuid.uuid4().hex[:8]
    with FaultyProxy("127.0.0.1", modal_fake.http_port, reset_rate=0.3, error_rate=0.3, reset_after_rate=0.3,
                     only_methods={"PUT"}, seed=1, max_faults=4) as proxy:
        modal_fake.block_base_url = proxy.url
        try:
            r = run_cli(["transfer", str(src), f"modal-volume://{vol}/x", "--yes"],
                        {**env, **modal_env(modal_fake, tmp_path), "FLYMIGRATE_MODAL_PUT_TIMEOUT": "4"})
        finally:
            modal_fake.block_base_url = None
        faults = dict(proxy.faults)
    assert r.returncode == 0, r.stderr
    assert sum(faults.values()) >= 1, faults
    assert read_modal(modal_fake, vol, "x") == files


def test_modal_injected_503s_are_retried_by_the_sdk(modal_fake: ModalFake, env: dict[str, str], tmp_path: Path) -> None:
    files = {"a.bin": os.urandom(BLOCK_SIZE + 5)}
    src = _src(tmp_path, files)
    vol = "e503-" + uuid.uuid4().hex[:8]
    modal_fake.fail_next_puts = 2
    r = run_cli(["transfer", str(src), f"modal-volume://{vol}/x", "--yes"], {**env, **modal_env(modal_fake, tmp_path)})
    assert r.returncode == 0, r.stderr
    assert modal_fake.fail_next_puts == 0
    assert read_modal(modal_fake, vol, "x") == files


def test_modal_bad_token_is_a_usage_error_without_the_secret(modal_fake: ModalFake, env: dict[str, str], tmp_path: Path) -> None:
    src = _src(tmp_path, {"a": b"1"})
    e = {**env, **modal_env(modal_fake, tmp_path), "MODAL_TOKEN_SECRET": "as-WRONG-canary-2f9"}
    r = run_cli(["transfer", str(src), "modal-volume://v1/x", "--yes"], e)
    assert r.returncode == 2, r.stderr
    assert "modal token new" in r.stderr
    assert "as-WRONG-canary-2f9" not in r.stdout + r.stderr and MODAL_TOKEN_SECRET not in r.stdout + r.stderr
    for f in Path(env["FLYMIGRATE_STATE_DIR"]).rglob("*"):
        if f.is_file():
            assert b"as-WRONG-canary-2f9" not in f.read_bytes()


def test_modal_staging_disk_check_says_how_much(modal_fake: ModalFake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from flymigrate.errors import UserError
    from flymigrate.transfer.base import AdapterOptions, Entry, open_destination, parse_url

    for k, v in modal_env(modal_fake, tmp_path).items():
        monkeypatch.setenv(k, v)
    d = open_destination(parse_url("modal-volume://disk/x"), AdapterOptions(env={"FLYMIGRATE_STATE_DIR": str(tmp_path / "st")}))
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=100 * MiB))
    u = d.open_upload(Entry("huge.bin", 5 * 1024 * MiB), None, None)
    with pytest.raises(UserError, match=r"need 5\.06 GiB in .*modal-staging.*100\.0 MiB free"):
        u.begin()


def test_modal_secret_create_through_sdk(modal_fake: ModalFake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in modal_env(modal_fake, tmp_path).items():
        monkeypatch.setenv(k, v)
    from flymigrate.errors import UserError
    from flymigrate.transfer.modal_volume import create_secret

    create_secret("flymigrate-acme-env", {"HF_TOKEN": "hf_CANARY1", "OPENAI_API_KEY": "sk-x"})
    assert modal_fake.secret_values("flymigrate-acme-env") == {"HF_TOKEN": "hf_CANARY1", "OPENAI_API_KEY": "sk-x"}
    create_secret("flymigrate-acme-env", {"HF_TOKEN": "hf_CANARY2"})  # re-run of apply: values replaced
    assert modal_fake.secret_values("flymigrate-acme-env") == {"HF_TOKEN": "hf_CANARY2"}
    with pytest.raises(UserError) as ei:
        create_secret("flymigrate-acme-env", {"HF_TOKEN": "hf_CANARY3"}, overwrite=False)
    assert "CANARY" not in str(ei.value)
    assert "hf_CANARY" not in repr(modal_fake.secrets)


def test_crc32c_combine_matches_whole_buffer_crc() -> None:
    import google_crc32c

    from flymigrate.transfer.gcs import crc32c_combine

    for a_len, b_len in ((0, 5), (1, 0), (1000, 123457), (256 * 1024, 3)):
        a, b = os.urandom(a_len), os.urandom(b_len)
        got = crc32c_combine(google_crc32c.value(a), google_crc32c.value(b), len(b))
        assert got == google_crc32c.value(a + b)


def test_modal_dry_run_creates_no_volume(modal_fake: ModalFake, env: dict[str, str], tmp_path: Path) -> None:
    src = _src(tmp_path, {"a.bin": b"x" * 10})
    vol = "dry-" + uuid.uuid4().hex[:8]
    r = run_cli(["transfer", str(src), f"modal-volume://{vol}/m", "--dry-run"], {**env, **modal_env(modal_fake, tmp_path)})
    assert r.returncode == 0, r.stderr
    assert "would copy 1 of 1 files" in r.stdout
    assert ("main", vol) not in modal_fake.volumes


@pytest.mark.parametrize("dest", ["gcs", "modal"])
def test_hf_source_chunks_are_fetched_ahead_in_parallel(dest: str, gcs_emu: GcsEmulator, modal_fake: ModalFake,
                                                         env: dict[str, str], tmp_path: Path) -> None:
    """A resumable session (GCS) or a staging file (Modal) takes chunks in order, but an HTTP source serves
    each connection at its own speed: the next chunks are fetched at once (exact ranges), each byte once."""
    from servers.hf_hub import FakeHub

    big = os.urandom(6 * MiB + 77)
    files = {"model.safetensors": big, "config.json": b"{}"}
    hub = FakeHub({"acme/m": files}, conn_rate=6 * MiB).start()
    try:
        if dest == "gcs":
            b = _bucket(gcs_emu)
            e = {**env, **gcs_emu.env(), "HF_ENDPOINT": hub.url}
            url = f"gs://{b}/w"
        else:
            e = {**env, **modal_env(modal_fake, tmp_path), "HF_ENDPOINT": hub.url}
            url = "modal-volume://weights/w"
        r = run_cli(["transfer", "hf://acme/m", url, "--yes", "--part-size", "1MiB", "--parallel", "4"], e)
        ranges = [rng for p, rng in hub.ranges if p == "model.safetensors"]
        served, most = hub.bytes_served, hub.max_active
    finally:
        hub.stop()
    assert r.returncode == 0, r.stderr
    got = read_gcs(gcs_emu, b, "w") if dest == "gcs" else read_modal(modal_fake, "weights", "w")
    assert got == files
    assert most >= 3, most
    assert all(rng and rng.count("-") == 1 and not rng.endswith("-") for rng in ranges), ranges
    assert served == len(big) + 2, served


def test_hf_to_gcs_kill9_while_fetching_ahead_then_resume(gcs_emu: GcsEmulator, env: dict[str, str]) -> None:
    from servers.hf_hub import FakeHub

    big = os.urandom(10 * MiB + 3)
    files = {"model.safetensors": big}
    hub = FakeHub({"acme/m": files}, conn_rate=6 * MiB).start()
    try:
        b = _bucket(gcs_emu)
        e = {**env, **gcs_emu.env(), "HF_ENDPOINT": hub.url}
        args = ["transfer", "hf://acme/m", f"gs://{b}/w", "--yes", "--part-size", "1MiB", "--parallel", "4"]
        gcs_emu.reset_counters()
        p = _popen(args, e)
        _kill_when(p, lambda: gcs_emu.bytes_received >= 4 * MiB)
        first = gcs_emu.bytes_received
        gcs_emu.reset_counters()
        r = run_cli(args, e)
        second = gcs_emu.bytes_received
    finally:
        hub.stop()
    assert r.returncode == 0, r.stderr
    assert read_gcs(gcs_emu, b, "w") == files
    assert 0 <= first + second - len(big) <= 1 * MiB, (first, second)  # at most the chunk in flight
