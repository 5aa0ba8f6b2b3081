"""S3-compatible storage: ``s3://BUCKET/PREFIX`` (AWS, Fly's Tigris, R2, ...) and RunPod network
volumes ``runpod-volume://VOLUME_ID/PREFIX``, as source and destination.

Credentials (never on the command line):

* ``s3://``: the usual boto3 chain -- ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` /
  ``AWS_SESSION_TOKEN``, profiles; endpoint from ``--endpoint-url`` or ``AWS_ENDPOINT_URL_S3`` /
  ``AWS_ENDPOINT_URL`` (what ``fly storage create`` sets for Tigris); region from ``AWS_REGION``.
* ``runpod-volume://``: ``RUNPOD_S3_ACCESS_KEY_ID`` / ``RUNPOD_S3_SECRET_ACCESS_KEY`` (the "S3 API
  key" from the RunPod console: ``user_...`` / ``rps_...``), falling back to
  ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``. Endpoint
  ``https://s3api-<datacenter>.runpod.io`` from ``--datacenter``, or ``--endpoint-url``.

Client settings follow the research (destinations.md B.1, transfer.md 3.6): path-style addressing,
checksums only when required (RunPod/R2/MinIO reject the CRC trailers), payload signing off (we
check every part's MD5 against its ETag instead), a long read timeout on CompleteMultipartUpload,
and our own retry loop in the engine (botocore's is set to a single attempt so that every retry is
logged and backs off with jitter).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, TypeVar

from ..errors import RemoteError, ResumableError, UserError
from .base import (
    AdapterOptions,
    ChecksumMismatch,
    DestCaps,
    DestEntry,
    Entry,
    MiB,
    ParsedURL,
    PartInfo,
    SourceCaps,
    TransientError,
    UploadGone,
    WriteMode,
    join_key,
)
from .streams import FileSpan, MemBody

T = TypeVar("T")
PROBE_KEY = ".flymigrate-checksum-probe-"  # engine._cleanup aborts a probe upload a killed run left behind

RUNPOD_MAX = 500 * 1000 * 1000  # "files > 500 MB must use multipart; max part 500 MB" (decimal MB, to be safe)

_AUTH_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken",
               "AuthorizationHeaderMalformed", "Forbidden", "403", "401", "Unauthorized"}
_TRANSIENT_CODES = {"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "RequestTimeTooSkewed",
                    "Throttling", "ThrottlingException", "TooManyRequests", "BadGateway", "500", "502", "503", "504"}
# the server computed a different checksum of the body than the one we sent (AWS: "fails the request with a
# BadDigest error", docs.aws.amazon.com S3 API, x-amz-sdk-checksum-algorithm; InvalidDigest / XAmzContentChecksumMismatch
# are what other S3 servers answer for the same)
_DIGEST_CODES = {"BadDigest", "InvalidDigest", "XAmzContentChecksumMismatch", "InvalidChecksum"}
_FULL_CODES = {"QuotaExceeded", "InsufficientStorage", "XMinioStorageFull", "EntityTooLarge", "NoSpaceLeft", "507"}


def runpod_datacenter(volume_id: str, env: Any) -> str | None:
    """The datacenter of a network volume: ``RUNPOD_DATACENTER``, else RunPod's REST API
    (``GET /networkvolumes/{id}`` -> ``dataCenterId``) with ``RUNPOD_API_KEY``; base URL from
    ``RUNPOD_REST_URL`` (default https://rest.runpod.io/v1). None when neither is available."""
    import json
    import urllib.error
    import urllib.request
    from urllib.parse import quote

    dc = env.get("RUNPOD_DATACENTER")
    if dc:
        return str(dc)
    key = env.get("RUNPOD_API_KEY")
    if not key:
        return None
    base = (env.get("RUNPOD_REST_URL") or "https://rest.runpod.io/v1").rstrip("/")
    req = urllib.request.Request(f"{base}/networkvolumes/{quote(volume_id, safe='')}",
                                 headers={"Authorization": f"Bearer {key}", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=20) as r:  # noqa: S310 -- https (or a test's loopback)
            data = json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        if e.code in (401, 403):
            raise UserError("RunPod rejected RUNPOD_API_KEY while looking up the volume's datacenter.",
                            hint="Fix the key, or pass --datacenter.") from None
        if e.code == 404:
            raise UserError(f"RunPod has no network volume {volume_id!r} on this account.",
                            hint="Check the volume id (RunPod console > Storage).") from None
        return None
    except (OSError, ValueError):
        return None
    dc = data.get("dataCenterId") if isinstance(data, dict) else None
    return str(dc) if dc else None


# RunPod datacenters with the S3 API (docs.runpod.io/serverless/storage/s3-api, see ../shared/research)
RUNPOD_S3_DATACENTERS = ("EU-CZ-1", "EU-RO-1", "EUR-IS-1", "EUR-NO-1", "US-CA-2", "US-GA-2", "US-IL-1", "US-KS-2",
                         "US-MD-1", "US-MO-1", "US-MO-2", "US-NC-1", "US-NC-2", "US-NE-1", "US-WA-1")


def runpod_s3_endpoints(env: Any) -> dict[str, str]:
    """Datacenter -> S3 API endpoint. ``FLYMIGRATE_RUNPOD_S3_ENDPOINTS`` (a JSON object) replaces the list
    (tests; a datacenter added after this release)."""
    import json

    raw = env.get("FLYMIGRATE_RUNPOD_S3_ENDPOINTS")
    if raw:
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise UserError("FLYMIGRATE_RUNPOD_S3_ENDPOINTS must be a JSON object of datacenter -> endpoint URL.")
        return {str(k): v for k, v in data.items()}
    return {dc: f"https://s3api-{dc.lower()}.runpod.io" for dc in RUNPOD_S3_DATACENTERS}


def probe_runpod_datacenter(volume_id: str, access_key: str, secret_key: str, env: Any,
                            timeout: float = 15.0) -> str:
    """Find the datacenter of a network volume by asking every datacenter's S3 API for the bucket (a signed
    HEAD, in parallel; the S3 keys are account-wide). Raises a UserError / ResumableError saying what to do
    when it is in none of them."""
    import urllib.error
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor
    from urllib.parse import quote

    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    creds = Credentials(access_key, secret_key)
    endpoints = runpod_s3_endpoints(env)

    def head(item: tuple[str, str]) -> tuple[str, int | str]:
        dc, endpoint = item
        url = f"{endpoint.rstrip('/')}/{quote(volume_id, safe='')}"
        req = AWSRequest(method="HEAD", url=url, headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
        S3SigV4Auth(creds, "s3", dc).add_auth(req)
        r = urllib.request.Request(url, method="HEAD", headers=dict(req.headers.items()))
        try:
            with urllib.request.urlopen(r, timeout=timeout) as resp:  # noqa: S310 -- https (or a test's loopback)
                return dc, resp.status
        except urllib.error.HTTPError as e:
            return dc, e.code
        except (OSError, ValueError) as e:
            return dc, type(e).__name__

    with ThreadPoolExecutor(max_workers=min(16, max(1, len(endpoints)))) as ex:
        answers = dict(ex.map(head, endpoints.items()))
    found = sorted(dc for dc, a in answers.items() if a == 200)
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise UserError(f"RunPod network volume {volume_id!r} answers in several datacenters ({', '.join(found)}).",
                        hint="Pass --datacenter with the one the volume is in.")
    denied = sorted(dc for dc, a in answers.items() if a in (401, 403))
    unreachable = sorted(dc for dc, a in answers.items() if isinstance(a, str))
    if denied and len(denied) + len(unreachable) == len(answers):
        raise UserError("RunPod's S3 API refused the keys in every datacenter while looking for the volume.",
                        hint="Check RUNPOD_S3_ACCESS_KEY_ID (user_...) and RUNPOD_S3_SECRET_ACCESS_KEY (rps_...) "
                        "from RunPod console > Settings > S3 API Keys, or pass --datacenter.")
    if len(unreachable) == len(answers):
        raise ResumableError("could not reach RunPod's S3 API to find the volume's datacenter.",
                             hint="Check the network, or pass --datacenter (e.g. EU-RO-1).")
    extra = f"; {len(unreachable)} could not be reached ({', '.join(unreachable)})" if unreachable else ""
    raise UserError(f"RunPod network volume {volume_id!r} was not found in any datacenter with the S3 API "
                    f"(asked {len(answers)}{extra}).",
                    hint="Check the volume id (RunPod console > Storage); the S3 API only serves volumes in "
                    f"{', '.join(sorted(answers))}. Or pass --datacenter.")


def _enable_sendfile() -> bool:
    """Teach botocore's HTTP connection to send a :class:`~.streams.FileSpan` body chunk with ``socket.sendfile``
    (os.sendfile on plain TCP; over TLS, which sendfile cannot encrypt, big reads and ``sendall``). Every other
    chunk goes the usual way. botocore 1.44: urllib3 2's ``HTTPConnection.request`` sends each chunk of a
    file-like body through ``AWSConnection.send``, which drops the body once the server has answered (Expect:
    100-continue, ``_response_received``): kept. False (bodies stay plain bytes) if botocore is not shaped so."""
    import ssl

    try:
        from botocore.awsrequest import AWSConnection
    except ImportError:
        return False
    if getattr(AWSConnection, "_fm_sendfile", False):
        return True
    orig = AWSConnection.__dict__.get("send")
    code = getattr(AWSConnection.__init__, "__code__", None)
    if orig is None or code is None or "_response_received" not in code.co_names:
        return False

    def send(self: Any, data: Any) -> Any:
        if not isinstance(data, FileSpan):
            return orig(self, data)
        if self._response_received:
            return orig(self, b"")  # botocore's no-op and its log line
        if self.sock is None:
            self.connect()
        sent = 0
        if isinstance(self.sock, ssl.SSLSocket):
            data.f.seek(data.offset)
            while sent < data.count:
                block = data.f.read(min(4 * MiB, data.count - sent))
                if not block:
                    break
                self.sock.sendall(block)
                sent += len(block)
        else:
            sent = self.sock.sendfile(data.f, data.offset, data.count)
        if sent != data.count:
            raise OSError("source file is shorter than when it was listed (changed during the copy?)")
        return None

    AWSConnection.send = send
    AWSConnection._fm_sendfile = True
    return True


class _Ctx:
    def __init__(self, kind: str, bucket: str, endpoint: str | None, cred_hint: str) -> None:
        self.kind = kind
        self.bucket = bucket
        self.endpoint = endpoint
        self.cred_hint = cred_hint

    def what(self) -> str:
        if self.kind == "runpod-volume":
            return f"RunPod network volume {self.bucket!r}"
        return f"bucket {self.bucket!r}" + (f" at {self.endpoint}" if self.endpoint else "")


def _translate(ctx: _Ctx, op: str, key: str | None, exc: BaseException) -> BaseException:
    """Map a botocore/urllib3 exception to our error kinds. Messages carry no secret."""
    import botocore.exceptions as bx

    where = f"{op} {key!r}" if key else op
    if isinstance(exc, bx.ClientError):
        err = exc.response.get("Error", {}) or {}
        code = str(err.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}) or {}
        if code == "NoSuchUpload":
            return UploadGone(f"{where}: the multipart upload no longer exists")
        if code in _DIGEST_CODES:
            return ChecksumMismatch(f"{where}: the server's checksum of what it received differs from ours ({code})")
        if code in _FULL_CODES or status == 507:
            return ResumableError(
                f"{ctx.what()} is full ({where}: {code or status}).",
                hint="Grow the volume or free space, then run the same command again to continue.",
            )
        if code in _AUTH_CODES or status in (401, 403):
            return UserError(
                f"{ctx.what()} refused the credentials ({where}: {code or status}).",
                hint=ctx.cred_hint,
            )
        if code in ("NoSuchBucket",) or (status == 404 and op in ("HeadBucket", "ListObjectsV2")):
            if ctx.kind == "runpod-volume":
                return UserError(
                    f"{ctx.what()} was not found at {ctx.endpoint}.",
                    hint="Check the volume id and that --datacenter is the volume's datacenter "
                    "(the S3 API exists only in some datacenters).",
                )
            return UserError(f"{ctx.what()} does not exist.", hint="Create it first or fix the URL.")
        if status >= 500 or status == 429 or code in _TRANSIENT_CODES:
            ra = headers.get("retry-after")
            try:
                retry_after = float(ra) if ra else None
            except ValueError:
                retry_after = None
            return TransientError(f"{where}: {code or 'HTTP'} {status}", retry_after)
        from ..redact import redact  # some gateways quote the request's headers (a session token) back

        msg = redact(str(err.get("Message", "")))
        msg = msg if len(msg) <= 200 else msg[:200] + "..."
        return RemoteError(f"{ctx.what()}: {where} failed: {code} {status} {msg}".strip())
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return UserError(f"no credentials for {ctx.what()}.", hint=ctx.cred_hint)
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectionClosedError | bx.ReadTimeoutError
                  | bx.ConnectTimeoutError | bx.ResponseStreamingError | bx.IncompleteReadError
                  | bx.HTTPClientError | ConnectionError | TimeoutError):
        return TransientError(f"{where}: {type(exc).__name__}", network=True)
    if isinstance(exc, bx.ParamValidationError):
        return UserError(f"{where}: {exc}")
    if isinstance(exc, OSError):
        return TransientError(f"{where}: {type(exc).__name__}", network=True)
    return exc


class S3Base:
    def __init__(self, url: ParsedURL, opts: AdapterOptions) -> None:
        import botocore.session  # not boto3: its import (s3transfer, resources) is ~0.25 s of every run's start
        from botocore.config import Config

        env = opts.env
        self.notes: list[str] = []  # said once at the start of a run (e.g. a datacenter found by probing)
        self.url = url.raw
        self.kind = url.scheme
        self.bucket = url.root
        self.prefix = url.path
        kwargs: dict[str, Any] = {}
        if url.scheme == "runpod-volume":
            endpoint = opts.endpoint_url
            datacenter = opts.datacenter
            ak = env.get("RUNPOD_S3_ACCESS_KEY_ID") or env.get("AWS_ACCESS_KEY_ID")
            sk = env.get("RUNPOD_S3_SECRET_ACCESS_KEY") or env.get("AWS_SECRET_ACCESS_KEY")
            cred_hint = (
                "Set RUNPOD_S3_ACCESS_KEY_ID (user_...) and RUNPOD_S3_SECRET_ACCESS_KEY (rps_...) from "
                "RunPod console > Settings > S3 API Keys (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY also work)."
            )
            if not ak or not sk:
                raise UserError(f"no credentials for RunPod volume {self.bucket!r}.", hint=cred_hint)
            if not endpoint:
                datacenter = datacenter or runpod_datacenter(url.root, env)
                if not datacenter:
                    datacenter = probe_runpod_datacenter(url.root, ak, sk, env)
                    self.notes.append(f"RunPod volume {url.root!r} is in {datacenter} (found by asking each "
                                      f"datacenter; pass --datacenter {datacenter} to skip this)")
                endpoint = runpod_s3_endpoints(env).get(datacenter.upper(),
                                                        f"https://s3api-{datacenter.lower()}.runpod.io")
            region = datacenter or "us-east-1"
            kwargs.update(aws_access_key_id=ak, aws_secret_access_key=sk)
        else:
            endpoint = opts.endpoint_url or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
            region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or ("auto" if endpoint else "us-east-1")
            cred_hint = "Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (for Tigris: the values `fly storage create` printed)."
            if env is not os.environ and env.get("AWS_ACCESS_KEY_ID"):
                kwargs.update(aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
                              aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
                              aws_session_token=env.get("AWS_SESSION_TOKEN"))
        self.endpoint = endpoint
        self.ctx = _Ctx(self.kind, self.bucket, endpoint, cred_hint)
        # bodies read from a regular file with nothing to hash on the way go out by sendfile(2)
        self.sendfile = os.environ.get("FLYMIGRATE_SENDFILE", "1") != "0" and _enable_sendfile()
        base = dict(
            s3={"addressing_style": "path", "payload_signing_enabled": False},
            signature_version="s3v4",
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"mode": "standard", "total_max_attempts": 1},
            max_pool_connections=max(10, opts.connections),
            tcp_keepalive=True,
        )
        self._session = botocore.session.get_session()
        self.client = self._session.create_client(
            "s3", endpoint_url=endpoint, region_name=region,
            config=Config(connect_timeout=20, read_timeout=120, **base), **kwargs,
        )
        self._slow_args = dict(endpoint_url=endpoint, region_name=region,
                               config=Config(connect_timeout=20, read_timeout=7200, **base), **kwargs)
        self._slow: Any = None
        self._slow_mu = threading.Lock()

    @property
    def slow_client(self) -> Any:
        """For CompleteMultipartUpload, which on a big file can take many minutes on RunPod (B.1). Made when first
        needed: a run of small files (single PUTs) never completes an upload."""
        with self._slow_mu:
            if self._slow is None:
                self._slow = self._session.create_client("s3", **self._slow_args)
            return self._slow

    def describe(self) -> str:
        return self.url

    def call(self, op: str, key: str | None, fn: Callable[..., T], **kw: Any) -> T:
        try:
            return fn(**kw)
        except Exception as exc:
            new = _translate(self.ctx, op, key, exc)
            if new is exc:
                raise
            raise new from None

    def _list(self) -> Iterator[dict[str, Any]]:
        token = None
        pfx = f"{self.prefix}/" if self.prefix else ""
        while True:
            kw: dict[str, Any] = {"Bucket": self.bucket, "Prefix": pfx}
            if token:
                kw["ContinuationToken"] = token
            page = self.call("ListObjectsV2", None, self.client.list_objects_v2, **kw)
            for obj in page.get("Contents", []) or []:
                rel = obj["Key"][len(pfx):]
                if not rel or rel.endswith("/"):
                    continue  # RunPod lists directories as empty keys
                yield {"path": rel, "size": int(obj["Size"]), "etag": str(obj.get("ETag", "")).strip('"')}
            if not page.get("IsTruncated"):
                break
            token = page.get("NextContinuationToken")

    def close(self) -> None:
        for c in (self.client, self._slow):
            if c is None:
                continue
            try:
                c.close()
            except Exception:
                pass


