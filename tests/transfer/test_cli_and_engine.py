"""CLI contract (exit codes, dry-run, status, secrets) and engine behaviour (local trees, journal, cleanup)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from servers.faulty_proxy import FaultyProxy

from flymigrate.errors import Interrupted, UserError
from flymigrate.transfer.base import parse_url
from flymigrate.transfer.engine import Event, TransferOptions, run_transfer

from .conftest import ACCESS, HF_TOKEN, ROOT, SECRET, make_files, read_s3, run_cli

MiB = 1024 * 1024


# ------------------------------------------------------------------------------------------------ URLs


@pytest.mark.parametrize("url,scheme,root,path", [
    ("hf://Qwen/Qwen3-8B@abc123", "hf", "Qwen/Qwen3-8B", ""),
    ("s3://bucket/models/x/", "s3", "bucket", "models/x"),
    ("runpod-volume://abc123xyz/models/q", "runpod-volume", "abc123xyz", "models/q"),
    ("fly-volume://my-app/data_vol/models", "fly-volume", "my-app", "models"),
    ("gs://b/p", "gs", "b", "p"),
    ("modal-volume://weights/llm", "modal-volume", "weights", "llm"),
])
def test_parse_url(url: str, scheme: str, root: str, path: str) -> None:
    u = parse_url(url)
    assert (u.scheme, u.root, u.path) == (scheme, root, path)


def test_parse_url_details_and_errors() -> None:
    assert parse_url("hf://Qwen/Qwen3-8B@refs/pr/1").revision == "refs/pr/1"
    assert parse_url("fly-volume://app/vol/a/b").volume == "vol"
    assert parse_url("./weights").scheme == "local"
    for bad in ("ftp://x/y", "s3://", "hf://a/b/c", "hf://org/repo@", "s3://b/../etc", "s3:/bucket", "runpod-volume:///x"):
        with pytest.raises(UserError):
            parse_url(bad)


def test_importing_the_engine_stays_light() -> None:
    code = ("import sys, flymigrate.transfer.engine, flymigrate.commands.transfer, flymigrate.commands.status;"
            "bad=[m for m in ('boto3','botocore','huggingface_hub','rich','modal','google.cloud.storage') if m in sys.modules];"
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(ROOT))
    assert r.returncode == 0, r.stdout + r.stderr


# ----------------------------------------------------------------------------------------- exit codes


def test_usage_errors_exit_2(tmp_path: Path, moto, bucket: str, base_env: dict[str, str]) -> None:
    src = make_files(tmp_path / "w", {"a.bin": b"abc"})
    cases = [
        (["transfer", "ftp://x/y", f"runpod-volume://{bucket}/m"], "unknown URL scheme"),
        (["transfer", str(tmp_path / "nope"), f"runpod-volume://{bucket}/m", "--endpoint-url", moto.url], "no such file"),
        (["transfer", str(src), "runpod-volume://no-such-volume/m", "--endpoint-url", moto.url], "not found"),
        (["transfer", str(src), "hf://org/repo"], "only be a source"),
        (["transfer", str(src), f"runpod-volume://{bucket}/m", "--endpoint-url", moto.url, "--parallel", "0"], "--parallel"),
    ]
    for args, needle in cases:
        r = run_cli(args, base_env)
        assert r.returncode == 2, (args, r.stderr)
        assert needle in r.stderr, (args, r.stderr)
    env = {k: v for k, v in base_env.items() if not k.startswith(("RUNPOD_", "AWS_ACCESS", "AWS_SECRET"))}
    r = run_cli(["transfer", str(src), f"runpod-volume://{bucket}/m", "--endpoint-url", moto.url], env)
    assert r.returncode == 2 and "RUNPOD_S3_ACCESS_KEY_ID" in r.stderr, r.stderr


def test_dry_run_lists_files_and_bytes_and_copies_nothing(tmp_path: Path, moto, bucket: str, base_env: dict[str, str]) -> None:
    src = make_files(tmp_path / "w", {"a.bin": b"x" * 1000, "d/b.bin": b"y" * 2000})
    r = run_cli(["transfer", str(src), f"runpod-volume://{bucket}/m", "--endpoint-url", moto.url, "--dry-run"], base_env)
    assert r.returncode == 0, r.stderr
    assert "a.bin" in r.stdout and "d/b.bin" in r.stdout
    assert "would copy 2 of 2 files" in r.stdout and "(3000 bytes)" in r.stdout
    assert read_s3(moto, bucket, "m") == {}


def test_status_lists_journals(tmp_path: Path, moto, bucket: str, base_env: dict[str, str]) -> None:
    assert "no transfers yet" in run_cli(["status"], base_env).stdout
    src = make_files(tmp_path / "w", {"a.bin": b"x" * 1000})
    assert run_cli(["transfer", str(src), f"runpod-volume://{bucket}/m", "--endpoint-url", moto.url, "--yes"],
                   base_env).returncode == 0
    r = run_cli(["status"], base_env)
    assert f"runpod-volume://{bucket}/m: finished" in r.stdout and "1 done, 0 in flight, 0 left" in r.stdout
    j = json.loads(run_cli(["status", "--format", "json"], base_env).stdout)
    assert j["schema"] == "flymigrate/status/v1" and j["transfers"][0]["files"] == {"done": 1}


def test_no_secret_anywhere(tmp_path: Path, moto, bucket: str, base_env: dict[str, str], state: Path) -> None:
    from servers.hf_hub import FakeHub

    hub = FakeHub({"acme/m": {"w.bin": os.urandom(2 * MiB + 5), "c.json": b"{}"}}, token=HF_TOKEN).start()
    env = dict(base_env, HF_ENDPOINT=hub.url, HF_TOKEN=HF_TOKEN, FLYMIGRATE_MAX_ATTEMPTS="2")
    try:
        outs = [
            run_cli(["transfer", "hf://acme/m", f"runpod-volume://{bucket}/m", "--endpoint-url", moto.url, "--yes",
                     "--part-size", "1MiB"], env),
            run_cli(["transfer", "hf://acme/m", f"runpod-volume://{bucket}/m", "--endpoint-url", moto.url, "--json"], env),
            run_cli(["status", "--format", "json"], env),
            run_cli(["transfer", "hf://acme/nope", f"runpod-volume://{bucket}/m", "--endpoint-url", moto.url], env),
            run_cli(["transfer", "hf://acme/m", "runpod-volume://missing/m", "--endpoint-url", moto.url], env),
            run_cli(["transfer", "hf://acme/m", "runpod-volume://x/m", "--endpoint-url", "http://127.0.0.1:9"], env),
        ]
    finally:
        hub.stop()
    assert outs[0].returncode == 0, outs[0].stderr
    for o in outs:
        for secret in (SECRET, HF_TOKEN):
            assert secret not in o.stdout and secret not in o.stderr
    files = [p for p in state.rglob("*") if p.is_file()]
    assert any(p.suffix == ".sqlite" for p in files) and any(p.name.endswith(".jsonl") for p in files)
    for p in files:
        blob = p.read_bytes()
        assert SECRET.encode() not in blob and HF_TOKEN.encode() not in blob, p
        assert oct(p.stat().st_mode & 0o777) == "0o600", p
    for d in [state, *[p for p in state.rglob("*") if p.is_dir()]]:
        assert oct(d.stat().st_mode & 0o777) == "0o700", d
    assert ACCESS  # the access key id is not a secret, but is not needed in output either


def test_second_run_on_same_journal_is_refused(tmp_path: Path, moto, bucket: str, base_env: dict[str, str]) -> None:
    src = make_files(tmp_path / "w", {"a.bin": os.urandom(4 * MiB)})
    with FaultyProxy("127.0.0.1", moto.port, delay=0.3) as proxy:
        args = ["transfer", str(src), f"runpod-volume://{bucket}/m", "--endpoint-url", proxy.url, "--yes",
                "--part-size", "1MiB", "--parallel", "1"]
        p = subprocess.Popen([sys.executable, "-m", "flymigrate", *args], env=base_env, cwd=str(ROOT),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while proxy.requests < 2:
                time.sleep(0.02)
            r = run_cli(args, base_env)
            assert r.returncode == 2 and "already running" in r.stderr, r.stderr
            assert "running" in run_cli(["status"], base_env).stdout
        finally:
            p.wait(timeout=60)
    assert p.returncode == 0


# --------------------------------------------------------------------------------------- engine, in-process


def _opts(state: Path, moto, **kw: object) -> TransferOptions:
    env = {"RUNPOD_S3_ACCESS_KEY_ID": ACCESS, "RUNPOD_S3_SECRET_ACCESS_KEY": SECRET,
           "AWS_ACCESS_KEY_ID": ACCESS, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_ENDPOINT_URL_S3": moto.url}
    base: dict[str, object] = dict(endpoint_url=moto.url, state_dir=state, env=env, part_size=1 * MiB, parallel=3,
                                   backoff_base=0.05)
    base.update(kw)
    return TransferOptions(**base)  # type: ignore[arg-type]


def test_local_tree_symlinks_and_special_files(tmp_path: Path, moto, bucket: str, state: Path) -> None:
    outside = make_files(tmp_path / "outside", {"secret.txt": b"nope"})
    src = make_files(tmp_path / "w", {"a.bin": b"a" * 10, "sub/b.bin": b"b" * 20})
    os.symlink("a.bin", src / "link-in.bin")
    os.symlink(str(outside / "secret.txt"), src / "link-out.txt")
    os.symlink(".", src / "sub" / "loop")
    os.symlink("missing", src / "dangling")
    os.mkfifo(src / "fifo")
    events: list[Event] = []
    res = run_transfer(str(src), f"runpod-volume://{bucket}/m", _opts(state, moto), progress=events.append)
    got = read_s3(moto, bucket, "m")
    assert got == {"a.bin": b"a" * 10, "sub/b.bin": b"b" * 20, "link-in.bin": b"a" * 10}
    warnings = " ".join(res.warnings)
    assert "link-out.txt" in warnings and "outside" in warnings
    assert "fifo" in warnings and "dangling" in warnings and "loop" in warnings
    kinds = {e.kind for e in events}
    assert {"plan", "file_start", "bytes", "file_done", "done", "warning"} <= kinds
    assert res.files_copied == 3 and res.ok


def test_stop_midway_then_resume_reuses_parts(tmp_path: Path, moto, bucket: str, state: Path) -> None:
    data = os.urandom(10 * MiB)
    src = make_files(tmp_path / "w", {"big.bin": data})
    stop = threading.Event()

    def cb(ev: Event) -> None:
        if ev.kind == "bytes":
            stop.set()

    with pytest.raises(Interrupted):
        run_transfer(str(src), f"runpod-volume://{bucket}/m", _opts(state, moto, stop=stop), progress=cb)
    res = run_transfer(str(src), f"runpod-volume://{bucket}/m", _opts(state, moto))
    assert res.bytes_reused >= 1 * MiB
    assert res.bytes_sent + res.bytes_reused == len(data)
    assert read_s3(moto, bucket, "m")["big.bin"] == data


def test_changed_source_restarts_and_aborts_the_old_upload(tmp_path: Path, moto, bucket: str, state: Path) -> None:
    src = make_files(tmp_path / "w", {"big.bin": os.urandom(6 * MiB)})
    stop = threading.Event()
    with pytest.raises(Interrupted):
        run_transfer(str(src), f"runpod-volume://{bucket}/m", _opts(state, moto, stop=stop),
                     progress=lambda e: stop.set() if e.kind == "bytes" else None)
    c = moto.client()
    assert len(c.list_multipart_uploads(Bucket=bucket).get("Uploads", [])) == 1
    new = os.urandom(5 * MiB)
    (src / "big.bin").write_bytes(new)
    events: list[Event] = []
    res = run_transfer(str(src), f"runpod-volume://{bucket}/m", _opts(state, moto), progress=events.append)
    assert res.bytes_reused == 0
    assert any("source changed" in e.message for e in events)
    assert read_s3(moto, bucket, "m")["big.bin"] == new
    assert not c.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_abandoned_uploads_for_our_keys_are_cleaned_up(tmp_path: Path, moto, bucket: str, state: Path) -> None:
    c = moto.client()
    c.create_multipart_upload(Bucket=bucket, Key="m/a.bin")
    c.create_multipart_upload(Bucket=bucket, Key="m/someone-elses.bin")
    src = make_files(tmp_path / "w", {"a.bin": b"x" * 100})
    events: list[Event] = []
    run_transfer(str(src), f"runpod-volume://{bucket}/m", _opts(state, moto), progress=events.append)
    left = [u["Key"] for u in c.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    assert left == ["m/someone-elses.bin"]
    assert any(e.kind == "cleanup" for e in events)


def test_identical_file_already_there_is_skipped_without_journal(tmp_path: Path, moto, bucket: str, state: Path) -> None:
    small, big = os.urandom(1000), os.urandom(3 * MiB + 1)
    c = moto.client()
    c.put_object(Bucket=bucket, Key="m/small.bin", Body=small)  # plain ETag = md5
    src = make_files(tmp_path / "w", {"small.bin": small, "big.bin": big})
    run_transfer(str(src), f"runpod-volume://{bucket}/m", _opts(state / "one", moto))
    res = run_transfer(str(src), f"runpod-volume://{bucket}/m", _opts(state / "two", moto))  # fresh journal
    assert res.files_skipped == 2 and res.bytes_sent == 0


def test_s3_single_object_source(tmp_path: Path, moto, bucket: str, state: Path) -> None:
    c = moto.client()
    c.create_bucket(Bucket=bucket + "-src")
    data = os.urandom(2 * MiB + 3)
    c.put_object(Bucket=bucket + "-src", Key="models/one.safetensors", Body=data)
    run_transfer(f"s3://{bucket}-src/models/one.safetensors", f"runpod-volume://{bucket}/m", _opts(state, moto))
    assert read_s3(moto, bucket, "m") == {"one.safetensors": data}


def test_peak_memory_stays_flat_for_a_local_source(tmp_path: Path, moto, bucket: str, base_env: dict[str, str]) -> None:
    """64 MiB parts x 8 in flight would be 512 MiB if parts were buffered; streamed, RSS stays small."""
    import threading as th

    src = tmp_path / "w"
    src.mkdir()
    with open(src / "big.bin", "wb") as f:
        f.writelines(os.urandom(8 * MiB) for _ in range(12))
    p = subprocess.Popen([sys.executable, "-m", "flymigrate", "transfer", str(src), f"runpod-volume://{bucket}/m",
                          "--endpoint-url", moto.url, "--yes", "--part-size", "16MiB", "--parallel", "6"],
                         env=base_env, cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = [0]
    done = th.Event()

    def watch() -> None:
        while not done.is_set():
            try:
                for line in open(f"/proc/{p.pid}/status"):
                    if line.startswith("VmHWM:"):
                        peak[0] = max(peak[0], int(line.split()[1]))
            except (OSError, ValueError):
                pass
            done.wait(0.02)

    t = th.Thread(target=watch, daemon=True)
    t.start()
    _, err = p.communicate(timeout=120)
    done.set()
    assert p.returncode == 0, err
    assert peak[0] / 1024 < 150, f"peak RSS {peak[0] / 1024:.0f} MiB"


def _stop_after(nbytes: int) -> tuple[threading.Event, Any]:
    """A stop event and a progress callback that sets it once ``nbytes`` have been sent."""
    stop = threading.Event()
    sent = [0]

    def cb(ev: Event) -> None:
        if ev.kind == "bytes":
            sent[0] += ev.bytes
            if sent[0] >= nbytes:
                stop.set()

    return stop, cb


def test_lost_journal_adopts_the_unfinished_upload_on_the_server(tmp_path: Path, moto, bucket: str, state: Path) -> None:
    data = os.urandom(8 * MiB)
    src = make_files(tmp_path / "w", {"big.bin": data})
    stop, cb = _stop_after(3 * MiB)

    with pytest.raises(Interrupted):
        run_transfer(str(src), f"runpod-volume://{bucket}/m", _opts(state / "a", moto, stop=stop, parallel=1), progress=cb)
    events: list[Event] = []
    res = run_transfer(str(src), f"runpod-volume://{bucket}/m", _opts(state / "b", moto, parallel=1),
                       progress=events.append)  # a different state dir: no journal
    assert any("found an unfinished upload" in e.message for e in events)
    assert res.bytes_reused >= 3 * MiB
    assert read_s3(moto, bucket, "m")["big.bin"] == data
    assert not moto.client().list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_buffered_source_stop_then_resume_reuses_parts(moto, bucket: str, state: Path) -> None:
    """An HTTP-style source (S3 here; HF takes the same path): parts on the server are re-read, not re-sent."""
    c = moto.client()
    c.create_bucket(Bucket=bucket + "-src")
    data = os.urandom(9 * MiB + 17)
    c.put_object(Bucket=bucket + "-src", Key="models/w.bin", Body=data)
    stop, cb = _stop_after(3 * MiB)

    url = f"s3://{bucket}-src/models"
    with pytest.raises(Interrupted):
        run_transfer(url, f"runpod-volume://{bucket}/m", _opts(state, moto, stop=stop, parallel=2), progress=cb)
    res = run_transfer(url, f"runpod-volume://{bucket}/m", _opts(state, moto, parallel=2))
    assert res.bytes_reused >= 3 * MiB
    assert res.bytes_sent + res.bytes_reused == len(data)
    assert read_s3(moto, bucket, "m") == {"w.bin": data}


def test_uploads_never_run_far_ahead_of_the_hasher(tmp_path: Path, moto, bucket: str, state: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The sha256 pass is on the critical path: with a slow hasher, a part may only start once the hasher is
    within ``lead`` parts of it (max(2, parallel // 2)); otherwise it finishes alone after the last upload."""
    from flymigrate.transfer import local, s3

    data = os.urandom(12 * MiB)
    src = make_files(tmp_path / "w", {"big.bin": data})
    hashed = [0]
    starts: list[tuple[int, int]] = []
    real_open = local.LocalSource.open

    class SlowHashRead:
        def __init__(self, f: object) -> None:
            self.f = f

        def readinto(self, b: object) -> int:
            time.sleep(0.03)
            n = self.f.readinto(b)  # type: ignore[attr-defined]
            hashed[0] += n
            return n

        def close(self) -> None:
            self.f.close()  # type: ignore[attr-defined]

    def open_(self: object, entry: object, offset: int = 0) -> object:
        f = real_open(self, entry, offset)  # type: ignore[arg-type]
        return SlowHashRead(f) if threading.current_thread().name == "fm-hash" else f

    real_write = s3.S3Upload.write_part

    def write_part(self: object, number: int, body: object) -> object:
        starts.append((number, hashed[0]))
        return real_write(self, number, body)  # type: ignore[arg-type]

    monkeypatch.setattr(local.LocalSource, "open", open_)
    monkeypatch.setattr(s3.S3Upload, "write_part", write_part)
    res = run_transfer(str(src), f"runpod-volume://{bucket}/m", _opts(state, moto, parallel=4))
    assert res.ok and read_s3(moto, bucket, "m")["big.bin"] == data
    lead = 2
    assert len(starts) >= 12
    for number, done in starts:
        assert done >= (number - 1 - lead) * MiB, (number, done, starts)


