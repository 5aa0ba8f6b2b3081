"""A kill -9 in each window where the server and the journal disagree, for S3 (RunPod volume), GCS and Modal.

The process kills itself (FLYMIGRATE_CRASH_AT, see engine._crash_point) right after the server did something
and before the journal records it: the upload was created, a part / chunk was stored, the file was made final.
The same command run again must finish, verify the file and never ask for --overwrite."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from .conftest import run_cli

MiB = 1024 * 1024
FILES = {
    "model-00001-of-00002.safetensors": os.urandom(3 * MiB + 4321),  # multipart at 1 MiB parts
    "config.json": b'{"model_type": "llama"}',  # one PUT
}


def _rows(state: Path) -> dict[str, tuple[str, str | None]]:
    out: dict[str, tuple[str, str | None]] = {}
    for p in (state / "transfers").glob("*.sqlite"):
        db = sqlite3.connect(p)
        out.update({r[0]: (r[1], r[2]) for r in db.execute("SELECT path, status, sha256 FROM files")})
        db.close()
    return out


def _kill_then_rerun(request: pytest.FixtureRequest, base_env: dict[str, str], state: Path, src_name: str,
                     dst_name: str, point: str, parallel: str = "1") -> tuple[list[dict[str, object]], object]:
    src = request.getfixturevalue(src_name)(FILES)
    dst = request.getfixturevalue(dst_name)()
    env = dict(base_env, **src.env, **dst.env)
    args = ["transfer", src.url, dst.url, "--yes", "--part-size", "1MiB", "--parallel", parallel, *dst.args]
    killed = run_cli(args, dict(env, FLYMIGRATE_CRASH_AT=point))
    assert killed.returncode == -9, (killed.returncode, killed.stderr[-2000:])
    again = run_cli([*args, "--json"], env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert dst.read() == FILES
    import hashlib

    rows = _rows(state)
    for rel, data in FILES.items():
        assert rows[rel] == ("done", hashlib.sha256(data).hexdigest()) or rows[rel][0] == "skipped", rows
    return [json.loads(line) for line in again.stdout.splitlines() if line.startswith("{")], dst


@pytest.mark.parametrize("src_name", ["src_local", "src_hf"])
def test_s3_killed_after_the_server_finished_the_upload_is_adopted(request: pytest.FixtureRequest,
                                                                    base_env: dict[str, str], state: Path,
                                                                    src_name: str) -> None:
    """The issue's case: CompleteMultipartUpload succeeded, the journal never heard. The rerun recomputes the
    multipart ETag from the parts the journal recorded, adopts the object and sends nothing."""
    events, _ = _kill_then_rerun(request, base_env, state, src_name, "dst_runpod", "before-done")
    plan = next(e for e in events if e["kind"] == "plan")
    assert plan["conflicts"] == 0
    skips = {e["path"]: e["message"] for e in events if e["kind"] == "file_skip"}
    assert "finished by the interrupted run" in skips["model-00001-of-00002.safetensors"], skips
    big = len(FILES["model-00001-of-00002.safetensors"])
    # nothing of the big file was sent again
    assert sum(int(e["bytes"]) for e in events if e["kind"] == "bytes" and e["path"] != "config.json") < big


@pytest.mark.parametrize("point", ["after-begin", "after-part"])
def test_s3_killed_after_create_or_after_a_part(request: pytest.FixtureRequest, base_env: dict[str, str], state: Path,
                                               point: str) -> None:
    events, _ = _kill_then_rerun(request, base_env, state, "src_hf", "dst_runpod", point)
    assert next(e for e in events if e["kind"] == "plan")["conflicts"] == 0


@pytest.mark.parametrize("dst_name", ["dst_gcs", "dst_modal"])
@pytest.mark.parametrize("src_name", ["src_local", "src_hf"])
def test_gcs_and_modal_killed_after_the_file_was_made_final(request: pytest.FixtureRequest, base_env: dict[str, str],
                                                           state: Path, src_name: str, dst_name: str) -> None:
    events, _ = _kill_then_rerun(request, base_env, state, src_name, dst_name, "before-done")
    assert next(e for e in events if e["kind"] == "plan")["conflicts"] == 0


@pytest.mark.parametrize("dst_name", ["dst_gcs", "dst_modal"])
@pytest.mark.parametrize("point", ["after-begin", "after-chunk"])
def test_gcs_and_modal_killed_after_the_session_started_or_a_chunk_landed(request: pytest.FixtureRequest,
                                                                          base_env: dict[str, str], state: Path,
                                                                          point: str, dst_name: str) -> None:
    _kill_then_rerun(request, base_env, state, "src_hf", dst_name, point)


def test_a_journal_without_commit_records_still_adopts_the_finished_upload(request: pytest.FixtureRequest,
                                                                          base_env: dict[str, str],
                                                                          state: Path) -> None:
    """A journal written by the previous version (no commit record) after a kill between Complete and the journal:
    the parts it recorded give the multipart ETag, and the object is adopted."""
    src = request.getfixturevalue("src_local")(FILES)
    dst = request.getfixturevalue("dst_runpod")()
    env = dict(base_env, **src.env, **dst.env)
    args = ["transfer", src.url, dst.url, "--yes", "--part-size", "1MiB", "--parallel", "1", *dst.args]
    assert run_cli(args, dict(env, FLYMIGRATE_CRASH_AT="before-done")).returncode == -9
    for p in (state / "transfers").glob("*.sqlite"):  # what the previous version wrote: the state without "commit"
        db = sqlite3.connect(p)
        for path, st in db.execute("SELECT path, upload_state FROM files WHERE upload_state IS NOT NULL").fetchall():
            s = json.loads(st)
            s.pop("commit", None)
            db.execute("UPDATE files SET upload_state=? WHERE path=?", (json.dumps(s), path))
        db.commit()
        db.close()
    again = run_cli([*args, "--json"], env)
    assert again.returncode == 0, again.stderr[-3000:]
    events = [json.loads(line) for line in again.stdout.splitlines() if line.startswith("{")]
    skips = {e["path"]: e["message"] for e in events if e["kind"] == "file_skip"}
    assert "finished by the interrupted run" in skips["model-00001-of-00002.safetensors"], skips
    assert dst.read() == FILES
