"""Where transfer journals live, and their summaries for ``flymigrate status`` and the TUI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..paths import state_dir


def transfers_dir(base: Path | None = None) -> Path:
    return (base or state_dir()) / "transfers"


def list_status(base: Path | None = None) -> list[dict[str, Any]]:
    """Summaries of every transfer journal (for ``flymigrate status`` and the TUI)."""
    from .journal import list_journals, read_only

    out = []
    for p in list_journals(transfers_dir(base)):
        try:
            s = read_only(p)
        except Exception as e:  # noqa: BLE001 -- a corrupt journal must not hide the others
            s = {"src": None, "dst": None, "error": f"{type(e).__name__}: {e}", "files": {}, "bytes_total": 0,
                 "bytes_done": 0, "failed": [], "running": False, "finished": None}
        else:
            if not s.get("files") and not s.get("running"):
                continue  # a dry run or a refused command (older versions left such journals): nothing was started
        s["journal"] = str(p)
        out.append(s)
    return out
