"""Plan -> text (terminal, coloured on a TTY), markdown (PR / wiki) or JSON (``flymigrate/plan/v1``).

Pure and deterministic: no timestamps, no versions, no secret values (the model holds none to print).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from .model import Plan, Step

# v2 (issue 12): adds "deployment" (the whole of what will run on the target, flymigrate.deployment.Deployment);
# "weights.destination" / "weights.mount_path" are the Deployment's (what apply writes), and a base-URL hit that
# is not rewritten (a literal fdaa: address) has "new": null. Everything v1 had is still there.
SCHEMA = "flymigrate/plan/v2"


def target_label(name: str) -> str:
    from .targets import get_target, is_target

    return get_target(name).label if is_target(name) else name
STATUS_MARK = {"ready": "READY", "manual": "MANUAL", "blocked": "BLOCKED", "nothing_to_do": "NOTHING TO DO"}


def to_json(plan: Plan) -> dict[str, object]:
    s = plan.scaling
    dep = plan.deployment
    return {
        "schema": SCHEMA,
        "app": plan.app,
        "target": plan.target,
        "steps": [
            {"id": st.id, "title": st.title, "status": st.status, "summary": st.summary, "changes": list(st.changes),
             "needs": list(st.needs), "cannot_translate": list(st.cannot), "manual_checks": list(st.manual_checks)}
            for st in plan.steps
        ],
        "gpu": plan.gpu,
        "scaling": None if s is None else {
            "min": s.min, "max": s.max, "idle_timeout_s": s.idle_timeout_s, "max_concurrency": s.max_concurrency,
            "target_concurrency": s.target_concurrency, "config": {k: v for k, v in s.config}, "notes": list(s.notes),
        },
        "weights": {
            "source": plan.weights.chosen.url if plan.weights.chosen else None,
            "source_kind": plan.weights.chosen.kind if plan.weights.chosen else None,
            "destination": dep.weights_dest if dep else plan.weights.destination_url,
            "mount_path": dep.layout.mount_path if dep else plan.weights.mount_path,
            "env": dict(plan.weights.env),
            "size_bytes": plan.weights.size_bytes,
            "found": [{"kind": w.kind, "url": w.url, "description": w.description, "where": w.where}
                      for w in plan.weights.sources],
        },
        "secrets": [{"name": x.name, "has_value": x.has_value, "target_ref": x.target_ref} for x in plan.secrets],
        "base_url": {"new": plan.base_url, "placeholder": plan.base_url_is_placeholder},
        "base_urls": [{"path": h.path, "line": h.line, "column": h.column, "old": h.old, "new": h.new, "kind": h.kind}
                      for h in plan.base_urls],
        "other_fly_urls": [{"path": h.path, "line": h.line, "old": h.old} for h in plan.other_fly_urls],
        "dockerfile_issues": [{"kind": i.kind, "message": i.message, "where": i.where, "fix": i.fix}
                              for i in plan.docker_issues],
        "findings": [f.to_json() for f in plan.findings],
        "inputs": [{"kind": k, "path": v} for k, v in plan.inputs],
        "compare": plan.comparison.to_json() if plan.comparison is not None else None,  # type: ignore[attr-defined]
        "deployment": dep.to_json() if dep is not None else None,
    }


def render_json(plan: Plan) -> str:
    return json.dumps(to_json(plan), indent=2, sort_keys=False) + "\n"


# ---- text --------------------------------------------------------------------------------------------

_COLORS = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "blue": "34", "cyan": "36"}


def _styler(color: bool) -> Callable[[str, str], str]:
    def st(text: str, style: str) -> str:
        if not color:
            return text
        codes = ";".join(_COLORS[s] for s in style.split())
        return f"\x1b[{codes}m{text}\x1b[0m"

    return st


def _status_style(status: str) -> str:
    return {"ready": "green", "manual": "yellow", "blocked": "red bold", "nothing_to_do": "dim"}[status]


def render_text(plan: Plan, *, color: bool = False) -> str:
    st = _styler(color)
    out: list[str] = []
    label = target_label(plan.target)
    out.append(st(f"flymigrate plan: {plan.app or '(unnamed app)'} -> {label}", "bold"))
    out.append("")
    if plan.gpu:
        g = plan.gpu
        fit = "fits" if g["fits"] else ("BLOCKED" if g["blocked"] else "does not fit")
        out.append(f"GPU      {g['fly_kind']} x{g['count']} ({g['vram_gb']} GB) -> {g['target_gpu'] or 'not offered'}"
                   f" [{st(fit, 'green' if g['fits'] else 'red')}]")
        out.append(st(f"         {g['reason']}", "dim"))
    else:
        out.append(f"GPU      {st('unknown: pass --gpu KIND[:N]', 'yellow')}")
    if plan.scaling:
        s = plan.scaling
        idle = f"{s.idle_timeout_s} s" if s.idle_timeout_s else "-"
        out.append(f"Scaling  min {s.min}, max {s.max}, idle timeout {idle}, concurrency "
                   f"{s.max_concurrency or '-'}")
    out.append(f"New URL  {plan.base_url}{st('  (placeholder)', 'yellow') if plan.base_url_is_placeholder else ''}")
    out.append("")
    for i, step in enumerate(plan.steps, start=1):
        out += _text_step(i, step, st)
    if plan.comparison is not None:
        from .compare import render as render_compare

        out.append(st("Which target? Cost and cold start for this app", "bold"))
        out.append(render_compare(plan.comparison, "text", details=False).rstrip("\n"))
        out.append("")
    errors = [f for f in plan.findings if f.severity == "error"]
    warnings = [f for f in plan.findings if f.severity == "warning"]
    infos = [f for f in plan.findings if f.severity == "info"]
    out.append(st(f"Findings: {len(errors)} error(s), {len(warnings)} warning(s), {len(infos)} note(s)", "bold"))
    for f in plan.findings:
        sev = {"error": st("error  ", "red bold"), "warning": st("warning", "yellow"), "info": st("note   ", "dim")}[f.severity]
        where = f"{f.where}: " if f.where else ""
        out.append(f"  {sev} {where}{f.message}")
    out.append("")
    blocked = [s.id for s in plan.steps if s.status == "blocked"]
    manual = [s.id for s in plan.steps if s.status == "manual"]
    tail = "Nothing was changed (this is a dry run)."
    if blocked:
        tail = f"Blocked: {', '.join(blocked)}. " + tail
    if manual:
        tail = f"Needs you: {', '.join(manual)}. " + tail
    out.append(st(tail, "bold"))
    return "\n".join(out) + "\n"


def _text_step(i: int, step: Step, st: Callable[[str, str], str]) -> list[str]:
    out = [st(f"{i}. {step.title}", "bold") + "  " + st(f"[{STATUS_MARK[step.status]}]", _status_style(step.status)),
           f"   {step.summary}"]
    for head, items, mark in (("will change", step.changes, "+"), ("needs from you", step.needs, "?"),
                              ("cannot translate", step.cannot, "!")):
        if items:
            out.append(st(f"   {head}:", "cyan"))
            out += [f"     {mark} {x}" for x in items]
    if step.manual_checks:
        out.append(st("   check by hand:", "cyan"))
        out += [f"     [ ] {x}" for x in step.manual_checks]
    out.append("")
    return out


# ---- markdown ----------------------------------------------------------------------------------------

def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(plan: Plan) -> str:
    out: list[str] = []
    out.append(f"# Migration plan: {plan.app or '(unnamed app)'} -> {target_label(plan.target)}")
    out.append("")
    out.append("| | Fly | " + target_label(plan.target) + " |")
    out.append("|---|---|---|")
    if plan.gpu:
        g = plan.gpu
        out.append(f"| GPU | `{g['fly_kind']}` x{g['count']} ({g['vram_gb']} GB) | "
                   f"`{g['target_gpu'] or 'not offered'}` ({'fits' if g['fits'] else 'BLOCKED' if g['blocked'] else 'does not fit'}) |")
    else:
        out.append("| GPU | not in fly.toml | pass `--gpu KIND[:N]` |")
    if plan.scaling:
        s = plan.scaling
        out.append(f"| Scaling | | min {s.min}, max {s.max}, idle {s.idle_timeout_s or '-'} s, "
                   f"concurrency {s.max_concurrency or '-'} |")
    out.append(f"| Base URL | | `{plan.base_url}`{' (placeholder)' if plan.base_url_is_placeholder else ''} |")
    out.append("")
    out.append("| # | Step | Status | Summary |")
    out.append("|---|---|---|---|")
    for i, step in enumerate(plan.steps, start=1):
        out.append(f"| {i} | {step.title} | **{STATUS_MARK[step.status]}** | {_md_escape(step.summary)} |")
    out.append("")
    for i, step in enumerate(plan.steps, start=1):
        out.append(f"## {i}. {step.title} ({STATUS_MARK[step.status].lower()})")
        out.append("")
        out.append(step.summary)
        out.append("")
        for head, items in (("Will change", step.changes), ("Needs from you", step.needs),
                            ("Cannot translate", step.cannot)):
            if items:
                out.append(f"**{head}**")
                out.append("")
                out += [f"- {_md_escape(x)}" for x in items]
                out.append("")
        if step.manual_checks:
            out.append("**Check by hand**")
            out.append("")
            out += [f"- [ ] {x}" for x in step.manual_checks]
            out.append("")
    if plan.base_urls:
        out.append("## Base URL occurrences")
        out.append("")
        out.append("| File | Line | Old | New |")
        out.append("|---|---|---|---|")
        for h in plan.base_urls:
            out.append(f"| `{h.path}` | {h.line} | `{h.old}` | `{h.new}` |")
        out.append("")
    if plan.comparison is not None:
        from .compare import render as render_compare

        out.append(render_compare(plan.comparison, "markdown", details=False, heading_level=2).rstrip("\n"))
        out.append("")
    if plan.findings:
        out.append("## Findings")
        out.append("")
        out.append("| Severity | Where | Finding |")
        out.append("|---|---|---|")
        for f in plan.findings:
            out.append(f"| {f.severity} | {('`' + f.where + '`') if f.where else ''} | {_md_escape(f.message)} |")
        out.append("")
    out.append("_Dry run: nothing was changed._")
    return "\n".join(out) + "\n"


def render(plan: Plan, fmt: str, *, color: bool = False) -> str:
    if fmt == "json":
        return render_json(plan)
    if fmt == "markdown":
        return render_markdown(plan)
    return render_text(plan, color=color)
