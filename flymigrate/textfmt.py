"""Plain-text layout shared by the reports: the output width, wrapping with hanging indents, tables that turn
into lists when they do not fit, and value spellings a user reads (no Python ``True``/``False``).

Stdlib only and cheap to import (``plan`` start-up is measured).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

DEFAULT_WIDTH = 100  # not a terminal (a pipe, a file, CI logs): wrap here
MIN_WIDTH = 40

# a list marker after the indent: "- ", "+ ", "? ", "! ", "[ ] ", "1. ", "$ "; continuation lines align after it
_MARKER_RE = re.compile(r"^(\s*)((?:[-+?!*$]|\[[ x]\]|\d+\.)\s+)?")


def output_width(stream: object | None = None) -> int:
    """The terminal's width when ``stream`` is a terminal (``COLUMNS`` wins, as everywhere), else 100."""
    isatty = getattr(stream, "isatty", None)
    try:
        tty = bool(isatty()) if isatty else False
    except (ValueError, OSError):
        tty = False
    if not tty:
        return DEFAULT_WIDTH
    cols = os.environ.get("COLUMNS", "")
    if cols.isdigit() and int(cols) > 0:
        return max(MIN_WIDTH, int(cols))
    try:
        fileno = stream.fileno()  # type: ignore[attr-defined]
        return max(MIN_WIDTH, os.get_terminal_size(fileno).columns)
    except (AttributeError, ValueError, OSError):
        return DEFAULT_WIDTH


def wrap(line: str, width: int, *, extra_indent: int = 0) -> list[str]:
    """Wrap one line to ``width`` columns; continuation lines hang under the text after the indent and any list
    marker. Words longer than a line (URLs, paths) are never broken: they overflow rather than corrupt."""
    if len(line) <= width:
        return [line]
    import textwrap

    m = _MARKER_RE.match(line)
    indent = m.group(1) if m else ""
    marker = (m.group(2) or "") if m else ""
    hang = " " * (len(indent) + len(marker) + extra_indent)
    return textwrap.wrap(line, width=width, initial_indent="", subsequent_indent=hang, break_long_words=False,
                         break_on_hyphens=False, drop_whitespace=True) or [line]


def wrap_all(lines: Sequence[str], width: int) -> list[str]:
    out: list[str] = []
    for ln in lines:
        for part in ln.split("\n"):
            out += wrap(part, width)
    return out


def table_or_list(headers: Sequence[str], rows: Sequence[Sequence[str]], width: int, *, indent: str = "") -> list[str]:
    """Columns when every line fits in ``width``; otherwise one block per row: its first cell, then
    ``header: value`` lines (each wrapped), so nothing runs off the screen."""
    widths = [max(len(h), *(len(r[k]) for r in rows)) if rows else len(h) for k, h in enumerate(headers)]

    def fmt(cells: Sequence[str]) -> str:
        return indent + "  ".join(c.ljust(widths[k]) for k, c in enumerate(cells)).rstrip()

    table = [fmt(list(headers)), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)]
    if max(len(x) for x in table) <= width:
        return table
    out: list[str] = []
    for r in rows:
        cells = "; ".join(f"{h}: {v}" for h, v in zip(headers[1:], r[1:]) if v not in ("", "—", "-"))
        out += wrap(f"{indent}- {r[0]}: {cells}", width)
    return out


def command_lines(cmd: str, width: int, indent: str = "") -> list[str]:
    """A shell command that still pastes as one: broken before an option with `` \\`` continuations when it
    does not fit in ``width``."""
    if len(indent) + len(cmd) <= width:
        return [indent + cmd]
    groups: list[str] = []  # an option with its value stays on one line
    for w in cmd.split(" "):
        if groups and not w.startswith("-") and groups[-1].startswith("--") and " " not in groups[-1]:
            groups[-1] += " " + w
        else:
            groups.append(w)
    lines: list[str] = []
    cur = indent
    for g in groups:
        if cur.strip() and g.startswith("--") and len(cur) + 1 + len(g) + 2 > width:
            lines.append(cur + " \\")
            cur = indent + "    " + g
        else:
            cur = f"{cur} {g}" if cur.strip() else indent + g
    lines.append(cur)
    return lines


def spell(value: object) -> str:
    """A config value as a person (and JSON/YAML) spells it: ``true``/``false``, not Python's ``True``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "unset"
    return str(value)
