"""Local folder (or single file) as a source.

Symlinks are followed when their target stays inside the tree; links that point outside, dangling
links and loops are skipped with a warning. Sockets, FIFOs and devices are skipped with a warning.
Files are hashed while they stream (no pre-pass).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from typing import BinaryIO

from ..errors import UserError
from .base import AdapterOptions, Entry, ParsedURL, SourceCaps


class LocalSource:
    caps = SourceCaps(ranged_read=True, hash_kind=None, seekable=True)

    def __init__(self, url: ParsedURL) -> None:
        self.url = url.raw
        self.root = url.root
        self.warnings: list[str] = []
        if not os.path.exists(self.root):
            raise UserError(f"{url.raw!r}: no such file or folder.")

    def describe(self) -> str:
        return self.root

    def local_path(self, entry: Entry) -> str:
        """The file on disk (destinations that upload a whole local file take it as it is)."""
        return self._abs(entry)

    def _abs(self, entry: Entry) -> str:
        if os.path.isfile(self.root):
            return self.root
        return os.path.join(self.root, *entry.path.split("/"))

    def list(self) -> Iterator[Entry]:
        if os.path.isfile(self.root):
            st = os.stat(self.root)
            yield Entry(os.path.basename(self.root), st.st_size, mtime=st.st_mtime)
            return
        real_root = os.path.realpath(self.root)
        seen_dirs: set[tuple[int, int]] = set()

        def inside(p: str) -> bool:
            return p == real_root or p.startswith(real_root + os.sep)

        def walk(abs_dir: str, rel: str) -> Iterator[Entry]:
            try:
                st = os.stat(abs_dir)
            except OSError as e:
                self.warnings.append(f"skipped {rel or '.'}: {e.strerror}")
                return
            key = (st.st_dev, st.st_ino)
            if key in seen_dirs:
                self.warnings.append(f"skipped {rel}: symlink loop")
                return
            seen_dirs.add(key)
            try:
                names = sorted(os.listdir(abs_dir))
            except OSError as e:
                self.warnings.append(f"skipped {rel or '.'}: {e.strerror}")
                return
            for name in names:
                p = os.path.join(abs_dir, name)
                r = f"{rel}/{name}" if rel else name
                try:
                    lst = os.lstat(p)
                except OSError:
                    continue
                if stat.S_ISLNK(lst.st_mode):
                    target = os.path.realpath(p)
                    if not inside(target):
                        self.warnings.append(f"skipped {r}: symlink points outside the folder ({os.readlink(p)})")
                        continue
                    try:
                        st2 = os.stat(p)
                    except OSError:
                        self.warnings.append(f"skipped {r}: dangling symlink")
                        continue
                else:
                    st2 = lst
                if stat.S_ISDIR(st2.st_mode):
                    yield from walk(p, r)
                elif stat.S_ISREG(st2.st_mode):
                    yield Entry(r, st2.st_size, mtime=st2.st_mtime)
                else:
                    self.warnings.append(f"skipped {r}: not a regular file")

        yield from walk(self.root, "")

    def changed(self, entry: Entry) -> bool:
        """True when the file no longer has the size/mtime it had when listed."""
        try:
            st = os.stat(self._abs(entry))
        except OSError:
            return True
        return st.st_size != entry.size or (entry.mtime is not None and st.st_mtime != entry.mtime)

    def open(self, entry: Entry, offset: int = 0) -> BinaryIO:
        f = open(self._abs(entry), "rb", buffering=0)  # noqa: SIM115
        if offset:
            f.seek(offset)
        return f  # type: ignore[return-value]

    def close(self) -> None:
        pass


def source(url: ParsedURL, opts: AdapterOptions) -> LocalSource:
    return LocalSource(url)
