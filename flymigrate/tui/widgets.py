"""The pages of the walkthrough. They render what :mod:`.core` computed; the app owns all state."""

from __future__ import annotations

from typing import ClassVar

from rich import box
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Input, Label, ProgressBar, RadioButton, RadioSet, Static

from ..model import STEP_IDS
from ..targets import TARGETS
from . import core
from .state import StepProgress

STYLE_BY_MARK = {"+": "diff-add", "-": "diff-del", "?": "needs", "!": "lost", "x": "lost", "@": "heading"}
# settings a step takes from the user (Enter applies them): the same as `flymigrate apply --secrets/--base-url`
STEP_SETTINGS = {"secrets": ("export", "your `fly secrets` export file(s), comma-separated; Enter to read"),
                 "base_urls": ("new URL", "https://... the new endpoint, once deployed; Enter to preview")}
STATUS_LABEL = {"ready": "ready", "manual": "needs you", "blocked": "blocked", "nothing_to_do": "nothing to do",
                "done": "done", "running": "running", "paused": "paused", "failed": "failed"}


def marked_lines(lines: list[str], styles: dict[str, str]) -> Text:
    """Colour preview lines by their leading mark (see :func:`core.step_preview`)."""
    text = Text()
    for i, line in enumerate(lines):
        mark = line[:1]
        style = styles.get(STYLE_BY_MARK.get(mark, ""), "")
        if mark == "@":
            line = line[2:]
        elif mark == "?":
            line = "needs: " + line[2:]
        elif mark == "!":
            line = "lost:  " + line[2:]
        elif mark == "x":
            line = "blocked: " + line[2:]
        text.append(line, style=style)
        if i < len(lines) - 1:
            text.append("\n")
    return text


class CheckItem(Horizontal):
    """One manual check: space, Enter or a click ticks it. Long text wraps under itself."""

    can_focus = True
    BINDINGS: ClassVar[list[BindingType]] = [Binding("space,enter", "toggle", "Tick"), Binding("down", "app.focus_next", show=False),
                Binding("up", "app.focus_previous", show=False)]

    class Toggled(Message):
        def __init__(self, item: CheckItem) -> None:
            super().__init__()
            self.item = item

    def __init__(self, text: str, index: int, checked: bool) -> None:
        super().__init__(classes="check-item")
        self.text = text
        self.index = index
        self.checked = checked

    def compose(self) -> ComposeResult:
        yield Static(self._mark(), classes="check-mark")
        yield Static(self.text, classes="check-text", markup=False)

    def _mark(self) -> str:
        return "[x]" if self.checked else "[ ]"

    def set_checked(self, checked: bool) -> None:
        self.checked = checked
        self.set_class(checked, "-checked")
        if self.is_mounted:
            self.query_one(".check-mark", Static).update(self._mark())

    def on_mount(self) -> None:
        self.set_class(self.checked, "-checked")

    def action_toggle(self) -> None:
        self.set_checked(not self.checked)
        self.post_message(self.Toggled(self))

    def on_click(self) -> None:
        self.focus()
        self.action_toggle()


class Page(VerticalScroll):
    """A scrollable page in the content switcher."""

    can_focus = True


