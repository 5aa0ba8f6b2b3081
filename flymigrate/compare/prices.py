"""The price, billing and cold-start data (``flymigrate/data/prices.toml``): loading, checking, dating.

The only I/O of the comparison. Each target reads its own section through its ``cost_rows`` hook
(:mod:`flymigrate.targets.base`); this module knows the file's shape, the shared ``[common]`` figures and the
``[fly]`` reference prices, and names no target.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UserError

if TYPE_CHECKING:  # type checkers see the standard decorator
    from dataclasses import dataclass
else:  # start-up time: no exec per generated method (flymigrate/_dataclass.py)
    from .._dataclass import dataclass

SCHEMA = "flymigrate/prices/v1"
REQUIRED_SECTIONS = ("meta", "common", "fly")


@dataclass(frozen=True, eq=False)
class Prices:
    """The parsed data file."""

    data: dict[str, Any]
    path: str

    @property
    def data_date(self) -> date:
        """The oldest ``read_on`` in the file: the date the whole comparison is as good as."""
        dates = list(_walk_dates(self.data))
        if not dates:
            raise UserError(f"{self.path}: no read_on dates in the price data.")
        return min(dates)

    @property
    def stale_after_days(self) -> int:
        return int(self.data["meta"].get("stale_after_days", 90))

    @property
    def hours_per_month(self) -> float:
        return float(self.data["meta"]["hours_per_month"]["value"])

    def platform(self, key: str) -> dict[str, Any]:
        try:
            return self.data[key]
        except KeyError:
            raise UserError(f"{self.path}: the [{key}] section is missing.") from None

    def common(self, name: str) -> float:
        return float(self.data["common"][name]["value"])


def _walk_dates(node: Any):  # type: ignore[no-untyped-def]
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "read_on":
                if not isinstance(v, date):
                    raise UserError(f"price data: read_on must be a date (YYYY-MM-DD), got {v!r}.")
                yield v
            else:
                yield from _walk_dates(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk_dates(v)


def default_prices_path() -> Path:
    return Path(__file__).resolve().parent.parent / "data" / "prices.toml"


def load_prices(path: str | os.PathLike[str] | None = None) -> Prices:
    """Read and check the price data file. A target's own section is checked when that target is priced."""
    import tomllib

    p = Path(path) if path is not None else default_prices_path()
    try:
        with open(p, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as err:
        raise UserError(f"cannot read the price data file {p}: {err.strerror or err}.") from err
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"{p}: not valid TOML: {err}.") from err
    schema = data.get("meta", {}).get("schema")
    if schema != SCHEMA:
        raise UserError(f"{p}: unknown price data schema {schema!r} (expected {SCHEMA}).")
    for t in REQUIRED_SECTIONS:
        if t not in data:
            raise UserError(f"{p}: the [{t}] section is missing.")
    prices = Prices(data, str(p))
    _ = prices.data_date  # validates every read_on
    return prices


def resolve_today(today: date | None = None) -> date:
    """``today`` if given, else ``FLYMIGRATE_TODAY`` (YYYY-MM-DD, for stable golden output), else the clock."""
    if today is not None:
        return today
    env = os.environ.get("FLYMIGRATE_TODAY")
    if env:
        try:
            return date.fromisoformat(env.strip())
        except ValueError as err:
            raise UserError(f"FLYMIGRATE_TODAY={env!r} is not a date (YYYY-MM-DD).") from err
    return date.today()
