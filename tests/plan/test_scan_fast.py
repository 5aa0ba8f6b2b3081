"""find_in_text runs its patterns only on the lines that hold a needle (a 27 MB file is not matched whole):
it must find exactly what the patterns find on the whole text, in the same order, with the same lines and
columns. The reference below is the whole-text scan it replaced."""

from __future__ import annotations

import bisect
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flymigrate.model import BaseUrlHit
from flymigrate.scan import _FDAA_RE, _HOST_RE, _NEEDLES, _PORT_AFTER, _SCHEME_BEFORE, classify_host, find_in_text


def reference(text: str, app: str | None, path: str, limit: int | None = None):  # type: ignore[no-untyped-def]
    mine: list[BaseUrlHit] = []
    others: list[BaseUrlHit] = []
    if not _NEEDLES.search(text):
        return mine, others
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def pos(offset: int) -> tuple[int, int]:
        i = bisect.bisect_right(line_starts, offset) - 1
        return i + 1, offset - line_starts[i] + 1

    for m in _HOST_RE.finditer(text):
        cls = classify_host(m.group(0), app)
        if cls is None:
            continue
        start, end = m.start(), m.end()
        sm = _SCHEME_BEFORE.search(text[max(0, start - 8): start])
        if sm:
            start -= len(sm.group(0))
        pm = _PORT_AFTER.match(text[end: end + 7])
        if pm:
            end += len(pm.group(0))
        line, col = pos(start)
        (mine if cls[1] else others).append(BaseUrlHit(path, line, col, text[start:end], cls[0]))
        if limit is not None and len(mine) + len(others) >= limit:
            return mine, others
    for m in _FDAA_RE.finditer(text):
        start, end = m.start(), m.end()
        sm = _SCHEME_BEFORE.search(text[max(0, start - 8): start])
        if sm:
            start -= len(sm.group(0))
        pm = _PORT_AFTER.match(text[end: end + 7])
        if pm and m.group(0).endswith("]"):
            end += len(pm.group(0))
        line, col = pos(start)
        mine.append(BaseUrlHit(path, line, col, text[start:end], "fdaa"))
        if limit is not None and len(mine) + len(others) >= limit:
            break
    return mine, others


PIECES = ["acme.fly.dev", "ACME.Fly.Dev", "https://acme.fly.dev/v1", "http://acme.flycast:8000/x", "other.fly.dev",
          "sub.acme.fly.dev", "acme-admin.fly.dev", "acme.fly.dev.example.com", "iad.acme.internal:9000",
          "top3.nearest.of.acme.internal", "x.vm.acme.internal", "_apps.internal", "[fdaa:0:1::2]:8080",
          "fdaa:0:1::2", "FDAA:ab::1", "wss://acme.fly.dev", "fly.dev", ".flycast", ".internal", "fdaa:",
          "acme.fly.devx", "a.b", " ", "  ", "\n", "\r\n", "=", '"', "'", "/", ":", ".", "-", "x", "é", "İ", "ſ",
          "ü.fly.dev", "\t", "#"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES), max_size=40), st.sampled_from(["acme", None, "other"]),
       st.sampled_from([None, 1, 2, 5]))
def test_same_hits_as_the_whole_text_scan(pieces, app, limit):
    text = "".join(pieces)
    assert find_in_text(text, app, "f", limit=limit) == reference(text, app, "f", limit)


def test_a_big_file_finds_the_last_line():
    text = "    r = post(url, p)  # x\n" * 200_000 + 'URL = "https://acme.fly.dev/v1"\nB = "fdaa:0:1::2"\n'
    mine, others = find_in_text(text, "acme", "big.py")
    assert [(h.line, h.column, h.old) for h in mine] == [(200_001, 8, "https://acme.fly.dev"),
                                                          (200_002, 6, "fdaa:0:1::2")]
    assert others == []
    assert (mine, others) == reference(text, "acme", "big.py")


def test_many_hits_keep_their_lines():
    text = "".join(f"GET https://acme.fly.dev/{i} and http://other.flycast:80/{i}\n" for i in range(3000))
    got = find_in_text(text, "acme", "log")
    assert got == reference(text, "acme", "log")
    assert [h.line for h in got[0]] == list(range(1, 3001))
