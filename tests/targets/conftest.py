"""RunPod target tests: the apply fixtures (acme-chat copy, canary secrets, loopback HF Hub / Modal fakes, CLI
runner) plus a loopback fake of RunPod's REST API v2 (:mod:`.runpod_api_fake`)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from apply.conftest import acme, cli_env, hf_hub, modal_fake, tmp_path  # noqa: E402,F401  (fixtures)

from .runpod_api_fake import RunPodFake  # noqa: E402


@pytest.fixture
def runpod_api() -> Iterator[RunPodFake]:
    f = RunPodFake()
    yield f
    f.stop()
