"""One conformance suite for every source x destination pair, through the real CLI.

A new backend plugs in by adding a fixture (see conftest.py: a SourceFactory builds a source holding
the given files; a DestFactory builds an empty destination with a ``read()`` that returns what it
holds) and appending the fixture's name to SOURCES or DESTINATIONS.
"""

from __future__ import annotations

import json
import os

import pytest

from .conftest import run_cli

SOURCES = ["src_local", "src_s3", "src_hf", "src_gcs", "src_fly"]
DESTINATIONS = ["dst_runpod", "dst_s3", "dst_gcs", "dst_modal"]

FILES = {
    "config.json": b'{"model_type": "llama"}',
    "tokenizer/tokenizer.json": os.urandom(30_000),
    "model-00001-of-00002.safetensors": os.urandom(3 * 1024 * 1024 + 12345),  # multipart at 1 MiB parts
    "model-00002-of-00002.safetensors": os.urandom(1024 * 1024),  # exactly one part: single PUT
    "empty.txt": b"",
}


def _env(base: dict[str, str], *eps: object) -> dict[str, str]:
    env = dict(base)
    for e in eps:
        env.update(e.env)  # type: ignore[attr-defined]
    return env


@pytest.mark.parametrize("dst_name", DESTINATIONS)
@pytest.mark.parametrize("src_name", SOURCES)
def test_copy_verify_rerun(request: pytest.FixtureRequest, base_env: dict[str, str], src_name: str, dst_name: str) -> None:
    src = request.getfixturevalue(src_name)(FILES)
    dst = request.getfixturevalue(dst_name)()
    env = _env(base_env, src, dst)
    args = ["transfer", src.url, dst.url, "--yes", "--part-size", "1MiB", "--parallel", "3", *dst.args]

    dry = run_cli([*args, "--dry-run"], env)
    assert dry.returncode == 0, dry.stderr
    if getattr(src, "dry_run_lists", True):  # a Fly volume needs a helper machine to list; its dry run starts none
        assert f"would copy {len(FILES)} of {len(FILES)} files" in dry.stdout
    assert dst.read() == {}

    r = run_cli(args, env)
    assert r.returncode == 0, r.stderr
    assert dst.read() == FILES

    again = run_cli([*args, "--json"], env)
    assert again.returncode == 0, again.stderr
    events = [json.loads(line) for line in again.stdout.splitlines() if line.startswith("{")]
    plan = next(e for e in events if e["kind"] == "plan")
    assert plan["to_copy"] == 0 and plan["skipped"] == len(FILES)
    assert not [e for e in events if e["kind"] == "bytes"]


# the overwrite decision depends on the source's hash kind and the destination's metadata: every source
# against the first destination and every destination against the first source cover it (keeps the
# suite fast; the full cross product runs in test_copy_verify_rerun)
EDGE_PAIRS = [(s, DESTINATIONS[0]) for s in SOURCES] + [(SOURCES[0], d) for d in DESTINATIONS[1:]]


@pytest.mark.parametrize("src_name,dst_name", EDGE_PAIRS)
def test_changed_destination_file_is_not_overwritten_silently(
    request: pytest.FixtureRequest, base_env: dict[str, str], src_name: str, dst_name: str
) -> None:
    files = {"a.bin": os.urandom(2000), "b.bin": os.urandom(3000)}
    src = request.getfixturevalue(src_name)(files)
    dst = request.getfixturevalue(dst_name)()
    env = _env(base_env, src, dst)
    args = ["transfer", src.url, dst.url, "--yes", "--part-size", "1MiB", *dst.args]
    assert run_cli(args, env).returncode == 0
    # someone else writes a different a.bin at the destination; a fresh state dir forgets our journal
    import boto3  # noqa: F401  (only to make sure the test env has it)

    env2 = dict(env, FLYMIGRATE_STATE_DIR=env["FLYMIGRATE_STATE_DIR"] + "-other")
    _put_dst(request, dst, "a.bin", b"different")
    r = run_cli(args, env2)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "a.bin" in r.stderr and "--overwrite" in r.stderr
    assert dst.read()["a.bin"] == b"different"
    r = run_cli([*args, "--overwrite"], env2)
    assert r.returncode == 0, r.stderr
    assert dst.read() == files


def _put_dst(request: pytest.FixtureRequest, dst: object, rel: str, data: bytes) -> None:
    if getattr(dst, "put", None):  # destinations that are not S3 bring their own writer
        dst.put(rel, data)  # type: ignore[attr-defined]
        return
    url: str = dst.url  # type: ignore[attr-defined]
    moto = request.getfixturevalue("moto")
    scheme, rest = url.split("://", 1)
    bucket, _, prefix = rest.partition("/")
    moto.client().put_object(Bucket=bucket, Key=f"{prefix}/{rel}" if prefix else rel, Body=data)
