"""Per-part checks on S3 destinations (issue 14, point 2): CRC32C (x-amz-checksum-crc32c) where the endpoint
verifies it, MD5 against the ETag where it does not, chosen by a probe per run.

The verifying server is tests/servers/s3_sink.py (it checks x-amz-checksum-crc32c and Content-MD5 as AWS does,
and can flip a byte of chosen bodies before checking them: damage in flight). It keeps no bytes, only each
object's size and real MD5 ETag, so "the destination holds the source's bytes" is checked by comparing ETags
with the ones computed from the source. moto 5.2 stands for a server that ignores the header (it stores a part
with a wrong checksum, and even echoes the header back)."""

from __future__ import annotations

import hashlib
import os
import re
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import s3_sink
from servers.faulty_proxy import FaultyProxy

from flymigrate.transfer.plan import multipart_etag

from .conftest import local_or_hf_source, make_files, read_s3, run_cli

MiB = 1024 * 1024


class Sink:
    def __init__(self) -> None:
        self.srv, self.state = s3_sink.serve(0)
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()
        self.srv.handle_error = lambda request, address: None  # type: ignore[method-assign]  # a killed client
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/bench", method="PUT")).read()

    def etags(self, prefix: str) -> dict[str, str]:
        return {k[len(prefix) + 1:]: e for (b, k), (_s, e) in self.state.objects.items() if k.startswith(prefix + "/")}

    def stop(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.stop()


def _etag(data: bytes, ps: int) -> str:
    if len(data) <= ps:
        return hashlib.md5(data).hexdigest()
    return multipart_etag([hashlib.md5(data[i:i + ps]).hexdigest() for i in range(0, len(data), ps)])


PS = 5 * MiB  # S3's smallest part (s3:// destinations); files of 3 parts


def _files() -> dict[str, bytes]:
    return {"big.bin": os.urandom(2 * PS + 13), "small.bin": os.urandom(300_000)}


@pytest.mark.parametrize("source", ["local", "hf"])
def test_crc32c_part_damaged_in_flight_is_refused_and_sent_again(tmp_path: Path, base_env: dict[str, str],
                                                                 sink: Sink, source: str) -> None:
    files = _files()
    env = dict(base_env)
    sink.state.corrupt = {"m/small.bin": 1, "m/big.bin#2": 2}  # the small file once, part 2 twice
    with local_or_hf_source(source, tmp_path / "w", files, env) as src:
        r = run_cli(["transfer", src, "s3://bench/m", "--yes", "--endpoint-url", sink.url, "--part-size", "5MiB",
                     "--parallel", "3"], env)
    assert r.returncode == 0, r.stderr
    assert "checked by the destination with CRC32C" in r.stderr
    assert sink.state.corrupted == 3
    assert sink.state.refused == 1 + 3  # the probe, then every damaged body
    assert r.stderr.count("differs from ours (BadDigest); re-sending") == 3
    assert sink.etags("m") == {k: _etag(v, PS) for k, v in files.items()}


def test_crc32c_part_damaged_every_time_fails_with_exit_3(tmp_path: Path, base_env: dict[str, str], sink: Sink) -> None:
    src = make_files(tmp_path / "w", {"small.bin": os.urandom(200_000)})
    sink.state.corrupt = {"m/small.bin": 3}  # every try
    r = run_cli(["transfer", str(src), "s3://bench/m", "--yes", "--endpoint-url", sink.url], base_env)
    assert r.returncode == 3, r.stderr
    assert "kept arriving corrupted" in r.stderr and "Traceback" not in r.stderr
    assert sink.etags("m") == {}


def test_crc32c_upload_killed_then_resumed(tmp_path: Path, base_env: dict[str, str], sink: Sink) -> None:
    """A CRC32C upload survives a kill: the rerun takes the parts ListParts reports with their checksums (compared
    with the source's, not re-sent) and completes with the checksum of every part."""
    data = os.urandom(4 * PS + 7)
    src = make_files(tmp_path / "w", {"big.bin": data})
    args = ["transfer", str(src), "s3://bench/m", "--yes", "--endpoint-url", sink.url, "--part-size", "5MiB",
            "--parallel", "2"]
    r = run_cli(args, dict(base_env, FLYMIGRATE_CRASH_AT="after-part"))
    assert r.returncode != 0
    uploads = [u for u in sink.state.uploads.values() if u["key"] == "m/big.bin"]
    assert len(uploads) == 1 and uploads[0]["parts"], "the killed run left no part"
    assert all(p[2] for p in uploads[0]["parts"].values()), "parts were sent without their CRC32C"
    held = len(uploads[0]["parts"])
    r = run_cli(args, base_env)
    assert r.returncode == 0, r.stderr
    # a second part in flight at the kill may still land on the server after the count above (--parallel 2)
    m = re.search(r"(\d+) parts already on the server", r.stderr)
    assert m and int(m.group(1)) >= held, r.stderr
    n = int(m.group(1))
    assert f"{n * 5}.0 MiB already on the server" in r.stdout  # compared by CRC32C, not sent again
    assert sink.etags("m") == {"big.bin": _etag(data, PS)}


def test_endpoint_that_ignores_checksums_falls_back_to_md5(tmp_path: Path, moto: Any, bucket: str,
                                                           base_env: dict[str, str]) -> None:
    """moto accepts a part with a wrong x-amz-checksum-crc32c: the probe sees it, the run compares each part's
    MD5 with its ETag instead, and catches a part damaged on the way (here by the proxy)."""
    files = _files()
    src = make_files(tmp_path / "w", files)
    with FaultyProxy("127.0.0.1", moto.port, corrupt_rate=1.0, only_methods={"PUT"}, seed=5, max_faults=2) as proxy:
        # the first two PUTs are the probe's part (damaged or not, it is refused nowhere) and one real body
        r = run_cli(["transfer", str(src), f"runpod-volume://{bucket}/m", "--yes", "--endpoint-url", proxy.url,
                     "--part-size", "1MiB"], base_env)
        corrupted = proxy.faults["corrupt"]
    assert r.returncode == 0, r.stderr
    assert "does not verify x-amz-checksum-crc32c (it accepted a part whose x-amz-checksum-crc32c was wrong)" in r.stderr
    assert corrupted == 2
    assert "re-sending" in r.stderr
    assert read_s3(moto, bucket, "m") == files
    assert not moto.client().list_multipart_uploads(Bucket=bucket).get("Uploads"), "the probe left an upload"


@pytest.mark.parametrize("mode", ["md5", "none"])
def test_part_check_chosen_by_flag_skips_the_probe(tmp_path: Path, base_env: dict[str, str], sink: Sink,
                                                   mode: str) -> None:
    files = _files()
    src = make_files(tmp_path / "w", files)
    r = run_cli(["transfer", str(src), "s3://bench/m", "--yes", "--endpoint-url", sink.url, "--part-size", "5MiB",
                 "--part-check", mode], base_env)
    assert r.returncode == 0, r.stderr
    assert sink.state.bodies == 0  # no probe, no body with a checksum header
    assert sink.etags("m") == {k: _etag(v, PS) for k, v in files.items()}


def test_part_check_rejects_an_unknown_mode(tmp_path: Path, base_env: dict[str, str]) -> None:
    src = make_files(tmp_path / "w", {"a.bin": b"x"})
    r = run_cli(["transfer", str(src), "s3://bench/m", "--yes", "--part-check", "sha1"], base_env)
    assert r.returncode == 2 and "--part-check" in r.stderr and "Traceback" not in r.stderr
