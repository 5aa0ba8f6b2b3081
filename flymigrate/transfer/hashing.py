"""A sha256 whose running state can be saved, so a resumed file continues hashing where the last committed
prefix ended instead of downloading that prefix again.

``hashlib`` cannot export its state (OpenSSL 3's EVP contexts are opaque, and ``rehash`` does not work on
OpenSSL 3). OpenSSL's low-level ``SHA256_CTX`` can: it is a plain struct of eight 32-bit chaining values,
the 64-bit bit count, one 64-byte block buffer and two ints (``include/openssl/sha.h``: ``SHA_LONG h[8];
SHA_LONG Nl, Nh; SHA_LONG data[SHA_LBLOCK]; unsigned int num, md_len;`` = 112 bytes), and
``SHA256_Init`` / ``SHA256_Update`` / ``SHA256_Final`` are still exported by libcrypto 3 (deprecated, not
removed). It is driven here through ``ctypes`` (which releases the GIL during each call, like hashlib for
large buffers), and the struct's bytes are the saved state.

:func:`new` returns that hasher when the library loads and passes a self-test, else a plain ``hashlib``
one whose :meth:`state` is ``None``: the caller then falls back to re-reading the prefix (and says so once;
:data:`FALLBACK_REASON` says why).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
from typing import Any

_PREFIX = "ossl-sha256-v1:"


class _Ctx(ctypes.Structure):
    _fields_ = [("h", ctypes.c_uint32 * 8), ("Nl", ctypes.c_uint32), ("Nh", ctypes.c_uint32),
                ("data", ctypes.c_uint32 * 16), ("num", ctypes.c_uint), ("md_len", ctypes.c_uint)]


_LIB: Any = None
FALLBACK_REASON: str | None = None


def _load() -> Any:
    names = [n for n in (ctypes.util.find_library("crypto"), "libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.so",
                         "libcrypto.dylib") if n]
    last = "libcrypto not found"
    for name in names:
        try:
            lib = ctypes.CDLL(name)
            for fn in ("SHA256_Init", "SHA256_Update", "SHA256_Final"):
                getattr(lib, fn)
        except (OSError, AttributeError) as e:
            last = f"{name}: {e}"
            continue
        lib.SHA256_Init.argtypes = [ctypes.POINTER(_Ctx)]
        lib.SHA256_Update.argtypes = [ctypes.POINTER(_Ctx), ctypes.c_void_p, ctypes.c_size_t]
        lib.SHA256_Final.argtypes = [ctypes.c_char_p, ctypes.POINTER(_Ctx)]
        # self-test, including a state saved mid-block and restored
        probe = bytes(range(256)) * 5
        h = _SavedSha256(lib)
        h.update(probe[:77])
        h2 = _SavedSha256.restore_with(lib, h.state())
        if h2 is None:
            continue
        h2.update(probe[77:])
        if h2.hexdigest() != hashlib.sha256(probe).hexdigest() or ctypes.sizeof(_Ctx) != 112:
            last = f"{name}: self-test failed"
            continue
        return lib
    raise OSError(last)


class _SavedSha256:
    saveable = True

    def __init__(self, lib: Any) -> None:
        self._lib = lib
        self._ctx = _Ctx()
        lib.SHA256_Init(ctypes.byref(self._ctx))

    def update(self, data: Any) -> None:
        mv = memoryview(data).cast("B")
        n = mv.nbytes
        if not n:
            return
        if mv.readonly:
            buf: Any = ctypes.c_char_p(mv.tobytes())
        else:
            buf = (ctypes.c_char * n).from_buffer(mv)
        self._lib.SHA256_Update(ctypes.byref(self._ctx), buf, n)

    def hexdigest(self) -> str:
        tmp = _Ctx()
        ctypes.memmove(ctypes.byref(tmp), ctypes.byref(self._ctx), ctypes.sizeof(_Ctx))
        out = ctypes.create_string_buffer(32)
        self._lib.SHA256_Final(out, ctypes.byref(tmp))
        return out.raw.hex()

    def state(self) -> str | None:
        return _PREFIX + bytes(self._ctx).hex()

    @classmethod
    def restore_with(cls, lib: Any, state: str | None) -> _SavedSha256 | None:
        if not state or not state.startswith(_PREFIX):
            return None
        try:
            raw = bytes.fromhex(state[len(_PREFIX):])
        except ValueError:
            return None
        if len(raw) != ctypes.sizeof(_Ctx):
            return None
        h = cls(lib)
        ctypes.memmove(ctypes.byref(h._ctx), raw, len(raw))
        if h._ctx.num >= 64 or h._ctx.md_len != 32:
            return None
        return h


class _PlainSha256:
    saveable = False

    def __init__(self) -> None:
        self._h = hashlib.sha256()

    def update(self, data: Any) -> None:
        self._h.update(data)

    def hexdigest(self) -> str:
        return self._h.hexdigest()

    def state(self) -> str | None:
        return None


def _init() -> None:
    global _LIB, FALLBACK_REASON
    import os

    if os.environ.get("FLYMIGRATE_SHA256_STATE", "1") == "0":  # tests, or a libcrypto you do not trust
        _LIB, FALLBACK_REASON = None, "saving the sha256 state is off (FLYMIGRATE_SHA256_STATE=0)"
        return
    try:
        _LIB = _load()
    except OSError as e:
        _LIB = None
        FALLBACK_REASON = f"OpenSSL's SHA256_CTX is not usable here ({e})"


_init()


def saveable() -> bool:
    return _LIB is not None


def new() -> Any:
    """A sha256 with ``update``, ``hexdigest`` and ``state()`` (None when the state cannot be saved)."""
    return _SavedSha256(_LIB) if _LIB is not None else _PlainSha256()


def restore(state: str | None) -> Any | None:
    """The hasher saved as ``state``, or None (no state, another format, or no usable libcrypto)."""
    if _LIB is None:
        return None
    return _SavedSha256.restore_with(_LIB, state)


# ---------------------------------------------------------------------------------------------------- CRC32C
# The per-part checksum a server verifies (``x-amz-checksum-crc32c``, base64 of the big-endian value). The
# hardware-accelerated ``crc32c_extend(uint32_t, const uint8_t*, size_t)`` of the libcrc32c that google-crc32c
# bundles (google_crc32c.libs/, what its C extension calls) is driven through ctypes: the extension itself only
# takes ``bytes`` (a copy of every buffer) and holds the GIL. Fallback: the extension on a copy.

_CRC_LIB: Any = None


def _load_crc32c() -> Any:
    import glob
    import os

    try:
        import google_crc32c
    except ImportError:
        return None
    base = os.path.dirname(os.path.dirname(google_crc32c.__file__))
    for name in sorted(glob.glob(os.path.join(base, "google_crc32c.libs", "libcrc32c*.so*"))) + ["libcrc32c.so.1", "libcrc32c.so"]:
        try:
            lib = ctypes.CDLL(name)
            fn = lib.crc32c_extend
        except (OSError, AttributeError):
            continue
        fn.argtypes = [ctypes.c_uint32, ctypes.c_void_p, ctypes.c_size_t]
        fn.restype = ctypes.c_uint32
        if fn(0, b"123456789", 9) == 0xE3069283:  # the CRC-32C check value (RFC 3720 B.4)
            return fn
    return None


def crc32c(data: Any, crc: int = 0) -> int:
    """CRC32C of ``data`` (bytes, bytearray or a memoryview of either), continuing ``crc``."""
    global _CRC_LIB
    if _CRC_LIB is None:
        _CRC_LIB = _load_crc32c() or False
    mv = memoryview(data).cast("B")
    n = mv.nbytes
    if not n:
        return crc
    if _CRC_LIB:
        buf: Any = ctypes.c_char_p(mv.tobytes()) if mv.readonly else (ctypes.c_char * n).from_buffer(mv)
        return int(_CRC_LIB(crc, buf, n))
    import google_crc32c

    return int(google_crc32c.extend(crc, mv.tobytes()))


def crc32c_b64(value: int) -> str:
    """The wire form of a CRC32C (``x-amz-checksum-crc32c``, ``ChecksumCRC32C``)."""
    import base64

    return base64.b64encode(value.to_bytes(4, "big")).decode()
