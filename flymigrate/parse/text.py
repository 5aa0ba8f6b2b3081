"""Decoding user files: UTF-8 (with or without BOM), UTF-16 with BOM; binary is refused clearly."""

from __future__ import annotations

from ..errors import ConfigError


def decode_text(data: bytes, shown: str) -> str:
    """Decode a config file the way a person expects; never guess silently on binary input."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16").replace("\r\n", "\n")
        except UnicodeDecodeError:
            raise ConfigError(f"{shown} starts with a UTF-16 mark but is not valid UTF-16.",
                              hint="Save it as UTF-8.") from None
    if b"\x00" in data[:8192]:
        raise ConfigError(f"{shown} is a binary file, not text.",
                          hint="Check the path; flymigrate reads plain-text fly.toml and secrets exports.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{shown}:{line}: not valid UTF-8 (byte 0x{data[exc.start]:02x}).",
                          hint="Save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`).") from None
    return text.replace("\r\n", "\n")
