"""Bounded memory: the buffer pool, the in-flight slots, the read-ahead of in-order destinations and one file's
shared state between the file worker, the upload workers and the hasher."""

from __future__ import annotations

import collections
import queue
import threading
import time
from typing import TYPE_CHECKING, Any

from .base import Entry, PartInfo
from .knobs import DEFAULT_PARALLEL
from .retry import _Stopped

if TYPE_CHECKING:
    from .engine import _Run


class _Pool:
    """Preallocated buffers; ``acquire`` blocks (bounded memory and bounded bytes in flight)."""

    def __init__(self, n: int, size: int, stop: threading.Event) -> None:
        self.size = size
        self._free: queue.LifoQueue[bytearray] = queue.LifoQueue()
        self._made = 0
        self._n = n
        self._mu = threading.Lock()
        self._stop = stop

    def acquire(self) -> bytearray:
        while True:
            buf = self.try_acquire()
            if buf is not None:
                return buf
            try:
                return self._free.get(timeout=0.2)
            except queue.Empty:
                if self._stop.is_set():
                    raise _Stopped() from None

    def try_acquire(self) -> bytearray | None:
        """A buffer if one is free (or may still be made) right now, else None."""
        try:
            return self._free.get_nowait()
        except queue.Empty:
            pass
        with self._mu:
            if self._made < self._n:
                self._made += 1
                return bytearray(self.size)
        return None

    def release(self, buf: bytearray) -> None:
        self._free.put(buf)


class _Slots:
    """Bounded parts in flight when nothing is buffered (streaming from a seekable source)."""

    def __init__(self, n: int, stop: threading.Event) -> None:
        self._sem = threading.Semaphore(n)
        self._stop = stop

    def acquire(self) -> None:
        while not self._sem.acquire(timeout=0.2):
            if self._stop.is_set():
                raise _Stopped()

    def release(self) -> None:
        self._sem.release()


class ReadAhead:
    """Sequential consumers (resumable sessions, staging files) of a source that serves ranges cheaply: keep
    up to ``parallel`` chunks being fetched at once, in their own buffers from the run's pool, and hand them
    out in order. Only the first fetch waits for a buffer; the others take one only if it is free, so a
    file never holds buffers while waiting for one (no deadlock between files sharing the pool)."""

    def __init__(self, run: _Run, entry: Entry, ps: int, start: int = 0) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.run, self.entry, self.ps = run, entry, ps
        self.depth = max(1, int(run.opts.parallel or DEFAULT_PARALLEL))
        self.ex = ThreadPoolExecutor(max_workers=self.depth, thread_name_prefix="fm-fetch")
        self.pending: collections.deque[tuple[int, bytearray, Any]] = collections.deque()
        self.next_off = start

    def _fetch(self, off: int, buf: bytearray) -> None:
        self.run._read_range(self.entry, off, memoryview(buf)[: min(self.ps, self.entry.size - off)], bounded=True)

    def _top_up(self) -> None:
        assert self.run.pool is not None
        while len(self.pending) < self.depth and self.next_off < self.entry.size:
            buf = self.run.pool.acquire() if not self.pending else self.run.pool.try_acquire()
            if buf is None:
                return
            self.pending.append((self.next_off, buf, self.ex.submit(self._fetch, self.next_off, buf)))
            self.next_off += self.ps

    def take(self, off: int) -> bytearray:
        """The buffer holding the chunk at ``off`` (the caller gives it back to the pool)."""
        self._top_up()
        got, buf, fut = self.pending.popleft()
        assert got == off, (got, off)
        try:
            fut.result()
        except BaseException:
            assert self.run.pool is not None
            self.run.pool.release(buf)
            raise
        self._top_up()
        return buf

    def close(self) -> None:
        assert self.run.pool is not None
        for _off, _buf, fut in self.pending:
            fut.cancel()
        self.ex.shutdown(wait=True)
        for _off, buf, _fut in self.pending:
            self.run.pool.release(buf)
        self.pending.clear()


class _FileState:
    def __init__(self, entry: Entry, upload: Any) -> None:
        self.entry = entry
        self.upload = upload
        self.parts: dict[int, PartInfo] = {}
        self.sent: set[int] = set()  # streaming: parts uploaded by this run (checked in _recheck_streamed)
        self.sent_md5: dict[int, str | None] = {}  # streaming: MD5 of the bytes each worker sent
        self.sent_crc: dict[int, str | None] = {}  # streaming, --no-part-md5: crc32 of the bytes each worker sent
        self.read_crc: dict[int, str] = {}  # streaming: crc32 of the same range in the sha256 pass
        self.read_md5: dict[int, str] = {}  # streaming: MD5 of the same range in the sha256 pass
        # parts carry x-amz-checksum-crc32c, verified by the server (the upload was created for it)
        self.crc = bool(getattr(upload, "crc32c", False))
        self.read_c32c: dict[int, str] = {}  # streaming: base64 CRC32C of each part, from the sha256 pass
        self.verified: set[int] = set()  # streaming: parts the server accepted with that CRC32C
        self.md5 = False  # parts are checked by their MD5 against the ETag (set by the run: _Run.file_state)
        self.error: BaseException | None = None
        self.server: dict[int, PartInfo] = {}  # parts the server already holds (resume)
        self.sha: Any = None  # the file's sha256, fed in part order
        self.hlock = threading.Lock()  # parallel ranged reads: parts waiting for their turn in the sha256
        self.ready: dict[int, tuple[memoryview, bytearray]] = {}
        self.next_hash = 1
        self.ps = 1
        # sequential reads: sha256 state after each part, saved once every part up to it is on the server
        self.track_states = False
        self.states: dict[int, str | None] = {}
        self.committed: set[int] = set()
        self.saved_upto = 0
        self._pending = 0
        self._cv = threading.Condition()

    def pending_inc(self) -> None:
        with self._cv:
            self._pending += 1

    def pending_dec(self) -> None:
        with self._cv:
            self._pending -= 1
            self._cv.notify_all()

    def note_state(self, number: int, state: str | None) -> None:
        if self.track_states and state is not None:
            with self.hlock:
                self.states[number] = state

    def part_done(self, number: int, info: PartInfo) -> None:
        with self._cv:
            self.parts[number] = info

    def wait(self, stop: threading.Event, grace: float = 10.0) -> None:
        deadline: float | None = None
        with self._cv:
            while self._pending > 0:
                if stop.is_set():
                    deadline = deadline or time.monotonic() + grace
                    if time.monotonic() > deadline:
                        return
                self._cv.wait(0.2)
