"""Remote names are untrusted: object keys and Hub file names such as ``../../etc/passwd``, absolute paths, ``..``
segments, NUL and control bytes, backslashes, and names that differ only in case must never escape the
destination prefix or the staging area. Through the real transfer CLI against moto, the Hub stand-in, the Modal
fake (its spool/staging) and the GCS emulator; the sandbox (HOME, TMPDIR, state) is snapshotted around each run."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from conftest import Sandbox, cli, no_traceback

HOSTILE = ["../../etc/passwd", "a/../../../escape.bin", "/abs/root.bin", "..", "./dot/./x.bin", "a//b.bin",
           "..\\..\\win.bin", "ok/..\\..\\mixed.bin", "ctl\nname.bin", "tab\tname.bin"]
SAFE = {"config.json": b"{}", "weights/model.safetensors": os.urandom(50_000)}


@pytest.fixture
def env(sandbox: Sandbox, moto) -> dict[str, str]:
    e = dict(sandbox.env)
    e.update(AWS_ACCESS_KEY_ID="AKID", AWS_SECRET_ACCESS_KEY="secret-key-xyz", RUNPOD_S3_ACCESS_KEY_ID="AKID",
             RUNPOD_S3_SECRET_ACCESS_KEY="secret-key-xyz", AWS_REGION="us-east-1", AWS_ENDPOINT_URL_S3=moto.url,
             FLYMIGRATE_MAX_ATTEMPTS="2")
    return e


def _s3_keys(moto, bucket: str) -> list[str]:
    c = moto.client()
    out = []
    for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        out += [o["Key"] for o in page.get("Contents", [])]
    return out


def _bucket(moto) -> str:
    b = "rn-" + uuid.uuid4().hex[:12]
    moto.client().create_bucket(Bucket=b)
    return b


def _outside_written(sandbox: Sandbox, before: dict) -> list[str]:  # type: ignore[type-arg]
    return [c for c in sandbox.changes(before) if not c[2:].startswith("state")]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_s3_key_to_s3_and_runpod(sandbox: Sandbox, moto, env: dict[str, str], name: str) -> None:
    src = _bucket(moto)
    c = moto.client()
    stored = f"models/{name}"  # "/abs" gives models//abs: the listed name starts with a slash
    try:
        c.put_object(Bucket=src, Key=stored, Body=b"evil")
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"moto refuses the key {stored!r}: {exc}")
    for k, v in SAFE.items():
        c.put_object(Bucket=src, Key=f"models/{k}", Body=v)
    listed = [k for k in _s3_keys(moto, src) if c.get_object(Bucket=src, Key=k)["Body"].read() == b"evil"]
    assert listed, "moto normalised the key away"
    for dst_url in ("s3://{b}/dst/p", "runpod-volume://{b}/dst/p"):
        dst = _bucket(moto)
        before = sandbox.snap()
        r = cli(["transfer", f"s3://{src}/models", dst_url.format(b=dst), "--yes", "--endpoint-url", moto.url], env)
        no_traceback(r)
        keys = _s3_keys(moto, dst)
        assert all(k.startswith("dst/p/") for k in keys), keys
        for k in keys:  # no segment that a filesystem-backed S3 (a RunPod volume) would resolve upwards
            assert ".." not in k.split("/") and "\x00" not in k, keys
        assert not _outside_written(sandbox, before)
        assert r.returncode in (0, 2), r.stderr
        if r.returncode == 2:
            assert "unsafe" in r.stderr or "not allowed" in r.stderr, r.stderr
            assert keys == [], keys  # refused before anything was copied


def test_names_differing_only_in_case_stay_distinct(sandbox: Sandbox, moto, env: dict[str, str]) -> None:
    src = _bucket(moto)
    c = moto.client()
    files = {"Model.bin": b"upper", "model.bin": b"lower", "MODEL.BIN": b"all-caps", "dir/A": b"a", "DIR/a": b"b"}
    for k, v in files.items():
        c.put_object(Bucket=src, Key=f"m/{k}", Body=v)
    dst = _bucket(moto)
    r = cli(["transfer", f"s3://{src}/m", f"s3://{dst}/out", "--yes"], env)
    no_traceback(r)
    assert r.returncode == 0, r.stderr
    got = {k[len("out/"):]: c.get_object(Bucket=dst, Key=k)["Body"].read() for k in _s3_keys(moto, dst)}
    assert got == files
    # and again: converges, nothing re-sent or overwritten
    r = cli(["transfer", f"s3://{src}/m", f"s3://{dst}/out", "--yes"], env)
    assert r.returncode == 0 and "5 already there" in r.stdout, r.stdout + r.stderr


@pytest.fixture(scope="module")
def hub_names() -> Iterator[tuple[object, list[str]]]:
    from servers.hf_hub import FakeHub

    names = ["../../etc/passwd", "/etc/hostname", "a/../../b.bin", "..\\..\\w.bin", "nul\x00name.bin"]
    repos = {f"evil/m{i}": {n: b"evil", **SAFE} for i, n in enumerate(names)}
    hub = FakeHub(repos).start()
    yield hub, names
    hub.stop()


@pytest.mark.parametrize("i", range(5))
def test_hostile_hub_file_names(sandbox: Sandbox, moto, env: dict[str, str], hub_names, i: int) -> None:
    hub, names = hub_names
    e = dict(env, HF_ENDPOINT=hub.url)  # type: ignore[attr-defined]
    dst = _bucket(moto)
    before = sandbox.snap()
    r = cli(["transfer", f"hf://evil/m{i}", f"runpod-volume://{dst}/models", "--yes", "--endpoint-url", moto.url], e)
    no_traceback(r)
    assert r.returncode == 2, (names[i], r.returncode, r.stderr)
    assert _s3_keys(moto, dst) == []
    assert not _outside_written(sandbox, before)


# ------------------------------------------------------------------------------------------ Modal spool / GCS
@pytest.fixture(scope="module")
def modal_fake() -> Iterator[object]:
    from servers.modal_fake import ModalFake

    f = ModalFake().start()
    yield f
    f.stop()


@pytest.fixture(scope="module")
def gcs_emu() -> Iterator[object]:
    from servers.gcs_emulator import GcsEmulator

    emu = GcsEmulator(bucket=None).start()
    yield emu
    emu.stop()


@pytest.mark.parametrize("name", ["../../etc/passwd", "a/../../../x.bin", "/abs.bin"])
@pytest.mark.parametrize("dest", ["modal", "gcs"])
def test_hostile_names_into_modal_staging_and_gcs(sandbox: Sandbox, moto, env: dict[str, str], modal_fake, gcs_emu,
                                                   name: str, dest: str) -> None:
    src = _bucket(moto)
    c = moto.client()
    c.put_object(Bucket=src, Key=f"models/{name}" if not name.startswith("/") else f"models{name}", Body=b"evil")
    for k, v in SAFE.items():
        c.put_object(Bucket=src, Key=f"models/{k}", Body=v)
    e = dict(env)
    if dest == "modal":
        e.update(modal_fake.env(home=str(sandbox.home)))  # type: ignore[attr-defined]
        vol = "v" + uuid.uuid4().hex[:10]
        url = f"modal-volume://{vol}/models/m"
    else:
        e.update(gcs_emu.env())  # type: ignore[attr-defined]
        b = "g" + uuid.uuid4().hex[:10]
        gcs_emu.client().create_bucket(b)  # type: ignore[attr-defined]
        url = f"gs://{b}/models/m"
    before = sandbox.snap()
    r = cli(["transfer", f"s3://{src}/models", url, "--yes"], e)
    no_traceback(r)
    assert r.returncode in (0, 2), r.stderr
    assert not _outside_written(sandbox, before)
    if dest == "modal":
        files = modal_fake.list_files(vol) if ("main", vol) in modal_fake.volumes else {}  # type: ignore[attr-defined]
        assert all(p.startswith("models/m/") and ".." not in p.split("/") for p in files), files
        staging = [p for p in sandbox.state.rglob("*") if p.is_file() and "staging" in str(p)]
        assert all(str(p).startswith(str(sandbox.state)) for p in staging)
    else:
        names = [bl.name for bl in gcs_emu.client().list_blobs(b)]  # type: ignore[attr-defined]
        assert all(n.startswith("models/m/") and ".." not in n.split("/") for n in names), names


def test_a_local_folder_as_destination_is_a_clear_error(sandbox: Sandbox, env: dict[str, str]) -> None:
    """There is no local destination adapter: a local DST must be exit 2, not an internal error (was AttributeError)."""
    before = sandbox.snap()
    r = cli(["transfer", "s3://bucket/p", str(sandbox.root / "out"), "--yes"], env)
    no_traceback(r)
    assert r.returncode == 2 and "only be a source" in r.stderr, r.stderr
    assert not _outside_written(sandbox, before)


@pytest.mark.parametrize("state", ["/dev/null", "/dev/null/x"])
def test_an_unusable_state_dir_is_a_clear_error(sandbox: Sandbox, env: dict[str, str], state: str) -> None:
    src = sandbox.root / "w"
    src.mkdir()
    (src / "a.bin").write_bytes(b"x")
    r = cli(["transfer", str(src), "s3://bucket/p", "--yes", "--state-dir", state], env)
    no_traceback(r)
    assert r.returncode == 2 and "state directory" in r.stderr, r.stderr
