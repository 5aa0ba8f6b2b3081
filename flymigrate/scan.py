"""Find every way a Fly app is reached from code and config: its base URLs.

Forms (research/fly.md section 3): ``APP.fly.dev``, ``APP.flycast[:port]``, ``APP.internal[:port]`` and its
``REGION.`` / ``global.`` / ``topN.nearest.of.`` / ``ID.vm.`` / ``GROUP.process.`` / ``*.kv._metadata.`` forms,
and literal ``fdaa:`` 6PN addresses. A hostname only matches as a whole token: ``status.APP.fly.dev.example.com``
and ``APP-admin.fly.dev`` are different hosts and are never touched.

The walk skips ``.git``, virtualenvs, ``node_modules``, caches and binary files, never follows directory
symlinks (no loops) nor file symlinks that leave the tree, and reads each file once with bounded size.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from .model import BaseUrlHit, Finding

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # type checkers see the standard decorator
    from dataclasses import dataclass
else:  # start-up time: no exec per generated method (flymigrate/_dataclass.py)
    from ._dataclass import dataclass

SKIP_DIRS = {".git", ".hg", ".svn", "node_modules", ".venv", "venv", "env", ".env.d", "__pycache__", ".tox",
             ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache", "site-packages", ".flymigrate", ".next",
             ".cache", ".idea", ".vscode", "dist-packages", ".terraform"}
MAX_FILE_BYTES = 32 * 1024 * 1024
MAX_FILES = 500_000
MAX_HITS_PER_FILE = 1_000
MAX_HITS_TOTAL = 20_000

_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
# a whole hostname token: not preceded by a hostname char or dot, not followed by one
_HOST_RE = re.compile(rf"(?<![A-Za-z0-9_.\-]){_LABEL}(?:\.{_LABEL})+(?![A-Za-z0-9_\-]|\.[A-Za-z0-9_])")
_FDAA_RE = re.compile(r"\[fdaa:[0-9A-Fa-f:]{2,}\]|(?<![0-9A-Fa-f:\[])fdaa:[0-9A-Fa-f:]{2,}(?![0-9A-Fa-f:])", re.I)
_SCHEME_BEFORE = re.compile(r"(?:https?|wss?)://$", re.I)
_PORT_AFTER = re.compile(r"^:(\d{1,5})(?![0-9])")
_NEEDLES = re.compile(r"fly\.dev|\.flycast|\.internal|fdaa:", re.I)


@dataclass(frozen=True)
class ScanResult:
    hits: tuple[BaseUrlHit, ...]
    other_apps: tuple[BaseUrlHit, ...]  # Fly hostnames of *other* apps (reported, not rewritten)
    findings: tuple[Finding, ...]
    files_scanned: int
    # the text of each client-code file (Python, shell, JS...) that holds this app's URL: the planner reads the
    # requests made there (flymigrate.requestauth) without reading the files again
    texts: tuple[tuple[str, str], ...] = ()


def classify_host(host: str, app: str | None) -> tuple[str, bool] | None:
    """Return (kind, is_this_app) for a Fly hostname, or None if it is not one."""
    h = host.lower()
    a = app.lower() if app else None
    if h.endswith(".fly.dev"):
        label = h[: -len(".fly.dev")]
        if "." in label:
            return None  # sub.APP.fly.dev is not a Fly hostname form
        return "fly.dev", label == a
    if h.endswith(".flycast"):
        label = h[: -len(".flycast")]
        if "." in label:
            return None
        return "flycast", label == a
    if h.endswith(".internal"):
        labels = h[: -len(".internal")].split(".")
        target = labels[-1]
        prefix = labels[:-1]
        if target in ("_apps", "_instances") and not prefix:
            return "internal", False
        ok = (
            not prefix
            or (len(prefix) == 1 and re.fullmatch(r"[a-z]{3}|global|vms|all|regions", prefix[0]) is not None)
            or (len(prefix) == 3 and re.fullmatch(r"top\d+", prefix[0]) and prefix[1:] == ["nearest", "of"])
            or (len(prefix) == 2 and prefix[1] in ("vm", "process"))
            or (len(prefix) == 2 and prefix == ["all", "vms"])
            or (len(prefix) == 4 and prefix[2:] == ["kv", "_metadata"])
        )
        if not ok:
            return None
        return "internal", target == a
    return None


_NEEDLE_WORDS = ("fly.dev", ".flycast", ".internal", "fdaa:")  # _NEEDLES, lower-case


def _needle_lines(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each line of an ASCII ``text`` that holds a needle, in order, found as they are asked for (a
    caller that stops after N hits never looks further). A hostname or 6PN address never spans a newline, and every
    one :func:`classify_host` accepts (or ``_FDAA_RE`` matches) holds a needle, so the patterns run on these lines
    find what they find on the whole text (the rest of a 27 MB file is never matched)."""
    low = text.lower()  # ASCII: same offsets as text
    nxt = [low.find(w) for w in _NEEDLE_WORDS]  # each word's next occurrence (-1: no more)
    cur = 0
    while True:
        for k, i in enumerate(nxt):
            if 0 <= i < cur:
                nxt[k] = low.find(_NEEDLE_WORDS[k], cur)
        found = [i for i in nxt if i >= 0]
        if not found:
            return
        i = min(found)
        le = text.find("\n", i)
        yield text.rfind("\n", 0, i) + 1, len(text) if le < 0 else le
        if le < 0:
            return
        cur = le + 1


