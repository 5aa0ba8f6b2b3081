"""Loaded by the client process the harness runs (PYTHONPATH): sends every non-loopback HTTP(S) request to the
harness's platform front on 127.0.0.1 instead, carrying the original host in ``X-Harness-Host`` and the scheme
in ``X-Harness-Scheme``. Method, path, query, headers and body are the client's own, unchanged.
Patches ``urllib.request`` and, when installed, ``requests`` (the two HTTP stacks the fixture clients use).
"""

import os
import urllib.parse
import urllib.request

_FRONT = os.environ.get("HARNESS_FRONT", "")


def _reroute(url: str) -> tuple[str, dict[str, str]]:
    p = urllib.parse.urlsplit(url)
    if not _FRONT or p.hostname in ("127.0.0.1", "localhost", "::1"):
        return url, {}
    host = p.netloc
    new = urllib.parse.urlunsplit(("http", _FRONT, p.path or "/", p.query, ""))
    return new, {"X-Harness-Host": host, "X-Harness-Scheme": p.scheme}


_orig_urlopen = urllib.request.urlopen


def _urlopen(url, *a, **kw):  # type: ignore[no-untyped-def]
    if isinstance(url, urllib.request.Request):
        new, extra = _reroute(url.full_url)
        if extra:
            url.full_url = new
            for k, v in extra.items():
                url.add_header(k, v)
    else:
        new, extra = _reroute(url)
        if extra:
            url = urllib.request.Request(new, headers=extra)
    return _orig_urlopen(url, *a, **kw)


urllib.request.urlopen = _urlopen

try:
    import requests.sessions as _rs

    _orig_request = _rs.Session.request

    def _request(self, method, url, *a, **kw):  # type: ignore[no-untyped-def]
        new, extra = _reroute(url)
        if extra:
            kw["headers"] = {**(kw.get("headers") or {}), **extra}
        return _orig_request(self, method, new, *a, **kw)

    _rs.Session.request = _request
except ImportError:
    pass
