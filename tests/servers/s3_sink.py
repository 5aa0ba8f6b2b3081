"""A minimal loopback S3 sink: discards bodies, answers with real MD5 ETags, speaks multipart.

For benchmarks (the client is the bottleneck) and for tests that need no stored bytes. Keeps only
sizes and ETags. Understands plain bodies, ``Transfer-Encoding: chunked`` and ``aws-chunked``
(signed streaming / checksum trailers, as the Go SDKs send them). Any credentials are accepted.
Verifies what AWS verifies in a request's headers: ``Content-MD5`` and ``x-amz-checksum-crc32c`` (a body that
does not match is refused with 400 BadDigest, the checksum is echoed on success and listed by ListParts).
``corrupt``: ``{"KEY" or "KEY#PART": n}``: the server flips a byte of the next n bodies of that object or part
before checking them (tests: damage in flight).

    python tests/servers/s3_sink.py [PORT]      # prints http://127.0.0.1:PORT
"""

from __future__ import annotations

import base64
import ctypes
import glob
import hashlib
import os
import socket
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

CHUNK = 1 << 20


def _crc32c_fn():  # type: ignore[no-untyped-def]
    """The hardware CRC32C of the libcrc32c google-crc32c bundles, through ctypes (no copy, GIL released)."""
    try:
        import google_crc32c
    except ImportError:
        return None
    base = os.path.dirname(os.path.dirname(google_crc32c.__file__))
    for name in glob.glob(os.path.join(base, "google_crc32c.libs", "libcrc32c*.so*")):
        try:
            fn = ctypes.CDLL(name).crc32c_extend
        except (OSError, AttributeError):
            continue
        fn.argtypes, fn.restype = [ctypes.c_uint32, ctypes.c_void_p, ctypes.c_size_t], ctypes.c_uint32

        def ext(crc: int, mv: memoryview, fn: Any = fn) -> int:
            return int(fn(crc, (ctypes.c_char * len(mv)).from_buffer(mv), len(mv)))

        return ext
    return lambda crc, mv: google_crc32c.extend(crc, bytes(mv))


_CRC32C = _crc32c_fn()


class State:
    def __init__(self) -> None:
        self.mu = threading.Lock()
        self.objects: dict[tuple[str, str], tuple[int, str]] = {}
        self.uploads: dict[str, dict[str, Any]] = {}
        self.buckets: set[str] = set()
        self.bytes_in = 0
        self.bodies = 0
        self.corrupt: dict[str, int] = {}  # "KEY" / "KEY#PART" -> flip one byte of its next n bodies (tests)
        self.corrupted = 0
        self.refused = 0  # bodies refused because their checksum did not match


