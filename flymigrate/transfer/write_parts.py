"""``WriteMode.PARTS`` (S3 multipart: RunPod volumes, Tigris, any S3): single PUTs, parallel parts streamed from
disk or fetched as ranges, the in-order sha256, resume from ListParts and the saved hash state, adoption of an
unfinished upload. Mixed into :class:`flymigrate.transfer.engine._Run`."""

from __future__ import annotations

import hashlib
import threading
import zlib
from typing import Any

from ..errors import FlymigrateError, RemoteError, ResumableError, UserError
from . import hashing
from .base import ChecksumMismatch, DestEntry, Entry, PartInfo, UploadGone
from .buffers import _FileState
from .events import Event
from .journal import FileRow
from .knobs import HASH_CHUNK, MD5_WHERE, STREAM_PARALLEL, _crash_point
from .plan import multipart_etag
from .retry import _Stopped
from .run_attrs import RunAttrs
from .streams import RangeBody


_TLS = threading.local()


class PartsMixin(RunAttrs):
    # the helpers it uses are those of engine._Run
    slots: Any
    part_q: Any
    check_md5: bool
    use_crc32c: bool
    streaming: bool
    par_reads: bool

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
                        if fs.crc and sp.crc32c:
                            same = hashing.crc32c_b64(hashing.crc32c(view)) == sp.crc32c
                        else:
                            md5 = hashlib.md5(view).hexdigest() if self.dst.caps.part_etag_is_md5 else None
                            same = md5 is None or md5 == sp.etag
                        if same:
                            self.j.add_part(fs.entry.path, number, n, sp.etag)
                            fs.part_done(number, sp)
                            with self._mu:
                                self.result.bytes_reused += n
                            self.emit(Event("resumed", fs.entry.path, bytes=n, total=fs.entry.size))
                            handed = True
                            self._hash_in_order(fs, number, view, buf)
                            continue
                c32: str | None = None
                if fs.crc:
                    # the server verifies the part against this (refusing it if it differs): computed here, in the
                    # upload workers, in parallel; for streamed parts it is the hasher's, of the bytes its sha256 read
                    c32 = fs.read_c32c.get(number) if buf is None else hashing.crc32c_b64(hashing.crc32c(memoryview(buf)[:n]))
                    if c32 is None:
                        raise RemoteError(f"{fs.entry.path}: part {number} was sent before it was hashed (internal).")
                why = ""
                for _ in range(3):
                    if buf is not None:
                        view = memoryview(buf)[:n]
                        if md5 is None and fs.md5 and c32 is None:
                            md5 = hashlib.md5(view).hexdigest()
                        try:
                            info = self.retry(f"UploadPart {number} of {fs.entry.path}", fs.entry.path,
                                              (lambda: fs.upload.write_part(number, view, c32)) if c32
                                              else (lambda: fs.upload.write_part(number, view)))
                        except ChecksumMismatch as e:
                            why = str(e)
                            self.emit(Event("retry", fs.entry.path, message=f"part {number}: {e}; re-sending"))
                            continue
                        if c32 is not None:
                            break
                    elif c32 is not None:
                        def send_checked() -> PartInfo:
                            body = RangeBody(lambda: self.src.open(fs.entry, 0), off, n, (),
                                             sendfile=getattr(self.dst, "sendfile", False))
                            try:
                                return fs.upload.write_part(number, body, c32)  # type: ignore[no-any-return]
                            finally:
                                body.close()

                        try:
                            info = self.retry(f"UploadPart {number} of {fs.entry.path}", fs.entry.path, send_checked)
                        except ChecksumMismatch as e:
                            why = str(e)
                            self.emit(Event("retry", fs.entry.path, message=f"part {number}: {e}; re-sending"))
                            continue
                        fs.sent.add(number)
                        fs.verified.add(number)
                        break
                    else:
                        # streamed from disk: the hasher thread's MD5 of this range is compared with the
                        # ETag once both are known (in _multipart); without MD5 checks a crc32 of the bytes
                        # sent is compared with the hasher's instead
                        md5_here = fs.md5 and MD5_WHERE == "workers"
                        algos = ("md5", "crc32") if md5_here else (() if fs.md5 else ("crc32",))

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
                    if not fs.md5 or info.etag == md5:
                        break
                    why = f"ETag {info.etag} != MD5 {md5}"
                    self.emit(Event("retry", fs.entry.path, message=f"part {number}: {why}; re-sending"))
                    md5 = None
                else:
                    raise RemoteError(f"{fs.entry.path}: part {number} kept arriving corrupted ({why}).")
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
            c32 = hashing.crc32c_b64(hashing.crc32c(view)) if self.use_crc32c else None
            md5 = hashlib.md5(view).hexdigest() if self.check_md5 else None
            up = self.dst.open_upload(entry, None, digest)
            self.j.start_upload(entry.path, entry.size, {"commit": {"size": entry.size, "sha256": digest, "md5": md5}})
            why = ""
            for _ in range(3):
                try:
                    de = self.retry(f"PutObject {entry.path}", entry.path,
                                    (lambda: up.put(view, digest, c32)) if c32 else (lambda: up.put(view, digest)))  # type: ignore[attr-defined]
                except ChecksumMismatch as e:
                    why = str(e)
                    self.emit(Event("retry", entry.path, message=f"{e}; re-sending"))
                    continue
                if md5 is None or de.etag == md5:
                    break
                why = f"ETag {de.etag} != MD5 {md5}"
                self.emit(Event("retry", entry.path, message=f"{why}; re-sending"))
            else:
                self._fail(entry, f"kept arriving corrupted ({why})")
                return
            with self._mu:
                self.result.bytes_sent += entry.size
            self.emit(Event("bytes", entry.path, bytes=entry.size, total=entry.size))
            self._finish(entry, digest, de)
        finally:
            self.pool.release(buf)

    def _single_put_stream(self, entry: Entry) -> None:
        """One PUT straight from disk; md5 and sha256 are taken from the very bytes sent (with CRC32C: the file
        is read once for its sha256 and CRC32C, then sent with the CRC32C, which the server verifies)."""
        self.slots.acquire()
        try:
            if self.use_crc32c:
                self._single_put_checked(entry)
                return
            up = self.dst.open_upload(entry, None, entry.sha256)
            # no journal write before this PUT (one per small file would cost more than it saves): a run killed
            # after it is matched by the next run from the local file's MD5 (see plan._matches)
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

    def _single_put_checked(self, entry: Entry) -> None:
        sha = hashlib.sha256()
        crc = 0
        buf = getattr(_TLS, "buf", None)  # one read buffer per file worker, not one per small file
        if buf is None:
            buf = _TLS.buf = bytearray(HASH_CHUNK)
        mv = memoryview(buf)
        try:
            f = self.src.open(entry, 0)
            try:
                left = entry.size
                while left:
                    k = f.readinto(mv[: min(len(buf), left)])
                    if not k:
                        raise UserError(f"source file {entry.path!r} got shorter during the copy.")
                    sha.update(mv[:k])
                    crc = hashing.crc32c(mv[:k], crc)
                    left -= k
            finally:
                f.close()
        except OSError as e:
            raise UserError(f"cannot read {entry.path!r}: {e.strerror or e}") from None
        digest, c32 = sha.hexdigest(), hashing.crc32c_b64(crc)
        up = self.dst.open_upload(entry, None, digest)

        def send() -> DestEntry:
            body = RangeBody(lambda: self.src.open(entry, 0), 0, entry.size, (), sendfile=getattr(self.dst, "sendfile", False))
            try:
                return up.put(body, digest, c32)  # type: ignore[attr-defined, no-any-return]
            finally:
                body.close()

        why = ""
        for _ in range(3):
            try:
                de = self.retry(f"PutObject {entry.path}", entry.path, send)
                break
            except ChecksumMismatch as e:
                why = str(e)
                self.emit(Event("retry", entry.path, message=f"{e}; re-sending"))
            except OSError as e:
                raise UserError(f"cannot read {entry.path!r}: {e.strerror or e}") from None
        else:
            self._fail(entry, f"kept arriving corrupted ({why})")
            return
        self._sent_whole(entry, digest, de)

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
        # an upload takes the check it was created for: one made by an MD5 run (or adopted from the server
        # without a checksum algorithm) keeps MD5 in a CRC32C run
        fs.md5 = bool(not fs.crc and self.dst.caps.part_etag_is_md5 and (self.check_md5 or self.use_crc32c))
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
                if n in fs.verified:  # the server checked its CRC32C (that of the bytes the sha256 pass read)
                    continue
                if fs.md5 and MD5_WHERE != "workers":
                    if fs.parts[n].etag != fs.read_md5.get(n):
                        out.append(n)
                    continue
                if fs.md5 and (fs.sent_md5.get(n) is None or fs.parts[n].etag != fs.sent_md5.get(n)) or fs.sent_crc.get(n) is None or fs.sent_crc.get(n) != fs.read_crc.get(n):
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
        # With per-part CRC32C the order is the other way round: a part goes out once the hasher has read it (its
        # checksum travels in the request's headers), and the hasher stays at most ``ahead`` parts in front of
        # the uploads, so the workers read ranges it just brought into the page cache.
        ahead = int(self.opts.parallel or STREAM_PARALLEL) + 2
        at = [0]  # the part the dispatcher is at

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
                    if fs.crc:
                        with hcv:
                            while number > at[0] + ahead and not self.stop.is_set() and fs.error is None:
                                hcv.wait(0.2)
                    md5_all = fs.md5 and MD5_WHERE != "workers"
                    by_crc = fs.crc and have and sp is not None and bool(sp.crc32c)
                    md5 = hashlib.md5() if (have and self.dst.caps.part_etag_is_md5 and not by_crc) or md5_all else None
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
                        if fs.crc:
                            crc = hashing.crc32c(mv[:k], crc)
                        elif not md5_all:
                            crc = zlib.crc32(mv[:k], crc)
                        if md5 is not None:
                            md5.update(mv[:k])
                        left -= k
                    if fs.crc:
                        fs.read_c32c[number] = hashing.crc32c_b64(crc)
                    else:
                        fs.read_crc[number] = f"{crc:08x}"
                    with hcv:
                        hashed[0] = number
                        hcv.notify_all()
                    if md5 is not None:
                        fs.read_md5[number] = md5.hexdigest()
                    if have:
                        assert sp is not None
                        if (sp.crc32c == fs.read_c32c.get(number)) if by_crc else (md5 is None or fs.read_md5[number] == sp.etag):
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
                with hcv:
                    at[0] = number
                    hcv.notify_all()
                if sp is not None and sp.size == n:
                    continue  # the hasher checks it
                need = number if fs.crc else number - 1 - lead
                with hcv:  # the hasher is on the critical path: never let the uploads run far ahead of it
                    while hashed[0] < need and hasher.is_alive() and not self.stop.is_set():
                        hcv.wait(0.2)
                if fs.crc and number not in fs.read_c32c:
                    break  # the hasher stopped (its error is raised below)
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
