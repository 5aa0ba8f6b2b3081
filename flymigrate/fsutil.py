"""Atomic, backed-up writes: nothing the user owns is ever half-written or lost."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def atomic_write(path: Path, data: bytes | str, *, mode: int | None = None, backup_dir: Path | None = None) -> Path | None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, rename).

    If ``backup_dir`` is given and ``path`` exists with different content, the old file is copied there first
    (once: an existing backup is never overwritten, so the *original* survives any number of runs).
    Returns the backup path, if one was made. Writing identical content is a no-op.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    backup = None
    if path.exists():
        try:
            if path.read_bytes() == data:
                return None
        except OSError:
            pass
        if backup_dir is not None:
            backup_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            backup = backup_dir / path.name
            n = 1
            while backup.exists():
                n += 1
                backup = backup_dir / f"{path.name}.{n}"
            shutil.copy2(path, backup)
        if mode is None:
            mode = path.stat().st_mode & 0o7777
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode if mode is not None else 0o644)
        os.replace(tmp, path)
        try:
            dfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return backup
