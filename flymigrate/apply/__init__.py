"""``flymigrate apply``: carry the plan out, one resumable step at a time.

The API the CLI and the TUI call (no UI in here; events go to a reporter callback):

- :func:`preview` -> ``list[StepPreview]``: per step, the unified diffs, generated files, secret names and
  commands, without changing anything (``StepPreview.render()`` gives a text form).
- :func:`run_apply` -> :class:`ApplyResult`: runs the selected steps in order (weights first), calling
  ``reporter(ApplyEvent)`` with kind ``started`` / ``progress`` / ``finished`` / ``skipped`` / ``blocked`` /
  ``failed``, and ``confirm(StepPreview) -> bool`` before each step that changes something (None = yes to all).
  Set ``stop`` (a ``threading.Event``) to stop; state is saved and a re-run continues.
  ``run_apply`` blocks (run it in a worker thread from a UI); ``reporter`` is called from that thread and, for the
  weights step's progress, from the transfer engine's threads (one at a time), so a UI should hand events over
  (Textual: ``app.call_from_thread`` / ``post_message``). ``confirm`` is called from the ``run_apply`` thread.

``flymigrate.api.apply`` / ``flymigrate.api.preview`` wrap these with the loading and planning.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from ..model import Plan
from ..planner import PlanInputs
from .engine import (
    STEP_ORDER,
    ApplyEvent,
    ApplyResult,
    Context,
    FileChange,
    Reporter,
    StepOutcome,
    StepPreview,
    previews,
    pristine_inputs,
    run,
)
from ..deployment import Deployment, ServiceSpec
from .options import ApplyOptions
from .state import ApplyState, read_state

__all__ = ["STEP_ORDER", "ApplyEvent", "ApplyOptions", "Deployment", "ApplyResult", "ApplyState", "FileChange", "Reporter",
           "ServiceSpec", "StepOutcome", "StepPreview", "make_context", "preview", "pristine_inputs", "read_state",
           "run_apply"]


def make_context(app_dir: str | Path, plan: Plan, inputs: PlanInputs, options: ApplyOptions, *,
                 reporter: Reporter | None = None, stop: threading.Event | None = None,
                 code_dirs: list[str] | None = None) -> Context:
    return Context(Path(app_dir), plan, inputs, options, code_dirs=code_dirs, reporter=reporter, stop=stop)


def preview(app_dir: str | Path, plan: Plan, inputs: PlanInputs, options: ApplyOptions, *,
            code_dirs: list[str] | None = None) -> list[StepPreview]:
    """What each selected step would change (diffs, files, secret names, commands). Writes nothing."""
    return previews(make_context(app_dir, plan, inputs, options, code_dirs=code_dirs))


def run_apply(app_dir: str | Path, plan: Plan, inputs: PlanInputs, options: ApplyOptions,
              reporter: Reporter | None = None, *, confirm: Callable[[StepPreview], bool] | None = None,
              stop: threading.Event | None = None, code_dirs: list[str] | None = None) -> ApplyResult:
    """Run the selected steps (see module docs). Raises FlymigrateError subclasses (exit codes in errors.py)."""
    ctx = make_context(app_dir, plan, inputs, options, reporter=reporter, stop=stop, code_dirs=code_dirs)
    return run(ctx, confirm)