# ------------------------------------------------------------------------------------------------ source


class S3Source(S3Base):
    caps = SourceCaps(ranged_read=True, hash_kind="md5-etag", seekable=False, parallel_ranges=True)

    def __init__(self, url: ParsedURL, opts: AdapterOptions) -> None:
        super().__init__(url, opts)
        self.warnings: list[str] = []
        self._single: str | None = None

    def list(self) -> Iterator[Entry]:
        n = 0
        for o in self._list():
            n += 1
            yield Entry(o["path"], o["size"], etag=o["etag"])
        if n == 0 and self.prefix:
            # s3://bucket/path/to/file.bin: a single object
            try:
                h = self.call("HeadObject", self.prefix, self.client.head_object, Bucket=self.bucket, Key=self.prefix)
            except RemoteError:
                return
            except UserError:
                raise
            self._single = self.prefix
            meta = h.get("Metadata", {}) or {}
            yield Entry(self.prefix.rsplit("/", 1)[-1], int(h["ContentLength"]),
                        sha256=meta.get("sha256"), etag=str(h.get("ETag", "")).strip('"'))

    def _key(self, entry: Entry) -> str:
        return self._single if self._single else join_key(self.prefix, entry.path)

    def open(self, entry: Entry, offset: int = 0, length: int | None = None) -> BinaryIO:
        key = self._key(entry)
        kw: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if offset or (length is not None and length < entry.size):
            kw["Range"] = f"bytes={offset}-" + (str(offset + length - 1) if length is not None else "")
        if entry.etag:
            kw["IfMatch"] = f'"{entry.etag}"'
        resp = self.call("GetObject", key, self.client.get_object, **kw)
        return _BodyReader(resp["Body"], self, key)  # type: ignore[return-value]


