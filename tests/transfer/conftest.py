"""Fixtures for the transfer tests: moto (S3 / RunPod volume stand-in), a loopback Hub, CLI runner.

Everything listens on 127.0.0.1 only. The CLI runs in a subprocess so that HF_ENDPOINT is set before
huggingface_hub is imported, and so that kill -9 can be tested.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from servers.hf_hub import FakeHub  # noqa: E402
from servers.moto_s3 import MotoS3  # noqa: E402

ACCESS = "AKIDCANARY0ACCESS"
SECRET = "CANARY-SECRET-7f3a9c1e-do-not-print"
HF_TOKEN = "hf_CANARYtoken0123456789"


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoS3]:
    m = MotoS3()
    yield m
    m.stop()


@pytest.fixture
def bucket(moto: MotoS3) -> str:
    name = "vol-" + uuid.uuid4().hex[:12]
    moto.client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def state(tmp_path: Path) -> Path:
    d = tmp_path / "state"
    return d


@pytest.fixture
def base_env(state: Path, moto: MotoS3) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RUNPOD_", "HF_"))}
    env.update(
        FLYMIGRATE_STATE_DIR=str(state),
        RUNPOD_S3_ACCESS_KEY_ID=ACCESS,
        RUNPOD_S3_SECRET_ACCESS_KEY=SECRET,
        AWS_ACCESS_KEY_ID=ACCESS,
        AWS_SECRET_ACCESS_KEY=SECRET,
        AWS_ENDPOINT_URL_S3=moto.url,
        AWS_REGION="us-east-1",
        HF_HUB_DISABLE_TELEMETRY="1",
        FLYMIGRATE_BACKOFF_BASE="0.05",
        PYTHONPATH=str(ROOT),
    )
    return env


def run_cli(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flymigrate", *args], env=env, cwd=str(ROOT), capture_output=True,
                          text=True, timeout=timeout)


def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def make_files(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


@contextlib.contextmanager
def local_or_hf_source(kind: str, root: Path, files: dict[str, bytes], env: dict[str, str]) -> Iterator[str]:
    """The source URL of ``files`` as a local folder under ``root`` (kind "local") or a loopback Hub repo acme/m
    (kind "hf"; ``env`` gets its endpoint and token); the Hub stops on exit."""
    if kind == "local":
        yield str(make_files(root, files))
        return
    from servers.hf_hub import FakeHub

    hub = FakeHub({"acme/m": files}, token=HF_TOKEN).start()
    env.update(HF_ENDPOINT=hub.url, HF_TOKEN=HF_TOKEN)
    try:
        yield "hf://acme/m"
    finally:
        hub.stop()


def read_s3(moto: MotoS3, bucket: str, prefix: str) -> dict[str, bytes]:
    c = moto.client()
    out = {}
    pfx = f"{prefix}/" if prefix else ""
    for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=pfx):
        for o in page.get("Contents", []):
            out[o["Key"][len(pfx):]] = c.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
    return out


# ----------------------------------------------------------------------------- conformance plug points


@dataclass
class Endpoint:
    """A source or destination under test. ``url`` for the CLI; ``env`` additions; ``read`` for dsts."""

    url: str
    env: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    read: Callable[[], dict[str, bytes]] | None = None
    cleanup: Callable[[], None] | None = None


SourceFactory = Callable[[dict[str, bytes]], Endpoint]
DestFactory = Callable[[], Endpoint]


@pytest.fixture
def src_local(tmp_path: Path) -> SourceFactory:
    def make(files: dict[str, bytes]) -> Endpoint:
        root = make_files(tmp_path / ("src-" + uuid.uuid4().hex[:6]), files)
        return Endpoint(str(root))

    return make


@pytest.fixture
def src_s3(moto: MotoS3) -> SourceFactory:
    def make(files: dict[str, bytes]) -> Endpoint:
        b = "src-" + uuid.uuid4().hex[:12]
        c = moto.client()
        c.create_bucket(Bucket=b)
        for k, v in files.items():
            c.put_object(Bucket=b, Key=f"models/{k}", Body=v)
        return Endpoint(f"s3://{b}/models", env={"AWS_ENDPOINT_URL_S3": moto.url})

    return make


@pytest.fixture
def src_hf() -> Iterator[SourceFactory]:
    hubs: list[FakeHub] = []

    def make(files: dict[str, bytes]) -> Endpoint:
        hub = FakeHub({"acme/model": files}, token=HF_TOKEN).start()
        hubs.append(hub)
        return Endpoint("hf://acme/model", env={"HF_ENDPOINT": hub.url, "HF_TOKEN": HF_TOKEN})

    yield make
    for h in hubs:
        h.stop()


@pytest.fixture
def dst_runpod(moto: MotoS3) -> DestFactory:
    def make() -> Endpoint:
        b = "vol" + uuid.uuid4().hex[:10]
        moto.client().create_bucket(Bucket=b)
        return Endpoint(f"runpod-volume://{b}/models/m", args=["--endpoint-url", moto.url],
                        read=lambda: read_s3(moto, b, "models/m"))

    return make


@pytest.fixture
def dst_s3(moto: MotoS3) -> DestFactory:
    def make() -> Endpoint:
        b = "dst-" + uuid.uuid4().hex[:10]
        moto.client().create_bucket(Bucket=b)
        return Endpoint(f"s3://{b}/weights", env={"AWS_ENDPOINT_URL_S3": moto.url},
                        read=lambda: read_s3(moto, b, "weights"))

    return make


def get_fixture(request: Any, name: str) -> Any:
    return request.getfixturevalue(name)


# issue 4 backends (GCS emulator, Modal fake, Fly volume via a stand-in flyctl): tests/transfer_dest/fixtures.py
from transfer_dest.fixtures import dst_gcs, dst_modal, gcs_emu, modal_fake, src_fly, src_gcs  # noqa: E402,F401
