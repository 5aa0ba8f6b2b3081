"""Atomic, backed-up writes: nothing the user owns is ever half-written or lost."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

_DEFERRED = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Ctrl-C / SIGTERM wait until the temp file is renamed or removed (a signal between ``mkstemp`` and the
    ``try`` would leave it behind); delivered right after. Only the main thread receives Python signals."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _DEFERRED)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _sweep_stale_temps(path: Path) -> None:
    """Remove temp files an earlier write of ``path`` left when its process was killed (SIGKILL cannot be
    deferred). Only names this module makes: ``.NAME.<8 random chars>.tmp`` beside ``path``."""
    pat = re.compile(r"\." + re.escape(path.name) + r"\.[A-Za-z0-9_]{8}\.tmp")
    try:
        names = [n for n in os.listdir(path.parent) if pat.fullmatch(n)]
    except OSError:
        return
    for n in names:
        with contextlib.suppress(OSError):
            os.unlink(path.parent / n)


def atomic_write(path: Path, data: bytes | str, *, mode: int | None = None, backup_dir: Path | None = None) -> Path | None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, rename).

    If ``backup_dir`` is given and ``path`` exists with different content, the old file is copied there first
    (once: an existing backup is never overwritten, so the *original* survives any number of runs).
    Returns the backup path, if one was made. Writing identical content is a no-op.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    backup = None
    _sweep_stale_temps(path)
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
    with _signals_deferred():
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, mode if mode is not None else 0o644)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    try:
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return backup
