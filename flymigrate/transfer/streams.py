"""Small stream helpers shared by adapters (no third-party imports)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any
from zlib import crc32 as _crc32


class MemBody(io.RawIOBase):
    """A zero-copy request body over a memoryview.

    ``read()`` hands out the remaining view in large slices, so ``http.client`` does one
    ``sendall`` per MiB instead of copying the part into ``bytes``. Seekable, so botocore can
    rewind it for its own retries and learn the length.
    """

    SLICE = 4 * 1024 * 1024

    def __init__(self, view: memoryview) -> None:
        super().__init__()
        self._view = view
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> Any:
        if self._pos >= len(self._view):
            return b""
        n = self.SLICE if size is None or size < 0 else max(size, self.SLICE)
        end = min(len(self._view), self._pos + n)
        chunk = self._view[self._pos : end]
        self._pos = end
        return chunk

    def readinto(self, b: Any) -> int:
        chunk = self.read(len(b))
        n = len(chunk)
        memoryview(b)[:n] = chunk
        return n

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 0:
            self._pos = offset
        elif whence == 1:
            self._pos += offset
        else:
            self._pos = len(self._view) + offset
        return self._pos

    def __len__(self) -> int:
        return len(self._view)


class IterReader(io.RawIOBase):
    """``readinto`` over an iterator of byte chunks (HTTP client ``iter_bytes``)."""

    def __init__(self, chunks: Iterator[bytes], close: Any = None) -> None:
        super().__init__()
        self._it = chunks
        self._left = memoryview(b"")
        self._close = close

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._left:
            try:
                nxt = next(self._it)
            except StopIteration:
                return 0
            self._left = memoryview(nxt)
        n = min(len(b), len(self._left))
        memoryview(b)[:n] = self._left[:n]
        self._left = self._left[n:]
        return n

    def close(self) -> None:
        if self._close is not None:
            try:
                self._close()
            except Exception:
                pass
            self._close = None
        super().close()


def read_full(stream: Any, view: memoryview) -> int:
    """Fill ``view`` from ``stream`` (short only at EOF). Returns bytes read."""
    got = 0
    total = len(view)
    readinto = getattr(stream, "readinto", None)
    while got < total:
        if readinto is not None:
            n = readinto(view[got:])
        else:
            data = stream.read(total - got)
            n = len(data)
            view[got : got + n] = data
        if not n:
            break
        got += n
    return got


class FileSpan:
    """``count`` bytes of an open regular file from ``offset``: what a :class:`RangeBody` that needs no hashing hands
    the HTTP connection, which sends them with sendfile(2) (see s3._enable_sendfile): no copy through Python and
    no GIL round trip per MiB. Only our patched connection ever sees one."""

    __slots__ = ("f", "offset", "count")

    def __init__(self, f: Any, offset: int, count: int) -> None:
        self.f, self.offset, self.count = f, offset, count

    def __len__(self) -> int:
        return self.count

    def __bool__(self) -> bool:
        return self.count > 0


def _regular_fd(f: Any) -> bool:
    import os
    import stat

    try:
        return stat.S_ISREG(os.fstat(f.fileno()).st_mode)
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False


class RangeBody(io.RawIOBase):
    """A request body that streams ``length`` bytes of a seekable source from ``offset``.

    Nothing is staged: each ``read`` fills one small reusable buffer and hands out a view of it
    (``http.client`` sends it before asking for more). The hashers named in ``algos`` see exactly
    the bytes handed out, so ``digest(name)`` is the hash of what went on the wire. Seekable (botocore
    measures and rewinds bodies); a rewind to 0 restarts the hashes.
    """

    def __init__(self, opener: Any, offset: int, length: int, algos: tuple[str, ...] = (), chunk: int = 1 << 20,
                 sendfile: bool = False) -> None:
        super().__init__()
        import hashlib

        self._hashlib = hashlib
        self._opener = opener
        self._offset = offset
        self.length = length
        self._algos = algos
        self._chunk = min(chunk, max(1, length))
        self._buf: bytearray | None = None  # made on the first read that needs it (not for sendfile)
        self._mv = memoryview(b"")
        self._f: Any = None
        self._fpos = -1  # position of the file handle relative to offset
        self._pos = 0
        self._hashed = 0
        self._hashers = {a: hashlib.new(a) for a in algos if a != "crc32"}
        self.crc32 = 0  # when "crc32" in algos: ties what was sent to what the engine hashed (zlib, ~6 GB/s)
        self._crc = "crc32" in algos
        self.complete_hash = True
        # no hash to take of the bytes sent (the server checks them against a CRC32C sent in the headers): hand the
        # connection the whole range as one FileSpan, sent by sendfile(2), when the source is a regular file
        self._sendfile = sendfile and not algos

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def __len__(self) -> int:
        return self.length

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 0:
            self._pos = offset
        elif whence == 1:
            self._pos += offset
        else:
            self._pos = self.length + offset
        self._pos = max(0, min(self._pos, self.length))
        return self._pos

    def read(self, size: int = -1) -> Any:
        if self._pos >= self.length:
            return b""
        if self._f is None:
            self._f = self._opener()
            self._fpos = -1  # unknown: seek to offset + pos
        if self._sendfile and _regular_fd(self._f):
            span = FileSpan(self._f, self._offset + self._pos, self.length - self._pos)
            self._pos = self.length
            self._fpos = -1  # sendfile moves the file position
            return span
        self._sendfile = False
        if self._buf is None:
            self._buf = bytearray(self._chunk)
            self._mv = memoryview(self._buf)
        if self._fpos != self._pos:
            self._f.seek(self._offset + self._pos)
            self._fpos = self._pos
        if self._pos == 0 and self._hashed != 0:
            self._hashers = {a: self._hashlib.new(a) for a in self._algos if a != "crc32"}
            self.crc32 = 0
            self._hashed = 0
        want = min(len(self._buf), self.length - self._pos)
        k = self._f.readinto(self._mv[:want])
        if not k:
            raise OSError("source file is shorter than when it was listed (changed during the copy?)")
        chunk = self._mv[:k]
        if self._hashed == self._pos:
            for h in self._hashers.values():
                h.update(chunk)
            if self._crc:
                self.crc32 = _crc32(chunk, self.crc32)
            self._hashed += k
        else:
            self.complete_hash = False
        self._pos += k
        self._fpos += k
        return chunk

    def readinto(self, b: Any) -> int:
        chunk = self.read(len(b))
        n = len(chunk)
        memoryview(b)[:n] = chunk
        return n

    def digest(self, algo: str) -> str | None:
        if not self.complete_hash or self._hashed != self.length:
            return None
        if algo == "crc32":
            return f"{self.crc32:08x}" if self._crc else None
        h = self._hashers.get(algo)
        return h.hexdigest() if h is not None else None

    def close(self) -> None:
        if self._f is not None:
            try:
                self._f.close()
            except Exception:
                pass
            self._f = None
        super().close()
