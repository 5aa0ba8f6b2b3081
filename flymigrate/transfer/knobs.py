"""Sizes, parallelism and the crash points of the transfer engine (one place to tune them)."""

from __future__ import annotations

import os
import signal

from .base import MiB

DEFAULT_PART_SIZE = 16 * MiB  # buffered sources (HTTP): memory ~ (parallel + 2) x part size
DEFAULT_PARALLEL = 8  # as `hf download`: a CDN gives each connection its own speed; (8 + 2) x 16 MiB buffered
STREAM_PART_SIZE = 64 * MiB  # seekable sources stream parts from disk: part size costs no memory
STREAM_PARALLEL = 8
HASH_CHUNK = 2 * MiB
# where streamed parts get their MD5: "workers" (in parallel, on the bytes sent; a crc32 in both reads
# ties them to the hasher's sha256) or "hasher" (one thread, one read; less CPU, but serial)
MD5_WHERE = os.environ.get("FLYMIGRATE_MD5_WHERE", "hasher")
MEMORY_BUDGET = 512 * MiB  # cap on pooled buffers when parts must be huge
# Crash points for the tests of every journal-vs-server window: FLYMIGRATE_CRASH_AT=<name> makes the process
# kill -9 itself the first time it reaches that point (after the server did something, before the journal
# says so). Names: after-begin, after-part, after-chunk, before-done.
_CRASH_AT = os.environ.get("FLYMIGRATE_CRASH_AT", "")


def _crash_point(name: str) -> None:
    if _CRASH_AT and _CRASH_AT == name:
        os.kill(os.getpid(), signal.SIGKILL)
