"""fly-volume:// source through a stand-in flyctl (tests/transfer_dest/fake_flyctl.py)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from servers.gcs_emulator import GcsEmulator

from .conftest import run_cli
from .fixtures import FlyWorld, read_gcs

FILES = {
    "config.json": b'{"a": 1}',
    "blobs/model.safetensors": os.urandom(2 * 1024 * 1024 + 321),
    "name with space.txt": b"x" * 10,
    "empty": b"",
}


class _GsOut:
    """A fresh gs:// destination on the emulator (local folders are not a destination yet)."""

    def __init__(self, emu: GcsEmulator) -> None:
        self.emu = emu
        self.bucket = "fly-" + uuid.uuid4().hex[:10]
        emu.client().create_bucket(self.bucket)
        self.url = f"gs://{self.bucket}/out"

    def read(self) -> dict[str, bytes]:
        return read_gcs(self.emu, self.bucket, "out")

    def put(self, rel: str, data: bytes) -> None:
        self.emu.client().bucket(self.bucket).blob(f"out/{rel}").upload_from_string(data)


@pytest.fixture
def out(gcs_emu: GcsEmulator) -> _GsOut:
    return _GsOut(gcs_emu)


@pytest.fixture
def genv(env: dict[str, str], gcs_emu: GcsEmulator, fly_world: FlyWorld) -> dict[str, str]:
    return {**env, **gcs_emu.env(), **fly_world.env()}


def _assert_helper_gone(world: FlyWorld) -> None:
    assert world.machines() == []
    calls = world.calls()
    runs = [c for c in calls if c[:2] == ["machine", "run"]]
    destroys = [c for c in calls if c[:2] == ["machine", "destroy"]]
    assert runs and destroys, calls
    assert all(not v["attached_machine_id"] for v in world.load()["apps"][world.app]["volumes"])


def test_copy_helper_removed_and_args_safe(fly_world: FlyWorld, genv: dict[str, str], out: _GsOut) -> None:
    fly_world.add_volume("acme_models", FILES)
    env = {**genv, "FLY_API_TOKEN": "FlyV1 CANARY-fly-token-3c1d"}
    r = run_cli(["transfer", "fly-volume://acme-chat/acme_models/models/hf", out.url, "--yes", "--part-size", "1MiB"], env)
    assert r.returncode == 0, r.stderr
    assert out.read() == FILES
    _assert_helper_gone(fly_world)
    run = next(c for c in fly_world.calls() if c[:2] == ["machine", "run"])
    assert "--vm-size" in run and run[run.index("--vm-size") + 1] == "shared-cpu-1x"
    assert any(a.startswith("flymigrate-helper=vol_") for a in run)
    ssh = [c for c in fly_world.calls() if c[:2] == ["ssh", "console"]]
    assert ssh and all("--pty" not in c for c in ssh)
    # the token travels in the environment only
    for rec in fly_world.log_records():
        assert rec["token_in_env"]
        assert not any("CANARY" in a for a in rec["argv"])
    assert "CANARY" not in r.stdout + r.stderr


def test_stream_cut_resumes_from_offset(fly_world: FlyWorld, genv: dict[str, str], out: _GsOut, tmp_path: Path) -> None:
    fly_world.add_volume("acme_models", {"big.bin": FILES["blobs/model.safetensors"]})
    mark = tmp_path / "cut-once"
    env = {**genv, "FAKE_FLY_SSH_CUT": str(1_600_000), "FAKE_FLY_SSH_CUT_MARK": str(mark)}
    r = run_cli(["transfer", "fly-volume://acme-chat/acme_models/models/hf", out.url, "--yes", "--part-size", "1MiB"], env)
    assert r.returncode == 0, r.stderr
    assert mark.exists()
    assert out.read() == {"big.bin": FILES["blobs/model.safetensors"]}
    reads = [c[-1] for c in fly_world.calls() if c[:2] == ["ssh", "console"] and "tail -c +" in c[-1]]
    assert reads and "tail -c +1048577" in reads[0], reads  # resumed at the start of the 1 MiB part that broke
    _assert_helper_gone(fly_world)


