"""``WriteMode.CHUNKS`` (a GCS resumable session, Modal's staging file) and whole local files (Modal's
``put_file``): sequential chunks, the server's committed offset, the saved hash state. Mixed into
:class:`flymigrate.transfer.engine._Run`."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..paths import ensure_private_dir
from . import hashing
from .base import Entry, UploadGone
from .buffers import ReadAhead
from .events import Event
from .knobs import HASH_CHUNK, _crash_point
from .retry import _Stopped
from .run_attrs import RunAttrs


class ChunksMixin(RunAttrs):
    # the helpers it uses are those of engine._Run
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
