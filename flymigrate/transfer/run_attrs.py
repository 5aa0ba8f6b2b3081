"""The attributes of :class:`flymigrate.transfer.engine._Run` that its write-mode mixins (write_parts.py,
write_chunks.py) use: declared once, for type checkers and readers."""

from __future__ import annotations

from typing import Any


class RunAttrs:
    src: Any
    dst: Any
    j: Any
    opts: Any
    emit: Any
    result: Any
    stop: Any
    pool: Any
    _mu: Any