class _BodyReader:
    def __init__(self, body: Any, owner: S3Base, key: str) -> None:
        self._body = body
        self._raw = getattr(body, "_raw_stream", None)
        self._owner = owner
        self._key = key

    def readinto(self, b: Any) -> int:
        try:
            if self._raw is not None and hasattr(self._raw, "readinto"):
                return int(self._raw.readinto(b))
            data = self._body.read(len(b))
            memoryview(b)[: len(data)] = data
            return len(data)
        except Exception as exc:  # noqa: BLE001
            new = _translate(self._owner.ctx, "GetObject", self._key, exc)
            if new is exc:
                raise TransientError(f"GetObject {self._key!r}: {type(exc).__name__}") from None
            raise new from None

    def read(self, n: int = -1) -> bytes:
        buf = bytearray(n if n > 0 else 1 << 20)
        k = self.readinto(buf)
        return bytes(buf[:k])

    def close(self) -> None:
        try:
            self._body.close()
        except Exception:
            pass


# ------------------------------------------------------------------------------------------- destination


class S3Destination(S3Base):
    def __init__(self, url: ParsedURL, opts: AdapterOptions) -> None:
        super().__init__(url, opts)
        if self.kind == "runpod-volume":
            self.caps = DestCaps(
                write_mode=WriteMode.PARTS, min_part_size=1, max_part_size=RUNPOD_MAX, max_parts=10_000,
                single_put_max=RUNPOD_MAX - 1, part_etag_is_md5=True, stores_sha256=True,
            )
        else:
            self.caps = DestCaps(
                write_mode=WriteMode.PARTS, min_part_size=5 * MiB, max_part_size=5 * 1024 * MiB, max_parts=10_000,
                single_put_max=5 * 1024 * MiB, part_etag_is_md5=True, stores_sha256=True,
            )

    crc32c = False  # set by the engine once probe_checksum() said the server verifies x-amz-checksum-crc32c

    def check(self) -> None:
        self.call("HeadBucket", None, self.client.head_bucket, Bucket=self.bucket)

    def probe_checksum(self) -> tuple[bool, str]:
        """Does this endpoint verify ``x-amz-checksum-crc32c``? Sends a one-byte part with a wrong CRC32C into a
        multipart upload of a probe key created with ``ChecksumAlgorithm=CRC32C``, then aborts it (nothing is
        left behind). A server that verifies refuses the part (BadDigest); one that ignores the header stores
        it (moto 5.2 does, and even echoes the header back without checking it, so an echo proves nothing).
        (True, why) or (False, why)."""
        import uuid

        key = join_key(self.prefix, f"{PROBE_KEY}{uuid.uuid4().hex[:12]}")
        try:
            r = self.call("CreateMultipartUpload", key, self.client.create_multipart_upload, Bucket=self.bucket,
                          Key=key, ChecksumAlgorithm="CRC32C")
        except (RemoteError, UserError, ChecksumMismatch) as e:  # TransientError: the caller retries the probe
            return False, f"CreateMultipartUpload with ChecksumAlgorithm=CRC32C failed ({e})"
        uid = r["UploadId"]
        try:
            wrong = "AAAAAA=="  # CRC32C(b"\0") is 0x527d5351, not 0
            self.call("UploadPart", key, self.client.upload_part, Bucket=self.bucket, Key=key, UploadId=uid,
                      PartNumber=1, Body=b"\0", ContentLength=1, ChecksumCRC32C=wrong)
            return False, "it accepted a part whose x-amz-checksum-crc32c was wrong"
        except ChecksumMismatch:
            return True, "it refused a part whose x-amz-checksum-crc32c was wrong"
        except TransientError:
            raise
        except Exception as e:  # noqa: BLE001 -- any other answer: do not rely on it
            return False, f"a part with a wrong x-amz-checksum-crc32c got {type(e).__name__}: {e}"
        finally:
            try:
                self.call("AbortMultipartUpload", key, self.client.abort_multipart_upload, Bucket=self.bucket,
                          Key=key, UploadId=uid)
            except Exception:  # noqa: BLE001 -- a stale probe upload is listed and aborted like any other
                pass

    def list(self) -> dict[str, DestEntry]:
        return {o["path"]: DestEntry(o["path"], o["size"], etag=o["etag"]) for o in self._list()}

    def stat(self, path: str) -> DestEntry | None:
        key = join_key(self.prefix, path)
        try:
            h = self.call("HeadObject", key, self.client.head_object, Bucket=self.bucket, Key=key)
        except RemoteError:
            return None
        meta = h.get("Metadata", {}) or {}
        return DestEntry(path, int(h["ContentLength"]), etag=str(h.get("ETag", "")).strip('"'), sha256=meta.get("sha256"))

    def open_upload(self, entry: Entry, state: dict[str, Any] | None, sha256: str | None) -> S3Upload:
        return S3Upload(self, join_key(self.prefix, entry.path), entry, state or {}, sha256)

    def list_stale_uploads(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        kw: dict[str, Any] = {"Bucket": self.bucket, "Prefix": f"{self.prefix}/" if self.prefix else ""}
        while True:
            page = self.call("ListMultipartUploads", None, self.client.list_multipart_uploads, **kw)
            for u in page.get("Uploads", []) or []:
                st = {"key": u["Key"], "upload_id": u["UploadId"]}
                if str(u.get("ChecksumAlgorithm") or "").upper() == "CRC32C":
                    st["checksum"] = "CRC32C"
                out.append(st)
            if not page.get("IsTruncated"):
                break
            kw["KeyMarker"] = page.get("NextKeyMarker")
            kw["UploadIdMarker"] = page.get("NextUploadIdMarker")
        return out

    def abort_stale(self, state: dict[str, Any]) -> None:
        try:
            self.call("AbortMultipartUpload", state["key"], self.client.abort_multipart_upload,
                      Bucket=self.bucket, Key=state["key"], UploadId=state["upload_id"])
        except UploadGone:
            pass


class S3Upload:
    def __init__(self, dest: S3Destination, key: str, entry: Entry, state: dict[str, Any], sha256: str | None) -> None:
        self.dest = dest
        self.key = key
        self.entry = entry
        self.state = dict(state)
        self.sha256 = sha256

    def _meta(self, sha256: str | None) -> dict[str, str]:
        return {"sha256": sha256} if sha256 else {}

    @property
    def crc32c(self) -> bool:
        """This upload's parts carry x-amz-checksum-crc32c (decided when it was created, kept in its state)."""
        return self.state.get("checksum") == "CRC32C"

    def begin(self) -> dict[str, Any]:
        d = self.dest
        kw: dict[str, Any] = {"ChecksumAlgorithm": "CRC32C"} if d.crc32c else {}
        r = d.call("CreateMultipartUpload", self.key, d.client.create_multipart_upload,
                   Bucket=d.bucket, Key=self.key, Metadata=self._meta(self.sha256), **kw)
        self.state = {"key": self.key, "upload_id": r["UploadId"]}
        if d.crc32c:
            # every part must then carry its checksum, and Complete must list them (AWS: CreateMultipartUpload
            # ChecksumAlgorithm; CompleteMultipartUpload Part.ChecksumCRC32C)
            self.state["checksum"] = "CRC32C"
        return self.state

    def list_parts(self) -> dict[int, PartInfo]:
        d = self.dest
        out: dict[int, PartInfo] = {}
        kw: dict[str, Any] = {"Bucket": d.bucket, "Key": self.key, "UploadId": self.state["upload_id"]}
        while True:
            page = d.call("ListParts", self.key, d.client.list_parts, **kw)
            for p in page.get("Parts", []) or []:
                n = int(p["PartNumber"])
                out[n] = PartInfo(n, int(p["Size"]), str(p["ETag"]).strip('"'), p.get("ChecksumCRC32C") or None)
            if not page.get("IsTruncated"):
                break
            kw["PartNumberMarker"] = page["NextPartNumberMarker"]
        return out

    def write_part(self, number: int, data: Any, crc32c: str | None = None) -> PartInfo:
        """``crc32c``: base64 CRC32C of the part, sent as x-amz-checksum-crc32c for the server to verify (it
        refuses a body that does not match: ChecksumMismatch). botocore computes no checksum of its own here:
        the client runs with request_checksum_calculation="when_required", and a checksum header the caller
        set makes it skip calculation anyway (botocore 1.44 httpchecksum.resolve_request_checksum_algorithm:
        "If the header is already set by the customer, skip calculation")."""
        d = self.dest
        body = data if hasattr(data, "read") else MemBody(data)
        kw: dict[str, Any] = {"ChecksumCRC32C": crc32c} if crc32c else {}
        r = d.call("UploadPart", self.key, d.client.upload_part, Bucket=d.bucket, Key=self.key,
                   UploadId=self.state["upload_id"], PartNumber=number, Body=body, ContentLength=len(data), **kw)
        return PartInfo(number, len(data), str(r["ETag"]).strip('"'), crc32c)

    def complete(self, parts: list[PartInfo]) -> DestEntry:
        d = self.dest
        d.call("CompleteMultipartUpload", self.key, d.slow_client.complete_multipart_upload,
               Bucket=d.bucket, Key=self.key, UploadId=self.state["upload_id"],
               MultipartUpload={"Parts": [self._part_xml(p) for p in parts]})
        return self._head()

    def _part_xml(self, p: PartInfo) -> dict[str, Any]:
        out: dict[str, Any] = {"PartNumber": p.number, "ETag": f'"{p.etag}"'}
        if self.crc32c and p.crc32c:
            out["ChecksumCRC32C"] = p.crc32c
        return out

    def put(self, data: Any, sha256: str | None, crc32c: str | None = None) -> DestEntry:
        d = self.dest
        body = data if hasattr(data, "read") else MemBody(data)
        kw: dict[str, Any] = {"ChecksumCRC32C": crc32c} if crc32c else {}
        r = d.call("PutObject", self.key, d.client.put_object, Bucket=d.bucket, Key=self.key,
                   Body=body, ContentLength=len(data), Metadata=self._meta(sha256), **kw)
        etag = str(r.get("ETag", "")).strip('"')
        return DestEntry(self.entry.path, len(data), etag=etag, sha256=sha256)

    def _head(self) -> DestEntry:
        # RunPod has been seen to answer 200 on Complete and then 404 on HEAD (runpodctl#282): check.
        d = self.dest
        try:
            h = d.call("HeadObject", self.key, d.client.head_object, Bucket=d.bucket, Key=self.key)
        except RemoteError as e:
            raise TransientError(f"HeadObject {self.key!r} after upload: {e}") from None
        meta = h.get("Metadata", {}) or {}
        return DestEntry(self.entry.path, int(h["ContentLength"]), etag=str(h.get("ETag", "")).strip('"'),
                         sha256=meta.get("sha256"))

    def abort(self) -> None:
        if not self.state.get("upload_id"):
            return
        d = self.dest
        try:
            d.call("AbortMultipartUpload", self.key, d.client.abort_multipart_upload,
                   Bucket=d.bucket, Key=self.key, UploadId=self.state["upload_id"])
        except UploadGone:
            pass


def source(url: ParsedURL, opts: AdapterOptions) -> S3Source:
    return S3Source(url, opts)


def destination(url: ParsedURL, opts: AdapterOptions) -> S3Destination:
    return S3Destination(url, opts)