class OverviewPage(Page):
    def compose(self) -> ComposeResult:
        yield Static("Reading the app...", id="overview-body")

    def show(self, session: core.Session, target: str | None, styles: dict[str, str]) -> None:
        app = session.app
        plan = session.plans[target or TARGETS[0]]
        t = Text()

        def head(s: str) -> None:
            t.append(f"\n{s}\n", style=styles["heading"])

        codes = {f.code for f in plan.findings}
        t.append(f"{session.name}", style="bold")
        source = "no fly.toml: read from the Dockerfile" if "no-fly-toml" in codes else "fly.toml"
        t.append(f"  ({source}{', ' + app.primary_region if getattr(app, 'primary_region', None) else ''})\n")
        gpu = app.gpu
        t.append("GPU       ")
        if gpu is None and "cpu-only" in codes:
            t.append("none: the app runs on CPU", style="bold")
        else:
            t.append(f"{gpu.kind} x{gpu.count}" if gpu else "none found", style="bold" if gpu else styles["needs"])
        if gpu and gpu.where:
            t.append(f"  ({gpu.where})")
        t.append("\nVolume    ")
        t.append(", ".join(f"{m.source} at {m.destination}" + (f" ({m.initial_size_gb:g} GB: the volume's size, an "
                                                                 "upper bound for the weights)" if m.initial_size_gb else "")
                           for m in app.mounts) or "none")
        t.append("\nServices  ")
        svcs = []
        for s in app.services:
            ports = "/".join(str(p.port) for p in s.ports if p.port)
            svcs.append(f"{s.origin} port {s.internal_port}" + (f" (public {ports})" if ports else "")
                        + f", auto_stop {s.auto_stop}, min {s.min_machines_running}")
        t.append("; ".join(svcs) or "none")
        head(f"Secrets ({len(plan.secrets)})")
        if not plan.secrets:
            t.append("none found (pass --secrets FILE with your `fly secrets` export)\n")
        for s in plan.secrets:
            t.append(f"  {s.name:<24}")
            if s.has_value:
                t.append("value known", style=styles["diff-add"])
            else:
                t.append("no value: add it by hand", style=styles["needs"])
            t.append("\n")
        head(f"Base URLs found ({len(plan.base_urls)})")
        for h in plan.base_urls:
            t.append(f"  {h.path}:{h.line}  {h.old}\n")
        if not plan.base_urls:
            t.append("  none\n")
        fs = core.findings_sorted(plan)
        head(f"Findings ({len(fs)}, blocking first)")
        for f in fs:
            style = {"error": styles["lost"], "warning": styles["needs"]}.get(f.severity, "")
            t.append(f"  {f.severity.upper():<8}", style=style)
            t.append(f"{f.where + ': ' if f.where else ''}{core.server_neutral(session, f.message)}\n")
        self.query_one("#overview-body", Static).update(t)


class TargetPage(Page):
    can_focus = False  # tab goes straight to the choice
    def compose(self) -> ComposeResult:
        yield Static("Where should the app go? Pick one (left/right + enter, or click); you can change it "
                     "later, progress for each target is kept.", classes="intro")
        with RadioSet(id="target-choice"):
            for name in TARGETS:
                yield RadioButton(core.TARGET_SHORT[name], id=f"target-{name}")
        yield Static("", id="target-facts")

    def show(self, session: core.Session, target: str | None, styles: dict[str, str]) -> None:
        if target is not None:  # the set's own handler un-presses the others and moves its highlight here
            self.query_one(f"#target-{target}", RadioButton).value = True
        rec_key = getattr(getattr(session.comparison, "recommendation", None), "key", None) or ""
        rec_target = core.COMPARE_TARGET.get(rec_key)
        for name in TARGETS:  # told apart by words too, not only by colour
            self.query_one(f"#target-{name}", RadioButton).label = (
                core.TARGET_SHORT[name] + (" ✓ chosen" if name == target else ""))
        table = Table(expand=True, box=box.SIMPLE_HEAD, show_lines=True, pad_edge=False, padding=(0, 1, 0, 0),
                      header_style=styles["heading"])
        table.add_column("", ratio=2, style="bold")
        for name in TARGETS:
            marks = [m for m, on in (("chosen", name == target), ("cheapest", name == rec_target)) if on]
            table.add_column(core.TARGET_SHORT[name] + (f" ({', '.join(marks)})" if marks else ""), ratio=3,
                             overflow="fold")
        for label, cells in core.target_facts(session):
            table.add_row(label, *(cells[n] for n in TARGETS))
        rec = getattr(getattr(session.comparison, "recommendation", None), "text", "")
        if rec:
            from rich.console import Group

            note = Text(rec + "\n(`flymigrate compare` shows the traffic assumed and how to change it.)",
                        style="italic")
            self.query_one("#target-facts", Static).update(Group(table, note))
        else:
            self.query_one("#target-facts", Static).update(table)


