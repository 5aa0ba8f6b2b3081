"""Small stream helpers shared by adapters (no third-party imports)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any


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
