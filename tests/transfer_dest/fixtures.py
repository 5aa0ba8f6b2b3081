"""Fixtures for the Modal / GCS / Fly-volume backends (issue 4).

Plugged into the shared conformance suite (tests/transfer/test_conformance.py) by importing the factory
fixtures in tests/transfer/conftest.py; also used by the tests in this folder.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from servers.gcs_emulator import GcsEmulator
from servers.modal_fake import ModalFake

FAKE_FLYCTL = Path(__file__).with_name("fake_flyctl.py")
MODAL_TOKEN_SECRET = "as-CANARY-modal-secret-0b7e"


def _endpoint_cls() -> Any:
    try:
        from transfer.conftest import Endpoint
    except Exception:  # pragma: no cover - the shared conftest not importable
        from dataclasses import dataclass, field

        @dataclass
        class Endpoint:  # type: ignore[no-redef]
            url: str
            env: dict[str, str] = field(default_factory=dict)
            args: list[str] = field(default_factory=list)
            read: Any = None
            cleanup: Any = None

    return Endpoint


def _ep(url: str, **kw: Any) -> Any:
    Endpoint = _endpoint_cls()
    extra = {k: kw.pop(k) for k in list(kw) if k not in Endpoint.__dataclass_fields__}
    ep = Endpoint(url, **kw)
    for k, v in extra.items():
        setattr(ep, k, v)
    return ep


# ------------------------------------------------------------------------------------------ servers


@pytest.fixture(scope="session")
def gcs_emu() -> Iterator[GcsEmulator]:
    emu = GcsEmulator(bucket=None).start()
    yield emu
    emu.stop()


@pytest.fixture(scope="session")
def modal_fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModalFake]:
    fake = ModalFake(token_secret=MODAL_TOKEN_SECRET).start()
    yield fake
    fake.stop()


def modal_env(fake: ModalFake, tmp: Path) -> dict[str, str]:
    env = fake.env()
    env["MODAL_CONFIG_PATH"] = str(tmp / "no-modal.toml")  # never read a developer's ~/.modal.toml
    return env


def read_gcs(emu: GcsEmulator, bucket: str, prefix: str) -> dict[str, bytes]:
    c = emu.client()
    pfx = f"{prefix}/" if prefix else ""
    return {b.name[len(pfx):]: b.download_as_bytes() for b in c.list_blobs(bucket, prefix=pfx or None)}


def read_modal(fake: ModalFake, vol: str, prefix: str) -> dict[str, bytes]:
    if ("main", vol) not in fake.volumes:
        return {}
    pfx = f"{prefix}/" if prefix else ""
    return {p[len(pfx):]: fake.read_file(vol, p) for p in fake.list_files(vol) if p.startswith(pfx)}


def modal_put(fake: ModalFake, vol: str, path: str, data: bytes) -> None:
    """Write a file into the fake volume the way another client would."""
    import hashlib

    from servers.modal_fake import BLOCK_SIZE, _File, _Volume

    v = fake.volumes.get(("main", vol))
    if v is None:
        v = fake.volumes[("main", vol)] = _Volume(fake._new_id("vo"), vol, "main", 2, 0.0)
    blocks = []
    for i in range(0, max(len(data), 1), BLOCK_SIZE):
        blk = data[i : i + BLOCK_SIZE].rstrip(b"\0")
        if not data:
            break
        h = hashlib.sha256(blk).digest()
        fake.blocks[h] = blk
        blocks.append(h)
    v.files[path] = _File(size=len(data), mode=0o644, mtime=0, blocks=blocks)


# ---------------------------------------------------------------------------------- destinations


@pytest.fixture
def dst_gcs(gcs_emu: GcsEmulator) -> Any:
    def make() -> Any:
        b = "gcs-" + uuid.uuid4().hex[:12]
        gcs_emu.client().create_bucket(b)

        def put(rel: str, data: bytes) -> None:
            gcs_emu.client().bucket(b).blob(f"models/m/{rel}").upload_from_string(data)

        return _ep(f"gs://{b}/models/m", env=gcs_emu.env(), read=lambda: read_gcs(gcs_emu, b, "models/m"), put=put)

    return make


@pytest.fixture
def dst_modal(modal_fake: ModalFake, tmp_path: Path) -> Any:
    def make() -> Any:
        vol = "vol-" + uuid.uuid4().hex[:10]
        return _ep(
            f"modal-volume://{vol}/models/m",
            env=modal_env(modal_fake, tmp_path),
            read=lambda: read_modal(modal_fake, vol, "models/m"),
            put=lambda rel, data: modal_put(modal_fake, vol, f"models/m/{rel}", data),
        )

    return make


# --------------------------------------------------------------------------------------- sources


@pytest.fixture
def src_gcs(gcs_emu: GcsEmulator) -> Any:
    def make(files: dict[str, bytes]) -> Any:
        b = "gsrc-" + uuid.uuid4().hex[:12]
        c = gcs_emu.client()
        c.create_bucket(b)
        for k, v in files.items():
            c.bucket(b).blob(f"models/{k}").upload_from_string(v)
        return _ep(f"gs://{b}/models", env=gcs_emu.env())

    return make


class FlyWorld:
    """A fake Fly account: one app with volumes backed by temp dirs, and the stand-in flyctl on PATH."""

    def __init__(self, root: Path, app: str = "acme-chat") -> None:
        self.root = root
        self.app = app
        self.bin = root / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        exe = self.bin / "flyctl"
        exe.write_text(f"#!{sys.executable}\n" + FAKE_FLYCTL.read_text())
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        self.state_file = root / "fly-state.json"
        self.log_file = root / "fly-log.jsonl"
        self.state: dict[str, Any] = {"logged_in": True, "apps": {app: {"volumes": [], "machines": []}}}
        self.save()

    def save(self) -> None:
        self.state_file.write_text(json.dumps(self.state))

    def load(self) -> dict[str, Any]:
        self.state = json.loads(self.state_file.read_text())
        return self.state

    def add_volume(self, name: str, files: dict[str, bytes], sub: str = "models/hf", region: str = "ord") -> str:
        vid = "vol_" + uuid.uuid4().hex[:14]
        d = self.root / vid
        for rel, data in files.items():
            p = d / sub / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        d.mkdir(parents=True, exist_ok=True)
        self.load()
        self.state["apps"][self.app]["volumes"].append(
            {"id": vid, "name": name, "region": region, "size_gb": 10, "state": "created",
             "attached_machine_id": None, "dir": str(d)}
        )
        self.save()
        return vid

    def env(self) -> dict[str, str]:
        return {
            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
            "FAKE_FLY_STATE": str(self.state_file),
            "FAKE_FLY_LOG": str(self.log_file),
        }

    def calls(self) -> list[list[str]]:
        if not self.log_file.exists():
            return []
        return [json.loads(line)["argv"] for line in self.log_file.read_text().splitlines() if line.strip()]

    def log_records(self) -> list[dict[str, Any]]:
        if not self.log_file.exists():
            return []
        return [json.loads(line) for line in self.log_file.read_text().splitlines() if line.strip()]

    def machines(self) -> list[dict[str, Any]]:
        return list(self.load()["apps"][self.app]["machines"])


@pytest.fixture
def fly_world(tmp_path: Path) -> FlyWorld:
    return FlyWorld(tmp_path / "fly")


@pytest.fixture
def src_fly(tmp_path: Path) -> Any:
    def make(files: dict[str, bytes]) -> Any:
        world = FlyWorld(tmp_path / ("fly-" + uuid.uuid4().hex[:6]))
        world.add_volume("acme_models", files)
        return _ep(f"fly-volume://{world.app}/acme_models/models/hf", env=world.env(), world=world,
                   dry_run_lists=False)

    return make
