from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "apps"
EXAMPLE = REPO / "examples" / "acme-chat"
CORPUS = REPO.parent / "shared" / "corpus"


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    e = dict(os.environ)
    e.pop("NO_COLOR", None)
    e["FLYMIGRATE_TODAY"] = "2026-11-22"  # the price data's staleness warning depends on the date
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "flymigrate", *args], capture_output=True, text=True,
                          cwd=cwd or REPO, env=e, timeout=120)


def write(tmp: Path, name: str, text: str) -> Path:
    p = tmp / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p
