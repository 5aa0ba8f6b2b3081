"""The verdict: the JSON shape ``flymigrate/verify/v1``, the text for a person, the baseline comparison and
the last verdict kept in ``APP_DIR/.flymigrate/verify.json`` for ``flymigrate status``.

Nothing here holds a secret value: the report carries header *names* and where their values came from.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .checks import Check
from .latency import Latency

SCHEMA = "flymigrate/verify/v1"
BASELINE_P95_FACTOR = 1.5
BASELINE_MIN_DELTA_MS = 5.0  # below this a p95 difference is scheduler and timer noise, not a slower endpoint


@dataclass
class Report:
    url: str
    target: str
    app: str | None = None
    kind: str | None = None
    kind_from: str = ""
    model: str | None = None
    auth: str = ""
    reachable: bool = True
    cold_start_s: float | None = None
    ready_detail: str = ""
    checks: list[Check] = field(default_factory=list)
    latency: Latency | None = None
    notes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    @property
    def passed(self) -> bool:
        return self.reachable and bool(self.checks) and all(c.passed for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        lat = self.latency.to_json() if self.latency else {"p50_ms": None, "p95_ms": None, "max_ms": None,
                                                           "errors": 0}
        return {"schema": SCHEMA, "url": self.url, "target": self.target, "app": self.app, "passed": self.passed,
                "reachable": self.reachable,
                "cold_start_s": None if self.cold_start_s is None else round(self.cold_start_s, 3),
                "server_kind": self.kind, "server_kind_from": self.kind_from, "model": self.model,
                "auth": self.auth, "latency": lat, "checks": [c.to_json() for c in self.checks],
                "notes": self.notes, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started))}


def render_text(r: Report) -> str:
    lines = [f"verify {r.url} ({r.target}{', ' + r.kind + ' server' if r.kind else ''}"
             f"{', model ' + r.model if r.model else ''})"]
    if r.kind_from:
        lines.append(f"  server kind from: {r.kind_from}")
    lines.append(f"  auth: {r.auth}")
    if not r.reachable:
        lines.append(f"  UNREACHABLE: {r.ready_detail}")
    elif r.cold_start_s is not None:
        lines.append(f"  ready after {r.cold_start_s:.1f}s (cold start: first request to first success; "
                     f"{r.ready_detail})")
    for c in r.checks:
        lines.append(f"  [{'pass' if c.passed else 'FAIL'}] {c.name}: {c.detail}")
    if r.latency is not None:
        L = r.latency
        fmt = (lambda v: "-" if v is None else f"{v:.1f} ms")
        lines.append(f"  latency ({L.requests} x {L.what}, concurrency {L.concurrency}): p50 {fmt(L.pct(50))}, "
                     f"p95 {fmt(L.pct(95))}, max {fmt(max(L.samples_ms) if L.samples_ms else None)}, "
                     f"errors {L.errors}")
    for n in r.notes:
        lines.append(f"  note: {n}")
    lines.append("PASSED" if r.passed else ("UNREACHABLE" if not r.reachable else "FAILED"))
    return "\n".join(lines) + "\n"


def load_baseline(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"--baseline {path}: no such file.", hint="Give a report written by `flymigrate verify "
                          "--format json --out FILE`.") from None
    except OSError as exc:
        raise ConfigError(f"--baseline {path}: cannot read it ({exc.strerror}).") from None
    except ValueError as exc:
        raise ConfigError(f"--baseline {path}: not JSON ({exc}).", where=None,
                          hint="Give a report written by `flymigrate verify --format json`.") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ConfigError(f"--baseline {path}: not a flymigrate verify report (its schema is "
                          f"{data.get('schema') if isinstance(data, dict) else type(data).__name__!r}, "
                          f"expected {SCHEMA}).")
    return data


def compare_baseline(r: Report, base: dict[str, Any], path: str) -> Check:
    problems = []
    before = {c.get("name"): bool(c.get("passed")) for c in base.get("checks") or [] if isinstance(c, dict)}
    for c in r.checks:
        if not c.passed and before.get(c.name) is True:
            problems.append(f"new failure: {c.name}")
    bl = base.get("latency") or {}
    if r.latency is not None and r.latency.errors and not bl.get("errors"):
        problems.append(f"new failure: {r.latency.errors} request error(s), none in the baseline")
    p95, bp95 = (r.latency.pct(95) if r.latency else None), bl.get("p95_ms")
    ratio = ""
    if p95 is not None and isinstance(bp95, (int, float)) and bp95 > 0:
        ratio = f"p95 {p95:.1f} ms vs {bp95:.1f} ms in the baseline ({p95 / bp95:.2f}x)"
        if p95 > BASELINE_P95_FACTOR * bp95 and p95 - bp95 > BASELINE_MIN_DELTA_MS:
            problems.append(f"{ratio}, more than {BASELINE_P95_FACTOR}x")
    detail = "; ".join(problems) if problems else (ratio or "no new failure") + f" (baseline {path})"
    return Check("against the baseline", not problems, detail)


def verify_state_path(app_dir: Path) -> Path:
    from ..paths import app_state_dir

    return app_state_dir(app_dir) / "verify.json"


def save_last(app_dir: Path, r: Report) -> None:
    """Keep the last verdict per target for ``flymigrate status`` (0600, no secret values)."""
    from ..fsutil import atomic_write
    from ..paths import ensure_private_dir

    p = verify_state_path(app_dir)
    try:
        data = json.loads(p.read_text("utf-8")) if p.exists() else {}
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    j = r.to_json()
    data[r.target] = {"passed": j["passed"], "reachable": j["reachable"], "url": j["url"], "time": j["time"],
                      "cold_start_s": j["cold_start_s"], "p95_ms": j["latency"]["p95_ms"],
                      "failed": [c["name"] for c in j["checks"] if not c["passed"]]}
    ensure_private_dir(p.parent)
    atomic_write(p, json.dumps(data, indent=2, sort_keys=True) + "\n", mode=0o600)


def last_verdicts(app_dir: Path) -> dict[str, Any] | None:
    p = verify_state_path(app_dir)
    try:
        data = json.loads(p.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def format_last(v: dict[str, Any]) -> list[str]:
    out = []
    for target, x in sorted(v.items()):
        if not isinstance(x, dict):
            continue
        verdict = "passed" if x.get("passed") else ("unreachable" if x.get("reachable") is False else "FAILED")
        extra = f" ({', '.join(x.get('failed') or [])})" if x.get("failed") else ""
        p95 = f", p95 {x['p95_ms']:.0f} ms" if isinstance(x.get("p95_ms"), (int, float)) else ""
        out.append(f"verify -> {target}: {verdict}{extra} at {x.get('time')}: {x.get('url')}{p95}")
    return out
