"""Rendering a :class:`~flymigrate.compare.rows.Comparison`: plain text, markdown, JSON and rich (ANSI)."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError
from .rows import Comparison, Row, money, share

_money = money
_share = share

_HEADERS = ("Option", "GPU", "Fits", "$/GPU-s", "Scale-to-zero", "Warm", "Break-even (own / vs Fly)",
            "Cold start", "Manual steps")


def _pct(u: float | None, note: str) -> str:
    if u is not None:
        return _share(u)
    if note.startswith("scale-to-zero stays cheaper"):
        return "never"
    if note in ("reference", "n/a (always on)"):
        return "—"
    return "none"


def _cells(r: Row, c: Comparison) -> list[str]:
    gpu = "—"
    if r.gpu_name:
        gpu = r.gpu_name.split(":")[0] + (f" x{r.gpu_count}" if r.gpu_count > 1 else "")
        if r.vram_gb:
            gpu += f" ({r.vram_gb} GB" + (" each)" if r.gpu_count > 1 else ")")
    if not r.offered:
        return [r.label, gpu, "—", "not offered", "—", "—", "—", "—", "—"]
    price = "—" if r.price_per_gpu_s is None else f"{r.price_per_gpu_s:.6f}" + ("≈" if r.price_basis == "proxy" else "")
    warm = _money(r.monthly_warm) + (f" ({r.warm_instances} on)" if r.monthly_warm is not None else "")
    if r.reference:
        be = "—"
    elif not r.scales_to_zero:
        be = f"{_pct(r.break_even_own, r.break_even_own_note)} / —"
    else:
        be = f"{_pct(r.break_even_own, r.break_even_own_note)} / {_pct(r.break_even_ref, r.break_even_ref_note)}"
    cs = "—" if r.reference else ("0 s" if r.cold_start_s == 0 else f"{r.cold_start_s:.0f} s")
    manual = "—" if r.reference else (", ".join(r.manual_steps) or "none")
    return [r.label, gpu, r.fits, price, _money(r.monthly_scale_to_zero) + "/mo" if r.monthly_scale_to_zero is not None
            else "—", warm + "/mo" if r.monthly_warm is not None else "—", be, cs, manual]


def _scaling_line(c: Comparison) -> str:
    """Each option's deployment as the plans decided it: GPU, min-max instances, concurrency, idle timeout."""
    bits = []
    for r in c.rows:
        if r.reference or not r.deployed:
            continue
        if not r.offered:
            bits.append(f"{r.short_label or r.label}: not offered")
            continue
        idle = (f"idle {r.idle_timeout_deployed_s:g} s" if r.idle_timeout_deployed_s is not None
                else "always on" if r.min_instances == r.max_instances else "idle fixed by the platform")
        bits.append(f"{r.short_label or r.label} {r.gpu_name}{f' x{r.gpu_count}' if r.gpu_count > 1 and ':' not in (r.gpu_name or '') else ''}, "
                    f"{r.min_instances}-{r.max_instances} instances, {r.concurrency} at a time, {idle}")
    return "Priced as planned: " + "; ".join(bits) + "."


_BASIS_WORDS = {"recollection": "unverified", "proxy": "estimated from a similar offer", "vendor-docs": "vendor docs",
                "3rd-party": "third-party", "assumption": "assumed", "measured": "measured"}


def _user_source(src: str | None) -> str:
    """A data source as the user reads it: the page or site, without the research notes it was traced through."""
    import re

    s = re.sub(r"\s*[\(\[][^()\[\]]*research/[^()\[\]]*[\)\]]", "", src or "")
    s = re.sub(r"\s*\bvia research/\S+(?: [A-Z0-9.]+\b)?", "", s)
    return s.strip(" ;,") or "the bundled price data"


def _shown_warnings(c: Comparison) -> list[str]:
    """The warnings in user terms: an unverified or estimated price says when and where it was read."""
    out = []
    for w in c.warnings:
        row = next((r for r in c.rows if r.price_basis in ("recollection", "proxy") and w.startswith(f"{r.label}: ")),
                   None)
        if row is None or row.price_per_gpu_s is None:
            out.append(w)
            continue
        what = "unverified price" if row.price_basis == "recollection" else "estimated price (no published one)"
        out.append(f"{row.label}: {what} for the {(row.gpu_name or '').split(':')[0]} "
                   f"(${row.price_per_gpu_s * 3600:.2f}/h), read on {c.data_date.isoformat()} from "
                   f"{_user_source(row.price_source)}; check it before relying on it.")
    return out


