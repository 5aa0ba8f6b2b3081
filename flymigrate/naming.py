"""Names derived from the Fly app name (shared by every target). Pure."""

from __future__ import annotations

import re


def slug(name: str) -> str:
    """A DNS-label-ish form of an app name: lower case, ``[a-z0-9-]``, never empty."""
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "app"
