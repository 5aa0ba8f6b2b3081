"""A fault rig shared by tests/trust/test_faults.py and scripts/soak: moto behind the faulty proxy, a local weights
folder, the real transfer CLI in a subprocess, and the checks that matter (verified bytes, journal all done, no
multipart upload left behind, the source untouched)."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
for p in (str(TESTS),):
    if p not in sys.path:
        sys.path.insert(0, p)

from servers.faulty_proxy import FaultyProxy

MiB = 1024 * 1024
EXIT_OK_SET = {0}
RESUMABLE = {3, 4, 130}  # a remote kept failing / incomplete but resumable / interrupted


def make_weights(root: Path, sizes: dict[str, int], seed: int = 0) -> dict[str, str]:
    """Files of pseudo-random bytes (fast: one urandom block repeated with a per-file salt); returns sha256s."""
    import random

    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    block = os.urandom(MiB)
    out = {}
    for name, size in sizes.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        h = hashlib.sha256()
        with open(p, "wb") as fh:
            left = size
            salt = rng.randbytes(16)
            i = 0
            while left:
                chunk = (salt + i.to_bytes(8, "big") + block)[: min(left, MiB)]
                fh.write(chunk)
                h.update(chunk)
                left -= len(chunk)
                i += 1
        out[name] = h.hexdigest()
    return out


def tree_hashes(root: Path) -> dict[str, str]:
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = Path(d) / f
            out[p.relative_to(root).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@dataclass
class Rig:
    moto: Any
    work: Path
    sizes: dict[str, int]
    seed: int = 0
    proxy_kw: dict[str, Any] = field(default_factory=dict)
    part: str = "1MiB"
    parallel: int = 3
    scheme: str = "runpod-volume"

    def __post_init__(self) -> None:
        self.bucket = "rig-" + uuid.uuid4().hex[:12]
        self.moto.client().create_bucket(Bucket=self.bucket)
        self.src = self.work / "weights"
        self.hashes = make_weights(self.src, self.sizes, self.seed)
        self.state = self.work / "state"
        self.proxy = FaultyProxy("127.0.0.1", self.moto.port, seed=self.seed, **self.proxy_kw).start()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RUNPOD_", "HF_", "FLYMIGRATE_"))}
        self.env.update(FLYMIGRATE_STATE_DIR=str(self.state), RUNPOD_S3_ACCESS_KEY_ID="AKIDRIG",
                        RUNPOD_S3_SECRET_ACCESS_KEY="rig-secret-key-0123456789", AWS_ACCESS_KEY_ID="AKIDRIG",
                        AWS_SECRET_ACCESS_KEY="rig-secret-key-0123456789", AWS_REGION="us-east-1",
                        FLYMIGRATE_BACKOFF_BASE="0.02", FLYMIGRATE_MAX_ATTEMPTS="4", PYTHONPATH=str(ROOT),
                        PYTHONDONTWRITEBYTECODE="1")
        self.total = sum(self.sizes.values())

    @property
    def args(self) -> list[str]:
        dst = f"{self.scheme}://{self.bucket}/m"
        return [sys.executable, "-m", "flymigrate", "transfer", str(self.src), dst, "--yes", "--endpoint-url",
                self.proxy.url, "--part-size", self.part, "--parallel", str(self.parallel)]

    def start(self) -> subprocess.Popen[str]:
        return subprocess.Popen(self.args, env=self.env, cwd=str(ROOT), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def run(self, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.args, env=self.env, cwd=str(ROOT), capture_output=True, check=False, text=True,
                              timeout=timeout)

    def kill_at(self, frac: float, sig: int, timeout: float = 60) -> tuple[int, str, bool]:
        """Start, wait until ``frac`` of the bytes went through the proxy (in this run), send ``sig``.
        Returns (exit code, stderr, whether the signal was actually sent before it finished)."""
        start_bytes = self.proxy.received_body_bytes
        p = self.start()
        deadline = time.monotonic() + timeout
        while (self.proxy.received_body_bytes - start_bytes < frac * self.total and p.poll() is None
               and time.monotonic() < deadline):
            time.sleep(0.003)
        sent = p.poll() is None
        if sent:
            p.send_signal(sig)
        try:
            _, err = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
            raise AssertionError(f"did not stop within 60 s of signal {sig}")
        return p.returncode, err, sent

    # ---------------------------------------------------------------------------------------- checks
    def dest(self) -> dict[str, bytes]:
        c = self.moto.client()
        out = {}
        for page in c.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix="m/"):
            for o in page.get("Contents", []):
                out[o["Key"][2:]] = c.get_object(Bucket=self.bucket, Key=o["Key"])["Body"].read()
        return out

    def corrupt_files(self) -> list[str]:
        """Destination objects whose bytes differ from the source (a partial object is corrupt too)."""
        d = self.dest()
        return sorted(k for k, v in d.items() if hashlib.sha256(v).hexdigest() != self.hashes.get(k))

    def verified(self) -> bool:
        d = self.dest()
        return set(d) == set(self.hashes) and not self.corrupt_files()

    def journal(self) -> list[tuple[str, str, str | None]]:
        rows: list[tuple[str, str, str | None]] = []
        for p in (self.state / "transfers").glob("*.sqlite"):
            db = sqlite3.connect(p)
            try:
                rows += db.execute("SELECT path, status, sha256 FROM files ORDER BY path").fetchall()
            finally:
                db.close()
        return rows

    def leftover_uploads(self) -> list[Any]:
        return self.moto.client().list_multipart_uploads(Bucket=self.bucket).get("Uploads") or []

    def source_intact(self) -> bool:
        return tree_hashes(self.src) == self.hashes

    def stop(self) -> None:
        self.proxy.stop()


SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT}
