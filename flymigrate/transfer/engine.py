"""The resumable copy engine. Library code: never prints, never exits; progress goes to a callback.

Entry point for the rest of the product::

    from flymigrate.transfer.engine import TransferOptions, run_transfer
    result = run_transfer("hf://org/repo@rev", "runpod-volume://vol/models/x",
                          TransferOptions(datacenter="EU-RO-1"), progress=callback)

``progress`` receives :class:`Event` objects (kinds: ``plan``, ``file_start``, ``bytes``,
``resumed``, ``file_done``, ``file_skip``, ``file_failed``, ``retry``, ``warning``, ``cleanup``,
``done``). Errors are the typed errors of :mod:`flymigrate.errors` (UserError 2, RemoteError 3,
ResumableError 4, Interrupted 130); state is saved before any of them is raised.

Pipeline (memory stays flat whatever the file size):

* ``parallel`` file workers take files from a queue (largest first); ``parallel`` upload workers
  send parts. At most ``parallel`` parts / small files are in flight at any time.
* **Seekable sources** (local files) into S3-style destinations are *streamed*: each upload worker
  reads its own byte range from disk while sending it (:class:`~.streams.RangeBody`, 1 MiB reads,
  nothing staged), so the part size (64 MiB default) costs no memory. A hasher thread reads the
  file once, in order, for the whole-file sha256 and each part's MD5; every part's ETag must equal
  that MD5 (a mismatch is re-sent), which ties the sha256 to the bytes the server holds.
  Small files are one PUT each, hashed (MD5 + sha256) from the very bytes sent.
* **HTTP sources** (Hugging Face, S3) are read sequentially (ranged GETs, resumed at the byte where a
  connection dropped) into a pool of ``parallel + 2`` preallocated buffers (``readinto``); the
  sha256 is fed from the same buffers, in order; upload workers MD5 the buffer and check the ETag.
* After a restart the persisted upload id is reused: ``ListParts`` says which parts the server
  holds; those parts are re-read (to feed the sha256 and check their MD5) but not re-sent.
* Before Complete, the sha256 is compared with the source's (HF LFS); a mismatch aborts the upload
  and the file is reported as failed, never marked done. After Complete, HEAD checks the size (and
  the multipart ETag).
* GCS-style (``WriteMode.CHUNKS``) and Modal-style (``WriteMode.SPOOL``) destinations are driven
  through the same journal; see :mod:`.base` for the contract.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import queue
import random
import signal
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import FlymigrateError, Interrupted, RemoteError, ResumableError, UserError
from ..paths import ensure_private_dir, state_dir
from .base import (
    AdapterOptions,
    DestCaps,
    DestEntry,
    Destination,
    Entry,
    MiB,
    PartInfo,
    Source,
    TransientError,
    UploadGone,
    WriteMode,
    check_names,
    open_destination,
    open_source,
    parse_url,
)
from . import hashing
from .journal import FileRow, Journal
from .streams import RangeBody, read_full

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


@dataclass
class TransferOptions:
    parallel: int | None = None  # parts / small files in flight (default 8)
    part_size: int | None = None  # default 64 MiB for local sources (streamed), else 16 MiB (buffered)
    overwrite: bool = False
    dry_run: bool = False
    datacenter: str | None = None
    endpoint_url: str | None = None
    state_dir: Path | None = None
    max_attempts: int = 8  # per request
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    env: Mapping[str, str] | None = None
    stop: threading.Event | None = None  # set it (e.g. from a signal handler) to stop and save state
    cleanup_stale: bool = True  # abort unfinished multipart uploads for our keys once all is done
    part_md5: bool = True  # compare every part's MD5 with the ETag the server answers (costs ~1.3 CPU-s/GiB)
    # once the run has reached the remotes, an outage (connection refused/reset, timeouts, DNS) is waited out
    # for this long before giving up with exit 4: an unattended copy survives a laptop changing networks or
    # a ten-minute outage. A remote never reached in this run still fails after max_attempts (a typo'd
    # endpoint should not hang for minutes).
    retry_for: float = 900.0
    secrets_files: tuple[str, ...] = ()  # where ``env``'s credentials came from (for the "continue with" command)


@dataclass(frozen=True)
class Event:
    kind: str
    path: str | None = None
    bytes: int = 0
    total: int = 0
    message: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class PlanItem:
    path: str
    size: int
    action: str  # copy | skip | overwrite | resume
    reason: str = ""


@dataclass
class TransferResult:
    src: str
    dst: str
    journal: str
    log: str
    plan: list[PlanItem] = field(default_factory=list)
    files_total: int = 0
    files_copied: int = 0
    files_skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    bytes_total: int = 0
    bytes_to_copy: int = 0
    bytes_sent: int = 0
    bytes_reused: int = 0  # parts the destination already held after a restart
    warnings: list[str] = field(default_factory=list)
    dry_run: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


ProgressCallback = Callable[[Event], None]


class _Stopped(Exception):
    pass


def transfers_dir(base: Path | None = None) -> Path:
    return (base or state_dir()) / "transfers"


def choose_part_size(size: int, wanted: int, caps: DestCaps) -> int:
    ps = max(wanted, caps.min_part_size)
    need = -(-size // max(1, caps.max_parts - 100))
    if need > ps:
        ps = -(-need // MiB) * MiB
    if caps.write_mode is WriteMode.CHUNKS and caps.granularity > 1:
        ps = max(caps.granularity, ps // caps.granularity * caps.granularity)
    return min(ps, caps.max_part_size)


def multipart_etag(part_etags: list[str]) -> str:
    return hashlib.md5(b"".join(bytes.fromhex(e) for e in part_etags)).hexdigest() + f"-{len(part_etags)}"


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


class _Log:
    def __init__(self, path: Path) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._fh = os.fdopen(fd, "a", buffering=1)
        self._mu = threading.Lock()

    def write(self, ev: Event) -> None:
        rec: dict[str, Any] = {"t": round(time.time(), 3), "kind": ev.kind}
        if ev.path is not None:
            rec["path"] = ev.path
        if ev.bytes:
            rec["bytes"] = ev.bytes
        if ev.total:
            rec["total"] = ev.total
        if ev.message:
            rec["message"] = ev.message
        if ev.data:
            rec.update(ev.data)
        from ..redact import redact  # a server may quote our headers back in an error message

        for k, v in rec.items():
            if isinstance(v, str) and k in ("message", "error", "reason"):
                rec[k] = redact(v)
        with self._mu:
            self._fh.write(json.dumps(rec) + "\n")

    def close(self) -> None:
        self._fh.close()


class _Health:
    """Shared by one run's threads: has any request succeeded yet (so an outage now is an outage, not a typo)?"""

    reached = False

    def outage_left(self, opts: TransferOptions, network: bool, since: float) -> float:
        """Seconds a failure to reach the remote may still be retried beyond max_attempts (0: give up)."""
        if not (network and self.reached):
            return 0.0
        return max(0.0, opts.retry_for - (time.monotonic() - since))


def _fmt_secs(s: float) -> str:
    return f"{s / 60:.0f} min" if s >= 90 else f"{s:.0f}s"


def _retry(opts: TransferOptions, stop: threading.Event, emit: Callable[[Event], None], what: str,
           path: str | None, fn: Callable[[], Any], health: _Health | None = None) -> Any:
    """Call ``fn``; on TransientError back off exponentially with jitter (honouring Retry-After). Network
    failures after the remote was reached are retried for ``opts.retry_for`` seconds (an outage)."""
    attempt = 0
    since = 0.0
    while True:
        if stop.is_set():
            raise _Stopped()
        try:
            out = fn()
            if health is not None:
                health.reached = True
            return out
        except TransientError as e:
            attempt += 1
            since = since or time.monotonic()
            left = health.outage_left(opts, e.network, since) if health is not None else 0.0
            if attempt >= opts.max_attempts and left <= 0:
                if e.network:
                    raise ResumableError(
                        f"could not reach the server for {what} after {attempt} attempts ({e}).",
                        hint="State is saved; check the network and run the same command again to continue.",
                    ) from None
                raise RemoteError(
                    f"{what} kept failing after {attempt} attempts ({e}).",
                    hint="State is saved; run the same command again to continue once the service recovers.",
                ) from None
            delay = min(opts.backoff_max, opts.backoff_base * (2 ** (attempt - 1)))
            delay = delay * (0.5 + random.random() / 2)
            if e.retry_after is not None:
                delay = max(delay, min(e.retry_after, 300.0))
            if attempt >= opts.max_attempts:
                delay = min(delay, left)
                msg = (f"{what}: {e}; the network looks down ({_fmt_secs(time.monotonic() - since)} so far), still "
                       f"retrying for up to {_fmt_secs(left)} (--retry-for); retry {attempt} in {delay:.1f}s")
            else:
                msg = f"{what}: {e}; retry {attempt} in {delay:.1f}s"
            emit(Event("retry", path, message=msg, data={"attempt": attempt, "delay": round(delay, 2)}))
            if stop.wait(delay):
                raise _Stopped() from None