def _header_lines(c: Comparison) -> list[str]:
    i = c.inputs
    name = i.app_name or "(unnamed app)"
    w = "unknown" if i.weights_bytes is None else f"{i.weights_bytes / 1e9:.1f} GB"
    lines = [f"Target comparison for {name}: Fly GPU {i.gpu_kind} x{i.gpu_count} ({i.gpu_origin}), weights {w}",
             f"Prices and cold-start data as of {c.data_date.isoformat()} ({c.age_days} days old; "
             f"{Path(c.data_path).name})."]
    return lines


def _traffic_line(c: Comparison) -> str:
    i = c.inputs
    return (f"Traffic: {i.requests_per_day:,.0f} requests/day, {i.seconds_per_request:g} s each, {i.busy_hours:g} busy "
            f"h/day, sized on {i.concurrency} at a time per machine; warm capacity the plans keep: "
            f"{i.warm_instances} instance(s). Given by you: "
            f"{', '.join('--' + g.replace('_', '-') for g in i.given) or 'nothing'}.")


def _details(c: Comparison) -> list[tuple[str, list[str]]]:
    out = []
    for r in c.rows:
        lines = [r.reason] + ([f"BLOCKED (not recommended): {r.blocked}"] if r.blocked else [])
        if r.offered:
            if r.fits_note:
                lines.append(f"fit: {r.fits_note}")
            if r.price_per_gpu_s is not None:
                lines.append(f"price: ${r.price_per_gpu_s:.6f}/GPU-s (${r.price_per_gpu_s * 3600:.2f}/h), "
                             f"{_BASIS_WORDS.get(r.price_basis or '', r.price_basis)}: {_user_source(r.price_source)}")
            if not r.reference:
                if r.cold_start_parts:
                    lines.append("cold start: " + " + ".join(f"{w} {s:.0f} s" for w, s in r.cold_start_parts))
                if r.billed_hours_per_day is not None:
                    lines.append(f"scale-to-zero: {r.billed_hours_per_day:.2f} billed h/day, "
                                 f"{r.cold_starts_per_day:.1f} cold starts/day")
                lines.append(f"break-even: {r.break_even_own_note}"
                             + ("" if not r.scales_to_zero else f"; vs Fly: {r.break_even_ref_note}"))
            lines.extend(_user_source(n) for n in r.notes)
            for step, manual, note in r.effort:
                if manual:
                    lines.append(f"needs you, {step} (the plan's step): {note}")
        out.append((r.label, lines))
    return out


def _plain_table(headers: tuple[str, ...] | list[str], body: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(row[k]) for row in body)) for k, h in enumerate(headers)]
    fmt = lambda cells: "  ".join(c.ljust(widths[k]) for k, c in enumerate(cells)).rstrip()  # noqa: E731
    return [fmt(list(headers)), fmt(["-" * w for w in widths]), *(fmt(row) for row in body)]


def _render_text(c: Comparison, details: bool = True, width: int | None = None) -> str:
    """``width``: wrap to it and turn a table too wide into a list (flymigrate.textfmt); None = one line each."""
    out = _header_lines(c)
    for w in _shown_warnings(c):
        out.append(f"WARNING: {w}")
    out.append("")
    out.append(_traffic_line(c))
    out.append(_scaling_line(c))
    out.append("Assumptions:")
    out.extend(f"  - {a}" for a in c.inputs.assumptions)
    out.append("")
    body = [_cells(r, c) for r in c.rows]
    if width is not None:
        from ..textfmt import table_or_list, wrap_all  # type: ignore[import-not-found]

        out = wrap_all(out, width)
        out.extend(table_or_list(_HEADERS, body, width))
    else:
        out.extend(_plain_table(_HEADERS, body))
    out.append("")
    out.append(c.recommendation.text)
    out.append("")
    out.append("Sensitivity (which input would change the answer; each varied alone, x0.1 to x10):")
    out.extend(f"  - {s.text}" for s in c.sensitivity)
    if not c.sensitivity:
        out.append("  - (no recommendation, nothing to test)")
    if details:
        out.append("")
        out.append("Details:")
        for label, lines in _details(c):
            out.append(f"  {label}")
            out.extend(f"    - {ln}" for ln in lines)
    if width is not None:
        from ..textfmt import wrap_all  # type: ignore[import-not-found]

        out = wrap_all(out, width)
    return "\n".join(out) + "\n"


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("<", "\\<")  # a bare <placeholder> would vanish as an HTML tag


