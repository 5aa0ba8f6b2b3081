"""Suite-wide guard: nothing here may reach beyond 127.0.0.1.

A RunPod volume named without --datacenter / --endpoint-url makes flymigrate ask every RunPod datacenter's
S3 API where the volume is. Point that list at a closed loopback port for every test (and every CLI
subprocess, which inherits the environment) unless a test sets its own.
"""

from __future__ import annotations

import json
import os
import sys

import pytest

os.environ.setdefault("FLYMIGRATE_RUNPOD_S3_ENDPOINTS", json.dumps({"EU-RO-1": "http://127.0.0.1:9"}))


@pytest.fixture(autouse=True)
def _fresh_modal_client():  # type: ignore[no-untyped-def]
    """The modal SDK keeps one client per process (``Client.from_env`` is a singleton). Tests that call it
    in-process each point MODAL_SERVER_URL at their own loopback fake, so the cached client must not outlive a
    test (a later test would talk to an earlier test's fake)."""
    yield
    mod = sys.modules.get("modal.client")
    if mod is not None and getattr(mod._Client, "_client_from_env", None) is not None:
        mod._Client._client_from_env = None