# ------------------------------------------------------------------------ RunPod datacenter discovery


class _NotHere:
    """A datacenter's S3 API that does not have the volume: 404 NoSuchBucket to everything."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        seen = self.auth = []  # type: list[str]

        class H(BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:
                seen.append(self.headers.get("Authorization", ""))
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a: object) -> None:
                pass

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"

    def close(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()


def _closed_port() -> str:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


def test_runpod_datacenter_is_found_by_asking_each_one(tmp_path: Path, moto, bucket: str, base_env: dict[str, str]) -> None:
    files = {"model.bin": os.urandom(3 * MiB), "config.json": b"{}"}
    src = make_files(tmp_path / "w", files)
    other = _NotHere()
    try:
        env = dict(base_env, FLYMIGRATE_RUNPOD_S3_ENDPOINTS=json.dumps(
            {"US-KS-2": other.url, "EU-RO-1": moto.url, "EU-CZ-1": _closed_port()}))
        r = run_cli(["transfer", str(src), f"runpod-volume://{bucket}/m", "--yes"], env)
        assert r.returncode == 0, r.stderr
        assert "is in EU-RO-1" in r.stderr and "--datacenter EU-RO-1" in r.stderr
        assert read_s3(moto, bucket, "m") == files
        # the probe is signed for that datacenter's region with the account's S3 keys, and shows no secret
        assert other.auth and all("/US-KS-2/s3/aws4_request" in a and ACCESS in a for a in other.auth)
        assert SECRET not in r.stdout + r.stderr

        r = run_cli(["transfer", str(src), "runpod-volume://no-such-volume/m", "--yes"], env)
        assert r.returncode == 2, r.stderr
        assert "was not found in any datacenter" in r.stderr and "EU-CZ-1" in r.stderr and "Traceback" not in r.stderr
    finally:
        other.close()


def test_runpod_datacenter_probe_reports_refused_keys_and_no_network(tmp_path: Path, moto, base_env: dict[str, str]) -> None:
    src = make_files(tmp_path / "w", {"a.bin": b"x"})
    with FaultyProxy("127.0.0.1", moto.port) as proxy:
        proxy.deny = True  # 403 InvalidAccessKeyId everywhere
        env = dict(base_env, FLYMIGRATE_RUNPOD_S3_ENDPOINTS=json.dumps({"EU-RO-1": proxy.url, "US-KS-2": proxy.url}))
        r = run_cli(["transfer", str(src), "runpod-volume://vol/m", "--yes"], env)
    assert r.returncode == 2 and "refused the keys" in r.stderr, r.stderr
    env = dict(base_env, FLYMIGRATE_RUNPOD_S3_ENDPOINTS=json.dumps({"EU-RO-1": _closed_port()}))
    r = run_cli(["transfer", str(src), "runpod-volume://vol/m", "--yes"], env)
    assert r.returncode == 4 and "could not reach" in r.stderr, r.stderr
    r = run_cli(["transfer", str(src), "runpod-volume://vol/m", "--yes"], dict(env, FLYMIGRATE_RUNPOD_S3_ENDPOINTS="[1]"))
    assert r.returncode == 2 and "JSON object" in r.stderr, r.stderr


# ------------------------------------------------------------------------------ credentials from a file


def test_tigris_credentials_from_the_apps_secrets_file(tmp_path: Path, moto, bucket: str, base_env: dict[str, str],
                                                       state: Path) -> None:
    """`fly storage create` put Tigris's AWS_* into the app's secrets: the export supplies them (never argv)."""
    import sqlite3

    src_bucket = "tigris-" + bucket
    c = moto.client()
    c.create_bucket(Bucket=src_bucket)
    data = os.urandom(3 * MiB + 1)
    c.put_object(Bucket=src_bucket, Key="models/m.bin", Body=data)
    secret = "tsec_CANARY-" + bucket
    env_file = tmp_path / "app.env"
    env_file.write_text(f"AWS_ACCESS_KEY_ID=tid_CANARYKEY\nAWS_SECRET_ACCESS_KEY={secret}\n"
                        f"AWS_ENDPOINT_URL_S3={moto.url}\nAWS_REGION=auto\nBUCKET_NAME={src_bucket}\n")
    env_file.chmod(0o600)
    env = {k: v for k, v in base_env.items() if not k.startswith("AWS_")}
    args = ["transfer", f"s3://{src_bucket}/models/", f"runpod-volume://{bucket}/m", "--endpoint-url", moto.url, "--yes"]
    r = run_cli(args, env)
    assert r.returncode == 2 and "credentials" in r.stderr, r.stderr  # nothing in the environment
    r = run_cli([*args, "--secrets", str(env_file)], env)
    assert r.returncode == 0, r.stderr
    assert read_s3(moto, bucket, "m") == {"m.bin": data}
    assert "credentials from" in r.stderr and "AWS_SECRET_ACCESS_KEY" in r.stderr
    assert secret not in r.stdout + r.stderr
    for p in state.rglob("*"):
        if p.is_file():
            assert secret.encode() not in p.read_bytes(), p
    db = sqlite3.connect(next((state / "transfers").glob("*.sqlite")))
    args_meta = dict(db.execute("SELECT * FROM meta").fetchall())["cli_args"]
    db.close()
    assert str(env_file) in args_meta  # `flymigrate status` prints a continue command that finds them again
    names_only = tmp_path / "names.json"
    names_only.write_text(json.dumps([{"name": "AWS_ACCESS_KEY_ID", "digest": "x"}]))
    r = run_cli([*args, "--secrets", str(names_only)], env)
    assert r.returncode == 2 and "hold no values" in r.stderr, r.stderr