def _render_markdown(c: Comparison, details: bool = True, heading_level: int = 2) -> str:
    head = _header_lines(c)
    out = [f"{'#' * heading_level} {head[0]}", "", head[1], ""]
    for w in _shown_warnings(c):
        out.append(f"> **Warning:** {_md_escape(w)}")
    if c.warnings:
        out.append("")
    out.append(_traffic_line(c))
    out.append("")
    out.append(_md_escape(_scaling_line(c)))
    out.append("")
    out.append("Assumptions:")
    out.append("")
    out.extend(f"- {a}" for a in c.inputs.assumptions)
    out.append("")
    out.append("| " + " | ".join(_HEADERS) + " |")
    out.append("|" + "|".join("---" for _ in _HEADERS) + "|")
    for r in c.rows:
        out.append("| " + " | ".join(_md_escape(x) for x in _cells(r, c)) + " |")
    out.append("")
    out.append(f"**Recommendation.** {c.recommendation.text}")
    out.append("")
    out.append("**Sensitivity** (each input varied alone, x0.1 to x10):")
    out.append("")
    out.extend(f"- {s.text}" for s in c.sensitivity)
    if not details:
        return "\n".join(out) + "\n"
    out.append("")
    out.append("<details><summary>Details per option</summary>")
    out.append("")
    for label, lines in _details(c):
        out.append(f"**{label}**")
        out.append("")
        out.extend(f"- {ln}" for ln in lines)
        out.append("")
    out.append("</details>")
    return "\n".join(out) + "\n"


def _render_rich(c: Comparison, width: int | None = None, color: bool = True) -> str:
    import io

    from rich.console import Console
    from rich.table import Table

    import shutil

    buf = io.StringIO()
    con = Console(file=buf, width=width or shutil.get_terminal_size((160, 40)).columns, force_terminal=color, color_system="standard" if color else None,
                  highlight=False)
    head = _header_lines(c)
    con.print(f"[bold]{head[0]}[/bold]")
    con.print(head[1], markup=False)
    for w in _shown_warnings(c):
        con.print(f"[bold yellow]WARNING:[/bold yellow] {w}")
    con.print(_traffic_line(c), markup=False)
    con.print(_scaling_line(c), markup=False)
    for a in c.inputs.assumptions:
        con.print(f"  - {a}", markup=False)
    t = Table(show_lines=False)
    for h in _HEADERS:
        t.add_column(h, overflow="fold")
    for r in c.rows:
        style = "bold green" if r.key == c.recommendation.key else ("dim" if not r.offered or r.reference else None)
        t.add_row(*_cells(r, c), style=style)
    con.print(t)
    con.print(f"[bold]{c.recommendation.text}[/bold]", markup=True)
    con.print("Sensitivity (each input varied alone, x0.1 to x10):")
    for s in c.sensitivity:
        con.print(f"  - {s.text}", markup=False)
    return buf.getvalue()


def render(comparison: Comparison, fmt: str = "text", *, details: bool = True, heading_level: int = 2,
           width: int | None = None) -> str:
    """Render as ``text`` (plain), ``markdown``, ``json`` (schema flymigrate/compare/v2) or ``rich`` (ANSI).

    ``details=False`` drops the per-option details (for embedding as a section of ``plan``); ``heading_level``
    sets the markdown heading depth.
    """
    if fmt == "json":
        return json.dumps(comparison.to_json(), indent=2, ensure_ascii=False) + "\n"
    if fmt == "markdown":
        return _render_markdown(comparison, details, heading_level)
    if fmt == "text":
        return _render_text(comparison, details, width)
    if fmt == "rich":
        return _render_rich(comparison)
    raise UserError(f"unknown format {fmt!r}: use text, markdown or json.")
