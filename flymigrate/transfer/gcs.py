"""Google Cloud Storage: ``gs://BUCKET/PREFIX`` as a destination (and as a source).

Destination: resumable upload sessions (``WriteMode.CHUNKS``), the raw protocol of
https://cloud.google.com/storage/docs/performing-resumable-uploads (research: destinations.md C.1,
"Recipe A"):

* ``begin()`` creates a session with ``Blob.create_resumable_upload_session(size=N)``; the session URL
  goes into ``state`` (the engine writes it to the 0600 journal; it is a bearer capability, so it never
  appears in a log line or an exception message).
* ``committed()`` asks the server what it has: ``PUT`` with ``Content-Range: bytes */N`` and an empty
  body; ``308`` + ``Range: bytes=0-K`` means K+1 bytes persisted (no ``Range``: 0); ``200/201`` means the
  object is complete; ``404/410`` means the session expired (``UploadGone``: start the file again).
* ``write_chunk()`` sends ``Content-Range: bytes A-B/N``; every non-final chunk is a multiple of 256 KiB.
* ``complete()`` checks the final object: size, and **crc32c against what was sent** (the emulators do not
  validate ``x-goog-hash``, and GCS only does when asked, so the client checks). The crc32c of what this
  process sent is kept per contiguous segment in ``state`` and combined (crc32c is combinable); a gap
  sent by an earlier, killed process whose record was lost is read back from the finished object with a
  ranged GET (bounded by one chunk when the engine persists ``state`` after each chunk). When the source
  told us an MD5 (GCS source, single-part S3 ETag) it is compared with the object's ``md5Hash`` too.

Credentials: Application Default Credentials (``gcloud auth application-default login``,
``GOOGLE_APPLICATION_CREDENTIALS``, or the metadata server). With ``STORAGE_EMULATOR_HOST`` set, anonymous
credentials are used (tests, local emulators).

Source: ``list_blobs`` under the prefix (size, md5, crc32c, generation); ranged reads pinned to the
generation that was listed.

``google.cloud.storage`` / ``google.auth`` / ``requests`` are imported inside functions only.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import RemoteError, UserError
from ..paths import ensure_private_dir, state_dir
from .base import (
    AdapterOptions,
    DestCaps,
    DestEntry,
    Entry,
    MiB,
    ParsedURL,
    SourceCaps,
    TransientError,
    UploadGone,
    WriteMode,
    join_key,
)

KiB = 1024
GRANULARITY = 256 * KiB
_TIMEOUT = (30, 300)  # connect, read: per request, never per transfer

ADC_HINT = (
    "Set up Application Default Credentials: run `gcloud auth application-default login`, or set "
    "GOOGLE_APPLICATION_CREDENTIALS to a service-account key file (on GCE/Cloud Run the metadata server "
    "is used automatically)."
)


# ------------------------------------------------------------------------------------ crc32c helpers

_CRC32C_POLY = 0x82F63B78  # reflected Castagnoli


def _gf2_times(mat: list[int], vec: int) -> int:
    s = 0
    i = 0
    while vec:
        if vec & 1:
            s ^= mat[i]
        vec >>= 1
        i += 1
    return s


def _gf2_square(mat: list[int]) -> list[int]:
    return [_gf2_times(mat, mat[n]) for n in range(32)]


def crc32c_combine(crc1: int, crc2: int, len2: int) -> int:
    """crc32c(A + B) from crc32c(A), crc32c(B) and len(B) (zlib's crc32_combine, Castagnoli polynomial)."""
    if len2 <= 0:
        return crc1
    odd = [_CRC32C_POLY] + [1 << (n - 1) for n in range(1, 32)]  # operator for one zero bit
    even = _gf2_square(odd)  # two zero bits
    odd = _gf2_square(even)  # four zero bits
    while True:
        even = _gf2_square(odd)  # first pass: one zero byte
        if len2 & 1:
            crc1 = _gf2_times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = _gf2_square(even)
        if len2 & 1:
            crc1 = _gf2_times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2


def _crc_extend(crc: int, data: Any) -> int:
    import google_crc32c

    if isinstance(data, bytes):
        return int(google_crc32c.extend(crc, data))
    # the C extension takes only immutable bytes: feed 1 MiB copies so memory stays flat
    view = memoryview(data)
    for i in range(0, len(view), MiB):
        crc = google_crc32c.extend(crc, bytes(view[i : i + MiB]))
    return int(crc)


def _b64_crc(crc: int) -> str:
    return base64.b64encode(crc.to_bytes(4, "big")).decode("ascii")


def _b64_to_hex(b64: str | None) -> str | None:
    if not b64:
        return None
    try:
        return base64.b64decode(b64).hex()
    except (ValueError, TypeError):
        return None


# --------------------------------------------------------------------------------------------- client


class _Body(io.RawIOBase):
    """A zero-copy request body over a memoryview (requests would iterate a bare memoryview bytewise)."""

    def __init__(self, view: memoryview) -> None:
        super().__init__()
        self._view = view
        self._pos = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> Any:
        n = len(self._view) - self._pos if size is None or size < 0 else max(size, 1024 * KiB)
        chunk = self._view[self._pos : self._pos + n]
        self._pos += len(chunk)
        return chunk

    def __len__(self) -> int:
        return len(self._view)


def _is_emulator(env: Any) -> bool:
    return bool(env.get("STORAGE_EMULATOR_HOST"))


class _Gcs:
    """The google-cloud-storage client and a pooled requests session for the raw session protocol."""

    def __init__(self, opts: AdapterOptions) -> None:
        self.opts = opts
        self._client: Any = None
        self._http: Any = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _make_client(self) -> Any:
        from google.cloud import storage

        env = self.opts.env
        if _is_emulator(env):
            from google.auth.credentials import AnonymousCredentials

            project = env.get("GOOGLE_CLOUD_PROJECT") or "flymigrate-emulator"
            return storage.Client(
                project=project,
                credentials=AnonymousCredentials(),
                client_options={"api_endpoint": env["STORAGE_EMULATOR_HOST"]},
            )
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError

        try:
            creds, project = google.auth.default(
                scopes=["https://www.googleapis.com/auth/devstorage.read_write"]
            )
        except DefaultCredentialsError:
            raise UserError("no Google Cloud credentials found.", hint=ADC_HINT) from None
        return storage.Client(project=env.get("GOOGLE_CLOUD_PROJECT") or project, credentials=creds)

    @property
    def http(self) -> Any:
        """Plain requests session: the resumable session URL is itself the credential."""
        with self._lock:
            if self._http is None:
                import requests
                from requests.adapters import HTTPAdapter

                s = requests.Session()
                n = max(4, self.opts.connections)
                s.mount("http://", HTTPAdapter(pool_connections=n, pool_maxsize=n, max_retries=0))
                s.mount("https://", HTTPAdapter(pool_connections=n, pool_maxsize=n, max_retries=0))
                s.trust_env = not _is_emulator(self.opts.env)
                self._http = s
            return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()


def _map_api_error(exc: BaseException, what: str) -> BaseException:
    """google.api_core / requests errors -> our typed errors, with no URL or token in the message."""
    name = type(exc).__name__
    code = getattr(exc, "code", None)
    try:
        from google.api_core import exceptions as gexc
        from google.auth.exceptions import GoogleAuthError, RefreshError, TransportError
    except Exception:  # pragma: no cover
        gexc = None  # type: ignore[assignment]
        GoogleAuthError = RefreshError = TransportError = ()  # type: ignore[assignment,misc]
    if isinstance(exc, TransportError):
        return TransientError(f"{what}: could not reach Google Cloud ({name}).")
    if isinstance(exc, (RefreshError, GoogleAuthError)):
        return UserError(f"{what}: Google Cloud credentials were rejected ({name}).", hint=ADC_HINT)
    if gexc is not None and isinstance(exc, gexc.GoogleAPICallError):
        msg = getattr(exc, "message", "") or ""
        msg = msg.split("?")[0][:200]
        if code in (401, 403):
            return UserError(f"{what}: permission denied ({code}).", hint=ADC_HINT)
        if code == 404:
            return UserError(f"{what}: not found ({msg}).")
        if code in (408, 429) or (isinstance(code, int) and code >= 500):
            return TransientError(f"{what}: server answered {code}.")
        return RemoteError(f"{what}: server answered {code} ({msg}).")
    try:
        import requests
    except Exception:  # pragma: no cover
        requests = None  # type: ignore[assignment]
    if requests is not None and isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return TransientError(f"{what}: connection failed ({name}).")
    if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
        return TransientError(f"{what}: connection failed ({name}).")
    return exc


def _retry_after(resp: Any) -> float | None:
    v = resp.headers.get("Retry-After")
    try:
        return float(v) if v else None
    except ValueError:
        return None


# ------------------------------------------------------------------------------------------ destination


class GcsUpload:
    """One file's resumable session. ``state``: session_url, size, segments [[start, end, crc]], ..."""

    def __init__(self, dest: GcsDestination, entry: Entry, state: dict[str, Any] | None, sha256: str | None):
        self.dest = dest
        self.entry = entry
        self.key = join_key(dest.prefix, entry.path)
        self.sha256 = sha256
        self.state: dict[str, Any] = dict(state or {})
        self.state.setdefault("size", entry.size)
        self.state.setdefault("segments", [])
        self._final: dict[str, Any] | None = None
        self._dirty = False
        self.readback_bytes = 0  # bytes read back to close a crc gap (reported, tested)
        if state:
            self._load_sidecar()

    # -- protocol
    def begin(self) -> dict[str, Any]:
        if self.state.get("session_url"):
            return self.state
        blob = self.dest.bucket.blob(self.key)
        meta = {"flymigrate-source-size": str(self.entry.size)}
        if self.sha256:
            meta["sha256"] = self.sha256
        blob.metadata = meta
        try:
            url = blob.create_resumable_upload_session(
                size=self.entry.size, content_type="application/octet-stream", checksum=None, timeout=_TIMEOUT
            )
        except Exception as exc:
            raise _map_api_error(exc, f"gs://{self.dest.bucket_name}/{self.key}: starting the upload") from None
        self.state.update(session_url=url, size=self.entry.size, segments=[])
        return self.state

    def _put(self, data: memoryview | bytes, content_range: str) -> Any:
        url = self.state.get("session_url")
        if not url:
            raise UploadGone(f"{self.key}: no upload session")
        body: Any = _Body(memoryview(data)) if len(data) else b""
        try:
            return self.dest.gcs.http.put(
                url,
                data=body,
                headers={"Content-Range": content_range, "Content-Length": str(len(data))},
                timeout=_TIMEOUT,
            )
        except Exception as exc:
            raise _map_api_error(exc, f"gs://{self.dest.bucket_name}/{self.key}") from None

    def _check_status(self, resp: Any, what: str) -> None:
        code = resp.status_code
        if code in (404, 410):
            raise UploadGone(f"{self.key}: the upload session expired or was cancelled ({code})")
        if code in (401, 403):
            raise UserError(f"gs://{self.dest.bucket_name}/{self.key}: {what}: permission denied ({code}).", hint=ADC_HINT)
        if code in (408, 429) or code >= 500:
            raise TransientError(f"gs://{self.dest.bucket_name}/{self.key}: {what}: server answered {code}.", _retry_after(resp))
        if code == 400:
            # usually an offset that does not match what the server holds: re-query and continue
            raise TransientError(f"gs://{self.dest.bucket_name}/{self.key}: {what}: server answered 400 (offset mismatch?).")
        raise RemoteError(f"gs://{self.dest.bucket_name}/{self.key}: {what}: unexpected answer {code}.")

    def committed(self) -> int:
        size = int(self.state["size"])
        resp = self._put(b"", f"bytes */{size}")
        if resp.status_code in (200, 201):
            self._final = self._json(resp)
            return size
        if resp.status_code == 308:
            rng = resp.headers.get("Range")
            if not rng:
                return 0
            try:
                return int(rng.rsplit("-", 1)[1]) + 1
            except (ValueError, IndexError):
                raise RemoteError(f"gs://{self.dest.bucket_name}/{self.key}: unreadable Range header {rng!r}.") from None
        self._check_status(resp, "status query")
        raise AssertionError("unreachable")

    def write_chunk(self, offset: int, data: memoryview, final: bool) -> None:
        size = int(self.state["size"])
        n = len(data)
        if not final and n % GRANULARITY:
            raise ValueError(f"non-final GCS chunk of {n} bytes is not a multiple of 256 KiB")
        if final and offset + n != size:
            raise ValueError(f"final chunk ends at {offset + n}, object size is {size}")
        if self._dirty:
            # an earlier attempt of this call failed in an unknown state: ask the server, send only the rest
            try:
                have = self.committed()
            except UploadGone:
                # some servers (gcp-storage-emulator) forget a session once it is finalized: if the lost answer
                # was to our final chunk, the object is there with exactly the crc32c of what we sent
                if final and self._adopt_finished_object(offset, data):
                    self._dirty = False
                    return
                raise
            self._dirty = False
            if self._final is not None or have >= offset + n:
                self._record(offset, n, _crc_extend(0, data))
                return
            if have < offset:
                from ..errors import ResumableError

                raise ResumableError(
                    f"gs://{self.dest.bucket_name}/{self.key}: the server holds {have} bytes, fewer than the {offset} "
                    "it acknowledged; run the same command again to re-send the rest."
                )
            if have > offset:
                self._record(offset, have - offset, _crc_extend(0, data[: have - offset]))
                data = data[have - offset :]
                offset, n = have, len(data)
        crange = f"bytes */{size}" if n == 0 else f"bytes {offset}-{offset + n - 1}/{size}"
        crc = _crc_extend(0, data) if n else 0
        self._dirty = True
        resp = self._put(data, crange)
        if resp.status_code in (200, 201):
            self._final = self._json(resp)
        elif resp.status_code == 308:
            rng = resp.headers.get("Range")
            got = int(rng.rsplit("-", 1)[1]) + 1 if rng else 0
            if got != offset + n:
                # the server persisted less than sent: the retry asks it and sends the rest
                raise TransientError(
                    f"gs://{self.dest.bucket_name}/{self.key}: server persisted {got} of {offset + n} bytes; resuming."
                )
            if final:
                raise RemoteError(f"gs://{self.dest.bucket_name}/{self.key}: final chunk was not accepted as final.")
        else:
            self._check_status(resp, "upload")
        self._dirty = False
        self._record(offset, n, crc)

    def _adopt_finished_object(self, offset: int, data: memoryview) -> bool:
        segs = sorted(self.state["segments"])
        crc, pos = 0, 0
        for start, end, scrc in segs:
            if start != pos:
                return False
            crc = crc32c_combine(crc, scrc, end - start)
            pos = end
        if pos != offset:
            return False
        crc = crc32c_combine(crc, _crc_extend(0, data), len(data))
        try:
            blob = self.dest.bucket.get_blob(self.key, timeout=_TIMEOUT)
        except Exception:
            return False
        if blob is None or int(blob.size or -1) != int(self.state["size"]) or blob.crc32c != _b64_crc(crc):
            return False
        self._final = dict(blob._properties)
        self._record(offset, len(data), _crc_extend(0, data))
        return True

    def _record(self, offset: int, n: int, crc: int) -> None:
        segs: list[list[int]] = self.state["segments"]
        if segs and segs[-1][1] == offset:
            s = segs[-1]
            s[2] = crc32c_combine(s[2], crc, n)
            s[1] = offset + n
        elif n:
            segs.append([offset, offset + n, crc])
        self._save_sidecar()

    # The engine persists ``state`` once, after begin(). The crc32c of what was sent must survive a kill
    # too, so it is also kept in a small private side file keyed by a hash of the session URL (the URL
    # itself is not written there).
    def _sidecar(self) -> Path | None:
        url = self.state.get("session_url")
        if not url:
            return None
        base = self.dest.sidecar_dir
        return base / (hashlib.sha256(url.encode()).hexdigest()[:40] + ".json") if base else None

    def _save_sidecar(self) -> None:
        p = self._sidecar()
        if p is None:
            return
        try:
            ensure_private_dir(p.parent)
            tmp = p.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump({"size": self.state["size"], "segments": self.state["segments"]}, fh)
            os.replace(tmp, p)
        except OSError:
            pass  # only an optimisation: a lost record means a ranged read-back at the end

    def _load_sidecar(self) -> None:
        p = self._sidecar()
        if p is None:
            return
        try:
            with open(p) as fh:
                rec = json.load(fh)
        except (OSError, ValueError):
            return
        if int(rec.get("size", -1)) == int(self.state["size"]):
            have = {tuple(x) for x in self.state["segments"]}
            for seg in rec.get("segments") or []:
                if tuple(seg) not in have:
                    self.state["segments"].append(list(seg))

    def _drop_sidecar(self) -> None:
        p = self._sidecar()
        if p is not None:
            try:
                p.unlink()
            except OSError:
                pass

    def complete(self) -> DestEntry:
        size = int(self.state["size"])
        if self._final is None:
            off = self.committed()
            if self._final is None:
                raise TransientError(f"gs://{self.dest.bucket_name}/{self.key}: upload not finished ({off} of {size} bytes).")
        obj = self._final
        got_size = int(obj.get("size", -1))
        if got_size != size:
            raise RemoteError(f"gs://{self.dest.bucket_name}/{self.key}: stored object has {got_size} bytes, sent {size}.")
        want_crc = self._crc_of_sent(size)
        got_crc = obj.get("crc32c")
        if got_crc and want_crc != got_crc:
            self._delete_bad(obj)
            raise RemoteError(
                f"gs://{self.dest.bucket_name}/{self.key}: crc32c mismatch after upload "
                f"(server {got_crc}, sent {want_crc}); the object was removed, run again."
            )
        src_md5 = self._source_md5()
        got_md5 = _b64_to_hex(obj.get("md5Hash"))
        if src_md5 and got_md5 and src_md5 != got_md5:
            self._delete_bad(obj)
            raise RemoteError(
                f"gs://{self.dest.bucket_name}/{self.key}: md5 mismatch against the source "
                f"(server {got_md5}, source {src_md5}); the object was removed, run again."
            )
        self.state["verified"] = {"crc32c": got_crc, "md5": got_md5}
        self.dest.readback_bytes += self.readback_bytes
        self._drop_sidecar()
        return DestEntry(self.entry.path, size, etag=got_md5, sha256=self.sha256)

    def abort(self) -> None:
        url = self.state.get("session_url")
        if not url:
            return
        try:
            self.dest.gcs.http.delete(url, timeout=_TIMEOUT)  # GCS answers 499 on a cancelled session
        except Exception:
            pass
        self._drop_sidecar()
        self.state.pop("session_url", None)

    # -- helpers
    @staticmethod
    def _json(resp: Any) -> dict[str, Any]:
        try:
            return dict(resp.json())
        except ValueError:
            return {}

    def _source_md5(self) -> str | None:
        extra = self.entry.extra or {}
        md5 = extra.get("md5")
        if md5:
            return str(md5).lower()
        et = (self.entry.etag or "").strip('"').lower()
        if extra.get("etag_is_md5") and len(et) == 32 and all(c in "0123456789abcdef" for c in et):
            return et
        return None

    def _crc_of_sent(self, size: int) -> str:
        """crc32c of the whole object from our segments; read gaps back from the finished object."""
        segs = sorted(self.state["segments"])
        crc = 0
        pos = 0
        for start, end, scrc in segs:
            if end <= pos:
                continue
            if start > pos:
                crc = crc32c_combine(crc, self._read_back_crc(pos, start), start - pos)
                pos = start
            if start < pos:  # overlapping segment (should not happen): read the overlap region back instead
                crc = crc32c_combine(crc, self._read_back_crc(pos, end), end - pos)
            else:
                crc = crc32c_combine(crc, scrc, end - start)
            pos = end
        if pos < size:
            crc = crc32c_combine(crc, self._read_back_crc(pos, size), size - pos)
        return _b64_crc(crc)

    def _read_back_crc(self, start: int, end: int) -> int:
        blob = self.dest.bucket.blob(self.key, generation=int(self._final["generation"]) if self._final and self._final.get("generation") else None)
        crc = 0
        pos = start
        step = 8 * MiB
        while pos < end:
            hi = min(end, pos + step)
            try:
                data = blob.download_as_bytes(start=pos, end=hi - 1, checksum=None, timeout=_TIMEOUT)
            except Exception as exc:
                raise _map_api_error(exc, f"gs://{self.dest.bucket_name}/{self.key}: reading back") from None
            if len(data) != hi - pos:
                raise RemoteError(f"gs://{self.dest.bucket_name}/{self.key}: short read-back.")
            crc = _crc_extend(crc, data)
            self.readback_bytes += len(data)
            pos = hi
        return crc

    def _delete_bad(self, obj: dict[str, Any]) -> None:
        try:
            self.dest.bucket.blob(self.key).delete(if_generation_match=int(obj["generation"]) if obj.get("generation") else None)
        except Exception:
            pass


class GcsDestination:
    caps = DestCaps(
        write_mode=WriteMode.CHUNKS,
        granularity=GRANULARITY,
        min_part_size=GRANULARITY,
        max_part_size=1024 * MiB,
        single_put_max=5 * 1024 * 1024 * MiB,  # 5 TiB object limit
        stores_sha256=True,
    )

    def __init__(self, url: ParsedURL, opts: AdapterOptions) -> None:
        self.url = url.raw
        self.bucket_name = url.root
        self.prefix = url.path
        self.gcs = _Gcs(opts)
        self._bucket: Any = None
        self.readback_bytes = 0
        sd = opts.env.get("FLYMIGRATE_STATE_DIR")
        self.sidecar_dir: Path | None = (Path(sd) if sd else state_dir()) / "transfers" / "gcs-crc32c"

    @property
    def bucket(self) -> Any:
        if self._bucket is None:
            self._bucket = self.gcs.client.bucket(self.bucket_name)
        return self._bucket

    def describe(self) -> str:
        return f"gs://{self.bucket_name}/{self.prefix}".rstrip("/")

    def check(self) -> None:
        try:
            exists = self.bucket.exists(timeout=_TIMEOUT)
        except Exception as exc:
            err = _map_api_error(exc, f"gs://{self.bucket_name}")
            raise err from None
        if not exists:
            raise UserError(
                f"gs://{self.bucket_name}: bucket not found.",
                hint=f"Create it first (`gcloud storage buckets create gs://{self.bucket_name} --location=REGION`) or check the name.",
            )

    def list(self) -> dict[str, DestEntry]:
        out: dict[str, DestEntry] = {}
        for b in _list_blobs(self, self.prefix):
            rel = b.name[len(self.prefix) + 1 :] if self.prefix else b.name
            if not rel or rel.endswith("/"):
                continue
            sha = (b.metadata or {}).get("sha256")
            out[rel] = DestEntry(rel, int(b.size or 0), etag=_b64_to_hex(b.md5_hash), sha256=sha)
        return out

    def stat(self, path: str) -> DestEntry | None:
        key = join_key(self.prefix, path)
        try:
            b = self.bucket.get_blob(key, timeout=_TIMEOUT)
        except Exception as exc:
            raise _map_api_error(exc, f"gs://{self.bucket_name}/{key}") from None
        if b is None:
            return None
        return DestEntry(path, int(b.size or 0), etag=_b64_to_hex(b.md5_hash), sha256=(b.metadata or {}).get("sha256"))

    def open_upload(self, entry: Entry, state: dict[str, Any] | None, sha256: str | None) -> GcsUpload:
        if state and int(state.get("size", -1)) != entry.size:
            state = None
        return GcsUpload(self, entry, state, sha256)

    def list_stale_uploads(self) -> list[dict[str, Any]]:
        return []  # GCS has no listing of open sessions; they expire after a week on their own

    def abort_stale(self, state: dict[str, Any]) -> None:
        url = state.get("session_url")
        if url:
            try:
                self.gcs.http.delete(url, timeout=_TIMEOUT)
            except Exception:
                pass

    def close(self) -> None:
        self.gcs.close()


def _list_blobs(owner: Any, prefix: str) -> Iterator[Any]:
    try:
        yield from owner.gcs.client.list_blobs(
            owner.bucket_name, prefix=(prefix + "/") if prefix else None, timeout=_TIMEOUT
        )
    except Exception as exc:
        err = _map_api_error(exc, f"gs://{owner.bucket_name}/{prefix}: listing")
        raise err from None


# ----------------------------------------------------------------------------------------------- source


class _RangeReader(io.RawIOBase):
    """A streaming ranged GET of one object generation (no buffering beyond the socket's)."""

    def __init__(self, resp: Any) -> None:
        super().__init__()
        self._resp = resp
        self._raw = resp.raw

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        try:
            return int(self._raw.readinto(b))
        except Exception as exc:
            raise TransientError(f"GCS read interrupted ({type(exc).__name__}).") from None

    def close(self) -> None:
        try:
            self._resp.close()
        finally:
            super().close()


class GcsSource:
    caps = SourceCaps(ranged_read=True, hash_kind=None, seekable=False, parallel_ranges=True)

    def __init__(self, url: ParsedURL, opts: AdapterOptions) -> None:
        self.url = url.raw
        self.bucket_name = url.root
        self.prefix = url.path
        self.gcs = _Gcs(opts)
        self.warnings: list[str] = []
        self._session: Any = None

    def describe(self) -> str:
        return f"gs://{self.bucket_name}/{self.prefix}".rstrip("/")

    def list(self) -> Iterator[Entry]:
        found = False
        for b in _list_blobs(self, self.prefix):
            rel = b.name[len(self.prefix) + 1 :] if self.prefix else b.name
            if not rel or rel.endswith("/"):
                continue
            found = True
            yield Entry(
                rel,
                int(b.size or 0),
                etag=str(b.generation),
                sha256=(b.metadata or {}).get("sha256"),
                extra={"md5": _b64_to_hex(b.md5_hash), "crc32c": b.crc32c, "generation": b.generation, "name": b.name},
            )
        if not found and self.prefix:
            # maybe the prefix is a single object
            blob = self.gcs.client.bucket(self.bucket_name).get_blob(self.prefix)
            if blob is not None:
                yield Entry(
                    self.prefix.rsplit("/", 1)[-1],
                    int(blob.size or 0),
                    etag=str(blob.generation),
                    extra={"md5": _b64_to_hex(blob.md5_hash), "crc32c": blob.crc32c, "generation": blob.generation, "name": blob.name},
                )

    def open(self, entry: Entry, offset: int = 0, length: int | None = None) -> BinaryIO:
        from urllib.parse import quote

        client = self.gcs.client
        name = entry.extra.get("name") or join_key(self.prefix, entry.path)
        base = client._connection.API_BASE_URL.rstrip("/")
        url = f"{base}/download/storage/v1/b/{quote(self.bucket_name, safe='')}/o/{quote(name, safe='')}"
        params = {"alt": "media"}
        if entry.extra.get("generation"):
            params["generation"] = str(entry.extra["generation"])
        bounded = length is not None and length < entry.size
        headers = {"Range": f"bytes={offset}-" + (str(offset + length - 1) if bounded else "")} if offset or bounded else {}
        if self._session is None:
            if _is_emulator(self.gcs.opts.env):
                self._session = self.gcs.http
            else:
                from google.auth.transport.requests import AuthorizedSession

                self._session = AuthorizedSession(client._credentials)
        if offset >= entry.size and entry.size > 0:
            return io.BytesIO(b"")  # type: ignore[return-value]
        try:
            resp = self._session.get(url, params=params, headers=headers, stream=True, timeout=_TIMEOUT)
        except Exception as exc:
            raise _map_api_error(exc, f"gs://{self.bucket_name}/{name}") from None
        if resp.status_code not in (200, 206):
            resp.close()
            if resp.status_code in (408, 429) or resp.status_code >= 500:
                raise TransientError(f"gs://{self.bucket_name}/{name}: server answered {resp.status_code}.", _retry_after(resp))
            if resp.status_code in (401, 403):
                raise UserError(f"gs://{self.bucket_name}/{name}: permission denied.", hint=ADC_HINT)
            if resp.status_code == 404:
                raise RemoteError(f"gs://{self.bucket_name}/{name}: the object changed or vanished during the transfer.")
            raise RemoteError(f"gs://{self.bucket_name}/{name}: unexpected answer {resp.status_code}.")
        if offset and resp.status_code == 200:
            resp.close()
            raise RemoteError(f"gs://{self.bucket_name}/{name}: server ignored the Range header.")
        resp.raw.decode_content = True
        return _RangeReader(resp)  # type: ignore[return-value]

    def close(self) -> None:
        self.gcs.close()


def destination(url: ParsedURL, opts: AdapterOptions) -> GcsDestination:
    return GcsDestination(url, opts)


def source(url: ParsedURL, opts: AdapterOptions) -> GcsSource:
    return GcsSource(url, opts)
