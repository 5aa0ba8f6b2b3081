"""Map TOML key paths to line numbers.

``tomllib`` gives values but no positions, and kompose's users asked for warnings with line numbers. This
is a small, tolerant line scanner for valid TOML (it runs only after tomllib accepted the text): it tracks
table headers (``[a.b]``, ``[[a]]`` with per-array indexes), dotted and quoted keys, and skips the bodies of
multi-line strings and arrays. Paths look like ``("services", 1, "concurrency", "hard_limit")``.
"""

from __future__ import annotations

import re

_BARE = r"[A-Za-z0-9_-]+"
_KEYPART = rf'(?:{_BARE}|"[^"\\]*(?:\\.[^"\\]*)*"|\'[^\']*\')'
_KEY_RE = re.compile(rf"\s*({_KEYPART}(?:\s*\.\s*{_KEYPART})*)\s*=")
_HEADER_RE = re.compile(rf"\s*(\[\[?)\s*({_KEYPART}(?:\s*\.\s*{_KEYPART})*)\s*\]\]?")


def _split_key(text: str) -> list[str]:
    parts = re.findall(_KEYPART, text)
    out = []
    for p in parts:
        if p.startswith('"') and p.endswith('"'):
            out.append(p[1:-1].encode().decode("unicode_escape") if "\\" in p else p[1:-1])
        elif p.startswith("'") and p.endswith("'"):
            out.append(p[1:-1])
        else:
            out.append(p)
    return out


# unrolled-loop forms (no per-character alternation): a 3 MB string value took ~370 MB of regex stack before
_STRING_RE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|\'[^\']*\'')


def _strip_strings(line: str) -> str:
    """Blank out string contents so brackets/quotes inside strings do not confuse the depth count."""
    return _STRING_RE.sub('""', line)


class LineIndex:
    def __init__(self, text: str) -> None:
        self.lines: dict[tuple[object, ...], int] = {}
        self._scan(text)

    def _scan(self, text: str) -> None:
        table: tuple[object, ...] = ()
        array_counts: dict[tuple[object, ...], int] = {}
        in_ml: str | None = None  # '"""' or "'''"
        depth = 0  # open [ / { across lines (multi-line arrays / inline tables)
        for lineno, raw in enumerate(text.splitlines(), start=1):
            line = raw
            if in_ml:
                if line.count(in_ml) % 2 == 1:
                    in_ml = None
                continue
            if depth > 0:
                s = _strip_strings(line.split("#", 1)[0] if "#" in _strip_strings(line) else line)
                depth += s.count("[") + s.count("{") - s.count("]") - s.count("}")
                depth = max(depth, 0)
                continue
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            m = _HEADER_RE.match(line)
            if m and not _KEY_RE.match(line):
                keys = tuple(_split_key(m.group(2)))
                if m.group(1) == "[[":
                    idx = array_counts.get(keys, -1) + 1
                    array_counts[keys] = idx
                    # nested tables under this element reset
                    for k in list(array_counts):
                        if len(k) > len(keys) and k[: len(keys)] == keys:
                            del array_counts[k]
                    table = self._resolve(keys, array_counts) + (idx,)
                else:
                    table = self._resolve(keys, array_counts)
                self.lines.setdefault(table, lineno)
                continue
            m = _KEY_RE.match(line)
            if not m:
                continue
            keys = tuple(_split_key(m.group(1)))
            path = table + keys
            self.lines.setdefault(path, lineno)
            rest = line[m.end():]
            for q in ('"""', "'''"):
                if rest.lstrip().startswith(q):
                    after = rest.lstrip()[3:]
                    if after.count(q) % 2 == 0:
                        in_ml = q
                    break
            else:
                s = _strip_strings(rest)
                s = s.split("#", 1)[0]
                depth = max(s.count("[") + s.count("{") - s.count("]") - s.count("}"), 0)

    @staticmethod
    def _resolve(keys: tuple[str, ...], array_counts: dict[tuple[object, ...], int]) -> tuple[object, ...]:
        """Insert the current array index after any prefix that is an array of tables."""
        out: list[object] = []
        for i in range(len(keys)):
            out.append(keys[i])
            prefix = keys[: i + 1]
            if prefix in array_counts and i + 1 < len(keys):
                out.append(array_counts[prefix])
        return tuple(out)

    def line(self, *path: object) -> int | None:
        """The line of ``path`` or of its nearest ancestor that has one."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return None