class TransferPanel(Static):
    """The weights transfer: where from / to (apply's settings), total and per-file progress, speed, ETA, retries."""

    def compose(self) -> ComposeResult:
        for key, (label, placeholder, _flag) in core.WEIGHTS_FIELDS.items():
            with Horizontal(classes="field-row", id=f"row-{key}"):
                yield Label(label, classes="field-label")
                yield Input(id=f"weights-{key}", placeholder=placeholder, compact=True)
        yield Static("", id="weights-dest")
        yield ProgressBar(id="transfer-total", total=None, show_eta=False)
        yield Static("Not started. Press r to start the transfer.", id="transfer-stats")
        yield Static("", id="transfer-cli")
        table: DataTable[str] = DataTable(id="transfer-files", cursor_type="row")
        yield table

    def on_mount(self) -> None:
        self.query_one("#transfer-files", DataTable).add_columns("file", "size", "progress", "state")

    def set_fields(self, target: str, fields: dict[str, str], editable: bool) -> None:
        shown = core.FIELDS_BY_TARGET[target]
        for key in core.WEIGHTS_FIELDS:
            self.query_one(f"#row-{key}").display = key in shown
            box = self.query_one(f"#weights-{key}", Input)
            value = fields.get(key, "")
            if box.value != value:
                with box.prevent(Input.Changed):
                    box.value = value
            box.disabled = not editable

    def fields(self) -> dict[str, str]:
        return {key: self.query_one(f"#weights-{key}", Input).value.strip() for key in core.WEIGHTS_FIELDS}

    def show_destination(self, preview: object | None, cli: str, styles: dict[str, str]) -> None:
        t = Text()
        if preview is not None:
            t.append("to  ", style="bold")
            t.append(str(getattr(preview, "summary", "")))
            for b in getattr(preview, "blocking", []):
                t.append("\nblocked: " + b, style=styles["lost"])
        self.query_one("#weights-dest", Static).update(t)
        self.query_one("#transfer-cli", Static).update(Text("From a shell: " + cli, style="dim"))

    def show_snapshot(self, snap: core.TransferSnapshot | None, status: str) -> None:
        bar = self.query_one("#transfer-total", ProgressBar)
        stats = self.query_one("#transfer-stats", Static)
        table = self.query_one("#transfer-files", DataTable)
        bar.display = table.display = snap is not None and snap.started  # nothing to show before a run
        if snap is None or not snap.started:
            stats.update("Running: listing the files..." if status == "running"
                         else "Done." if status == "done" else "Not started. Press r to start the transfer.")
            table.clear()
            return
        bar.update(total=max(snap.bytes_total, 1), progress=snap.bytes_done)
        pct = 100.0 * snap.bytes_done / snap.bytes_total if snap.bytes_total else 0.0
        head = f"{core.fmt_bytes(snap.bytes_done)} of {core.fmt_bytes(snap.bytes_total)} ({pct:.0f}%)"
        if status == "running":
            lines = [f"{head}  {core.fmt_bytes(snap.rate)}/s  ETA {core.fmt_duration(snap.eta_s)}"]
        elif status == "done":
            lines = [f"Done: {head}, verified."]
        else:
            lines = [f"Paused at {head}. Press r to resume where it stopped."]
        lines.append(f"files {snap.files_done}/{snap.files_total} done  retries {snap.retries}"
                     + (f"  last: {snap.last_retry[:50]}" if snap.last_retry else ""))
        stats.update("\n".join(lines))
        table.clear()
        for f in snap.files:
            frac = f.done / f.total if f.total else (1.0 if f.status in ("done", "skipped") else 0.0)
            filled = int(frac * 10)
            table.add_row(f.path[-28:], core.fmt_bytes(f.total), "█" * filled + "░" * (10 - filled) + f" {frac:4.0%}",
                          f.status, key=f.path)


