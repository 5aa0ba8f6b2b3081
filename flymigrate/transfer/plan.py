"""What the plan decides per file: part size, and whether the destination's file is the source's (or the one an
interrupted run finished)."""

from __future__ import annotations

import hashlib

from ..errors import FlymigrateError
from .base import DestCaps, DestEntry, Destination, Entry, MiB, Source, WriteMode
from .journal import FileRow


def choose_part_size(size: int, wanted: int, caps: DestCaps) -> int:
    ps = max(wanted, caps.min_part_size)
    need = -(-size // max(1, caps.max_parts - 100))
    if need > ps:
        ps = -(-need // MiB) * MiB
    if caps.write_mode is WriteMode.CHUNKS and caps.granularity > 1:
        ps = max(caps.granularity, ps // caps.granularity * caps.granularity)
    return min(ps, caps.max_part_size)


def multipart_etag(part_etags: list[str]) -> str:
    return hashlib.md5(b"".join(bytes.fromhex(e) for e in part_etags)).hexdigest() + f"-{len(part_etags)}"


def _local_hashes(src: Source, entry: Entry, ps: int) -> tuple[str, str, str]:
    """sha256, single-part md5 and multipart ETag of a seekable source file (plan-time comparisons)."""
    sha = hashlib.sha256()
    whole = hashlib.md5()
    parts: list[str] = []
    with src.open(entry, 0) as f:
        buf = bytearray(min(ps, 8 * MiB) if ps >= 8 * MiB else ps)
        cur = hashlib.md5()
        in_part = 0
        while True:
            n = f.readinto(buf)
            if not n:
                break
            v = memoryview(buf)[:n]
            sha.update(v)
            whole.update(v)
            pos = 0
            while pos < n:
                take = min(n - pos, ps - in_part)
                cur.update(v[pos : pos + take])
                in_part += take
                pos += take
                if in_part == ps:
                    parts.append(cur.hexdigest())
                    cur = hashlib.md5()
                    in_part = 0
        if in_part:
            parts.append(cur.hexdigest())
    return sha.hexdigest(), whole.hexdigest(), multipart_etag(parts) if len(parts) > 0 else ""


def _adopt_committed(dst: Destination, e: Entry, d: DestEntry, row: FileRow,
                     parts: dict[int, tuple[int, str]] | None = None) -> tuple[str | None, str] | None:
    """A run killed after the server made the file final but before the journal said so left a commit record
    (what the finished file was to be: size, sha256, multipart ETag or MD5). If the destination's file is
    that one, return (its sha256, how it was verified), else None."""
    c = (row.upload_state or {}).get("commit")
    if not isinstance(c, dict) and parts and row.part_size and (row.upload_state or {}).get("upload_id"):
        # a journal written before commit records existed: the parts it recorded for that upload, if they make up
        # the whole file, give the multipart ETag the finished object must have
        n = -(-e.size // row.part_size)
        if sorted(parts) == list(range(1, n + 1)) and sum(sz for sz, _ in parts.values()) == e.size:
            c = {"size": e.size, "sha256": e.sha256, "etag": multipart_etag([parts[i][1] for i in range(1, n + 1)])}
    if not isinstance(c, dict) or c.get("size") != e.size or d.size != e.size:
        return None
    sha = c.get("sha256")
    if c.get("etag") and d.etag == c["etag"]:
        return sha, "multipart ETag recomputed from the parts it sent"
    if c.get("md5") and d.etag == c["md5"]:
        return sha, "MD5 of the bytes it sent"
    if sha:
        try:
            full = d if d.sha256 else (dst.stat(e.path) or d)
        except FlymigrateError:
            full = d
        if full.sha256 and full.sha256.lower() == str(sha).lower():
            return sha, "sha256 stored with the file"
        if c.get("etag") and full.etag == c["etag"]:
            return sha, "multipart ETag recomputed from the parts it sent"
    return None


def _matches(src: Source, dst: Destination, e: Entry, d: DestEntry, ps: int) -> bool | None:
    """True: same content; False: different; None: cannot tell."""
    if d.size != e.size:
        return False
    full = d
    if d.sha256 is None:
        try:
            full = dst.stat(e.path) or d
        except FlymigrateError:
            full = d
    if e.sha256 and full.sha256:
        return e.sha256.lower() == full.sha256.lower()
    if e.etag and full.etag and src.caps.hash_kind == "md5-etag" and e.etag == full.etag:
        return True
    if src.caps.seekable:
        sha, md5, mpe = _local_hashes(src, e, ps)
        if full.sha256:
            return sha == full.sha256.lower()
        if full.etag:
            if "-" in full.etag:
                return mpe == full.etag if e.size > ps else None
            return md5 == full.etag
    return None
