"""A dry run that is dry and quick; a `status` that lists only real runs, each with a "continue with" line that
works; Modal's message when there are no credentials at all; no ETA before the rate is known."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from servers.faulty_proxy import FaultyProxy
from servers.hf_hub import FakeHub

from .conftest import HF_TOKEN, ROOT, make_files, read_s3, run_cli

MiB = 1024 * 1024


def _journals(state: Path) -> list[Path]:
    return sorted((state / "transfers").glob("*.sqlite")) if (state / "transfers").exists() else []


def test_dry_run_without_destination_credentials_lists_the_source_and_says_what_it_could_not_check(
        tmp_path: Path, base_env: dict[str, str], state: Path) -> None:
    src = make_files(tmp_path / "w", {"a.bin": b"x" * 1000, "b/c.json": b"{}"})
    env = {k: v for k, v in base_env.items() if not k.startswith(("AWS_", "RUNPOD_"))}
    t0 = time.monotonic()
    r = run_cli(["transfer", str(src), "runpod-volume://vol1/m", "--dry-run", "--endpoint-url", "http://127.0.0.1:9"], env)
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 30
    assert "would copy 2 of 2 files" in r.stdout
    assert "could not check the destination" in r.stdout and "RUNPOD_S3_ACCESS_KEY_ID" in r.stdout
    assert _journals(state) == []  # dry: nothing written
    assert "no transfers yet" in run_cli(["status"], base_env).stdout


def test_dry_run_with_an_unreachable_destination_answers_in_seconds(tmp_path: Path, base_env: dict[str, str],
                                                                    state: Path) -> None:
    src = make_files(tmp_path / "w", {"a.bin": b"x" * 1000})
    t0 = time.monotonic()
    r = run_cli(["transfer", str(src), "s3://bkt/m", "--dry-run", "--endpoint-url", "http://127.0.0.1:9"], base_env)
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert "could not check the destination" in r.stdout and "State is saved" not in r.stdout + r.stderr
    assert took < 20, took
    assert _journals(state) == []


def test_dry_run_with_an_unreachable_source_stops_in_seconds_without_talk_of_saved_state(
        base_env: dict[str, str], state: Path) -> None:
    env = dict(base_env, HF_ENDPOINT="http://127.0.0.1:9", HF_TOKEN=HF_TOKEN)
    t0 = time.monotonic()
    r = run_cli(["transfer", "hf://acme/model", "s3://bkt/m", "--dry-run"], env)
    took = time.monotonic() - t0
    assert r.returncode == 4, r.stderr
    assert "dry run: could not list hf://acme/model" in r.stderr and "Nothing was saved" in r.stderr
    assert "State is saved" not in r.stderr
    assert took < 20, took
    assert _journals(state) == []


def test_refused_commands_leave_nothing_for_status(tmp_path: Path, moto, bucket: str, base_env: dict[str, str],
                                                   state: Path) -> None:
    src = make_files(tmp_path / "weights", {"a.bin": b"1" * 10})
    r = run_cli(["transfer", str(src), "hf://x/y", "--yes"], base_env)  # hf:// is a source only
    assert r.returncode == 2, r.stderr
    moto.client().put_object(Bucket=bucket, Key="m/a.bin", Body=b"2" * 10)  # a conflict: refused, exit 2
    r = run_cli(["transfer", str(src), f"runpod-volume://{bucket}/m", "--yes", "--endpoint-url", moto.url], base_env)
    assert r.returncode == 2 and "--overwrite" in r.stderr, r.stderr
    assert _journals(state) == []
    assert "no transfers yet" in run_cli(["status"], base_env).stdout


def test_every_continue_with_line_is_a_command_that_works(tmp_path: Path, moto, bucket: str,
                                                          base_env: dict[str, str], state: Path) -> None:
    """Stopped part-way from a relative source path; the printed command, run from another directory, finishes
    the copy with the same part size (the parts already sent are kept, not re-sent) and --overwrite."""
    data = os.urandom(10 * MiB)
    work = tmp_path / "proj"
    make_files(work / "weights", {"big.bin": data})
    moto.client().put_object(Bucket=bucket, Key="m/big.bin", Body=b"old")  # replaced only with --overwrite
    proxy = FaultyProxy("127.0.0.1", moto.port, delay=0.05).start()
    try:
        args = [sys.executable, "-m", "flymigrate", "transfer", "./weights", f"runpod-volume://{bucket}/m", "--yes",
                "--endpoint-url", proxy.url, "--part-size", "1MiB", "--parallel", "2", "--overwrite"]
        p = subprocess.Popen(args, env=base_env, cwd=str(work), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        while proxy.received_body_bytes < 3 * MiB and p.poll() is None:
            time.sleep(0.01)
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=60)
        assert p.returncode == 130
        st = run_cli(["status"], base_env).stdout
        line = next(ln for ln in st.splitlines() if "continue with:" in ln)
        cmd = shlex.split(line.split("continue with:", 1)[1])
        assert cmd[0] == "flymigrate" and "--overwrite" in cmd and str(work / "weights") in cmd, cmd
        proxy.reset_counters()
        r = subprocess.run([sys.executable, "-m", "flymigrate", *cmd[1:]], env=base_env, cwd=str(tmp_path),
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert "already on the server" in r.stdout
        assert proxy.request_body_bytes < len(data)  # the parts sent before the stop were kept
    finally:
        proxy.stop()
    assert read_s3(moto, bucket, "m")["big.bin"] == data
    assert "continue with" not in run_cli(["status"], base_env).stdout


def test_modal_without_any_credentials_says_none_were_found_and_where_they_are_read(
        tmp_path: Path, base_env: dict[str, str]) -> None:
    src = make_files(tmp_path / "w", {"a": b"1"})
    env = {k: v for k, v in base_env.items() if not k.startswith("MODAL_")}
    env["MODAL_CONFIG_PATH"] = str(tmp_path / "none.toml")
    r = run_cli(["transfer", str(src), "modal-volume://v1/x", "--yes"], env)
    assert r.returncode == 2, r.stderr
    assert "no Modal credentials found" in r.stderr and "MODAL_TOKEN_ID" in r.stderr
    assert str(tmp_path / "none.toml") in r.stderr and "rejected" not in r.stderr


def test_no_eta_until_the_rate_is_known(monkeypatch, capsys) -> None:
    from flymigrate.commands import transfer as cmd
    from flymigrate.transfer.engine import Event

    now = [1000.0]
    monkeypatch.setattr(cmd.time, "monotonic", lambda: now[0])
    rep = cmd._Reporter(use_bars=False, json_out=False)
    rep(Event("plan", total=100 * MiB, data={"skipped": 0}))
    now[0] += 30  # a slow start (listing, a big resume check) must not turn into a huge ETA
    rep(Event("resumed", "f", bytes=40 * MiB, total=100 * MiB))
    rep(Event("bytes", "f", bytes=1 * MiB, total=100 * MiB))
    first = capsys.readouterr().err
    assert "progress:" in first and "eta" not in first and "/s" not in first, first
    now[0] += 4
    rep(Event("bytes", "f", bytes=8 * MiB, total=100 * MiB))  # 9 MiB sent in 4 s of sending: 2.25 MiB/s
    later = capsys.readouterr().err
    assert "2.2 MiB/s" in later and "eta 22s" in later, later  # (100 - 49) MiB left at 2.25 MiB/s


def test_dry_run_of_an_hf_repo_needs_no_destination(base_env: dict[str, str], state: Path) -> None:
    hub = FakeHub({"acme/model": {"config.json": b"{}", "w.bin": b"1" * 5000}}, token=HF_TOKEN).start()
    try:
        env = {k: v for k, v in base_env.items() if not k.startswith(("AWS_", "RUNPOD_"))}
        env.update(HF_ENDPOINT=hub.url, HF_TOKEN=HF_TOKEN)
        r = run_cli(["transfer", "hf://acme/model", "s3://nowhere/m", "--dry-run"], env)
    finally:
        hub.stop()
    assert r.returncode == 0, r.stderr
    assert "would copy 2 of 2 files" in r.stdout and "could not check the destination" in r.stdout
    assert _journals(state) == []
    _ = ROOT
