"""How S3/RunPod failures become user-facing errors (no servers: botocore's own exception types)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from flymigrate.errors import RemoteError, ResumableError, UserError
from flymigrate.transfer.base import TransientError, UploadGone
from flymigrate.transfer.s3 import _Ctx, _translate

RUNPOD = _Ctx("runpod-volume", "vol123", "https://s3api-eu-ro-1.runpod.io", "Set RUNPOD_S3_ACCESS_KEY_ID ...")


def _ce(code: str, status: int, op: str = "UploadPart", headers: dict[str, str] | None = None) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"},
                        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers or {}}}, op)


@pytest.mark.parametrize("exc,kind,needle", [
    (_ce("InvalidAccessKeyId", 403), UserError, "RUNPOD_S3_ACCESS_KEY_ID"),
    (_ce("SignatureDoesNotMatch", 403), UserError, "refused the credentials"),
    (_ce("NoSuchBucket", 404, "HeadBucket"), UserError, "--datacenter"),
    (_ce("404", 404, "HeadBucket"), UserError, "was not found"),
    (_ce("QuotaExceeded", 400), ResumableError, "full"),
    (_ce("InsufficientStorage", 507), ResumableError, "Grow the volume"),
    (_ce("NoSuchUpload", 404), UploadGone, "no longer exists"),
    (_ce("SlowDown", 503, headers={"retry-after": "7"}), TransientError, "SlowDown"),
    (_ce("InternalError", 500), TransientError, "500"),
    (_ce("TooManyRequests", 429), TransientError, "429"),
    (_ce("InvalidPart", 400), RemoteError, "InvalidPart"),
    (EndpointConnectionError(endpoint_url="https://x"), TransientError, "EndpointConnectionError"),
    (NoCredentialsError(), UserError, "no credentials"),
])
def test_translate(exc: BaseException, kind: type, needle: str) -> None:
    out = _translate(RUNPOD, exc.operation_name if isinstance(exc, ClientError) else "UploadPart", "k", exc)
    assert isinstance(out, kind), out
    text = str(out)
    assert needle in text, text
    if isinstance(out, TransientError):
        assert out.network == isinstance(exc, EndpointConnectionError)
        if "7" in str((exc.response if isinstance(exc, ClientError) else {}).get("ResponseMetadata", {})):
            assert out.retry_after == 7.0


def test_runpod_datacenter_lookup() -> None:
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from flymigrate.transfer.s3 import runpod_datacenter

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.headers.get("authorization") != "Bearer rpa_good":
                self.send_response(401)
                self.end_headers()
                return
            if self.path != "/v1/networkvolumes/vol123":
                self.send_response(404)
                self.end_headers()
                return
            body = json.dumps({"id": "vol123", "dataCenterId": "EU-RO-1", "size": 100}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_address[1]}/v1"
    try:
        assert runpod_datacenter("vol123", {"RUNPOD_DATACENTER": "US-KS-2"}) == "US-KS-2"
        assert runpod_datacenter("vol123", {}) is None
        assert runpod_datacenter("vol123", {"RUNPOD_API_KEY": "rpa_good", "RUNPOD_REST_URL": base}) == "EU-RO-1"
        with pytest.raises(UserError, match="no network volume"):
            runpod_datacenter("nope", {"RUNPOD_API_KEY": "rpa_good", "RUNPOD_REST_URL": base})
        with pytest.raises(UserError, match="rejected RUNPOD_API_KEY") as ei:
            runpod_datacenter("vol123", {"RUNPOD_API_KEY": "rpa_bad", "RUNPOD_REST_URL": base})
        assert "rpa_bad" not in str(ei.value)
    finally:
        srv.shutdown()
