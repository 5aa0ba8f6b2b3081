"""Messages the walkthrough's workers post; handlers on the app own every state change."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # type checkers see the standard decorator
    from dataclasses import dataclass
else:  # start-up time: no exec per generated method (flymigrate/_dataclass.py)
    from .._dataclass import dataclass
from typing import Any

from textual.message import Message

from .core import Session, TransferSnapshot


@dataclass
class SessionLoaded(Message):
    session: Session


@dataclass
class SessionFailed(Message):
    title: str
    message: str
    hint: str


@dataclass
class TransferProgress(Message):
    snapshot: TransferSnapshot


@dataclass
class TransferEnded(Message):
    """The transfer stopped: ``outcome`` is done | stopped | failed."""

    snapshot: TransferSnapshot | None
    outcome: str
    message: str
    hint: str = ""
    target: str = ""
    preview: Any = None  # apply's weights preview the run used


@dataclass
class WeightsPreviewReady(Message):
    target: str
    preview: Any  # flymigrate.apply.StepPreview, or None when it could not be computed
    error: str = ""


@dataclass
class StepEnded(Message):
    step_id: str
    ok: bool
    message: str
    hint: str = ""
    target: str = ""
    previews: dict[str, Any] | None = None  # apply's previews for the target, recomputed after the step ran


@dataclass
class PreviewsLoaded(Message):
    target: str
    previews: dict[str, Any]
    error: str = ""  # why apply could not preview (the plan's own preview is shown instead)