class _BadDigest(Exception):
    pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: State

    def setup(self) -> None:
        super().setup()
        # as real servers do (Go's net package, nginx): without it a response written as headers + body waits
        # ~40 ms for the client's delayed ACK, a stall that is ours, not the client's
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *a: Any) -> None:
        pass

    # --------------------------------------------------------------------------------------- bodies
    def _read_exact_md5(self, n: int, md5: Any, buf: bytearray) -> int:
        view = memoryview(buf)
        got = 0
        while got < n:
            k = self.rfile.readinto(view[: min(len(buf), n - got)])
            if not k:
                raise ConnectionError("short body")
            if self._flip and got <= n // 2 < got + k:
                view[n // 2 - got] ^= 0xFF
                self._flip = False
            if md5 is not None:
                md5.update(view[:k])
            if self._crc is not None and _CRC32C is not None:
                self._crc = _CRC32C(self._crc, view[:k])
            got += k
        return got

    def _body_md5(self) -> tuple[int, str]:
        h = self.headers
        want_crc = h.get("x-amz-checksum-crc32c")
        self._crc: int | None = 0 if want_crc else None
        self._flip = False
        if want_crc or h.get("content-md5"):
            _b, key, q = self._parse()
            spec = f"{key}#{q['partNumber'][0]}" if "partNumber" in q else key
            with self.state.mu:
                self.state.bodies += 1
                if self.state.corrupt.get(spec, 0) > 0:
                    self.state.corrupt[spec] -= 1
                    self._flip = True
                    self.state.corrupted += 1
        total, etag = self._body_md5_inner()
        bad = ""
        if want_crc and self._crc is not None and base64.b64encode(self._crc.to_bytes(4, "big")).decode() != want_crc:
            bad = "The CRC32C you specified did not match the calculated checksum."
        cmd5 = h.get("content-md5")
        if cmd5 and base64.b64encode(bytes.fromhex(etag)).decode() != cmd5:
            bad = "The Content-MD5 you specified did not match what we received."
        if bad:
            with self.state.mu:
                self.state.refused += 1
            raise _BadDigest(bad)
        return total, etag

    def _body_md5_inner(self) -> tuple[int, str]:
        md5 = hashlib.md5()
        buf = bytearray(CHUNK)
        h = self.headers
        te = (h.get("transfer-encoding") or "").lower()
        aws_chunked = "aws-chunked" in (h.get("content-encoding") or "").lower() or (
            h.get("x-amz-content-sha256") or "").startswith("STREAMING-")
        total = 0
        if aws_chunked or te == "chunked":
            # both encodings: "<hex>[;ext]\r\n<data>\r\n" ... "0[;ext]\r\n[trailers]\r\n"
            while True:
                line = self.rfile.readline(4096)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(4096) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += self._read_exact_md5(size, md5, buf)
                self.rfile.readline(16)
            # aws-chunked inside a Content-Length body and no TE: we consumed exactly the encoded length
        else:
            n = int(h.get("content-length") or 0)
            total = self._read_exact_md5(n, md5, buf)
        with self.state.mu:
            self.state.bytes_in += total
        return total, md5.hexdigest()

    def _send(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        if body:
            self.send_header("Content-Type", "application/xml")
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _parse(self) -> tuple[str, str, dict[str, list[str]]]:
        u = urlsplit(self.path)
        parts = u.path.lstrip("/").split("/", 1)
        bucket = unquote(parts[0])
        key = unquote(parts[1]) if len(parts) > 1 else ""
        return bucket, key, parse_qs(u.query, keep_blank_values=True)

    # --------------------------------------------------------------------------------------- verbs
    def do_PUT(self) -> None:
        bucket, key, q = self._parse()
        st = self.state
        if not key:
            self._body_md5()
            st.buckets.add(bucket)
            return self._send(200)
        try:
            size, etag = self._body_md5()
        except _BadDigest as e:
            return self._send(400, f"<Error><Code>BadDigest</Code><Message>{e}</Message></Error>".encode())
        crc = self.headers.get("x-amz-checksum-crc32c")
        echo = {"ETag": f'"{etag}"', **({"x-amz-checksum-crc32c": crc} if crc else {})}
        if "uploadId" in q:
            uid = q["uploadId"][0]
            with st.mu:
                up = st.uploads.get(uid)
                if up is None:
                    return self._send(404, b"<Error><Code>NoSuchUpload</Code></Error>")
                up["parts"][int(q["partNumber"][0])] = (size, etag, crc)
            return self._send(200, headers=echo)
        with st.mu:
            st.objects[(bucket, key)] = (size, etag)
        return self._send(200, headers=echo)

    def do_POST(self) -> None:
        bucket, key, q = self._parse()
        st = self.state
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n) if n else b""
        if "uploads" in q:
            uid = uuid.uuid4().hex
            with st.mu:
                st.uploads[uid] = {"bucket": bucket, "key": key, "parts": {}}
            xml = (f"<InitiateMultipartUploadResult><Bucket>{escape(bucket)}</Bucket><Key>{escape(key)}</Key>"
                   f"<UploadId>{uid}</UploadId></InitiateMultipartUploadResult>")
            return self._send(200, xml.encode())
        if "uploadId" in q:
            uid = q["uploadId"][0]
            with st.mu:
                up = st.uploads.pop(uid, None)
            if up is None:
                return self._send(404, b"<Error><Code>NoSuchUpload</Code></Error>")
            import re

            nums = [int(x) for x in re.findall(rb"<PartNumber>(\d+)</PartNumber>", body)]
            parts = [up["parts"][i] for i in sorted(nums)]
            etag = hashlib.md5(b"".join(bytes.fromhex(p[1]) for p in parts)).hexdigest() + f"-{len(parts)}"
            with st.mu:
                st.objects[(bucket, key)] = (sum(p[0] for p in parts), etag)
            xml = (f"<CompleteMultipartUploadResult><Bucket>{escape(bucket)}</Bucket><Key>{escape(key)}</Key>"
                   f"<ETag>\"{etag}\"</ETag></CompleteMultipartUploadResult>")
            return self._send(200, xml.encode())
        return self._send(400)

    def do_DELETE(self) -> None:
        bucket, key, q = self._parse()
        with self.state.mu:
            if "uploadId" in q:
                self.state.uploads.pop(q["uploadId"][0], None)
            else:
                self.state.objects.pop((bucket, key), None)
        self._send(204)

    def do_HEAD(self) -> None:
        bucket, key, _ = self._parse()
        if not key:
            return self._send(200)
        obj = self.state.objects.get((bucket, key))
        if obj is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        self.send_response(200)
        self.send_header("Content-Length", str(obj[0]))
        self.send_header("ETag", f'"{obj[1]}"')
        self.send_header("Last-Modified", "Sun, 22 Nov 2026 00:00:00 GMT")
        self.end_headers()
        return None

    def do_GET(self) -> None:
        if self.path == "/__stats":
            import json

            with self.state.mu:
                body = json.dumps({"bytes_in": self.state.bytes_in, "objects": len(self.state.objects)}).encode()
            return self._send(200, body)
        bucket, key, q = self._parse()
        st = self.state
        if key and "uploadId" in q:
            up = st.uploads.get(q["uploadId"][0])
            if up is None:
                return self._send(404, b"<Error><Code>NoSuchUpload</Code></Error>")
            items = "".join(f"<Part><PartNumber>{n}</PartNumber><ETag>\"{p[1]}\"</ETag><Size>{p[0]}</Size>"
                            + (f"<ChecksumCRC32C>{p[2]}</ChecksumCRC32C>" if p[2] else "") + "</Part>"
                            for n, p in sorted(up["parts"].items()))
            return self._send(200, f"<ListPartsResult><IsTruncated>false</IsTruncated>{items}</ListPartsResult>".encode())
        if key:
            return self._send(404, b"<Error><Code>NoSuchKey</Code></Error>")
        if "uploads" in q:
            pfx = q.get("prefix", [""])[0]
            items = "".join(f"<Upload><Key>{escape(u['key'])}</Key><UploadId>{uid}</UploadId></Upload>"
                            for uid, u in list(st.uploads.items()) if u["bucket"] == bucket and u["key"].startswith(pfx))
            return self._send(200, f"<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>{items}"
                                   "</ListMultipartUploadsResult>".encode())
        if "location" in q:
            return self._send(200, b"<LocationConstraint></LocationConstraint>")
        pfx = q.get("prefix", [""])[0]
        with st.mu:
            objs = sorted((k, v) for (b, k), v in st.objects.items() if b == bucket and k.startswith(pfx))
        items = "".join(f"<Contents><Key>{escape(k)}</Key><Size>{s}</Size><ETag>\"{e}\"</ETag>"
                        "<LastModified>2026-11-22T00:00:00.000Z</LastModified><StorageClass>STANDARD</StorageClass>"
                        "</Contents>" for k, (s, e) in objs)
        tag = "ListBucketResult"
        xml = (f'<{tag} xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>{escape(bucket)}</Name>'
               f"<Prefix>{escape(pfx)}</Prefix><KeyCount>{len(objs)}</KeyCount><MaxKeys>1000</MaxKeys>"
               f"<IsTruncated>false</IsTruncated>{items}</{tag}>")
        return self._send(200, xml.encode())


def serve(port: int = 0) -> tuple[ThreadingHTTPServer, State]:
    state = State()
    handler = type("H", (Handler,), {"state": state})
    srv = ThreadingHTTPServer(("127.0.0.1", port), handler)
    srv.daemon_threads = True
    return srv, state


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    srv, state = serve(port)
    print(f"http://127.0.0.1:{srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