def test_helper_removed_after_failure_midway(fly_world: FlyWorld, genv: dict[str, str], out: _GsOut) -> None:
    fly_world.add_volume("acme_models", FILES)
    out.put("config.json", b"conflicting")  # the engine refuses to overwrite -> exit 2, after the listing
    r = run_cli(["transfer", "fly-volume://acme-chat/acme_models/models/hf", out.url, "--yes"], genv)
    assert r.returncode == 2, r.stderr
    _assert_helper_gone(fly_world)


def test_helper_removed_after_remote_failure(fly_world: FlyWorld, genv: dict[str, str], out: _GsOut, gcs_emu: GcsEmulator) -> None:
    """The destination keeps failing (every upload answered 503): exit 3, helper still removed."""
    from servers.faulty_proxy import FaultyProxy

    fly_world.add_volume("acme_models", FILES)
    with FaultyProxy("127.0.0.1", gcs_emu.port, error_rate=1.0, only_methods={"PUT"}, seed=3) as proxy:
        env = {**genv, "STORAGE_EMULATOR_HOST": proxy.url}
        r = run_cli(["transfer", "fly-volume://acme-chat/acme_models/models/hf", out.url, "--yes"], env)
    assert r.returncode == 3, r.stderr
    _assert_helper_gone(fly_world)


def test_half_created_helper_is_found_and_removed(fly_world: FlyWorld, genv: dict[str, str], out: _GsOut) -> None:
    fly_world.add_volume("acme_models", FILES)
    r = run_cli(["transfer", "fly-volume://acme-chat/acme_models/models/hf", out.url, "--yes"],
                {**genv, "FAKE_FLY_FAIL_RUN": "1"})
    # `machine run` failed after creating the machine; the retry finds it by its metadata and uses it
    assert r.returncode == 0, r.stderr
    assert len([c for c in fly_world.calls() if c[:2] == ["machine", "run"]]) == 1
    assert fly_world.machines() == [], fly_world.calls()


def test_reuses_leftover_helper_then_removes_it(fly_world: FlyWorld, genv: dict[str, str], out: _GsOut) -> None:
    vid = fly_world.add_volume("acme_models", FILES)
    st = fly_world.load()
    st["apps"]["acme-chat"]["machines"].append(
        {"id": "mleft0ver", "state": "stopped", "config": {"metadata": {"flymigrate-helper": vid},
                                                            "mounts": [{"volume": vid, "path": "/flymigrate-src"}]}})
    st["apps"]["acme-chat"]["volumes"][0]["attached_machine_id"] = "mleft0ver"
    fly_world.save()
    r = run_cli(["transfer", f"fly-volume://acme-chat/{vid}/models/hf", out.url, "--yes"], genv)
    assert r.returncode == 0, r.stderr
    calls = fly_world.calls()
    assert ["machine", "start", "mleft0ver", "-a", "acme-chat"] in calls
    assert not [c for c in calls if c[:2] == ["machine", "run"]]
    assert fly_world.machines() == []


def test_attached_to_other_machine_is_a_clear_error(fly_world: FlyWorld, genv: dict[str, str], out: _GsOut) -> None:
    fly_world.add_volume("acme_models", FILES)
    st = fly_world.load()
    st["apps"]["acme-chat"]["volumes"][0]["attached_machine_id"] = "mgpu123"
    fly_world.save()
    r = run_cli(["transfer", "fly-volume://acme-chat/acme_models/models/hf", out.url, "--yes"], genv)
    assert r.returncode == 2
    assert "mgpu123" in r.stderr and "volumes fork" in r.stderr


