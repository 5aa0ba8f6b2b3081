"""Plan -> text (terminal, coloured on a TTY), markdown (PR / wiki) or JSON (``flymigrate/plan/v2``).

Pure and deterministic: no timestamps, no versions, no secret values (the model holds none to print).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from .model import Finding, Plan, Step

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
            {"id": st.id, "title": st.title, "status": st.status, "summary": st.summary, "changes": list(step_changes(plan, st)),
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
            "destination": plan.weights_destination,
            "mount_path": plan.weights_mount_path,
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
        "dockerfile_issues": [{"kind": i.kind, "message": i.message, "where": i.where, "fix": i.fix, "auto": i.auto}
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
SHORT_NAMES = {"weights": "weights", "dockerfile": "Dockerfile", "secrets": "secrets", "base_urls": "base URLs",
               "scaling": "scaling"}


def _styler(color: bool) -> Callable[[str, str], str]:
    def st(text: str, style: str) -> str:
        if not color or not style:
            return text
        codes = ";".join(_COLORS[s] for s in style.split())
        return f"\x1b[{codes}m{text}\x1b[0m"

    return st


def _status_style(status: str) -> str:
    return {"ready": "green", "manual": "yellow", "blocked": "red bold", "nothing_to_do": "dim"}[status]


def step_changes(plan: Plan, step: Step) -> tuple[str, ...]:
    """A step's changes as a person reads them: config values spelled ``true``/``false`` (RunPod's JSON,
    Cloud Run's YAML), not Python's ``True``/``False`` (Modal's config is Python, so it keeps them)."""
    from .targets import get_target, is_target

    if step.id != "scaling" or plan.scaling is None or (is_target(plan.target) and
                                                           get_target(plan.target).config_language == "python"):
        return step.changes
    from .textfmt import spell

    fix = {f"{k} = {v}": f"{k} = {spell(v)}" for k, v in plan.scaling.config if isinstance(v, bool)}
    return tuple(fix.get(c, c) for c in step.changes)


def shown_steps(plan: Plan) -> tuple[Step, ...]:
    """The steps as the planner decided them (a CPU-only app's scaling step is decided ready by the planner)."""
    return plan.steps


def shown_findings(plan: Plan) -> list[Finding]:
    """The findings worth listing once: a finding that only repeats another (the missing app name said twice)
    is dropped."""
    codes = {f.code for f in plan.findings}
    return [f for f in plan.findings if not (f.code == "urls-unsearchable" and "no-app-name" in codes)]


def finding_text(f: Finding) -> str:
    """``where: message``, without repeating a path the message already names."""
    if not f.where or f.where in f.message:
        return f.message
    return f"{f.where}: {f.message}"


def gpu_line(plan: Plan) -> tuple[str, str | None, str]:
    """(the GPU summary, the reason line or None, a style) for the header of every format."""
    if plan.gpu:
        g = plan.gpu
        fit = "fits" if g["fits"] else ("BLOCKED" if g["blocked"] else "does not fit")
        target = g["target_gpu"] or "not offered"
        return (f"{g['fly_kind']} x{g['count']} ({g['vram_gb']} GB) -> {target}: {fit}", str(g["reason"] or ""),
                "green" if g["fits"] else "red")
    if any(f.code == "cpu-only" for f in plan.findings):
        from .targets import get_target, is_target

        where = get_target(plan.target).cpu_form if is_target(plan.target) else "a CPU deployment"
        return (f"none: the app runs on CPU (no GPU in fly.toml, the image or its scripts); here that is {where}",
                None, "")
    return ("unknown: pass --gpu KIND[:N]", None, "yellow")


def _why(step: Step) -> str:
    """What a step needs or why it is blocked, in one short phrase."""
    if step.status == "blocked" and step.cannot:
        return step.cannot[0]
    if step.needs:
        return "; ".join(step.needs)
    return step.summary.rstrip(".")


def _q(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


def _command(verb: str, target: str, inv: dict[str, object] | None, extra: Sequence[str] = ()) -> str:
    inv = inv or {}
    parts = ["flymigrate", verb, str(inv.get("app_dir") or "."), "--to", target]
    if inv.get("config"):
        parts += ["--config", str(inv["config"])]
    for s in inv.get("secrets") or ():  # type: ignore[attr-defined]
        parts += ["--secrets", str(s)]
    for c in inv.get("code") or ():  # type: ignore[attr-defined]
        parts += ["--code", str(c)]
    if inv.get("gpu"):
        parts += ["--gpu", str(inv["gpu"])]
    if inv.get("app_name"):
        parts += ["--app", str(inv["app_name"])]
    if inv.get("base_url"):
        parts += ["--base-url", str(inv["base_url"])]
    parts += list(extra)
    return " ".join(_q(p) for p in parts)


def next_steps(plan: Plan, inv: dict[str, object] | None = None) -> list[tuple[str, str | None]]:
    """What to do next, in order: (what, the exact command or None). Commands reuse the arguments the plan was
    made with, as typed (so they work from where the user is)."""
    out: list[tuple[str, str | None]] = []
    extra: list[str] = []
    sec = plan.step("secrets")
    missing = [s.name for s in plan.secrets if not s.has_value]
    if sec.status == "blocked" and missing:
        out.append((f"Write the value(s) of {', '.join(missing)} into a new .env file (NAME=value lines; "
                    "`chmod 600` it), e.g. missing.env, and add it to the others:", None))
        extra += ["--secrets", "missing.env"]
    elif sec.status == "manual":
        app = plan.app or "APP"
        out.append(("Export the app's secret names (values are never shown by Fly; keep your .env for those):",
                    f"fly secrets list --json -a {_q(app)} > fly-secrets.json"))
        extra += ["--secrets", "fly-secrets.json"]
    scaling = plan.step("scaling")
    if scaling.status == "blocked":
        from .targets import names

        # the comparison's pick when it has one (it only recommends what can run the app), else another target
        rec = str(getattr(getattr(plan.comparison, "recommendation", None), "key", None) or "")
        rec = next((t for t in names() if rec == t or rec.startswith(t + "-")), "")
        other = rec if rec and rec != plan.target else next(t for t in names() if t != plan.target)
        out.append((f"{target_label(plan.target)} cannot run this GPU; plan for another target instead, e.g.:",
                    _command("plan", other, inv, extra)))
        return out
    if plan.gpu is None and not any(f.code == "cpu-only" for f in plan.findings):
        out.append(("Say which Fly GPU the app ran on (a10, l40s, a100-pcie-40gb, a100-sxm4-80gb):", None))
        extra += ["--gpu", "KIND"]
    if plan.app is None and not (inv or {}).get("app_name"):
        out.append(("Name the Fly app (fly.toml has none; its URLs are found by it):", None))
        extra += ["--app", "NAME"]
    if extra:
        out.append(("Plan again with it:" if len(extra) <= 2 else "Plan again with them:",
                    _command("plan", plan.target, inv, extra)))
    blocked = [s for s in plan.steps if s.status == "blocked"]
    how = "previews each step and asks before it changes anything; state is kept, so it can be re-run"
    if plan.base_url_is_placeholder and plan.step("base_urls").status == "manual":
        how += "; --deploy fills in the new URL, or pass --base-url URL once the endpoint exists"
    first = "Then apply" if out or blocked else "Apply"
    out.append((f"{first} ({how}):", _command("apply", plan.target, inv, extra)))
    return out


def render_text(plan: Plan, *, color: bool = False, width: int | None = None,
                invocation: dict[str, object] | None = None) -> str:
    from .textfmt import DEFAULT_WIDTH, wrap

    width = width or DEFAULT_WIDTH
    st = _styler(color)
    out: list[str] = []

    def add(text: str = "", style: str = "", extra_indent: int = 0) -> None:
        out.extend(st(part, style) for part in wrap(text, width, extra_indent=extra_indent))

    label = target_label(plan.target)
    add(f"flymigrate plan: {plan.app or '(unnamed app)'} -> {label} (a dry run: nothing is changed)", "bold")
    add()
    # the short summary first: app, GPU, scaling, URL, and what is ready, needs you or is blocked (and why)
    pad = 14
    codes = {f.code for f in plan.findings}
    app_note = " (guessed: fly.toml has no `app`; see the note below)" if "app-name-derived" in codes else ""
    add(f"{'App':<{pad}}{plan.app or '(no name: pass --app NAME)'}{app_note}", extra_indent=pad)
    if "no-fly-toml" in codes:
        add(f"{'Config':<{pad}}no fly.toml: planned from the Dockerfile (the assumptions are in the warning below)",
            extra_indent=pad)
    above = next((f for f in plan.findings if f.code == "config-found-above"), None)
    if above is not None:
        add(f"{'Config':<{pad}}{above.message.split(': ', 1)[-1]}", extra_indent=pad)
    gpu, reason, style = gpu_line(plan)
    add(f"{'GPU':<{pad}}{gpu}", extra_indent=pad)
    if reason:
        add(" " * pad + reason, "dim")
    if plan.scaling:
        sc = plan.step("scaling")
        add(f"{'Scaling':<{pad}}{sc.summary.rstrip('.') if sc.status != 'blocked' else 'blocked (see GPU)'}",
            extra_indent=pad)
    add(f"{'New URL':<{pad}}{plan.base_url}" + ("  (placeholder until the endpoint exists)"
                                                if plan.base_url_is_placeholder else ""), extra_indent=pad)
    steps = shown_steps(plan)
    for head, statuses, style in (("Ready", ("ready",), "green"), ("Nothing to do", ("nothing_to_do",), "dim")):
        names = [f"{i} {SHORT_NAMES[s.id]}" for i, s in enumerate(steps, 1) if s.status in statuses]
        if names:
            add(f"{head:<{pad}}{', '.join(names)}", extra_indent=pad)
    for head, status, style in (("Needs you", "manual", "yellow"), ("Blocked", "blocked", "red bold")):
        items = [(i, s) for i, s in enumerate(steps, 1) if s.status == status]
        for k, (i, s) in enumerate(items):
            add(f"{(head if k == 0 else ''):<{pad}}{i} {SHORT_NAMES[s.id]}: {_why(s)}", extra_indent=pad)
    add()
    for i, step in enumerate(steps, start=1):
        out.append(st(f"{i}. {step.title}", "bold") + "  " + st(f"[{STATUS_MARK[step.status]}]",
                                                                 _status_style(step.status)))
        add(f"   {step.summary}")
        for head, items, mark in (("will change", step_changes(plan, step), "+"), ("needs from you", step.needs, "?"),
                                  ("cannot translate", step.cannot, "!")):
            if items:
                add(f"   {head}:", "cyan")
                for x in items:
                    add(f"     {mark} {x}")
        if step.manual_checks:
            add("   check by hand:", "cyan")
            for x in step.manual_checks:
                add(f"     [ ] {x}")
        add()
    if plan.comparison is not None:
        from .compare import render as render_compare

        add("Which target? Cost and cold start for this app", "bold")
        out.extend(render_compare(plan.comparison, "text", details=False, width=width).rstrip("\n").split("\n"))
        add()
    found = shown_findings(plan)
    errors = [f for f in found if f.severity == "error"]
    warnings = [f for f in found if f.severity == "warning"]
    infos = [f for f in found if f.severity == "info"]
    add(f"Findings: {len(errors)} error(s), {len(warnings)} warning(s), {len(infos)} note(s)", "bold")
    for f in found:
        sev = {"error": ("error  ", "red bold"), "warning": ("warning", "yellow"), "info": ("note   ", "dim")}[f.severity]
        lines = wrap(f"  {sev[0]} {finding_text(f)}", width, extra_indent=8)
        out.append(lines[0].replace(sev[0], st(sev[0], sev[1]), 1))
        out.extend(lines[1:])
    add()
    add("Next", "bold")
    for k, (what, cmd) in enumerate(next_steps(plan, invocation), 1):
        add(f"  {k}. {what}")
        if cmd:
            from .textfmt import command_lines

            out.extend(command_lines(cmd, width, "       "))  # broken with \\ only: it still pastes as one
    return "\n".join(out) + "\n"


# ---- markdown ----------------------------------------------------------------------------------------

def _md_escape(text: str) -> str:
    """Markdown-safe prose: ``<workspace>``-style placeholders outside code spans would be eaten as HTML tags,
    ``|`` would split a table cell."""
    parts = text.replace("\n", " ").split("`")
    for k in range(0, len(parts), 2):  # outside backticks only
        parts[k] = parts[k].replace("\\", "\\\\").replace("<", "\\<").replace("|", "\\|")
    for k in range(1, len(parts), 2):
        parts[k] = parts[k].replace("|", "\\|")
    return "`".join(parts)


def render_markdown(plan: Plan, invocation: dict[str, object] | None = None) -> str:
    out: list[str] = []
    out.append(f"# Migration plan: {_md_escape(plan.app or '(unnamed app)')} -> {target_label(plan.target)}")
    out.append("")
    out.append("| | Fly | " + target_label(plan.target) + " |")
    out.append("|---|---|---|")
    if plan.gpu:
        g = plan.gpu
        out.append(f"| GPU | `{g['fly_kind']}` x{g['count']} ({g['vram_gb']} GB) | "
                   f"`{g['target_gpu'] or 'not offered'}` ({'fits' if g['fits'] else 'BLOCKED' if g['blocked'] else 'does not fit'}) |")
    elif any(f.code == "cpu-only" for f in plan.findings):
        out.append("| GPU | none (CPU) | runs on CPU |")
    else:
        out.append("| GPU | not in fly.toml | pass `--gpu KIND[:N]` |")
    if plan.scaling:
        sc = plan.step("scaling")
        out.append(f"| Scaling | | {_md_escape(sc.summary.rstrip('.'))} |")
    out.append(f"| Base URL | | `{plan.base_url}`{' (placeholder)' if plan.base_url_is_placeholder else ''} |")
    out.append("")
    out.append("| # | Step | Status | Summary |")
    out.append("|---|---|---|---|")
    for i, step in enumerate(shown_steps(plan), start=1):
        out.append(f"| {i} | {step.title} | **{STATUS_MARK[step.status]}** | {_md_escape(step.summary)} |")
    out.append("")
    for i, step in enumerate(shown_steps(plan), start=1):
        out.append(f"## {i}. {step.title} ({STATUS_MARK[step.status].lower()})")
        out.append("")
        out.append(_md_escape(step.summary))
        out.append("")
        for head, items in (("Will change", step_changes(plan, step)), ("Needs from you", step.needs),
                            ("Cannot translate", step.cannot)):
            if items:
                out.append(f"**{head}**")
                out.append("")
                out += [f"- {_md_escape(x)}" for x in items]
                out.append("")
        if step.manual_checks:
            out.append("**Check by hand**")
            out.append("")
            out += [f"- [ ] {_md_escape(x)}" for x in step.manual_checks]
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
    found = shown_findings(plan)
    if found:
        out.append("## Findings")
        out.append("")
        out.append("| Severity | Where | Finding |")
        out.append("|---|---|---|")
        for f in found:
            out.append(f"| {f.severity} | {('`' + f.where + '`') if f.where else ''} | {_md_escape(f.message)} |")
        out.append("")
    out.append("## Next")
    out.append("")
    for k, (what, cmd) in enumerate(next_steps(plan, invocation), 1):
        out.append(f"{k}. {_md_escape(what)}")
        if cmd:
            out += ["", "   ```sh", f"   {cmd}", "   ```"]
    out.append("")
    out.append("_Dry run: nothing was changed._")
    return "\n".join(out) + "\n"


def render(plan: Plan, fmt: str, *, color: bool = False, width: int | None = None,
           invocation: dict[str, object] | None = None) -> str:
    """``invocation``: the arguments the plan was made with, as typed (app_dir, config, secrets, code, gpu,
    app_name, base_url), so the next commands printed at the end work from where the user is."""
    if fmt == "json":
        return render_json(plan)
    if fmt == "markdown":
        return render_markdown(plan, invocation)
    return render_text(plan, color=color, width=width, invocation=invocation)
