"""The transfer protocol: what a source and a destination must provide, the URL parser, the registry.

Shape (rclone's Fs/Object and fsspec's AbstractFileSystem are the models)
------------------------------------------------------------------------

A **Source** lists files (:class:`Entry`: relative posix path, size, and whatever hash it can give
for free) and opens a byte stream for one file starting at an offset (``open(entry, offset)``).
What it can do beyond that is *declared* in :class:`SourceCaps`, never guessed:

* ``ranged_read``: ``open(entry, offset>0)`` is cheap (local seek, HTTP ``Range``). The engine uses
  it to continue a half-read file after a dropped connection and, after a restart, to re-read only
  what it must (see "resume" below).
* ``hash_kind``: which hash :attr:`Entry.sha256` / :attr:`Entry.etag` carry (``"sha256"`` for
  Hugging Face LFS files, ``"md5-etag"`` for S3, ``None`` for a local folder, hashed while read).

A **Destination** lists what is already there (``list()`` -> ``{path: DestEntry}``) and opens an
**upload handle** for one file (``open_upload(entry, state)``). Destinations differ in how they
take bytes, so each declares a :class:`WriteMode` in :class:`DestCaps` and the engine drives the
handle accordingly:

``WriteMode.PARTS`` (S3 multipart: RunPod volumes, Tigris, any S3)
    Fixed-size parts uploaded **in parallel**, any order. Handle methods:
    ``begin() -> state``; ``list_parts() -> {part_number: PartInfo}`` (the server is the source of
    truth for what survived a crash); ``write_part(part_number, data) -> PartInfo`` where ``data`` is
    either a bytes-like object or a seekable, sized binary reader (``len()``, ``read``, ``seek``:
    local sources stream parts straight from disk, nothing is staged);
    ``complete(parts) -> DestEntry``; ``abort()``. Small files (``size <= caps.single_put_max`` and
    below the engine's part size) go through ``put(data, sha256) -> DestEntry`` in one request.

``WriteMode.CHUNKS`` (GCS resumable sessions)
    One sequential stream of chunks; every chunk but the last is a multiple of
    ``caps.granularity`` (256 KiB for GCS). Handle methods: ``begin() -> state`` (holds the session
    URL); ``committed() -> int`` (the offset the server has persisted, e.g. a
    ``Content-Range: bytes */N`` query); ``write_chunk(offset, data, final: bool)``;
    ``complete() -> DestEntry`` (may be a no-op after the final chunk); ``abort()``.

``WriteMode.SPOOL`` (Modal volumes: content-addressed 8 MiB blocks)
    The destination needs a whole seekable file. The engine streams the source into a private
    staging file (hashing as it goes) and calls ``put_file(local_path, sha256) -> DestEntry``.
    Resume is the destination's business (Modal only sends the blocks the server lacks);
    ``begin()``/``abort()`` exist but may be no-ops.

Every handle has a ``state`` dict that is JSON-serialisable. The engine persists it in the journal
**before** the first byte goes out (after ``begin()``) and passes it back to ``open_upload`` after a
restart so that the handle can ``resume``: an S3 upload id, a GCS session URL, a staging path. A
handle must never put a secret in ``state`` (a GCS session URL is a bearer capability; it is stored
in the 0600 journal but never logged).

Errors: adapters raise :class:`TransientError` for anything worth retrying (5xx, 429, timeouts,
connection resets; ``retry_after`` when the server said so) and the typed errors from
:mod:`flymigrate.errors` for the rest (``UserError`` for bad credentials / missing bucket /
missing volume, with a hint that names the environment variable to set; ``RemoteError`` for a
server that answers nonsense). Messages never contain a secret value. :class:`UploadGone` says a
persisted upload id / session no longer exists on the server: the engine starts that file again.

Adapters live in one module each and are imported lazily through :data:`REGISTRY`; each module
exposes ``source(url: ParsedURL, opts: AdapterOptions) -> Source`` and/or
``destination(url: ParsedURL, opts: AdapterOptions) -> Destination``. Vendor SDKs are imported
inside those modules only.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, BinaryIO, Protocol, runtime_checkable

from ..errors import UserError

MiB = 1024 * 1024


# ---------------------------------------------------------------------------------------------- entries


@dataclass(frozen=True)
class Entry:
    """One source file. ``path`` is relative, posix, never starts with '/' and has no '..'."""

    path: str
    size: int
    sha256: str | None = None  # hex, when the source knows it without reading (HF LFS)
    etag: str | None = None  # opaque version token (S3 ETag, HF etag); used to notice a changed source
    mtime: float | None = None  # local files: used to notice a changed source
    extra: Mapping[str, Any] = field(default_factory=dict)  # adapter-private (e.g. a download URL)

    def fingerprint(self) -> str:
        """What must stay the same for a half-done upload of this file to be resumed."""
        return f"{self.size}:{self.sha256 or ''}:{self.etag or ''}:{self.mtime or ''}"


@dataclass(frozen=True)
class DestEntry:
    """A file already at the destination."""

    path: str
    size: int
    etag: str | None = None  # S3 ETag without quotes (md5 hex, or md5-of-md5s + '-N' for multipart)
    sha256: str | None = None  # when the destination stored it (flymigrate writes x-amz-meta-sha256)


@dataclass(frozen=True)
class PartInfo:
    """One part the destination holds. ``etag`` is what the server answered (quotes stripped)."""

    number: int
    size: int
    etag: str
    crc32c: str | None = None  # base64 CRC32C the server verified (x-amz-checksum-crc32c), when one was sent


# --------------------------------------------------------------------------------------------- capabilities


@dataclass(frozen=True)
class SourceCaps:
    ranged_read: bool = True
    hash_kind: str | None = None  # "sha256" | "md5-etag" | None
    seekable: bool = False  # a local file: re-reading is cheap
    # open(entry, offset, length) gives a bounded range cheaply (HTTP Range): parts of one file are fetched
    # in parallel instead of one stream per file
    parallel_ranges: bool = False


class WriteMode(str, Enum):
    PARTS = "parts"  # S3 multipart: parallel parts, upload id + part ETags resumable
    CHUNKS = "chunks"  # GCS resumable session: sequential chunks, server reports committed offset
    SPOOL = "spool"  # Modal: needs a whole seekable local file


@dataclass(frozen=True)
class DestCaps:
    write_mode: WriteMode
    min_part_size: int = 5 * MiB  # S3 (moto/AWS enforce at Complete; RunPod does not)
    max_part_size: int = 5 * 1024 * MiB
    max_parts: int = 10_000
    single_put_max: int = 5 * 1024 * MiB  # largest single PUT
    granularity: int = 1  # CHUNKS: every non-final chunk is a multiple of this
    part_etag_is_md5: bool = False  # PARTS: the per-part ETag is the MD5 of the body (checked)
    stores_sha256: bool = False  # writes the sha256 we give it as object metadata
    # uploads a whole local file (Modal's put_file): a local source is handed over as it is, not staged
    takes_local_file: bool = False


# -------------------------------------------------------------------------------------------- protocols


@runtime_checkable
class Source(Protocol):
    url: str
    caps: SourceCaps
    warnings: list[str]  # filled by list(): skipped links, special files ...

    def describe(self) -> str:
        """Human-readable identity, e.g. ``hf://org/repo@<commit sha>`` (no secrets)."""

    def list(self) -> Iterator[Entry]:
        """Every file, with sizes; warnings (skipped links, special files) go to ``warnings``."""

    def open(self, entry: Entry, offset: int = 0, length: int | None = None) -> BinaryIO:
        """A readable stream of ``entry`` from ``offset`` to the end (or ``length`` bytes, which only sources
        with ``caps.parallel_ranges`` are asked for). Supports ``readinto``."""

    def close(self) -> None: ...


