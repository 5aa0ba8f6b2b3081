"""``flymigrate verify``: prove the migrated endpoint serves, and how fast, with one pass/fail verdict.

Layout: :mod:`.http` (keep-alive client), :mod:`.auth` (headers per platform), :mod:`.ready` (cold-start
wait), :mod:`.app` (what the app folder says to check), :mod:`.checks` (per server kind), :mod:`.latency`
(warm latency), :mod:`.report` (JSON / text / baseline / last verdict). :func:`verify` runs them in order.
Library code: it never prints the report or exits; progress goes to the ``Progress`` it is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .report import Report

EXIT_VERIFY_FAILED = 5  # a check failed (README "Exit codes"); 3 = unreachable after --timeout


@dataclass
class VerifyOptions:
    target: str
    app_dir: str | None = None
    url: str | None = None
    secrets: list[str] = field(default_factory=list)
    requests: int = 20
    concurrency: int = 1
    timeout_s: float = 600.0
    request_timeout_s: float = 300.0
    baseline: str | None = None
    id_token: str | None = None
    kind: str | None = None  # override what the app / the server says
    model: str | None = None
    save: bool = True  # keep the verdict in APP_DIR/.flymigrate/verify.json


def verify(opts: VerifyOptions, progress=None) -> Report:
    from ..errors import UserError
    from . import checks as ck
    from .app import AppFacts, read_app
    from .auth import _spec, build_auth
    from .http import Client, split_url
    from .latency import measure
    from .ready import wait_ready
    from .report import load_baseline

    baseline = load_baseline(opts.baseline) if opts.baseline else None  # bad input fails before any request
    facts = read_app(opts.app_dir, opts.target, opts.secrets or None) if opts.app_dir else AppFacts()
    if facts.export is None and opts.secrets:
        from ..parse.secrets import load_secrets, merge_exports

        facts.export = merge_exports([load_secrets(Path(p), display=p) for p in opts.secrets])
    url = (opts.url or facts.deployed_url or "").rstrip("/")
    if not url:
        raise UserError(f"no URL to verify: {opts.app_dir or 'the app'} has no deployed URL for {opts.target} in "
                        "its apply state.", hint=f"Run `flymigrate apply {opts.app_dir or 'APP_DIR'} --to "
                        f"{opts.target} --deploy`, or pass --url URL.")
    _, host, _, path = split_url(url)
    spec = _spec(opts.target)
    if spec.wrong_url and host == spec.wrong_url[0] and path.startswith(spec.wrong_url[1]):
        raise UserError(f"{url} is {spec.wrong_url[2]}.", hint=spec.wrong_url[3])
    auth = build_auth(opts.target, facts.export, id_token=opts.id_token, url=url)
    report = Report(url=url, target=opts.target, app=facts.app, auth=auth.describe())
    report.notes += facts.notes + auth.notes
    kind, kind_from = (opts.kind, "--kind") if opts.kind else (facts.kind, facts.kind_from)
    model, model_from = (opts.model, "--model") if opts.model else (facts.model, facts.model_from)

    def client() -> Client:
        return Client(url, auth.headers, timeout=opts.request_timeout_s)

    c = client()
    try:
        # a platform health route (RunPod's load balancer answers /ping itself while it finds and loads a worker)
        ready_path = spec.health_route or facts.health_path or ck.DEFAULT_HEALTH.get(kind or "", "/")
        rd = wait_ready(c, opts.target, ready_path, opts.timeout_s, progress=progress)
        if progress is not None:
            progress.done()
        report.ready_detail = f"{rd.attempts} request(s) to {rd.path}; last: {rd.last}"
        if not rd.ready:
            if rd.status in (401, 403, 407):
                report.checks.append(ck.Check("credentials accepted", False, _auth_hint(opts.target, rd.status,
                                                                                        rd.last, auth)))
                report.ready_detail = f"{rd.path} answered {rd.last}"
            else:
                report.reachable = False
                report.ready_detail = (f"no ready answer from {rd.path} within {opts.timeout_s:g}s "
                                       f"({rd.attempts} tries); last: {rd.last}")
            return _finish(report, opts, baseline)
        report.cold_start_s = rd.cold_start_s
        if rd.attempts == 1:
            report.ready_detail = f"already warm: the first request to {rd.path} answered {rd.last}"

        if kind is None:
            kind, kind_from = ck.probe_kind(c)
        report.kind, report.kind_from = kind, kind_from
        route = spec.health_route
        health_path = facts.health_path or route or ck.DEFAULT_HEALTH.get(kind, "/")
        if route and health_path != route:
            report.checks.append(ck.check_health(c, route, opts.target, "the platform's health route"))
        report.checks.append(ck.check_health(c, health_path, opts.target, facts.health_from or
                                             ("the platform's health route" if health_path == route else "")))
        fn = ck.functional_checks(c, kind, model)
        report.checks += fn.checks
        report.model = fn.model
        if model and model_from and report.model:
            report.notes.append(f"expected model {model} from {model_from}")
        warm, warm_what = (fn.warm, fn.warm_what) if fn.warm else (ck.warm_get(health_path), f"GET {health_path}")

        conc = max(1, opts.concurrency)
        if facts.max_concurrency and conc > facts.max_concurrency:
            report.notes.append(f"--concurrency {conc} is above what the target takes per container "
                                f"({facts.max_concurrency}); used {facts.max_concurrency}")
            conc = facts.max_concurrency
        if opts.requests > 0:
            upd = None
            if progress is not None:
                def upd(done: int, n: int) -> None:
                    progress.update(f"warm latency: {done}/{n} requests")
            report.latency = measure(client, warm, opts.requests, conc, warm_what, upd)
            if progress is not None:
                progress.done()
            L = report.latency
            report.checks.append(ck.Check(
                "warm latency", L.errors == 0,
                f"{L.requests - L.errors}/{L.requests} answered" + (
                    f"; {L.errors} failed (e.g. {L.error_examples[0]})" if L.errors else "")))
        return _finish(report, opts, baseline)
    finally:
        c.close()


def _auth_hint(target: str, status: int, last: str, auth) -> str:  # type: ignore[no-untyped-def]
    from .auth import _spec

    return f"{last} (sent: {auth.describe()}); {_spec(target).auth_hint}"


def _finish(report: Report, opts: VerifyOptions, baseline: dict | None) -> Report:
    from .report import compare_baseline, save_last

    if baseline is not None and report.reachable:
        report.checks.append(compare_baseline(report, baseline, opts.baseline or ""))
    if opts.save and opts.app_dir:
        try:
            save_last(Path(opts.app_dir), report)
        except OSError as exc:  # a read-only app folder: the verdict still stands, `status` just cannot show it
            report.notes.append(f"could not keep the verdict in {opts.app_dir}/.flymigrate/verify.json "
                                f"({exc.strerror})")
    return report


def run_for_ui(app_dir: str, target: str, secrets: list[str] | None = None) -> tuple[str, str, str]:
    """Verify an app folder's deployed endpoint for a UI (the TUI's last step): (title, report text, hint).

    Never raises for bad input: a typed error becomes a title, its message and what to do.
    """
    from ..errors import FlymigrateError
    from ..redact import redact
    from .report import render_text

    try:
        rep = verify(VerifyOptions(target=target, app_dir=app_dir, secrets=list(secrets or [])))
    except FlymigrateError as err:
        return "Verify: not run", redact(err.message), redact(err.hint or "")
    title = "Verify: passed" if rep.passed else ("Verify: unreachable" if not rep.reachable else "Verify: FAILED")
    hint = "" if rep.passed else "Fix what failed, then press v again (or run `flymigrate verify` in a shell)."
    return title, redact(render_text(rep)), hint


_deployed_cache: dict[tuple[str, str], tuple[float, str | None]] = {}


def deployed_url(app_dir: str | Path, target: str) -> str | None:
    """The URL `apply --deploy` recorded for ``target`` (cached on the state file's mtime; cheap to poll)."""
    from ..paths import app_state_dir

    p = app_state_dir(Path(app_dir)) / "state.json"
    try:
        mtime = p.stat().st_mtime
    except OSError:
        return None
    key = (str(p), target)
    hit = _deployed_cache.get(key)
    if hit is not None and hit[0] == mtime:
        return hit[1]
    from ..apply.state import read_state

    url = (((read_state(Path(app_dir)) or {}).get("targets") or {}).get(target) or {}).get("deployed_url")
    _deployed_cache[key] = (mtime, url if isinstance(url, str) else None)
    return _deployed_cache[key][1]
