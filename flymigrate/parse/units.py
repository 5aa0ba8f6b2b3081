"""Size and duration parsing the way flyctl does it (docker/go-units, Go time.ParseDuration)."""

from __future__ import annotations

import re

_RAM_RE = re.compile(r"^\s*(\d+(?:\.\d+)*)\s?([kKmMgGtTpP])?[iI]?[bB]?\s*$")
_BIN = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}
_DEC = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4, "p": 1000**5}
_DUR_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DUR_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def ram_mb(value: object) -> int | None:
    """``memory``: a bare number is MB; a string with units is binary (RAMInBytes: "16gb" = 16384 MB).

    Returns None when it cannot be parsed.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, str):
        return None
    s = value.strip()
    if re.fullmatch(r"\d+", s):
        return int(s)
    m = _RAM_RE.match(s)
    if not m:
        return None
    num = float(m.group(1).split(".")[0] + ("." + m.group(1).split(".")[1] if "." in m.group(1) else ""))
    unit = (m.group(2) or "").lower()
    return int(num * _BIN[unit] // (1024 * 1024))


def human_size_gb(value: object) -> float | None:
    """``initial_size``: a bare number is GB; a string uses decimal units ("50G" = 50 GB)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        return None
    s = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return float(s)
    m = _RAM_RE.match(s)
    if not m:
        return None
    unit = (m.group(2) or "").lower()
    return float(m.group(1)) * _DEC[unit] / 1e9


def duration_s(value: object, *, int_unit: float) -> float | None:
    """A Go duration string ("1m30s") or a bare number in ``int_unit`` seconds (ms checks: 0.001)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) * int_unit
    if not isinstance(value, str):
        return None
    s = value.strip()
    if s in ("0", ""):
        return 0.0
    pos = 0
    total = 0.0
    for m in _DUR_RE.finditer(s):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _DUR_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s) or pos == 0:
        return None
    return total


def go_str(value: object) -> str:
    """Go's %v for TOML scalars ([env] values)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        r = repr(value)
        return r[:-2] if r.endswith(".0") else r
    if isinstance(value, list):
        return "[" + " ".join(go_str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_str(v)}" for k, v in sorted(value.items())) + "]"
    return str(value)