class _Run:
    def __init__(self, src: Source, dst: Destination, journal: Journal, opts: TransferOptions,
                 emit: Callable[[Event], None], result: TransferResult, stop: threading.Event,
                 health: _Health | None = None) -> None:
        self.health = health or _Health()
        self.src = src
        self.dst = dst
        self.j = journal
        self.opts = opts
        self.emit = emit
        self.result = result
        self.stop = stop
        self.fatal: BaseException | None = None
        self._mu = threading.Lock()
        self.part_q: queue.Queue[Any] = queue.Queue()
        self.pool: _Pool | None = None
        self.check_md5 = bool(dst.caps.part_etag_is_md5 and opts.part_md5)
        # a seekable source into a parts destination: upload workers read their own ranges from disk
        self.streaming = bool(src.caps.seekable and dst.caps.write_mode is WriteMode.PARTS)
        # an HTTP source into a parts destination: the parts of one file are fetched in parallel (ranged GETs),
        # one connection per part in flight, instead of one stream per file
        self.par_reads = bool(not self.streaming and src.caps.parallel_ranges and dst.caps.write_mode is WriteMode.PARTS)
        self._said_fallback = False
        self.slots = _Slots(int(opts.parallel or 1), stop)
        self.ps = int(opts.part_size or DEFAULT_PART_SIZE)

    # ---------------------------------------------------------------------------------- retries

    def retry(self, what: str, path: str | None, fn: Callable[[], Any]) -> Any:
        return _retry(self.opts, self.stop, self.emit, what, path, fn, self.health)

    # ------------------------------------------------------------------------------------ reading

    def _fill(self, entry: Entry, stream_box: list[Any], offset: int, view: memoryview, bounded: bool = False) -> None:
        """Fill ``view`` with the source bytes at ``offset``; reopen with a ranged read on errors. ``bounded``:
        ask the source for exactly this range (parallel part fetches) instead of a stream to the end."""
        got = 0
        attempt = 0
        since = 0.0
        while got < len(view):
            if self.stop.is_set():
                raise _Stopped()
            try:
                if stream_box[0] is None:
                    stream_box[0] = (self.src.open(entry, offset + got, len(view) - got) if bounded
                                     else self.src.open(entry, offset + got))
                n = read_full(stream_box[0], view[got:])
                if n == 0:
                    raise UserError(f"source file {entry.path!r} is shorter than listed ({offset + got} < {entry.size} "
                                    "bytes); did it change during the copy?")
                got += n
                self.health.reached = True
            except (TransientError, OSError, ConnectionError) as e:
                if isinstance(e, OSError) and not isinstance(e, ConnectionError | TimeoutError) and self.src.caps.seekable:
                    raise UserError(f"cannot read {entry.path!r}: {e.strerror or e}") from None
                self._close_stream(stream_box)
                attempt += 1
                if not self.src.caps.ranged_read and offset + got > 0:
                    raise RemoteError(f"reading {entry.path!r} failed and the source cannot resume a read: {e}") from None
                since = since or time.monotonic()
                left = self.health.outage_left(self.opts, getattr(e, "network", True), since)
                if attempt >= self.opts.max_attempts and left <= 0:
                    if getattr(e, "network", True):
                        raise ResumableError(f"reading {entry.path!r} kept failing ({e}).",
                                             hint="State is saved; run the same command again to continue.") from None
                    raise RemoteError(f"reading {entry.path!r} kept failing ({e}).") from None
                delay = min(self.opts.backoff_max, self.opts.backoff_base * (2 ** (attempt - 1))) * (0.5 + random.random() / 2)
                if attempt >= self.opts.max_attempts:
                    delay = min(delay, left)
                self.emit(Event("retry", entry.path, message=f"read at {offset + got}: {e}; retry {attempt} in {delay:.1f}s"))
                if self.stop.wait(delay):
                    raise _Stopped() from None

    def _read_range(self, entry: Entry, offset: int, view: memoryview, bounded: bool = False) -> None:
        """Fill ``view`` from ``offset`` on a stream of its own, closed afterwards."""
        box: list[Any] = [None]
        try:
            self._fill(entry, box, offset, view, bounded=bounded)
        finally:
            self._close_stream(box)

    @staticmethod
    def _close_stream(box: list[Any]) -> None:
        if box[0] is not None:
            try:
                box[0].close()
            except Exception:
                pass
            box[0] = None

    # ------------------------------------------------------------------------------- upload worker

    def upload_worker(self) -> None:
        while True:
            job = self.part_q.get()
            if job is None:
                return
            fs, number, buf, n, off, fetch = job
            handed = False  # fetch jobs: the buffer goes to the in-order sha256 once sent
            try:
                if self.stop.is_set() or fs.error is not None:
                    continue
                info: PartInfo | None = None
                md5: str | None = None
                if fetch:
                    assert buf is not None
                    view = memoryview(buf)[:n]
                    self._read_range(fs.entry, off, view, bounded=True)
                    sp = fs.server.get(number)
                    if sp is not None and sp.size == n:  # resume: on the server already; same bytes?
                        md5 = hashlib.md5(view).hexdigest() if self.dst.caps.part_etag_is_md5 else None
                        if md5 is None or md5 == sp.etag:
                            self.j.add_part(fs.entry.path, number, n, sp.etag)
                            fs.part_done(number, sp)
                            with self._mu:
                                self.result.bytes_reused += n
                            self.emit(Event("resumed", fs.entry.path, bytes=n, total=fs.entry.size))
                            handed = True
                            self._hash_in_order(fs, number, view, buf)
                            continue
                for _ in range(3):
                    if buf is not None:
                        view = memoryview(buf)[:n]
                        if md5 is None and self.check_md5:
                            md5 = hashlib.md5(view).hexdigest()
                        info = self.retry(f"UploadPart {number} of {fs.entry.path}", fs.entry.path,
                                          lambda: fs.upload.write_part(number, view))
                    else:
                        # streamed from disk: the hasher thread's MD5 of this range is compared with the
                        # ETag once both are known (in _multipart); without MD5 checks a crc32 of the
                        # bytes sent is compared with the hasher's instead
                        md5_here = self.check_md5 and MD5_WHERE == "workers"
                        algos = ("md5", "crc32") if md5_here else (() if self.check_md5 else ("crc32",))

                        def send() -> PartInfo:
                            body = RangeBody(lambda: self.src.open(fs.entry, 0), off, n, algos)
                            try:
                                r = fs.upload.write_part(number, body)
                            finally:
                                body.close()
                            if "crc32" in algos:
                                fs.sent_crc[number] = body.digest("crc32")
                            if "md5" in algos:
                                fs.sent_md5[number] = body.digest("md5")
                            return r  # type: ignore[no-any-return]

                        info = self.retry(f"UploadPart {number} of {fs.entry.path}", fs.entry.path, send)
                        fs.sent.add(number)
                        break
                    if not self.check_md5 or info.etag == md5:
                        break
                    self.emit(Event("retry", fs.entry.path, message=f"part {number}: ETag {info.etag} != MD5 {md5}; re-sending"))
                    md5 = None
                else:
                    raise RemoteError(f"{fs.entry.path}: part {number} kept arriving corrupted (ETag {info.etag if info else '?'} "
                                      f"!= MD5 {md5}).")
                assert info is not None
                _crash_point("after-part")  # window: a part the journal does not list (ListParts has it)
                self.j.add_part(fs.entry.path, number, n, info.etag)
                fs.part_done(number, info)
                if fs.track_states:
                    self._save_committed_prefix(fs, number)
                with self._mu:
                    self.result.bytes_sent += n
                self.emit(Event("bytes", fs.entry.path, bytes=n, total=fs.entry.size))
                if fetch:
                    assert buf is not None
                    handed = True
                    self._hash_in_order(fs, number, memoryview(buf)[:n], buf)
            except _Stopped:
                pass
            except OSError as e:
                fs.error = UserError(f"cannot read {fs.entry.path!r}: {e.strerror or e}")
            except BaseException as e:  # noqa: BLE001 -- handed to the file worker
                fs.error = e
            finally:
                if buf is not None and self.pool is not None and not handed:
                    self.pool.release(buf)
                if buf is None:
                    self.slots.release()
                fs.pending_dec()

    def _hash_in_order(self, fs: _FileState, number: int, view: memoryview, buf: bytearray) -> None:
        """Parallel ranged reads finish out of order; the file's sha256 takes them in order. Whoever completes
        the next part hashes it and every consecutive part already waiting, and frees their buffers."""
        with fs.hlock:
            fs.ready[number] = (view, buf)
            start = fs.next_hash
            while fs.next_hash in fs.ready:
                v, b = fs.ready.pop(fs.next_hash)
                fs.sha.update(v)
                fs.next_hash += 1
                assert self.pool is not None
                self.pool.release(b)
            if fs.next_hash != start:
                # every part hashed so far is on the server and in the journal: a resumed run continues from here
                self._save_hash(fs.entry, min((fs.next_hash - 1) * fs.ps, fs.entry.size), fs.sha)

    def _release_waiting(self, fs: _FileState) -> None:
        """A failed or stopped file: give back the buffers of parts that were waiting for their turn to hash."""
        with fs.hlock:
            for _v, b in fs.ready.values():
                assert self.pool is not None
                self.pool.release(b)
            fs.ready.clear()

    # --------------------------------------------------------------------------------- one file

    def copy_file(self, entry: Entry) -> None:
        caps = self.dst.caps
        ps = choose_part_size(entry.size, self.ps, caps)
        self.emit(Event("file_start", entry.path, total=entry.size))
        if caps.write_mode is WriteMode.PARTS:
            if entry.size <= ps and entry.size <= caps.single_put_max:
                if self.streaming:
                    self._single_put_stream(entry)
                else:
                    self._single_put(entry)
            else:
                self._multipart(entry, ps)
        elif caps.write_mode is WriteMode.CHUNKS and caps.takes_local_file and hasattr(self.src, "local_path"):
            self._local_file(entry)
        elif caps.write_mode is WriteMode.CHUNKS:
            self._chunks(entry, ps)
        else:
            self._spool(entry)

    def _verify(self, entry: Entry, digest: str) -> str | None:
        if entry.sha256 and entry.sha256.lower() != digest:
            return f"sha256 mismatch: source says {entry.sha256}, read {digest}"
        return None

    def _finish(self, entry: Entry, digest: str, de: DestEntry) -> None:
        if de.size != entry.size:
            raise RemoteError(f"{entry.path}: destination reports {de.size} bytes after upload, expected {entry.size}.")
        _crash_point("before-done")  # window: the server holds the finished file, the journal does not say so
        self.j.mark_done(entry.path, digest, de.etag)
        with self._mu:
            self.result.files_copied += 1
        self.emit(Event("file_done", entry.path, total=entry.size, data={"sha256": digest}))

    # ------------------------------------------------------------------- saved sha256 state (resume)

    def _save_hash(self, entry: Entry, offset: int, sha: Any) -> None:
        st = sha.state()
        if st is not None:
            self.j.set_hash(entry.path, offset, st)

    def _save_committed_prefix(self, fs: _FileState, number: int) -> None:
        """Sequential reads hash a part before it is sent: its state is kept until every part up to it is
        on the server, then saved."""
        with fs.hlock:
            fs.committed.add(number)
            upto = fs.saved_upto
            while upto + 1 in fs.committed:
                upto += 1
            if upto > fs.saved_upto:
                fs.saved_upto = upto
                st = fs.states.pop(upto, None)
                for k in [k for k in fs.states if k < upto]:
                    del fs.states[k]
                if st is not None:
                    self.j.set_hash(fs.entry.path, min(upto * fs.ps, fs.entry.size), st)

    def _fallback_once(self, path: str) -> None:
        with self._mu:
            if self._said_fallback:
                return
            self._said_fallback = True
        self.emit(Event("warning", path, message=f"{hashing.FALLBACK_REASON}: a resumed file re-reads from the source "
                        "what the destination already holds, to rebuild its sha256"))

    def _restore_parts_prefix(self, entry: Entry, row: FileRow | None, server: dict[int, PartInfo], ps: int,
                              nparts: int) -> tuple[int, Any] | None:
        """(k, sha256 after parts 1..k) when the journal saved the hash state after k parts of this very upload
        and the server still holds each of them with the ETag the journal recorded; else None (re-read)."""
        if not hashing.saveable():
            self._fallback_once(entry.path)
            return None
        if row is None or not row.hash_state or not row.hash_offset:
            return None
        off = int(row.hash_offset)
        k = nparts if off == entry.size else off // ps
        if k < 1 or k > nparts or (off != entry.size and off % ps):
            return None
        mine = self.j.parts(entry.path)
        for number in range(1, k + 1):
            n = min(ps, entry.size - (number - 1) * ps)
            sp, jp = server.get(number), mine.get(number)
            if sp is None or jp is None or sp.size != n or jp != (n, sp.etag):
                return None
        sha = hashing.restore(row.hash_state)
        if sha is None:
            return None
        self.emit(Event("info", entry.path, message=f"continuing the sha256 after {k} part(s) the destination holds "
                        "(not read again)"))
        return k, sha

    def _commit_record(self, entry: Entry, state: dict[str, Any], digest: str | None, etag: str | None = None) -> None:
        """Say in the journal, before the call that makes the file final on the server, what the finished file will
        be. See :func:`_adopt_committed`."""
        st = {k: v for k, v in (state or {}).items() if k != "commit"}
        st["commit"] = {"size": entry.size, "sha256": digest, "etag": etag}
        self.j.set_state(entry.path, st)

    def _fail(self, entry: Entry, msg: str) -> None:
        self.j.mark_failed(entry.path, msg, keep_state=False)
        with self._mu:
            self.result.failed[entry.path] = msg
        self.emit(Event("file_failed", entry.path, message=msg))

    def _single_put(self, entry: Entry) -> None:
        assert self.pool is not None
        buf = self.pool.acquire()
        try:
            view = memoryview(buf)[: entry.size]
            self._read_range(entry, 0, view)
            digest = hashlib.sha256(view).hexdigest()
            bad = self._verify(entry, digest)
            if bad:
                self._fail(entry, bad)
                return
            md5 = hashlib.md5(view).hexdigest() if self.check_md5 else None
            up = self.dst.open_upload(entry, None, digest)
            self.j.start_upload(entry.path, entry.size, {"commit": {"size": entry.size, "sha256": digest, "md5": md5}})
            for _ in range(3):
                de = self.retry(f"PutObject {entry.path}", entry.path, lambda: up.put(view, digest))  # type: ignore[attr-defined]
                if md5 is None or de.etag == md5:
                    break
                self.emit(Event("retry", entry.path, message=f"ETag {de.etag} != MD5 {md5}; re-sending"))
            else:
                self._fail(entry, f"kept arriving corrupted (ETag {de.etag} != MD5 {md5})")
                return
            with self._mu:
                self.result.bytes_sent += entry.size
            self.emit(Event("bytes", entry.path, bytes=entry.size, total=entry.size))
            self._finish(entry, digest, de)
        finally:
            self.pool.release(buf)

    def _single_put_stream(self, entry: Entry) -> None:
        """One PUT straight from disk; md5 and sha256 are taken from the very bytes sent."""
        self.slots.acquire()
        try:
            up = self.dst.open_upload(entry, None, entry.sha256)
            self.j.start_upload(entry.path, entry.size, {"commit": {"size": entry.size, "sha256": entry.sha256}})
            holder: dict[str, Any] = {}

            def send() -> DestEntry:
                body = RangeBody(lambda: self.src.open(entry, 0), 0, entry.size, ("md5", "sha256") if self.check_md5 else ("sha256",))
                try:
                    de = up.put(body, entry.sha256)  # type: ignore[attr-defined]
                finally:
                    body.close()
                holder["md5"] = body.digest("md5") if self.check_md5 else None
                holder["sha256"] = body.digest("sha256")
                return de  # type: ignore[no-any-return]

            for _ in range(3):
                try:
                    de = self.retry(f"PutObject {entry.path}", entry.path, send)
                except OSError as e:
                    raise UserError(f"cannot read {entry.path!r}: {e.strerror or e}") from None
                if holder.get("sha256") and (not self.check_md5 or de.etag == holder.get("md5")):
                    break
                self.emit(Event("retry", entry.path, message=f"ETag {de.etag} != MD5 {holder.get('md5')}; re-sending"))
            else:
                self._fail(entry, f"kept arriving corrupted (ETag {de.etag} != MD5 {holder.get('md5')})")
                return
            self._sent_whole(entry, str(holder["sha256"]), de)
        finally:
            self.slots.release()

    def _sent_whole(self, entry: Entry, digest: str, de: DestEntry) -> None:
        """A file sent in one piece straight from the source: check it (source hash, unchanged on disk since it
        was listed), count it and mark it done, or report it as failed."""
        bad = self._verify(entry, digest) or self._changed(entry)
        if bad:
            self._fail(entry, bad)
            return
        with self._mu:
            self.result.bytes_sent += entry.size
        self.emit(Event("bytes", entry.path, bytes=entry.size, total=entry.size))
        self._finish(entry, digest, de)

    def _changed(self, entry: Entry) -> str | None:
        check = getattr(self.src, "changed", None)
        if check is not None and check(entry):
            return "the source file changed during the copy; run again to copy the new version"
        return None

    def _multipart(self, entry: Entry, ps: int) -> None:
        path = entry.path
        fp = entry.fingerprint()
        row = self.j.get(path)
        upload = None
        server: dict[int, PartInfo] = {}
        same_upload = False  # the journal's upload goes on: its saved sha256 state may be used
        if row and row.status == "uploading" and row.fingerprint == fp and row.upload_state and row.upload_state.get("upload_id"):
            if row.part_size == ps:
                upload = self.dst.open_upload(entry, row.upload_state, entry.sha256)
                try:
                    server = self.retry(f"ListParts {path}", path, upload.list_parts)  # type: ignore[attr-defined]
                    same_upload = True
                    self.emit(Event("resume", path, message=f"resuming upload: {len(server)} parts already on the server"))
                except UploadGone:
                    self.emit(Event("warning", path, message="the previous multipart upload is gone; starting this file again"))
                    upload = None
                    server = {}
            else:
                old = self.dst.open_upload(entry, row.upload_state, None)
                self._abort_quietly(old)
        elif row and row.upload_state and row.upload_state.get("upload_id") and row.fingerprint != fp:
            # the source file changed since the upload started: the old parts are useless
            self.emit(Event("warning", path, message="source changed since the last run; restarting this file"))
            self._abort_quietly(self.dst.open_upload(entry, row.upload_state, None))
        if upload is None and not (row and row.upload_state):
            upload, server = self._adopt(entry, ps)
        if upload is None:
            upload = self.dst.open_upload(entry, None, entry.sha256)
            st = self.retry(f"CreateMultipartUpload {path}", path, upload.begin)
            _crash_point("after-begin")  # window: an upload the journal does not know (adopted or cleaned up)
            self.j.start_upload(path, ps, st)  # persisted before the first byte goes out
            self.j.upsert(path, entry.size, fp, "uploading")
        fs = _FileState(entry, upload)
        nparts = -(-entry.size // ps)
        sha = hashing.new()
        first = 1  # parts before this one are on the server and already in the restored sha256
        if not self.streaming and server:
            restored = self._restore_parts_prefix(entry, row if same_upload else None, server, ps, nparts)
            if restored is not None:
                k, sha = restored
                for number in range(1, k + 1):
                    n = min(ps, entry.size - (number - 1) * ps)
                    fs.part_done(number, server[number])
                    with self._mu:
                        self.result.bytes_reused += n
                    self.emit(Event("resumed", path, bytes=n, total=entry.size))
                first = fs.next_hash = k + 1
                fs.saved_upto = k
        box: list[Any] = [None]
        fs.server = server
        fs.sha = sha
        fs.ps = ps
        fs.track_states = not (self.streaming or self.par_reads)
        try:
            if self.streaming:
                self._hash_and_dispatch(entry, fs, server, nparts, ps, sha)
            elif self.par_reads:
                self._fetch_dispatch(entry, fs, nparts, ps, first)
            for number in range(first, nparts + 1) if not (self.streaming or self.par_reads) else ():
                if fs.error is not None:
                    break
                if self.stop.is_set():
                    raise _Stopped()
                off = (number - 1) * ps
                n = min(ps, entry.size - off)
                buf = self.pool.acquire()
                handed = False
                try:
                    view = memoryview(buf)[:n]
                    self._fill(entry, box, off, view)
                    sha.update(view)
                    fs.note_state(number, sha.state())
                    sp = server.get(number)
                    if sp is not None and sp.size == n and (
                        not self.dst.caps.part_etag_is_md5 or hashlib.md5(view).hexdigest() == sp.etag
                    ):
                        self.j.add_part(path, number, n, sp.etag)
                        fs.part_done(number, sp)
                        self._save_committed_prefix(fs, number)
                        with self._mu:
                            self.result.bytes_reused += n
                        self.emit(Event("resumed", path, bytes=n, total=entry.size))
                    else:
                        fs.pending_inc()
                        self.part_q.put((fs, number, buf, n, off, False))
                        handed = True
                finally:
                    if not handed:
                        self.pool.release(buf)
        finally:
            self._close_stream(box)
            fs.wait(self.stop)
            if self.par_reads:
                self._release_waiting(fs)
        if fs.error is not None:
            raise fs.error
        if self.stop.is_set():
            raise _Stopped()
        if self.streaming:
            self._recheck_streamed(entry, fs, ps)
        if self.par_reads and fs.next_hash != nparts + 1:
            raise RemoteError(f"{path}: only {fs.next_hash - 1} of {nparts} parts were read; run again to continue.")
        digest = sha.hexdigest()
        bad = self._verify(entry, digest) or (self._changed(entry) if self.streaming else None)
        if bad:
            self._abort_quietly(upload)
            self._fail(entry, bad)
            return
        parts = [fs.parts[i] for i in range(1, nparts + 1)]
        # what the finished object will be, recorded before Complete: a run killed after the server completed the
        # upload but before the journal said so is adopted by the next run (its ETag is recomputed from these
        # parts), not reported as a conflict
        self._commit_record(entry, upload.state, digest,
                            etag=multipart_etag([p.etag for p in parts]) if self.dst.caps.part_etag_is_md5 else None)

        def complete() -> DestEntry:
            try:
                return upload.complete(parts)  # type: ignore[attr-defined, no-any-return]
            except UploadGone:
                # a retried Complete whose first attempt succeeded: check what is there
                de = self.dst.stat(path)
                if de and de.size == entry.size and (not self.dst.caps.part_etag_is_md5
                                                     or de.etag == multipart_etag([p.etag for p in parts])):
                    return de
                raise
        try:
            de = self.retry(f"CompleteMultipartUpload {path}", path, complete)
        except UploadGone:
            self.j.reset(path)
            raise ResumableError(f"{path}: the upload vanished before it could be completed; run again to re-send it.") from None
        if self.dst.caps.part_etag_is_md5 and de.etag and "-" in de.etag and de.etag != multipart_etag([p.etag for p in parts]):
            raise RemoteError(f"{path}: destination ETag {de.etag} does not match the parts sent.")
        self._finish(entry, digest, de)

    def _fetch_dispatch(self, entry: Entry, fs: _FileState, nparts: int, ps: int, first: int = 1) -> None:
        """Queue every part from ``first`` on as a fetch-and-send job (bounded by the buffer pool: at most
        parallel + 2 parts are held, whether in flight or waiting for their turn in the sha256)."""
        assert self.pool is not None
        for number in range(first, nparts + 1):
            if fs.error is not None:
                break
            if self.stop.is_set():
                raise _Stopped()
            off = (number - 1) * ps
            buf = self.pool.acquire()
            fs.pending_inc()
            self.part_q.put((fs, number, buf, min(ps, entry.size - off), off, True))

    def _recheck_streamed(self, entry: Entry, fs: _FileState, ps: int) -> None:
        """Every streamed part: the server's ETag must be the MD5 the hasher computed over the same
        range (or, with --no-part-md5, the crc32 of what was sent must match the hasher's). This ties
        the sha256 to the bytes the server holds. Mismatching parts are sent again (3 tries)."""

        def bad_parts() -> list[int]:
            out = []
            for n in sorted(fs.sent):
                if self.check_md5 and MD5_WHERE != "workers":
                    if fs.parts[n].etag != fs.read_md5.get(n):
                        out.append(n)
                    continue
                if self.check_md5 and (fs.sent_md5.get(n) is None or fs.parts[n].etag != fs.sent_md5.get(n)) or fs.sent_crc.get(n) is None or fs.sent_crc.get(n) != fs.read_crc.get(n):
                    out.append(n)
            return out

        for _ in range(3):
            bad = bad_parts()
            if not bad:
                return
            self.emit(Event("retry", entry.path, message=f"parts {bad[:5]} do not match what was read; re-sending"))
            fs.sent.difference_update(bad)
            for number in bad:
                off = (number - 1) * ps
                self.slots.acquire()
                fs.pending_inc()
                self.part_q.put((fs, number, None, min(ps, entry.size - off), off, False))
            fs.wait(self.stop)
            if fs.error is not None:
                raise fs.error
            if self.stop.is_set():
                raise _Stopped()
        bad = bad_parts()
        if bad:
            raise RemoteError(f"{entry.path}: parts {bad[:5]} kept differing from the source (did the file change "
                              "during the copy, or is the network corrupting data?).")

    def _hash_and_dispatch(self, entry: Entry, fs: _FileState, server: dict[int, PartInfo], nparts: int, ps: int,
                           sha: Any) -> None:
        """Streaming mode: upload workers read their own ranges from disk, so this thread only hands
        out the missing parts (at most ``parallel`` in flight, bounded by slots) while a hasher
        thread reads the file once, in order, for the sha256, the crc32 of every part (compared
        with what the workers sent) and the MD5 of parts the server already holds (resume)."""
        bad_resumed: list[int] = []
        herr: list[BaseException] = []
        hashed = [0]  # parts the hasher has finished
        hcv = threading.Condition()
        # Uploads may start at most ``lead`` parts beyond the hasher. Unbounded, the workers took the CPU and
        # the hasher finished alone after the last part (2 GiB into a loopback sink on 2 cores: 1.2 s at one
        # core with --no-part-md5, 3.4 s with part MD5); bounded, both end together (+30% and +35%
        # throughput), and the workers read ranges the hasher just brought into the page cache.
        lead = max(2, int(self.opts.parallel or STREAM_PARALLEL) // 2)

        def hash_pass() -> None:
            buf = bytearray(min(HASH_CHUNK, max(1, entry.size)))
            mv = memoryview(buf)
            try:
                f = self.src.open(entry, 0)
            except OSError as e:
                herr.append(UserError(f"cannot read {entry.path!r}: {e.strerror or e}"))
                return
            try:
                for number in range(1, nparts + 1):
                    off = (number - 1) * ps
                    n = min(ps, entry.size - off)
                    sp = server.get(number)
                    have = sp is not None and sp.size == n
                    md5_all = self.check_md5 and MD5_WHERE != "workers"
                    md5 = hashlib.md5() if (have and self.dst.caps.part_etag_is_md5) or md5_all else None
                    crc = 0
                    left = n
                    while left:
                        if self.stop.is_set() or fs.error is not None:
                            return
                        k = f.readinto(mv[: min(len(buf), left)])
                        if not k:
                            herr.append(UserError(f"source file {entry.path!r} got shorter during the copy."))
                            return
                        sha.update(mv[:k])
                        if not md5_all:
                            crc = zlib.crc32(mv[:k], crc)
                        if md5 is not None:
                            md5.update(mv[:k])
                        left -= k
                    fs.read_crc[number] = f"{crc:08x}"
                    with hcv:
                        hashed[0] = number
                        hcv.notify_all()
                    if md5 is not None:
                        fs.read_md5[number] = md5.hexdigest()
                    if have:
                        assert sp is not None
                        if md5 is None or fs.read_md5[number] == sp.etag:
                            self.j.add_part(entry.path, number, n, sp.etag)
                            fs.part_done(number, sp)
                            with self._mu:
                                self.result.bytes_reused += n
                            self.emit(Event("resumed", entry.path, bytes=n, total=entry.size))
                        else:
                            bad_resumed.append(number)
            except BaseException as e:  # noqa: BLE001
                herr.append(e)
            finally:
                f.close()

        hasher = threading.Thread(target=hash_pass, name="fm-hash", daemon=True)
        hasher.start()
        try:
            for number in range(1, nparts + 1):
                if fs.error is not None or herr:
                    break
                sp = server.get(number)
                off = (number - 1) * ps
                n = min(ps, entry.size - off)
                if sp is not None and sp.size == n:
                    continue  # the hasher checks it
                with hcv:  # the hasher is on the critical path: never let the uploads run far ahead of it
                    while hashed[0] < number - 1 - lead and hasher.is_alive() and not self.stop.is_set():
                        hcv.wait(0.2)
                self.slots.acquire()
                fs.pending_inc()
                self.part_q.put((fs, number, None, n, off, False))
        finally:
            while hasher.is_alive():
                hasher.join(0.2)
        if herr:
            raise herr[0]
        for number in bad_resumed:  # on the server but not what we have: send again
            off = (number - 1) * ps
            self.slots.acquire()
            fs.pending_inc()
            self.part_q.put((fs, number, None, min(ps, entry.size - off), off, False))

    def _adopt(self, entry: Entry, ps: int) -> tuple[Any, dict[int, PartInfo]]:
        """No journal entry (state dir lost, other machine, an upload id lost to a power cut): look for
        an unfinished upload of this key on the server whose parts have our part size, and continue it.
        Its parts are still checked (size, and MD5 against the source) before they count."""
        key = f"{self.dst.prefix}/{entry.path}" if getattr(self.dst, "prefix", "") else entry.path
        try:
            stale = [st for st in self.retry("ListMultipartUploads", entry.path, self.dst.list_stale_uploads)
                     if st.get("key") == key]
        except (FlymigrateError, UploadGone):
            return None, {}
        best: tuple[Any, dict[int, PartInfo]] = (None, {})
        for st in stale:
            up = self.dst.open_upload(entry, st, entry.sha256)
            try:
                parts = self.retry(f"ListParts {entry.path}", entry.path, up.list_parts)
            except (FlymigrateError, UploadGone):
                continue
            last = -(-entry.size // ps)
            fits = all((p.size == ps if n < last else p.size == entry.size - (last - 1) * ps) and n <= last
                       for n, p in parts.items())
            if fits and len(parts) > len(best[1]):
                best = (up, parts)
        if best[0] is not None:
            self.j.start_upload(entry.path, ps, best[0].state)
            self.j.upsert(entry.path, entry.size, entry.fingerprint(), "uploading")
            self.emit(Event("resume", entry.path,
                            message=f"found an unfinished upload on the server with {len(best[1])} parts; continuing it"))
        return best

    def _abort_quietly(self, upload: Any) -> None:
        try:
            self.retry("AbortMultipartUpload", None, upload.abort)
        except (FlymigrateError, UploadGone):
            pass

    def _chunks(self, entry: Entry, ps: int) -> None:
        """GCS-style resumable session: sequential chunks, the server reports its committed offset."""
        assert self.pool is not None
        path = entry.path
        fp = entry.fingerprint()
        row = self.j.get(path)
        upload = None
        committed = 0
        sha = hashing.new()
        start = 0  # bytes before this offset are committed and already in the restored sha256
        if row and row.status == "uploading" and row.fingerprint == fp and row.upload_state:
            upload = self.dst.open_upload(entry, row.upload_state, entry.sha256)
            try:
                committed = int(self.retry(f"query session {path}", path, upload.committed))  # type: ignore[attr-defined]
                self.emit(Event("resume", path, message=f"resuming session at byte {committed}"))
                if committed > 0 and not hashing.saveable():
                    self._fallback_once(path)
                elif committed > 0 and row.hash_state and row.hash_offset and 0 < row.hash_offset <= committed:
                    restored = hashing.restore(row.hash_state)
                    if restored is not None:
                        sha, start = restored, int(row.hash_offset)
                        with self._mu:
                            self.result.bytes_reused += start
                        self.emit(Event("resumed", path, bytes=start, total=entry.size))
                        self.emit(Event("info", path, message=f"continuing the sha256 at byte {start}, which the "
                                        "destination holds (not read again)"))
            except UploadGone:
                upload = None
                committed = 0
        if upload is None:
            upload = self.dst.open_upload(entry, None, entry.sha256)
            st = self.retry(f"start session {path}", path, upload.begin)
            _crash_point("after-begin")
            self.j.start_upload(path, ps, st)
            self.j.upsert(path, entry.size, fp, "uploading")
        box: list[Any] = [None]
        ahead = ReadAhead(self, entry, ps, start) if self.src.caps.parallel_ranges and entry.size - start > ps else None
        buf = self.pool.acquire() if ahead is None else bytearray(0)
        try:
            off = start
            while off < entry.size or entry.size == 0:
                n = min(ps, entry.size - off)
                if ahead is not None:
                    # the chunks go out in order, but the next ones are already being fetched (ranged GETs)
                    if len(buf):
                        self.pool.release(buf)
                    buf = ahead.take(off)
                    view = memoryview(buf)[:n]
                else:
                    view = memoryview(buf)[:n]
                    self._fill(entry, box, off, view)
                sha.update(view)
                final = off + n >= entry.size
                if off + n <= committed:
                    with self._mu:
                        self.result.bytes_reused += n
                    self.emit(Event("resumed", path, bytes=n, total=entry.size))
                    self._save_hash(entry, off + n, sha)
                else:
                    skip = max(0, committed - off)
                    if skip:
                        with self._mu:
                            self.result.bytes_reused += skip
                    sub = view[skip:]
                    if final:
                        bad = self._verify(entry, sha.hexdigest())
                        if bad:
                            self._abort_quietly(upload)
                            self._fail(entry, bad)
                            return
                        self._commit_record(entry, upload.state, sha.hexdigest())
                    self.retry(f"upload chunk at {off + skip} of {path}", path,
                               lambda: upload.write_chunk(off + skip, sub, final))  # type: ignore[attr-defined]
                    if not final:
                        _crash_point("after-chunk")  # window: a chunk the journal does not count (committed() has it)
                    committed = off + n
                    self.j.set_bytes(path, committed)
                    if not final:
                        self._save_hash(entry, committed, sha)
                    with self._mu:
                        self.result.bytes_sent += len(sub)
                    self.emit(Event("bytes", path, bytes=len(sub), total=entry.size))
                off += n
                if entry.size == 0:
                    break
        finally:
            self._close_stream(box)
            if len(buf):
                self.pool.release(buf)
            if ahead is not None:
                ahead.close()
        digest = sha.hexdigest()
        de = self.retry(f"finalize {path}", path, upload.complete)  # type: ignore[attr-defined]
        self._finish(entry, digest, de)

    def _local_file(self, entry: Entry) -> None:
        """A destination that uploads a whole local file (Modal) and a local source: hand it the file itself
        (no staging copy: no second copy on disk, no write pass). Its sha256 is taken first; a file that
        changes before the upload is done is reported, not marked done."""
        path = entry.path
        sha = hashlib.sha256()
        buf = bytearray(min(HASH_CHUNK * 4, max(1, entry.size)))
        mv = memoryview(buf)
        try:
            with self.src.open(entry, 0) as f:
                while k := f.readinto(mv):
                    if self.stop.is_set():
                        raise _Stopped()
                    sha.update(mv[:k])
        except OSError as e:
            raise UserError(f"cannot read {path!r}: {e.strerror or e}") from None
        digest = sha.hexdigest()
        up = self.dst.open_upload(entry, None, digest)
        self.j.start_upload(path, 0, {"commit": {"size": entry.size, "sha256": digest}})
        self.j.upsert(path, entry.size, entry.fingerprint(), "uploading")
        de = self.retry(f"upload {path}", path, lambda: up.put_file(self.src.local_path(entry), digest))  # type: ignore[attr-defined]
        self._sent_whole(entry, digest, de)

    def _spool(self, entry: Entry) -> None:
        """Destinations that need a whole local file (Modal): stream to a private staging file first."""
        assert self.pool is not None
        path = entry.path
        staging = ensure_private_dir(Path(self.j.dir) / f"{self.j.id}.staging")
        fd, tmp = tempfile.mkstemp(dir=staging)
        sha = hashlib.sha256()
        box: list[Any] = [None]
        buf = self.pool.acquire()
        try:
            with os.fdopen(fd, "wb") as out:
                off = 0
                while off < entry.size:
                    n = min(len(buf), entry.size - off)
                    view = memoryview(buf)[:n]
                    self._fill(entry, box, off, view)
                    sha.update(view)
                    out.write(view)
                    off += n
            digest = sha.hexdigest()
            bad = self._verify(entry, digest)
            if bad:
                self._fail(entry, bad)
                return
            up = self.dst.open_upload(entry, None, digest)
            self.j.start_upload(path, 0, {"commit": {"size": entry.size, "sha256": digest}})
            de = self.retry(f"upload {path}", path, lambda: up.put_file(tmp, digest))  # type: ignore[attr-defined]
            with self._mu:
                self.result.bytes_sent += entry.size
            self.emit(Event("bytes", path, bytes=entry.size, total=entry.size))
            self._finish(entry, digest, de)
        finally:
            self._close_stream(box)
            self.pool.release(buf)
            try:
                os.unlink(tmp)
            except OSError:
                pass

    # ---------------------------------------------------------------------------------- file worker

    def file_worker(self, files: queue.Queue[Entry | None]) -> None:
        while not self.stop.is_set():
            try:
                entry = files.get_nowait()
            except queue.Empty:
                return
            if entry is None:
                return
            try:
                self.copy_file(entry)
            except _Stopped:
                return
            except BaseException as e:  # noqa: BLE001
                with self._mu:
                    if self.fatal is None:
                        self.fatal = e
                self.stop.set()
                return


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


# ---------------------------------------------------------------------------------------------- plan


def _local_hashes(src: Source, entry: Entry, ps: int) -> tuple[str, str, str]:
    """sha256, single-part md5 and multipart ETag of a seekable source file (plan-time comparisons)."""
    sha = hashlib.sha256()
    whole = hashlib.md5()
    parts: list[str] = []
    with src.open(entry, 0) as f:
        buf = bytearray(min(ps, 8 * MiB) if ps >= 8 * MiB else ps)
        cur = hashlib.md5()
        in_part = 0
        while True:
            n = f.readinto(buf)
            if not n:
                break
            v = memoryview(buf)[:n]
            sha.update(v)
            whole.update(v)
            pos = 0
            while pos < n:
                take = min(n - pos, ps - in_part)
                cur.update(v[pos : pos + take])
                in_part += take
                pos += take
                if in_part == ps:
                    parts.append(cur.hexdigest())
                    cur = hashlib.md5()
                    in_part = 0
        if in_part:
            parts.append(cur.hexdigest())
    return sha.hexdigest(), whole.hexdigest(), multipart_etag(parts) if len(parts) > 0 else ""


def _adopt_committed(dst: Destination, e: Entry, d: DestEntry, row: FileRow) -> tuple[str | None, str] | None:
    """A run killed after the server made the file final but before the journal said so left a commit record
    (what the finished file was to be: size, sha256, multipart ETag or MD5). If the destination's file is
    that one, return (its sha256, how it was verified), else None."""
    c = (row.upload_state or {}).get("commit")
    if not isinstance(c, dict) or c.get("size") != e.size or d.size != e.size:
        return None
    sha = c.get("sha256")
    if c.get("etag") and d.etag == c["etag"]:
        return sha, "multipart ETag recomputed from the parts it sent"
    if c.get("md5") and d.etag == c["md5"]:
        return sha, "MD5 of the bytes it sent"
    if sha:
        try:
            full = d if d.sha256 else (dst.stat(e.path) or d)
        except FlymigrateError:
            full = d
        if full.sha256 and full.sha256.lower() == str(sha).lower():
            return sha, "sha256 stored with the file"
        if c.get("etag") and full.etag == c["etag"]:
            return sha, "multipart ETag recomputed from the parts it sent"
    return None


def _matches(src: Source, dst: Destination, e: Entry, d: DestEntry, ps: int) -> bool | None:
    """True: same content; False: different; None: cannot tell."""
    if d.size != e.size:
        return False
    full = d
    if d.sha256 is None:
        try:
            full = dst.stat(e.path) or d
        except FlymigrateError:
            full = d
    if e.sha256 and full.sha256:
        return e.sha256.lower() == full.sha256.lower()
    if e.etag and full.etag and src.caps.hash_kind == "md5-etag" and e.etag == full.etag:
        return True
    if src.caps.seekable:
        sha, md5, mpe = _local_hashes(src, e, ps)
        if full.sha256:
            return sha == full.sha256.lower()
        if full.etag:
            if "-" in full.etag:
                return mpe == full.etag if e.size > ps else None
            return md5 == full.etag
    return None


# ----------------------------------------------------------------------------------------------- API


def run_transfer(src_url: str, dst_url: str, options: TransferOptions | None = None,
                 progress: ProgressCallback | None = None) -> TransferResult:
    """Copy ``src_url`` to ``dst_url``, resumably. See the module docstring."""
    import dataclasses

    opts = dataclasses.replace(options) if options is not None else TransferOptions()
    if opts.parallel is not None and not 1 <= opts.parallel <= 64:
        raise UserError("--parallel must be between 1 and 64.")
    if opts.part_size is not None and opts.part_size < 1 * MiB:
        raise UserError("--part-size must be at least 1 MiB.")
    src_p = parse_url(src_url)
    dst_p = parse_url(dst_url)
    stop = opts.stop or threading.Event()
    env = dict(opts.env) if opts.env is not None else dict(os.environ)
    aopts = AdapterOptions(endpoint_url=opts.endpoint_url, datacenter=opts.datacenter, env=env,
                           connections=(opts.parallel or STREAM_PARALLEL) * 2 + 2)
    # the journal is keyed by the URLs as the user wrote them (normalised), not by the pinned revision
    base_dir = Path(opts.state_dir) if opts.state_dir is not None else state_dir()
    try:
        ensure_private_dir(base_dir)
        tdir = ensure_private_dir(transfers_dir(base_dir))
    except (FileExistsError, NotADirectoryError, PermissionError) as exc:  # e.g. --state-dir /dev/null
        raise UserError(f"cannot use {base_dir} as the state directory: {exc.strerror}.",
                        hint="Pass --state-dir (or FLYMIGRATE_STATE_DIR) naming a folder you can write.") from None
    key_src = src_p.root + ("@" + src_p.revision if src_p.revision else "") + "|" + src_p.scheme + "|" + src_p.path
    key_dst = dst_p.scheme + "|" + dst_p.root + "|" + dst_p.path
    if opts.dry_run:
        # a dry run is dry: it writes no journal and no log (so `status` never lists it), takes no lock (it may
        # look while a real run goes on), and never waits out an outage: two quick tries, then an answer
        journal: Any = _DryJournal(tdir, key_src, key_dst)
        log: Any = _NullLog()
        opts.max_attempts = min(opts.max_attempts, 2)
        opts.retry_for = 0.0
        opts.backoff_base = min(opts.backoff_base, 0.2)
        opts.backoff_max = min(opts.backoff_max, 1.0)
    else:
        journal = Journal(tdir, key_src, key_dst)
        log = _Log(tdir / f"{journal.id}.log.jsonl")
    result = TransferResult(src=src_url, dst=dst_url, journal=str(journal.path),
                            log="" if opts.dry_run else str(tdir / f"{journal.id}.log.jsonl"), dry_run=opts.dry_run)
    journal.set_meta("src_url", _resume_url(src_url, src_p))
    journal.set_meta("dst_url", dst_url)
    extra: list[str] = []
    if opts.datacenter:
        extra += ["--datacenter", opts.datacenter]
    if opts.endpoint_url:
        from urllib.parse import urlsplit, urlunsplit

        u = urlsplit(opts.endpoint_url)  # never keep user:password@ from an endpoint URL
        extra += ["--endpoint-url", urlunsplit((u.scheme, u.hostname + (f":{u.port}" if u.port else "") if u.hostname
                                                else u.netloc, u.path, "", ""))]
    for f in opts.secrets_files:
        extra += ["--secrets", f]
    # what the "continue with" line of `status` must repeat for the rerun to do the same thing
    if opts.overwrite:
        extra += ["--overwrite"]
    if opts.part_size is not None:
        extra += ["--part-size", f"{opts.part_size // MiB}MiB" if opts.part_size % MiB == 0 else str(opts.part_size)]
    if opts.parallel is not None:
        extra += ["--parallel", str(opts.parallel)]
    if not opts.part_md5:
        extra += ["--no-part-md5"]
    if opts.state_dir is not None:
        extra += ["--state-dir", os.path.abspath(str(opts.state_dir))]
    journal.set_meta("cli_args", json.dumps(extra))
    t0 = time.monotonic()
    cb_mu = threading.Lock()

    def emit(ev: Event) -> None:
        log.write(ev)
        if progress is not None:
            with cb_mu:
                progress(ev)

    src: Source | None = None
    dst: Destination | None = None
    health = _Health()
    try:
        emit(Event("start", message=f"{src_url} -> {dst_url}", data={"dry_run": opts.dry_run}))

        def rt(what: str, fn: Callable[[], Any]) -> Any:
            return _retry(opts, stop, emit, what, None, fn, health)

        if opts.dry_run:
            src, dst, entries, existing, unchecked = _dry_open(src_p, dst_p, src_url, dst_url, aopts, rt)
            if unchecked:
                result.warnings.append(unchecked)
                emit(Event("warning", message=unchecked))
        else:
            src = open_source(src_p, aopts)
            dst = open_destination(dst_p, aopts)

        dcaps = dst.caps if dst is not None else DestCaps(WriteMode.PARTS)  # a dry run may not reach it
        streaming = src.caps.seekable and dcaps.write_mode is WriteMode.PARTS
        if opts.part_size is None:
            opts.part_size = STREAM_PART_SIZE if streaming else DEFAULT_PART_SIZE
        if opts.parallel is None:
            opts.parallel = STREAM_PARALLEL if streaming else DEFAULT_PARALLEL

        if not opts.dry_run:
            rt("check destination", dst.check)
            entries = rt("list source", lambda: list(src.list()))
        check_names([e.path for e in entries], src_url)  # remote names are untrusted: no '..', '/x', NUL
        journal.set_meta("src_resolved", src.describe())
        for w in getattr(src, "warnings", []) or []:
            result.warnings.append(w)
            emit(Event("warning", message=w))
        for side in (src, dst):
            for note in getattr(side, "notes", []) or []:
                emit(Event("info", message=note))
        if not entries:
            raise UserError(f"nothing to copy: {src_url} has no files.")
        if not opts.dry_run:
            existing = rt("list destination", dst.list)
        adopt_sha: dict[str, str | None] = {}
        to_copy: list[Entry] = []
        conflicts: list[str] = []
        for e in entries:
            ps = choose_part_size(e.size, int(opts.part_size), dcaps)
            row = journal.get(e.path)
            d = existing.get(e.path)
            fp = e.fingerprint()
            item: PlanItem
            if row and row.status in ("done", "skipped") and row.fingerprint == fp and d and d.size == e.size:
                item = PlanItem(e.path, e.size, "skip", "already copied and verified")
            elif d is not None and row and row.status == "uploading" and row.fingerprint == fp:
                # the interrupted run was writing this very file (the plan of that run let it): never a conflict
                adopted = _adopt_committed(dst, e, d, row)
                if adopted is not None:
                    adopt_sha[e.path] = adopted[0]
                    item = PlanItem(e.path, e.size, "skip", f"finished by the interrupted run; verified ({adopted[1]})")
                elif _matches(src, dst, e, d, ps):
                    item = PlanItem(e.path, e.size, "skip", "identical file already at the destination")
                else:
                    item = PlanItem(e.path, e.size, "resume", "the interrupted run was writing this file; finishing it")
            elif d is not None:
                same = _matches(src, dst, e, d, ps)
                if same:
                    item = PlanItem(e.path, e.size, "skip", "identical file already at the destination")
                elif opts.overwrite:
                    item = PlanItem(e.path, e.size, "overwrite",
                                    "differs from the destination" if same is False else "cannot verify the destination copy")
                else:
                    conflicts.append(f"{e.path} ({'differs' if same is False else 'same size, cannot verify it is identical'})")
                    item = PlanItem(e.path, e.size, "conflict")
            elif row and row.status == "uploading" and row.fingerprint == fp:
                item = PlanItem(e.path, e.size, "resume", f"{row.bytes_done} bytes sent before")
            else:
                item = PlanItem(e.path, e.size, "copy")
            result.plan.append(item)
            if item.action in ("copy", "overwrite", "resume"):
                to_copy.append(e)
        result.files_total = len(entries)
        result.bytes_total = sum(e.size for e in entries)
        result.bytes_to_copy = sum(e.size for e in to_copy)
        result.files_skipped = sum(1 for i in result.plan if i.action == "skip")
        emit(Event("plan", total=result.bytes_to_copy, message=f"{len(to_copy)} of {len(entries)} files to copy",
                   data={"files": len(entries), "to_copy": len(to_copy), "bytes_total": result.bytes_total,
                         "skipped": result.files_skipped, "conflicts": len(conflicts)}))
        if conflicts:
            shown = ", ".join(conflicts[:5]) + (f" and {len(conflicts) - 5} more" if len(conflicts) > 5 else "")
            raise UserError(f"{len(conflicts)} file(s) already exist at {dst_url} with different or unverifiable content: {shown}.",
                            hint="Nothing was overwritten. Pass --overwrite to replace them, or pick another destination prefix.")
        if opts.dry_run:
            return result
        skip_paths = {i.path for i in result.plan if i.action == "skip"}
        pending: list[tuple[str, int, str, str]] = []
        newly_skipped: list[tuple[Entry, str | None]] = []
        for e in entries:
            row = journal.get(e.path)
            if row is not None and row.fingerprint != e.fingerprint() and row.upload_state:
                # the source file changed since an upload of it started: those parts are useless now
                emit(Event("warning", e.path, message="source changed since the last run; restarting this file"))
                try:
                    old_up = dst.open_upload(e, row.upload_state, None)
                    rt(f"abort the old upload of {e.path}", old_up.abort)
                except (UploadGone, RemoteError):
                    pass
                journal.reset(e.path)
                row = journal.get(e.path)
            if row is None or row.fingerprint != e.fingerprint() or row.status not in ("done", "skipped"):
                pending.append((e.path, e.size, e.fingerprint(), "pending"))
                if e.path in skip_paths:
                    newly_skipped.append((e, adopt_sha.get(e.path) or (row.sha256 if row else None)))
        journal.upsert_many(pending)
        for e, sha in newly_skipped:
            journal.mark_done(e.path, sha, None, status="skipped")
        for i in result.plan:
            if i.action == "skip":
                emit(Event("file_skip", i.path, total=i.size, message=i.reason))
        if to_copy:
            _execute(src, dst, journal, opts, emit, result, stop, to_copy, health)
        if result.failed:
            shown = "; ".join(f"{p}: {m}" for p, m in list(result.failed.items())[:5])
            raise RemoteError(f"{len(result.failed)} file(s) failed verification and were not marked done: {shown}.",
                              hint="Run the same command again to re-copy them; if it repeats, the source is serving "
                              "different bytes than it advertises.")
        if opts.cleanup_stale:
            _cleanup(dst, entries, emit)
        journal.set_meta("finished", str(time.time()))
        result.seconds = time.monotonic() - t0
        emit(Event("done", total=result.bytes_sent, message="all files copied and verified",
                   data={"seconds": round(result.seconds, 3), "bytes_sent": result.bytes_sent,
                         "bytes_reused": result.bytes_reused}))
        return result
    except _Stopped:
        raise Interrupted("stopped; state is saved.", hint="Run the same command again to continue.") from None
    except (TransientError, UploadGone) as e:
        err = ResumableError(f"stopped by a transient failure ({e}).", hint="State is saved; run the same command again.")
        emit(Event("error", message=str(err), data={"exit_code": err.exit_code}))
        raise err from None
    except FlymigrateError as e:
        emit(Event("error", message=str(e), data={"exit_code": e.exit_code}))
        raise
    finally:
        result.seconds = time.monotonic() - t0
        for a in (src, dst):
            if a is not None:
                try:
                    a.close()
                except Exception:
                    pass
        log.close()
        if not opts.dry_run and not journal.has_files():
            # refused before anything was planned to be copied (bad destination, conflicts, no files): leave no
            # journal behind for `status` to call incomplete
            journal.close()
            for suffix in ("", "-wal", "-shm"):
                try:
                    os.unlink(str(journal.path) + suffix)
                except OSError:
                    pass
        else:
            journal.close()


class _DryJournal:
    """What a dry run reads of an existing journal (read-only, no lock; nothing is created)."""

    def __init__(self, directory: Path, src: str, dst: str) -> None:
        from .journal import journal_id

        self.id = journal_id(src, dst)
        self.path = Path(directory) / f"{self.id}.sqlite"
        self._rows: dict[str, FileRow] = {}
        if self.path.exists():
            import sqlite3

            try:
                db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
                try:
                    for r in db.execute("SELECT path,size,fingerprint,status,part_size,upload_state,sha256,dst_etag,"
                                        "bytes_done,error FROM files"):
                        self._rows[r[0]] = FileRow(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]) if r[5] else None,
                                                   r[6], r[7], r[8], r[9])
                finally:
                    db.close()
            except (sqlite3.Error, ValueError):  # a dry run of a damaged journal plans as if there were none
                self._rows = {}

    def get(self, path: str) -> FileRow | None:
        return self._rows.get(path)

    def set_meta(self, k: str, v: str) -> None:
        pass

    def has_files(self) -> bool:
        return bool(self._rows)

    def close(self) -> None:
        pass


class _NullLog:
    def write(self, ev: Event) -> None:
        pass

    def close(self) -> None:
        pass


DRY_SOURCE_DEADLINE = 20.0  # seconds a dry run waits for the source's listing
DRY_DEST_DEADLINE = 10.0  # ... and for the destination (then it says what it could not check)


def _deadline(fn: Callable[[], Any], seconds: float, what: str) -> Any:
    """``fn()`` in a helper thread; a TimeoutError naming ``what`` if it has not answered in ``seconds``."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["v"] = fn()
        except BaseException as e:  # noqa: BLE001 -- re-raised in the caller
            box["e"] = e

    t = threading.Thread(target=run, name="fm-dry", daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        raise TimeoutError(f"{what} did not answer within {seconds:.0f}s")
    if "e" in box:
        raise box["e"]
    return box.get("v")


def _dry_open(src_p: Any, dst_p: Any, src_url: str, dst_url: str, aopts: AdapterOptions,
              rt: Callable[[str, Callable[[], Any]], Any]) -> tuple[Source, Destination | None, list[Entry],
                                                                   dict[str, DestEntry], str]:
    """A dry run: the source must be listed (that is the answer); the destination is looked at if it can be,
    and otherwise the run says what it could not check (no credentials, unreachable) instead of failing."""
    try:
        src = _deadline(lambda: open_source(src_p, aopts), DRY_SOURCE_DEADLINE, f"opening {src_url}")
        entries = _deadline(lambda: rt("list source", lambda: list(src.list())), DRY_SOURCE_DEADLINE,
                            f"listing {src_url}")
    except (ResumableError, RemoteError, TransientError, TimeoutError, UploadGone) as e:
        why = e.message.rstrip(".") if isinstance(e, FlymigrateError) else str(e)
        raise ResumableError(f"dry run: could not list {src_url} ({why}).",
                             hint="Nothing was saved. Check the network (and the source's credentials), then run the "
                             "dry run again.") from None
    dst: Destination | None = None
    try:
        dst = _deadline(lambda: open_destination(dst_p, aopts), DRY_DEST_DEADLINE, f"opening {dst_url}")
        _deadline(lambda: rt("check destination", dst.check), DRY_DEST_DEADLINE, f"checking {dst_url}")  # type: ignore[union-attr]
        existing = _deadline(lambda: rt("list destination", dst.list), DRY_DEST_DEADLINE, f"listing {dst_url}")  # type: ignore[union-attr]
        return src, dst, entries, existing, ""
    except (UserError, ResumableError, RemoteError, TransientError, TimeoutError, UploadGone) as e:
        if dst is not None:
            try:
                dst.close()
            except Exception:  # noqa: BLE001
                pass
        why = (str(e) if isinstance(e, UserError) else e.message if isinstance(e, FlymigrateError) else str(e)).rstrip(".")
        return src, None, entries, {}, (f"could not check the destination {dst_url}: {why}. The plan below treats "
                                        "it as empty; a real run checks it first.")


def _resume_url(url: str, parsed: Any) -> str:
    """The source as the "continue with" command of `status` must name it: a local folder as an absolute path
    (the command may be run from another directory)."""
    return str(parsed.root) if parsed.scheme == "local" else url


def _execute(src: Source, dst: Destination, journal: Journal, opts: TransferOptions,
             emit: Callable[[Event], None], result: TransferResult, stop: threading.Event, to_copy: list[Entry],
             health: _Health | None = None) -> None:
    run = _Run(src, dst, journal, opts, emit, result, stop, health)
    if not run.streaming or dst.caps.write_mode is not WriteMode.PARTS:
        max_ps = max(choose_part_size(e.size, run.ps, dst.caps) for e in to_copy)
        max_ps = min(max_ps, max(e.size for e in to_copy)) if dst.caps.write_mode is not WriteMode.SPOOL else min(max_ps, 8 * MiB)
        max_ps = max(max_ps, 1)
        nbuf = max(2, min(int(opts.parallel or 1) + 2, MEMORY_BUDGET // max_ps))
        run.pool = _Pool(nbuf, max_ps, stop)
    files: queue.Queue[Entry | None] = queue.Queue()
    # big files first so the tail of the run is many small files in parallel, not one big straggler
    for e in sorted(to_copy, key=lambda e: -e.size):
        files.put(e)
    par = int(opts.parallel or 1)
    uploaders = [threading.Thread(target=run.upload_worker, name=f"fm-up-{i}", daemon=True) for i in range(par)]
    workers = [threading.Thread(target=run.file_worker, args=(files,), name=f"fm-file-{i}", daemon=True)
               for i in range(min(par, len(to_copy)))]
    for t in uploaders + workers:
        t.start()
    try:
        for t in workers:
            while t.is_alive():
                t.join(0.2)
    except KeyboardInterrupt:
        stop.set()
        for t in workers:
            t.join(10)
        raise _Stopped() from None
    finally:
        for _ in uploaders:
            run.part_q.put(None)
    if run.fatal is not None:
        raise run.fatal
    if stop.is_set():
        raise _Stopped()


def _cleanup(dst: Destination, entries: list[Entry], emit: Callable[[Event], None]) -> None:
    """Abort unfinished multipart uploads left behind for the keys we just wrote (older runs).

    Best effort, but a transient failure gets three tries: under injected 5xx/429/resets the soak found abandoned
    uploads (billed storage) left behind after a successful run when the one attempt failed."""

    def tries(fn: Callable[[], Any]) -> Any:
        for attempt in range(3):
            try:
                return fn()
            except TransientError:
                if attempt == 2:
                    raise
                time.sleep(0.2 * (attempt + 1))
        return None

    try:
        stale = tries(dst.list_stale_uploads)
    except (FlymigrateError, TransientError, UploadGone) as e:
        emit(Event("warning", message=f"could not list unfinished uploads: {e}"))
        return
    prefix = getattr(dst, "prefix", "")
    ours = {(f"{prefix}/{e.path}" if prefix else e.path) for e in entries}
    for st in stale:
        if st.get("key") in ours:
            try:
                tries(lambda st=st: dst.abort_stale(st))
                emit(Event("cleanup", st.get("key"), message="aborted an abandoned multipart upload"))
            except (FlymigrateError, TransientError) as e:
                emit(Event("warning", st.get("key"), message=f"could not abort an abandoned upload: {e}"))


def list_status(base: Path | None = None) -> list[dict[str, Any]]:
    """Summaries of every transfer journal (for ``flymigrate status`` and the TUI)."""
    from .journal import list_journals, read_only

    out = []
    for p in list_journals(transfers_dir(base)):
        try:
            s = read_only(p)
        except Exception as e:  # noqa: BLE001 -- a corrupt journal must not hide the others
            s = {"src": None, "dst": None, "error": f"{type(e).__name__}: {e}", "files": {}, "bytes_total": 0,
                 "bytes_done": 0, "failed": [], "running": False, "finished": None}
        else:
            if not s.get("files") and not s.get("running"):
                continue  # a dry run or a refused command (older versions left such journals): nothing was started
        s["journal"] = str(p)
        out.append(s)
    return out
