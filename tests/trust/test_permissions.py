"""Staging and state files are private (dirs 0700, files 0600) even under umask 000; secrets files readable by
other users get a warning (plan and apply)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import ROOT, Sandbox
from leak import Canaries


def run0(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The CLI under umask 000: whatever it creates gets exactly the mode it asks for."""
    return subprocess.run([sys.executable, "-m", "flymigrate", *args], env=env, cwd=str(ROOT), capture_output=True, check=False,
                          text=True, timeout=180, preexec_fn=lambda: os.umask(0))


def loose(root: Path) -> list[str]:
    bad = []
    for d, dirs, files in os.walk(root):
        for n in dirs:
            m = stat.S_IMODE(os.lstat(os.path.join(d, n)).st_mode)
            if m & 0o077:
                bad.append(f"dir {os.path.join(d, n)} {m:o}")
        for n in files:
            p = os.path.join(d, n)
            m = stat.S_IMODE(os.lstat(p).st_mode)
            if m & 0o077 and not stat.S_ISLNK(os.lstat(p).st_mode):
                bad.append(f"file {p} {m:o}")
    return bad


def test_transfer_state_is_private_under_umask_0(sandbox: Sandbox, moto) -> None:
    src = sandbox.root / "w"
    src.mkdir()
    (src / "a.bin").write_bytes(os.urandom(3 << 20))
    b = "perm-" + uuid.uuid4().hex[:10]
    moto.client().create_bucket(Bucket=b)
    env = dict(sandbox.env, AWS_ACCESS_KEY_ID="AKID", AWS_SECRET_ACCESS_KEY="x" * 20, AWS_ENDPOINT_URL_S3=moto.url,
               AWS_REGION="us-east-1")
    r = run0(["transfer", str(src), f"s3://{b}/p", "--yes", "--part-size", "1MiB"], env)
    assert r.returncode == 0, r.stderr
    assert sandbox.state.exists()
    assert stat.S_IMODE(sandbox.state.stat().st_mode) == 0o700
    assert not loose(sandbox.state), loose(sandbox.state)
    # an existing, too-open state dir is tightened
    sandbox.state.chmod(0o755)
    r = run0(["transfer", str(src), f"s3://{b}/p", "--yes"], env)
    assert r.returncode == 0, r.stderr
    assert not loose(sandbox.state), loose(sandbox.state)


def test_modal_staging_is_private_under_umask_0(sandbox: Sandbox, moto) -> None:
    from servers.modal_fake import ModalFake

    fake = ModalFake().start()
    try:
        src = sandbox.root / "w"
        src.mkdir()
        (src / "big.bin").write_bytes(os.urandom(2 << 20))
        env = dict(sandbox.env, **fake.env(home=str(sandbox.home)))
        # slow the upload so the staging file can be seen while it exists
        r = run0(["transfer", str(src), "modal-volume://permvol/m", "--yes"], env)
        assert r.returncode == 0, r.stderr
        assert not loose(sandbox.state), loose(sandbox.state)
    finally:
        fake.stop()


def test_crash_log_is_private_under_umask_0(sandbox: Sandbox, example_app: Path) -> None:
    shim = sandbox.root / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text("import flymigrate.render as r\n"
                                           "def boom(*a, **k):\n    raise RuntimeError('x')\n"
                                           "r.render = boom\n")
    env = dict(sandbox.env, PYTHONPATH=f"{shim}:{sandbox.env['PYTHONPATH']}")
    r = run0(["plan", str(example_app), "--to", "modal"], env)
    assert r.returncode == 1 and "crash" in r.stderr, r.stderr
    assert list((sandbox.state / "crash").glob("*.log"))
    assert not loose(sandbox.state), loose(sandbox.state)


@pytest.mark.parametrize("mode,warn", [(0o644, True), (0o640, True), (0o604, True), (0o600, False), (0o400, False)])
def test_readable_secrets_file_warns(sandbox: Sandbox, example_app: Path, canaries: Canaries, mode: int,
                                     warn: bool) -> None:
    p = canaries.write_secrets(sandbox.root / "secrets.env", mode=mode)
    r = run0(["plan", str(example_app), "--to", "modal", "--secrets", str(p)], sandbox.env)
    assert r.returncode == 0, r.stderr
    assert ("readable by other users" in r.stdout + r.stderr) == warn, r.stdout
    assert ("chmod 600" in r.stdout + r.stderr) == warn


def test_apply_state_and_backups_are_private(sandbox: Sandbox, example_app: Path, canaries: Canaries) -> None:
    secrets = canaries.write_secrets(sandbox.root / "secrets.env", mode=0o644)
    r = run0(["apply", str(example_app), "--to", "cloudrun", "--yes", "--skip", "weights",
              "--secrets", str(secrets), "--base-url",
              "https://new.example.com"], sandbox.env)
    assert r.returncode in (0, 4), r.stderr[-2000:]
    assert "readable by other users" in r.stdout + r.stderr, (r.stdout + r.stderr)[-2000:]
    st = example_app / ".flymigrate"
    assert st.exists(), r.stderr
    assert not loose(st), loose(st)
