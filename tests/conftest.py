"""Suite-wide guard: nothing here may reach beyond 127.0.0.1.

A RunPod volume named without --datacenter / --endpoint-url makes flymigrate ask every RunPod datacenter's
S3 API where the volume is. Point that list at a closed loopback port for every test (and every CLI
subprocess, which inherits the environment) unless a test sets its own.
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("FLYMIGRATE_RUNPOD_S3_ENDPOINTS", json.dumps({"EU-RO-1": "http://127.0.0.1:9"}))
