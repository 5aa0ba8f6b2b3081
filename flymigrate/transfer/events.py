"""The progress events the engine emits (see engine's docstring for the kinds)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    kind: str
    path: str | None = None
    bytes: int = 0
    total: int = 0
    message: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
