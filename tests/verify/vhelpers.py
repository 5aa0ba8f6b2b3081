"""Helpers shared by the verify tests (imported by name: tests/verify is on sys.path via conftest)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest


def write_gcloud(bindir: Path, token: str | None) -> None:
    script = bindir / "gcloud"
    if token is None:
        body = ("#!/bin/sh\necho 'ERROR: (gcloud.auth.print-identity-token) You do not currently have an active "
                "account selected.' >&2\nexit 1\n")
    else:
        body = f"#!/bin/sh\n[ \"$1 $2\" = 'auth print-identity-token' ] || exit 2\necho '{token}'\n"
    script.write_text(body)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    from flymigrate.cli import main

    rc = main(["verify", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict, str]:
    rc, out, err = run(capsys, *argv, "--format", "json")
    return rc, json.loads(out), err


def assert_no_secret(values: list[str], *texts: str) -> None:
    for v in values:
        for t in texts:
            assert v not in t, "a secret value leaked into the output"