class Upload(Protocol):
    """An upload handle; which methods the engine calls depends on ``DestCaps.write_mode``."""

    state: dict[str, Any]

    def begin(self) -> dict[str, Any]: ...

    def abort(self) -> None: ...


class PartsUpload(Upload, Protocol):
    def list_parts(self) -> dict[int, PartInfo]: ...

    def write_part(self, number: int, data: Any) -> PartInfo: ...

    def complete(self, parts: list[PartInfo]) -> DestEntry: ...

    def put(self, data: Any, sha256: str | None) -> DestEntry: ...


class ChunksUpload(Upload, Protocol):
    def committed(self) -> int: ...

    def write_chunk(self, offset: int, data: memoryview, final: bool) -> None: ...

    def complete(self) -> DestEntry: ...


class SpoolUpload(Upload, Protocol):
    def put_file(self, local_path: str, sha256: str | None) -> DestEntry: ...


@runtime_checkable
class Destination(Protocol):
    url: str
    caps: DestCaps

    def describe(self) -> str: ...

    def check(self) -> None:
        """Fail fast with a clear UserError when the volume/bucket is missing or creds are wrong."""

    def list(self) -> dict[str, DestEntry]:
        """Files under the destination prefix, keyed by path relative to the prefix."""

    def open_upload(self, entry: Entry, state: dict[str, Any] | None, sha256: str | None) -> Upload:
        """A handle for ``entry``. ``state`` is what a previous run persisted (resume), or None."""

    def stat(self, path: str) -> DestEntry | None:
        """One file with whatever hash metadata the destination keeps (may cost a request)."""

    def list_stale_uploads(self) -> list[dict[str, Any]]:
        """Unfinished uploads under the prefix (for cleanup); each a state dict for ``abort_stale``."""

    def abort_stale(self, state: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


# ------------------------------------------------------------------------------------------------ errors


class TransientError(Exception):
    """Worth retrying (5xx, 429, timeout, reset). The message holds no secret."""

    def __init__(self, message: str, retry_after: float | None = None, *, network: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.network = network  # True: could not reach the server at all (vs. it answered 5xx/429)


class UploadGone(Exception):
    """The persisted upload id / session no longer exists on the server."""


class ChecksumMismatch(Exception):
    """The server refused a body whose checksum (x-amz-checksum-crc32c) does not match what it received: the
    bytes were damaged on the way (or the source changed since it was hashed). Worth sending again."""


# --------------------------------------------------------------------------------------------- options


@dataclass(frozen=True)
class AdapterOptions:
    endpoint_url: str | None = None
    datacenter: str | None = None
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    connections: int = 10  # connection pool size the adapter should allow


# ------------------------------------------------------------------------------------------- URL parser


@dataclass(frozen=True)
class ParsedURL:
    """A parsed transfer URL. ``root`` is the bucket / volume / repo / app; ``path`` the prefix."""

    scheme: str  # "hf" | "local" | "s3" | "fly-volume" | "runpod-volume" | "gs" | "modal-volume"
    raw: str
    root: str
    path: str = ""  # no leading/trailing slash
    revision: str | None = None  # hf only
    volume: str | None = None  # fly-volume only (APP is root)

    def display(self) -> str:
        return self.raw


@dataclass(frozen=True)
class RegistryEntry:
    scheme: str
    module: str  # imported lazily
    can_read: bool
    can_write: bool

    def load(self) -> Any:
        return importlib.import_module(self.module)


REGISTRY: dict[str, RegistryEntry] = {
    "local": RegistryEntry("local", "flymigrate.transfer.local", True, False),
    "hf": RegistryEntry("hf", "flymigrate.transfer.hf", True, False),
    "s3": RegistryEntry("s3", "flymigrate.transfer.s3", True, True),
    "runpod-volume": RegistryEntry("runpod-volume", "flymigrate.transfer.s3", True, True),
    "fly-volume": RegistryEntry("fly-volume", "flymigrate.transfer.fly_volume", True, False),
    "gs": RegistryEntry("gs", "flymigrate.transfer.gcs", True, True),
    "modal-volume": RegistryEntry("modal-volume", "flymigrate.transfer.modal_volume", False, True),
}

_SCHEME_RE = re.compile(r"^([a-z][a-z0-9+.-]*)://(.*)$", re.IGNORECASE)
_HF_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
_BUCKET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")

USAGE = (
    "Use one of: hf://ORG/REPO[@REV], a local path, s3://BUCKET/PREFIX, fly-volume://APP/VOLUME/PATH, "
    "runpod-volume://VOLUME_ID/PREFIX, gs://BUCKET/PREFIX, modal-volume://NAME/PREFIX."
)


def _clean_path(p: str, raw: str) -> str:
    parts = [s for s in p.split("/") if s not in ("", ".")]
    if any(s == ".." for s in parts):
        raise UserError(f"{raw!r}: '..' is not allowed in a transfer path.")
    return "/".join(parts)


def parse_url(raw: str) -> ParsedURL:
    """Parse any URL form from design.md. Raises :class:`UserError` (exit 2) on a malformed one."""
    if not raw or not raw.strip():
        raise UserError("empty transfer URL.", hint=USAGE)
    m = _SCHEME_RE.match(raw)
    if not m:
        if raw.startswith(("s3:", "gs:", "hf:")):
            raise UserError(f"{raw!r} looks like a URL but is missing '//'.", hint=USAGE)
        return ParsedURL("local", raw, root=os.path.abspath(os.path.expanduser(raw)))
    scheme, rest = m.group(1).lower(), m.group(2)
    if scheme == "file":
        return ParsedURL("local", raw, root=os.path.abspath(rest))
    if scheme not in REGISTRY:
        raise UserError(f"unknown URL scheme {scheme!r} in {raw!r}.", hint=USAGE)
    if "?" in rest or "#" in rest:
        raise UserError(f"{raw!r}: query strings and fragments are not supported.", hint=USAGE)
    if scheme == "hf":
        repo, at, rev = rest.partition("@")  # a revision may contain '/' (branch names)
        repo = repo.strip("/")
        if not _HF_REPO_RE.match(repo) or "@" in rev or (at and not rev):
            raise UserError(f"{raw!r} is not a Hugging Face repo URL.", hint="Use hf://ORG/REPO or hf://ORG/REPO@REVISION.")
        return ParsedURL("hf", raw, root=repo, revision=rev or None)
    root, _, path = rest.partition("/")
    if not root:
        raise UserError(f"{raw!r} has no bucket/volume name.", hint=USAGE)
    if scheme in ("s3", "gs", "runpod-volume", "modal-volume") and not _BUCKET_RE.match(root):
        raise UserError(f"{raw!r}: {root!r} is not a valid bucket/volume name.", hint=USAGE)
    if scheme == "fly-volume":
        vol, _, vpath = path.partition("/")
        if not vol:
            raise UserError(f"{raw!r} has no volume name.", hint="Use fly-volume://APP/VOLUME/PATH.")
        return ParsedURL("fly-volume", raw, root=root, volume=vol, path=_clean_path(vpath, raw))
    return ParsedURL(scheme, raw, root=root, path=_clean_path(path, raw))


def registry_entry(url: ParsedURL) -> RegistryEntry:
    return REGISTRY[url.scheme]


def open_source(url: ParsedURL, opts: AdapterOptions) -> Source:
    ent = registry_entry(url)
    if not ent.can_read:
        raise UserError(f"{url.raw!r} can only be a destination, not a source.")
    return ent.load().source(url, opts)  # type: ignore[no-any-return]


def open_destination(url: ParsedURL, opts: AdapterOptions) -> Destination:
    ent = registry_entry(url)
    if not ent.can_write:
        raise UserError(f"{url.raw!r} can only be a source, not a destination.")
    return ent.load().destination(url, opts)  # type: ignore[no-any-return]


def join_key(prefix: str, path: str) -> str:
    return f"{prefix}/{path}" if prefix else path


_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def unsafe_name(path: str) -> str | None:
    """Why a source-listed relative path must not be copied, or None when it is safe.

    Remote names are untrusted (an S3 key, a Hub file name): ``..`` or ``.`` segments would climb out of the
    destination prefix on anything filesystem-backed (a RunPod volume, a Modal volume, a local folder), a leading
    ``/`` or an empty segment would land beside it, and control characters would forge log and terminal lines.
    Backslash segments are checked too (``..\\x`` is ``../x`` to anything Windows-minded).
    """
    if not path:
        return "empty name"
    if path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:[\\/]", path):
        return "absolute path"
    if _CONTROL_RE.search(path):
        return "control character in the name"
    for seg in re.split(r"[/\\]", path):
        if seg in ("..", "."):
            return f"'{seg}' segment"
        if seg == "":
            return "empty segment ('//')"
    return None


def check_names(paths: list[str], src: str) -> None:
    """Refuse the whole transfer, before anything is copied, when the source lists an unsafe name."""
    bad = [(p, r) for p in paths if (r := unsafe_name(p))]
    if bad:
        shown = ", ".join(f"{p.encode('unicode_escape').decode()!r} ({r})" for p, r in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise UserError(
            f"{src} lists {len(bad)} file name(s) that are unsafe to copy: {shown}{more}. Nothing was copied.",
            hint="Such names could write outside the destination folder; rename or remove them at the source, "
            "or copy a narrower prefix.",
        )