class _LineCol:
    """Line and column (1-based) of offsets asked in increasing order: newlines counted once, in C."""

    def __init__(self, text: str) -> None:
        self.text, self.off, self.line, self.start = text, 0, 1, 0

    def __call__(self, offset: int) -> tuple[int, int]:
        if offset < self.off:  # never expected (hits come in order); start over rather than be wrong
            self.off, self.line, self.start = 0, 1, 0
        n = self.text.count("\n", self.off, offset)
        if n:
            self.line += n
            self.start = self.text.rfind("\n", self.off, offset) + 1
        self.off = offset
        return self.line, offset - self.start + 1


def find_in_text(text: str, app: str | None, path: str, *, limit: int | None = None
                 ) -> tuple[list[BaseUrlHit], list[BaseUrlHit]]:
    """All Fly base-URL occurrences in one text. Returns (this app's, other apps').

    ``limit``: stop after that many hits in all (the plan's report lists a bounded number; apply rewrites all)."""
    mine: list[BaseUrlHit] = []
    others: list[BaseUrlHit] = []
    ascii_text = text.isascii()
    if not ascii_text and not _NEEDLES.search(text):  # lower() may change lengths outside ASCII: the whole text
        return mine, others

    def spans() -> Iterable[tuple[int, int]]:
        return _needle_lines(text) if ascii_text else ((0, len(text)),)

    pos = _LineCol(text)
    for s, e in spans():
        for m in _HOST_RE.finditer(text, s, e):
            host = m.group(0)
            cls = classify_host(host, app)
            if cls is None:
                continue
            kind, is_mine = cls
            start, end = m.start(), m.end()
            sm = _SCHEME_BEFORE.search(text[max(0, start - 8): start])
            if sm:
                start -= len(sm.group(0))
            pm = _PORT_AFTER.match(text[end: end + 7])
            if pm:
                end += len(pm.group(0))
            line, col = pos(start)
            hit = BaseUrlHit(path, line, col, text[start:end], kind)
            (mine if is_mine else others).append(hit)
            if limit is not None and len(mine) + len(others) >= limit:
                return mine, others
    pos = _LineCol(text)
    for s, e in spans():
        for m in _FDAA_RE.finditer(text, s, e):
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
                return mine, others
    return mine, others


