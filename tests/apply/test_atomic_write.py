"""fsutil.atomic_write: a signal never leaves a temp file behind, and one a killed run left is swept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from flymigrate.fsutil import atomic_write

ROOT = Path(__file__).resolve().parents[2]


def test_a_temp_file_a_killed_write_left_is_swept_and_nothing_else(tmp_path: Path) -> None:
    p = tmp_path / "README.md"
    p.write_text("old")
    (tmp_path / ".README.md.gtn9q58m.tmp").write_bytes(b"")  # what SIGKILL mid-write leaves
    others = [".README.md.notours.tmp2", ".other.md.abcdefgh.tmp", "README.md.abcdefgh.tmp"]
    for n in others:
        (tmp_path / n).write_text("keep")
    atomic_write(p, "new")
    assert p.read_text() == "new"
    assert sorted(os.listdir(tmp_path)) == sorted(["README.md", *others])
    # the same content again is a no-op, and it still sweeps
    (tmp_path / ".README.md.zzzzzzzz.tmp").write_bytes(b"")
    atomic_write(p, "new")
    assert not (tmp_path / ".README.md.zzzzzzzz.tmp").exists()


def test_sigterm_during_the_write_is_delivered_after_it_with_no_temp_left(tmp_path: Path) -> None:
    """SIGTERM sent while the temp file is open: the handler runs once the file is renamed, never before."""
    script = textwrap.dedent(f"""
        import os, signal, sys, tempfile
        from pathlib import Path
        from flymigrate import fsutil
        seen = []
        signal.signal(signal.SIGTERM, lambda *a: seen.append(sorted(os.listdir({str(tmp_path)!r}))))
        real = tempfile.mkstemp
        def mkstemp(*a, **k):
            r = real(*a, **k)
            os.kill(os.getpid(), signal.SIGTERM)  # arrives between mkstemp and the rename
            return r
        fsutil.tempfile.mkstemp = mkstemp
        fsutil.atomic_write(Path({str(tmp_path / "f.txt")!r}), "data")
        print(seen)
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[['f.txt']]"  # the handler saw the finished file and no temp
    assert sorted(os.listdir(tmp_path)) == ["f.txt"]
