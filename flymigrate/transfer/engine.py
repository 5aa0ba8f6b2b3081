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
* Resume without re-reading: the sha256 state after every committed prefix is saved in the journal
  (:mod:`.hashing`), so a resumed file continues hashing after the parts / chunks the destination holds.
* Every window where the server and the journal disagree is closed: a commit record (what the finished file
  will be: size, sha256, multipart ETag or MD5) is written before the call that makes the file final, and
  the next run adopts a file that matches it (:func:`.plan._adopt_committed`).

Where things live: this module (options, the run, the plan loop, dry runs); :mod:`.write_parts` (S3
multipart and single PUTs); :mod:`.write_chunks` (GCS sessions, Modal); :mod:`.buffers` (buffer pool,
slots, read-ahead, per-file state); :mod:`.retry`; :mod:`.plan` (part size, "is it the same file");
:mod:`.status` (journal summaries); :mod:`.knobs` (sizes, parallelism, test crash points).
"""

from __future__ import annotations

import json
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import FlymigrateError, Interrupted, RemoteError, ResumableError, UserError
from ..paths import ensure_private_dir, state_dir
from . import hashing
from .base import (
    AdapterOptions,
    DestCaps,
    DestEntry,
    Destination,
    Entry,
    MiB,
    Source,
    TransientError,
    UploadGone,
    WriteMode,
    check_names,
    open_destination,
    open_source,
    parse_url,
)
from .buffers import ReadAhead, _FileState, _Pool, _Slots
from .events import Event
from .journal import FileRow, Journal
from .knobs import (
    DEFAULT_PARALLEL,
    DEFAULT_PART_SIZE,
    HASH_CHUNK,
    MD5_WHERE,
    MEMORY_BUDGET,
    STREAM_PARALLEL,
    STREAM_PART_SIZE,
    _crash_point,
)
from .plan import _adopt_committed, _local_hashes, _matches, choose_part_size, multipart_etag
from .retry import _fmt_secs, _Health, _retry, _Stopped
from .status import list_status, transfers_dir
from .streams import read_full
from .write_chunks import ChunksMixin
from .write_parts import PartsMixin

# the names other modules and older callers import from here
__all__ = [
    "DEFAULT_PARALLEL", "DEFAULT_PART_SIZE", "HASH_CHUNK", "MD5_WHERE", "MEMORY_BUDGET", "STREAM_PARALLEL",
    "STREAM_PART_SIZE", "Event", "PlanItem", "ProgressCallback", "ReadAhead", "TransferOptions", "TransferResult",
    "choose_part_size", "list_status", "multipart_etag", "run_transfer", "transfers_dir", "_FileState", "_Health",
    "_Pool", "_Slots", "_Stopped", "_adopt_committed", "_crash_point", "_fmt_secs", "_local_hashes", "_matches",
    "_retry",
]


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
    part_md5: bool = True  # False (--no-part-md5) = part_check "none"
    # how each part (and each single PUT) is checked on the server, on top of the end-to-end sha256:
    # "auto": CRC32C (x-amz-checksum-crc32c, verified by the server) where a probe shows the endpoint verifies it,
    # else the part's MD5 against its ETag; "crc32c" / "md5": that one (crc32c without the probe); "none": neither
    # (a crc32 ties each part sent to the bytes the sha256 read; sizes are checked)
    part_check: str = "auto"
    # once the run has reached the remotes, an outage (connection refused/reset, timeouts, DNS) is waited out
    # for this long before giving up with exit 4: an unattended copy survives a laptop changing networks or
    # a ten-minute outage. A remote never reached in this run still fails after max_attempts (a typo'd
    # endpoint should not hang for minutes).
    retry_for: float = 900.0
    secrets_files: tuple[str, ...] = ()  # where ``env``'s credentials came from (for the "continue with" command)


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


class _Run(PartsMixin, ChunksMixin):
    """One run's shared state and the helpers of every write mode (the modes themselves: write_parts.py,
    write_chunks.py)."""

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
        check = _part_check(opts)
        # per-part CRC32C the server verifies (decided per endpoint by _execute's probe); else the part's MD5
        self.use_crc32c = bool(check == "crc32c" and getattr(dst, "crc32c", False))
        self.check_md5 = bool(dst.caps.part_etag_is_md5 and check == "md5")
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


    def _fallback_once(self, path: str) -> None:
        with self._mu:
            if self._said_fallback:
                return
            self._said_fallback = True
        self.emit(Event("warning", path, message=f"{hashing.FALLBACK_REASON}: a resumed file re-reads from the source "
                        "what the destination already holds, to rebuild its sha256"))


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


    def _abort_quietly(self, upload: Any) -> None:
        try:
            self.retry("AbortMultipartUpload", None, upload.abort)
        except (FlymigrateError, UploadGone):
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


# ---------------------------------------------------------------------------------------------- plan


# ----------------------------------------------------------------------------------------------- API


def run_transfer(src_url: str, dst_url: str, options: TransferOptions | None = None,
                 progress: ProgressCallback | None = None) -> TransferResult:
    """Copy ``src_url`` to ``dst_url``, resumably. See the module docstring."""
    import dataclasses

    opts = dataclasses.replace(options) if options is not None else TransferOptions()
    if opts.part_check not in PART_CHECKS:
        raise UserError(f"--part-check must be one of {', '.join(PART_CHECKS)} (got {opts.part_check!r}).")
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
    journal.set_meta("src_url", src_url)
    journal.set_meta("src_resume", _resume_url(src_url, src_p))  # for the "continue with" line of `status`
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
    elif opts.part_check != "auto":
        extra += ["--part-check", opts.part_check]
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
                adopted = _adopt_committed(dst, e, d, row, journal.parts(e.path))
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

    def parts(self, path: str) -> dict[int, tuple[int, str]]:
        return {}  # only a journal of an older version needs them (see plan._adopt_committed)

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


PART_CHECKS = ("auto", "crc32c", "md5", "none")
PROBE_KEY = ".flymigrate-checksum-probe-"  # = s3.PROBE_KEY (+ a random suffix): the probe's multipart upload


def _part_check(opts: TransferOptions) -> str:
    return "none" if not opts.part_md5 else opts.part_check


def _resolve_part_check(dst: Destination, opts: TransferOptions, emit: Callable[[Event], None],
                        stop: threading.Event, health: _Health | None) -> None:
    """Pick the per-part check of this run, per endpoint: "auto" probes whether the destination verifies
    x-amz-checksum-crc32c (one part of one byte with a wrong checksum, in an upload that is aborted) and uses
    it if it does; otherwise each part's MD5 is compared with its ETag, as before. Sets ``dst.crc32c`` and
    ``opts.part_check`` ("crc32c" | "md5" | "none")."""
    check = _part_check(opts)
    probe = getattr(dst, "probe_checksum", None)
    if probe is None or dst.caps.write_mode is not WriteMode.PARTS:
        opts.part_check = "md5" if check in ("auto", "crc32c") else check
        return
    if check == "auto":
        ok, why = _retry(opts, stop, emit, "checksum probe", None, probe, health)
        check = "crc32c" if ok else "md5"
        msg = ("each part is checked by the destination with CRC32C (x-amz-checksum-crc32c): " + why if ok else
               "each part's MD5 is compared with its ETag: the destination does not verify x-amz-checksum-crc32c (" + why + ")")
        emit(Event("info", message=msg, data={"part_check": check}))
    dst.crc32c = check == "crc32c"  # type: ignore[attr-defined]
    if opts.part_md5:
        opts.part_check = check


def _execute(src: Source, dst: Destination, journal: Journal, opts: TransferOptions,
             emit: Callable[[Event], None], result: TransferResult, stop: threading.Event, to_copy: list[Entry],
             health: _Health | None = None) -> None:
    _resolve_part_check(dst, opts, emit, stop, health)
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
    probe = f"{prefix}/{PROBE_KEY}" if prefix else PROBE_KEY  # a checksum probe of a run killed mid-probe
    for st in stale:
        if st.get("key") in ours or str(st.get("key", "")).startswith(probe):
            try:
                tries(lambda st=st: dst.abort_stale(st))
                emit(Event("cleanup", st.get("key"), message="aborted an abandoned multipart upload"))
            except (FlymigrateError, TransientError) as e:
                emit(Event("warning", st.get("key"), message=f"could not abort an abandoned upload: {e}"))


