"""Fixtures for the trust tests: a sandbox (app dir, fake HOME, state dir, TMPDIR) with filesystem
snapshots, canary secrets, moto on loopback, and a CLI runner that watches argv and memory."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
for p in (str(TESTS), str(Path(__file__).resolve().parent)):
    if p not in sys.path:
        sys.path.insert(0, p)

from leak import Canaries

try:  # hypothesis keeps caches in ./.hypothesis: keep them out of the checkout
    import tempfile

    from hypothesis.configuration import set_hypothesis_home_dir

    set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), "flymigrate-trust-hypothesis"))
except ImportError:  # pragma: no cover
    pass

EXAMPLE = ROOT / "examples" / "acme-chat"


def snapshot(root: Path) -> dict[str, tuple[str, int, int, int]]:
    """relpath -> (kind, size, mtime_ns, mode) for everything under root (links not followed)."""
    out: dict[str, tuple[str, int, int, int]] = {}
    if not root.exists():
        return out
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            kind = "l" if stat.S_ISLNK(st.st_mode) else "d" if stat.S_ISDIR(st.st_mode) else "f"
            out[os.path.relpath(p, root)] = (kind, st.st_size if kind == "f" else 0,
                                             st.st_mtime_ns if kind == "f" else 0, stat.S_IMODE(st.st_mode))
    return out


def diff(before: dict[str, tuple[str, int, int, int]], after: dict[str, tuple[str, int, int, int]]) -> list[str]:
    changed = [f"+ {k}" for k in after.keys() - before.keys()]
    changed += [f"- {k}" for k in before.keys() - after.keys()]
    changed += [f"~ {k}" for k in before.keys() & after.keys() if before[k] != after[k]]
    return sorted(changed)


@dataclass
class Sandbox:
    root: Path
    app: Path
    home: Path
    state: Path
    tmp: Path
    env: dict[str, str]

    def snap(self) -> dict[str, tuple[str, int, int, int]]:
        return snapshot(self.root)

    def changes(self, before: dict[str, tuple[str, int, int, int]]) -> list[str]:
        return diff(before, self.snap())


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    root = tmp_path / "sb"
    app, home, state, tmpd = root / "app", root / "home", root / "state", root / "tmp"
    for d in (app, home, tmpd):
        d.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "RUNPOD_", "HF_", "HUGGING", "MODAL_", "GOOGLE_", "FLY_", "FLYMIGRATE_"))}
    env.update(HOME=str(home), TMPDIR=str(tmpd), FLYMIGRATE_STATE_DIR=str(state), XDG_STATE_HOME=str(home / ".xdg"),
               PYTHONPATH=str(ROOT), HF_HUB_DISABLE_TELEMETRY="1", HF_HOME=str(home / ".hf"),
               FLYMIGRATE_BACKOFF_BASE="0.02", NO_COLOR="1", PYTHONDONTWRITEBYTECODE="1")
    return Sandbox(root, app, home, state, tmpd, env)


@pytest.fixture
def example_app(sandbox: Sandbox) -> Path:
    shutil.copytree(EXAMPLE, sandbox.app, dirs_exist_ok=True)
    return sandbox.app


@pytest.fixture
def canaries() -> Canaries:
    return Canaries()


@pytest.fixture(scope="session")
def moto() -> Iterator[object]:
    from servers.moto_s3 import MotoS3

    m = MotoS3()
    yield m
    m.stop()


def cli(args: list[str], env: dict[str, str], *, cwd: Path | None = None, timeout: float = 180
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flymigrate", *args], env=env, cwd=str(cwd or ROOT),
                          capture_output=True, check=False, text=True, timeout=timeout)


def no_traceback(r: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr[-3000:]
    assert r.returncode != 1, f"internal error: {r.stderr[-2000:]}"
