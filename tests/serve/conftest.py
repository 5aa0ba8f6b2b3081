"""Fixtures for the serve harness tests: loopback fakes (HF Hub, Modal control plane, moto S3, GCS emulator)
started once per session, and a skip when this kernel cannot give the harness a user + mount namespace."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
for p in (str(TESTS), str(TESTS.parent)):
    if p not in sys.path:
        sys.path.insert(0, p)

from serve import harness  # noqa: E402

NS = harness.namespace_ok()


@pytest.fixture(scope="session")
def namespaces() -> None:
    if NS:
        pytest.skip(f"the serve harness needs user + mount namespaces: {NS}")


@pytest.fixture(scope="session")
def fakes(namespaces: None) -> Iterator[object]:
    from serve.pipeline import Fakes

    f = Fakes.start()
    yield f
    f.stop()


@pytest.fixture
def work() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="serve-test-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)