class StepPage(Page):
    """One of the five steps: preview, run, result, manual checks."""

    def __init__(self, step_id: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.step_id = step_id
        self.check_texts: list[str] = []  # the manual checks shown (or being mounted)

    def compose(self) -> ComposeResult:
        yield Static("", classes="step-head")
        yield Static("", classes="step-result")
        yield Static("", classes="step-why")
        if self.step_id in STEP_SETTINGS:
            label, placeholder = STEP_SETTINGS[self.step_id]
            with Horizontal(classes="field-row setting-row"):
                yield Label(label, classes="field-label")
                yield Input(id=f"setting-{self.step_id}", placeholder=placeholder, compact=True)
        yield Static("Preview: what will change", classes="section")
        yield Static("", classes="step-preview")
        if self.step_id == "weights":
            yield TransferPanel(id="transfer")
        yield Static("Check by hand (tab to a check, space to tick)", classes="section")
        yield Vertical(classes="step-checks")

    def show(self, session: core.Session, target: str | None, progress: StepProgress | None,
             styles: dict[str, str]) -> None:
        n = STEP_IDS.index(self.step_id) + 1  # type: ignore[arg-type]
        head = self.query_one(".step-head", Static)
        if target is None or progress is None:
            head.update(Text(f"Step {n} of 5: {core.STEP_SHORT[self.step_id]}", style="bold"))
            self.query_one(".step-preview", Static).update("Choose where to move the app first: press t.")
            self.query_one(".step-result", Static).update("")
            self.query_one(".step-checks", Vertical).remove_children()
            self.check_texts = []
            return
        title, planned, summary = core.step_heading(session, target, self.step_id)
        t = Text(f"Step {n} of 5: {title}  ", style="bold")
        # once the step ran, its header says so (the plan's status described it before it ran)
        status = progress.status if progress.status in ("done", "running", "paused", "failed") else planned
        t.append(f"[{STATUS_LABEL.get(status, status)}]",
                 style=styles["lost"] if status in ("blocked", "failed") else styles["needs"]
                 if status in ("manual", "paused", "running") else styles["diff-add"])
        if status == "done":  # the plan's counts describe the app before the step ran
            summary = f"Before this step ran: {summary}"
        t.append(f"\n{summary}")
        head.update(t)
        self.query_one(".step-why", Static).update(Text(core.step_why(self.step_id), style="italic"))
        self.query_one(".step-preview", Static).update(
            marked_lines([core.server_neutral(session, x) for x in core.step_preview(session, target, self.step_id)],
                         styles))
        self.show_progress(progress)
        checks = core.step_checks(session, target, self.step_id)
        box = self.query_one(".step-checks", Vertical)
        if self.check_texts == list(checks):  # same checks (maybe still being mounted): update the ticks only
            for item in box.query(CheckItem):
                item.set_checked(item.index in progress.checks)
        else:
            self.check_texts = list(checks)
            box.remove_children()
            box.mount(*[CheckItem(c, i, i in progress.checks) for i, c in enumerate(checks)])

    def checked(self) -> list[int]:
        return sorted(i.index for i in self.query(CheckItem) if i.checked)

    def show_progress(self, progress: StepProgress) -> None:
        verb = "start the transfer (or resume it)" if self.step_id == "weights" else "run this step"
        text = {
            "todo": f"Not run yet. Press r to {verb} (it asks first), or m to mark it done by hand.",
            "running": "Running...",
            "paused": "Paused; state is saved. Press r to resume.",
            "done": "Done" + (f": {progress.result}" if progress.result else "."),
            "failed": "Failed" + (f": {progress.result}" if progress.result else ".") + " Press r to try again.",
        }.get(progress.status, progress.status)
        self.query_one(".step-result", Static).update(Text("Result: " + text, style="bold"))
