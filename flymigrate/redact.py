"""Last line of defence against printing a secret: scrub known secret values out of any text.

Values are learnt two ways: every :class:`~flymigrate.model.SecretValue` registers its value when it is made,
and credential variables of the environment (``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``, ``*_KEY`` ...) are read
when :func:`redact` runs. The CLI's error boundary passes every message, crash log and ``--debug`` traceback
through :func:`redact`, so a vendor SDK's exception that echoes a header or a value cannot reach the screen or a
log file. Imports nothing from flymigrate (it sits beside ``errors`` at the bottom of the layers).
"""

from __future__ import annotations

import base64
import os
import re
import threading
from urllib.parse import quote

MIN_LEN = 6  # shorter values ("1", "true", "prod") would scrub ordinary words; they are not credentials
MARK = "<redacted>"
_CRED_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL|PRIVATE|API_?KEY|AUTH)"
                        r"|(_KEY$)", re.I)
_NOT_CRED = re.compile(r"(_KEY_ID|_ACCESS_KEY_ID|_TOKEN_ID|_FILE|_PATH|_URL|_ENDPOINT)$", re.I)

_known: set[str] = set()
_mu = threading.Lock()


def remember(value: str) -> None:
    if isinstance(value, str) and len(value.strip()) >= MIN_LEN:
        with _mu:
            _known.add(value)
            s = value.strip()
            if s != value:
                _known.add(s)


def _env_values() -> set[str]:
    out = set()
    for k, v in os.environ.items():
        if v and len(v) >= MIN_LEN and _CRED_NAME.search(k) and not _NOT_CRED.search(k):
            out.add(v)
    return out


_cache: tuple[object, list[str]] | None = None


def secret_values() -> list[str]:
    global _cache
    with _mu:
        vals = set(_known)
    vals |= _env_values()
    key = frozenset(vals)
    if _cache is not None and _cache[0] == key:
        return _cache[1]
    forms = set()
    for v in vals:
        forms.add(v)
        forms.add(quote(v, safe=""))
        forms.add(base64.b64encode(v.encode()).decode())
        forms.add(repr(v)[1:-1])  # how it looks inside a repr()'d list or dict
        for line in v.splitlines():  # a multi-line value (a PEM key) may be cut into lines
            if len(line.strip()) >= MIN_LEN * 2:
                forms.add(line.strip())
    out = sorted((f for f in forms if len(f) >= MIN_LEN), key=len, reverse=True)
    _cache = (key, out)
    return out


def redact(text: str) -> str:
    """``text`` with every known secret value (and its url-quoted / base64 / repr forms) replaced by a marker."""
    if not text:
        return text
    for v in secret_values():
        if v in text:
            text = text.replace(v, MARK)
    return text


def scrub_values(msg: str, values, limit: int = 300) -> str:  # type: ignore[no-untyped-def]
    """``msg`` with each of ``values`` (4+ characters) replaced by the marker, cut to ``limit`` characters."""
    for v in values:
        if v and len(v) >= 4:
            msg = msg.replace(v, MARK)
    return msg[:limit]