def read_text_enc(p: str | Path) -> tuple[str, str] | None:
    """(text, encoding) of a text file, or None for a binary one. The encoding is how to write it back:
    ``utf-8``, ``utf-8-sig`` (a BOM), ``utf-16`` (with its BOM) or ``latin-1`` (anything not UTF-8)."""
    with open(p, "rb") as fh:
        head = fh.read(8192)
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            data = head + fh.read()
            try:
                return data.decode("utf-16"), "utf-16"
            except UnicodeDecodeError:
                return None
        if b"\x00" in head:
            return None
        data = head + fh.read()
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError:
            return data[3:].decode("latin-1"), "latin-1"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def _read_text(p: str | Path) -> str | None:
    got = read_text_enc(p)
    return got[0] if got else None


def iter_files(root: Path, findings: list[Finding]) -> Iterator[tuple[str | Path, str, tuple[int, int]]]:
    """Yield (path, posix path relative to root, (st_dev, st_ino)) of candidate files under root.

    Uses ``os.scandir`` so each entry is stat'ed at most once (a 200k-file tree matters here).
    """
    if root.is_file():
        st = root.stat()
        yield root, root.name, (st.st_dev, st.st_ino)
        return
    root_real = os.path.realpath(root)
    count = 0
    top = str(root)
    cut = len(top.rstrip(os.sep)) + 1
    stack = [top]
    while stack:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        subdirs = []
        for e in entries:
            try:
                if e.is_symlink():
                    real = os.path.realpath(e.path)
                    if not real.startswith(root_real + os.sep) or not os.path.isfile(real):
                        continue  # directory links (loops) and links leaving the tree are not followed
                    st = os.stat(real)
                elif e.is_dir(follow_symlinks=False):
                    if e.name not in SKIP_DIRS and not os.path.exists(os.path.join(e.path, "pyvenv.cfg")):
                        subdirs.append(e.path)
                    continue
                elif e.is_file(follow_symlinks=False):
                    st = e.stat(follow_symlinks=False)
                else:
                    continue  # sockets, fifos, devices
            except OSError:
                continue
            rel = e.path[cut:].replace(os.sep, "/")
            if st.st_size > MAX_FILE_BYTES:
                findings.append(Finding("info", "scan-skipped-large", f"{rel} is over "
                                        f"{MAX_FILE_BYTES // (1024 * 1024)} MiB and was not scanned for base URLs.",
                                        rel, "base_urls"))
                continue
            count += 1
            if count > MAX_FILES:
                findings.append(Finding("warning", "scan-truncated", f"stopped scanning after {MAX_FILES} files; "
                                        "pass narrower --code folders.", str(root), "base_urls"))
                return
            yield e.path, rel, (st.st_dev, st.st_ino)
        stack.extend(reversed(subdirs))


def scan_paths(roots: Iterable[tuple[Path, str]], app: str | None,
               exclude: Iterable[str | Path] = ()) -> ScanResult:
    """Scan code roots. ``roots`` are (path, label) pairs; hit paths are ``label/relative`` (or relative).
    ``exclude``: files that are inputs, not client code (the ``--secrets`` exports): never scanned, so never
    rewritten or backed up."""
    from .requestauth import MAX_TEXT, is_client_code

    hits: list[BaseUrlHit] = []
    others: list[BaseUrlHit] = []
    findings: list[Finding] = []
    texts: list[tuple[str, str]] = []
    scanned = 0
    seen: set[tuple[int, int]] = set()
    for x in exclude:
        try:
            st = os.stat(x)
        except OSError:
            continue
        seen.add((st.st_dev, st.st_ino))
    for root, label in roots:
        for full, rel, ident in iter_files(root, findings):
            if ident in seen:
                continue
            seen.add(ident)
            try:
                text = _read_text(full)
            except OSError:
                continue
            if text is None:
                continue
            scanned += 1
            shown = f"{label}/{rel}" if label else rel
            mine, theirs = find_in_text(text, app, shown, limit=MAX_HITS_PER_FILE + 1)
            if len(mine) + len(theirs) > MAX_HITS_PER_FILE:
                # an access log with the host on every line: 1 M hits took 2.5 GB and a 329 MB JSON report
                mine, theirs = mine[:MAX_HITS_PER_FILE], theirs[: max(0, MAX_HITS_PER_FILE - len(mine))]
                findings.append(Finding("warning", "scan-many-hits", f"{shown} has more than {MAX_HITS_PER_FILE} "
                                        "Fly URL occurrences; only the first ones are listed. Is it a log or data "
                                        "file? Pass narrower --code folders.", shown, "base_urls"))
            if len(hits) + len(others) + len(mine) + len(theirs) > MAX_HITS_TOTAL:
                findings.append(Finding("warning", "scan-truncated", f"stopped listing base URLs after "
                                        f"{MAX_HITS_TOTAL}; pass narrower --code folders.", shown, "base_urls"))
                return ScanResult(tuple(sorted(hits, key=lambda h: (h.path, h.line, h.column))),
                                  tuple(sorted(others, key=lambda h: (h.path, h.line, h.column))),
                                  tuple(findings), scanned, tuple(texts))
            if mine and len(text) <= MAX_TEXT and is_client_code(shown, text):
                texts.append((shown, text))
            hits += mine
            others += theirs
    hits.sort(key=lambda h: (h.path, h.line, h.column))
    others.sort(key=lambda h: (h.path, h.line, h.column))
    return ScanResult(tuple(hits), tuple(others), tuple(findings), scanned, tuple(texts))


