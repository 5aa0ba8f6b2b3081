"""RangeBody / MemBody / journal units (fast, no servers)."""

from __future__ import annotations

import hashlib
import io
import os
import zlib
from pathlib import Path

import pytest

from flymigrate.errors import UserError
from flymigrate.transfer.journal import Journal
from flymigrate.transfer.streams import MemBody, RangeBody


def test_range_body_streams_exactly_its_range_and_hashes_what_it_sends(tmp_path: Path) -> None:
    data = os.urandom(3_000_000)
    p = tmp_path / "f"
    p.write_bytes(data)
    off, n = 1_048_576, 1_500_001
    body = RangeBody(lambda: open(p, "rb", buffering=0), off, n, ("md5", "sha256", "crc32"), chunk=100_000)
    assert len(body) == n
    body.seek(0, 2)  # botocore measures the length like this
    assert body.tell() == n
    body.seek(0)
    got = b"".join(bytes(c) for c in iter(lambda: body.read(8192), b""))
    assert got == data[off : off + n]
    assert body.digest("md5") == hashlib.md5(got).hexdigest()
    assert body.digest("sha256") == hashlib.sha256(got).hexdigest()
    assert body.digest("crc32") == f"{zlib.crc32(got):08x}"
    body.seek(0)  # a rewind (botocore retry) restarts the hashes
    again = b"".join(bytes(c) for c in iter(lambda: body.read(-1), b""))
    assert again == got and body.digest("md5") == hashlib.md5(got).hexdigest()
    body.close()


def test_range_body_shorter_file_raises(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"x" * 10)
    body = RangeBody(lambda: open(p, "rb", buffering=0), 0, 20)
    body.read()
    with pytest.raises(OSError):
        body.read()


def test_mem_body_is_zero_copy_and_seekable() -> None:
    buf = bytearray(os.urandom(10_000_000))
    b = MemBody(memoryview(buf))
    assert len(b) == len(buf)
    out = io.BytesIO()
    while chunk := b.read(8192):
        assert isinstance(chunk, memoryview)
        out.write(chunk)
    assert out.getvalue() == bytes(buf)


def test_journal_survives_reopen_and_refuses_a_second_holder(tmp_path: Path) -> None:
    j = Journal(tmp_path, "src", "dst")
    j.upsert_many([("a", 10, "fp", "pending"), ("b", 20, "fp", "pending")])
    j.start_upload("a", 5, {"upload_id": "u1", "key": "k"})
    j.add_part("a", 1, 5, "etag1")
    with pytest.raises(UserError, match="already running"):
        Journal(tmp_path, "src", "dst")
    j.close()
    j2 = Journal(tmp_path, "src", "dst")
    row = j2.get("a")
    assert row is not None and row.status == "uploading" and row.upload_state == {"upload_id": "u1", "key": "k"}
    assert j2.parts("a") == {1: (5, "etag1")} and row.bytes_done == 5
    j2.mark_done("a", "sha", "etag")
    assert j2.summary()["files"] == {"done": 1, "pending": 1}
    j2.close()
    for f in tmp_path.iterdir():
        assert oct(f.stat().st_mode & 0o777) == "0o600", f