def test_not_logged_in_and_missing_flyctl(fly_world: FlyWorld, genv: dict[str, str], out: _GsOut, tmp_path: Path) -> None:
    fly_world.add_volume("acme_models", FILES)
    st = fly_world.load()
    st["logged_in"] = False
    fly_world.save()
    r = run_cli(["transfer", "fly-volume://acme-chat/acme_models/models/hf", out.url, "--yes"], genv)
    assert r.returncode == 2 and "flyctl auth login" in r.stderr, r.stderr
    r = run_cli(["transfer", "fly-volume://acme-chat/acme_models/models/hf", out.url, "--yes"],
                {**genv, "PATH": str(tmp_path / "empty-bin")})
    assert r.returncode == 2 and "flyctl was not found on PATH" in r.stderr, r.stderr


def test_unknown_volume_and_path(fly_world: FlyWorld, genv: dict[str, str], out: _GsOut) -> None:
    fly_world.add_volume("acme_models", FILES)
    e = genv
    r = run_cli(["transfer", "fly-volume://acme-chat/nope/models", out.url, "--yes"], e)
    assert r.returncode == 2 and "no volume named 'nope'" in r.stderr and "acme_models" in r.stderr
    r = run_cli(["transfer", "fly-volume://acme-chat/acme_models/not/there", out.url, "--yes"], e)
    assert r.returncode == 2 and "no such file or folder" in r.stderr, r.stderr
    assert fly_world.machines() == []


def test_single_file_path(fly_world: FlyWorld, genv: dict[str, str], out: _GsOut) -> None:
    fly_world.add_volume("acme_models", FILES)
    r = run_cli(["transfer", "fly-volume://acme-chat/acme_models/models/hf/blobs/model.safetensors", out.url, "--yes"], genv)
    assert r.returncode == 0, r.stderr
    assert out.read() == {"model.safetensors": FILES["blobs/model.safetensors"]}


def test_dry_run_prints_flyctl_commands_and_starts_nothing(fly_world: FlyWorld, env: dict[str, str], tmp_path: Path) -> None:
    fly_world.add_volume("acme_models", FILES)
    r = run_cli(["transfer", "fly-volume://acme-chat/acme_models/models/hf", "gs://b/x", "--dry-run"], {**env, **fly_world.env()})
    assert r.returncode == 0, r.stderr
    assert "flyctl machine run alpine:3.20 -a acme-chat" in r.stdout
    assert "flyctl ssh console -a acme-chat --machine" in r.stdout
    assert "flyctl machine destroy" in r.stdout
    assert not [c for c in fly_world.calls() if c[:2] in (["machine", "run"], ["ssh", "console"])]


def test_import_does_not_load_vendor_sdks() -> None:
    import subprocess
    import sys

    code = ("import sys, flymigrate.transfer, flymigrate.transfer.gcs, flymigrate.transfer.modal_volume, "
            "flymigrate.transfer.fly_volume; bad=[m for m in sys.modules if m.split('.')[0] in "
            "('modal','google','grpclib','requests')]; print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("path", ["", "models"])
def test_list_script_roundtrip(tmp_path: Path, path: str) -> None:
    """The remote listing script, run by a local sh: NUL records survive odd names."""
    import subprocess

    from flymigrate.transfer.fly_volume import MOUNT, list_script

    root = tmp_path / "vol"
    (root / "models" / "a\tb").mkdir(parents=True)
    (root / "models" / "a\tb" / "x\ny").write_bytes(b"123")
    script = list_script(path).replace(MOUNT, str(root))
    out = subprocess.run(["sh", "-c", script], capture_output=True, check=True).stdout
    kind, _, body = out.partition(b"\0")
    assert kind == b"dir"
    recs = [r for r in body.split(b"\0") if r]
    assert len(recs) == 1
    size, sha, rel = recs[0].split(b"\t", 2)
    assert size == b"3" and rel == (b"models/" if not path else b"") + b"a\tb/x\ny"