def rewrite_url(old: str, new_base: str) -> str:
    """The replacement for one matched host[:port] (with or without scheme), keeping the rest of the line."""
    if "://" in old:
        return new_base.rstrip("/")
    # a bare host[:port] (e.g. OLLAMA_HOST=app.flycast:80): the new host only
    return re.sub(r"^[a-z]+://", "", new_base.rstrip("/"), flags=re.I)


def apply_hits(text: str, hits: Iterable[BaseUrlHit], new_base: str) -> str:
    """Rewrite the given hits of ``text`` (found by :func:`find_in_text` on this same text) to ``new_base``.

    The one URL rewriter: client files, ``[env]`` values and previews all go through it. A hit whose text is no
    longer at its line/column (the file changed since it was scanned) is left alone."""
    hits = list(hits)
    if not hits:
        return text
    starts = [0] + [m.end() for m in re.finditer("\n", text)]
    # one pass, pieces joined once: re-slicing the whole text per hit was O(hits x size) (a 32 MB log with the
    # host on every line never finished)
    pieces: list[str] = []
    pos = 0
    for h in sorted(hits, key=lambda h: (h.line, h.column)):
        if h.line - 1 >= len(starts):
            continue
        off = starts[h.line - 1] + h.column - 1
        if off < pos or text[off: off + len(h.old)] != h.old:
            continue
        pieces.append(text[pos:off])
        pieces.append(rewrite_url(h.old, new_base))
        pos = off + len(h.old)
    pieces.append(text[pos:])
    return "".join(pieces)


def env_read_pattern(name: str) -> re.Pattern[str]:
    """Where code reads the environment variable ``name``: ``os.environ["N"]``, ``os.environ.get("N"``,
    ``os.getenv("N"``, ``process.env.N``, ``process.env["N"]``, ``ENV["N"]``, ``$N`` / ``${N}`` (shell, .env
    interpolation). A bare word ``N`` (a variable of the program) is not a read."""
    n = re.escape(name)
    return re.compile(
        rf"(?<=os\.environ\[)(['\"]){n}(?=\1\])|(?<=os\.environ\.get\()(['\"]){n}(?=\2)"
        rf"|(?<=os\.getenv\()(['\"]){n}(?=\3)|(?<=process\.env\.){n}\b|(?<=process\.env\[)(['\"]){n}(?=\4\])"
        rf"|(?<=ENV\[)(['\"]){n}(?=\5\])|(?<=\$\{{){n}(?=[}}:])|(?<=\$){n}\b")


def rename_env_reads(text: str, renames: Iterable[tuple[str, str]]) -> str:
    """``text`` with every read of each old variable name made a read of the new one (quotes kept)."""
    for old, new in renames:
        def sub(m: re.Match[str]) -> str:
            q = next((g for g in m.groups() if g), "")
            return q + new if m.group(0).startswith(q) and q else new
        text = env_read_pattern(old).sub(sub, text)
    return text
