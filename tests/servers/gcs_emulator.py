"""gcp-storage-emulator on 127.0.0.1 for tests and benchmarks (never fake-gcs-server: its status query
finalizes a truncated object, see shared/research/destinations.md C.2).

In-process (default; the emulator runs in a thread of the test process, data in memory)::

    with GcsEmulator(bucket="b1") as emu:
        env = emu.env()      # {"STORAGE_EMULATOR_HOST": "http://127.0.0.1:PORT", ...}
        emu.bytes_received   # resumable-upload payload bytes accepted so far

Two emulator quirks are corrected here so that it answers like real GCS (documented in
the issue report):
- a status query on a session that has 0 bytes answers ``308`` *with* ``Range: bytes=0-0`` (real GCS: no
  ``Range`` header), which a client would read as "1 byte persisted". Patched to omit the header.
- nothing else; ``x-goog-hash`` and ``ifGenerationMatch`` are not enforced by the emulator, so the client
  must verify crc32c itself (it does).

Standalone (for benchmarks, separate process so the emulator's CPU is measured apart)::

    python -m tests.servers.gcs_emulator [--bucket B]     # prints STORAGE_EMULATOR_HOST=... and waits
"""

from __future__ import annotations

import argparse
import os
import socket
import threading
import time
from typing import Any

_patched = False
_count_lock = threading.Lock()
_counters: dict[int, int] = {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _patch_emulator() -> None:
    global _patched
    if _patched:
        return
    from gcp_storage_emulator import storage as gstorage
    from gcp_storage_emulator.handlers import objects

    def _resumable_incomplete(response: Any, storage: Any, upload_id: str, fallback_end: int = 0) -> None:
        response.status = objects.GoogleHTTPStatus.RESUME_INCOMPLETE
        received = storage.get_resumable_byte_count(upload_id)
        if received > 0:
            response["Range"] = f"bytes=0-{received - 1}"

    objects._resumable_incomplete = _resumable_incomplete

    orig_add = gstorage.Storage.add_to_resumable_upload

    def add_to_resumable_upload(self: Any, file_id: str, content: bytes, *a: Any, **kw: Any) -> Any:
        with _count_lock:
            _counters[id(self)] = _counters.get(id(self), 0) + len(content or b"")
        return orig_add(self, file_id, content, *a, **kw)

    gstorage.Storage.add_to_resumable_upload = add_to_resumable_upload
    _patched = True


class GcsEmulator:
    def __init__(self, bucket: str | None = "flymigrate-test", project: str = "test-project") -> None:
        self.bucket = bucket
        self.project = project
        self.port = 0
        self._server: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {"STORAGE_EMULATOR_HOST": self.url, "GOOGLE_CLOUD_PROJECT": self.project}

    @property
    def bytes_received(self) -> int:
        return _counters.get(id(self._server._storage), 0) if self._server else 0

    def reset_counters(self) -> None:
        if self._server:
            with _count_lock:
                _counters[id(self._server._storage)] = 0

    def start(self) -> GcsEmulator:
        import logging

        from gcp_storage_emulator.server import create_server

        logging.getLogger("gcp_storage_emulator").setLevel(logging.WARNING)
        _patch_emulator()
        last: Exception | None = None
        for _ in range(5):
            self.port = _free_port()
            try:
                self._server = create_server("127.0.0.1", self.port, in_memory=True, default_bucket=self.bucket)
                self._server._api.daemon = True  # never keep a test process alive
                self._server.start()
                return self
            except OSError as exc:  # port race
                last = exc
                time.sleep(0.05)
        raise RuntimeError(f"gcp-storage-emulator did not start: {last}")

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def client(self) -> Any:
        """A google-cloud-storage client bound to this emulator (anonymous credentials)."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        os.environ.setdefault("STORAGE_EMULATOR_HOST", self.url)
        return storage.Client(project=self.project, credentials=AnonymousCredentials(), client_options={
            "api_endpoint": self.url})

    def __enter__(self) -> GcsEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:  # pragma: no cover - bench helper
    ap = argparse.ArgumentParser()
    ap.add_argument("--bucket", default="flymigrate-bench")
    args = ap.parse_args()
    emu = GcsEmulator(bucket=args.bucket).start()
    print(f"STORAGE_EMULATOR_HOST={emu.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        emu.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
