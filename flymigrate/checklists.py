"""Load the step checklists (``checklists/steps.toml``): titles, reasons and manual checks per target."""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path

from .errors import ConfigError
from .model import STEP_IDS

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # type checkers see the standard decorator
    from dataclasses import dataclass
else:  # start-up time: no exec per generated method (flymigrate/_dataclass.py)
    from ._dataclass import dataclass

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class StepInfo:
    id: str
    title: str
    why: str
    manual: tuple[str, ...]
    manual_by_target: dict[str, tuple[str, ...]]

    def checks(self, target: str) -> tuple[str, ...]:
        return self.manual + self.manual_by_target.get(target, ())


def checklists_dir() -> Path:
    env = os.environ.get("FLYMIGRATE_CHECKLISTS")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve().parent
    candidates += [here.parent / "checklists", Path(sys.prefix) / "share" / "flymigrate" / "checklists"]
    for c in candidates:
        if (c / "steps.toml").is_file():
            return c
    raise ConfigError("the step checklists (checklists/steps.toml) are missing from this installation.",
                      hint="Reinstall flymigrate, or set FLYMIGRATE_CHECKLISTS to the folder that holds steps.toml.")


@lru_cache(maxsize=1)
def load_steps() -> dict[str, StepInfo]:
    path = checklists_dir() / "steps.toml"
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    out: dict[str, StepInfo] = {}
    for s in data.get("step", []):
        by_target = {t: tuple(v.get("manual", ())) for t, v in (s.get("target") or {}).items()}
        out[s["id"]] = StepInfo(s["id"], s["title"], s.get("why", ""), tuple(s.get("manual", ())), by_target)
    if tuple(out) != STEP_IDS:
        raise ConfigError(f"{path}: the steps must be {', '.join(STEP_IDS)} in this order, found {', '.join(out)}.")
    return out
