"""Helpers shared by the target translators: Fly's scaling semantics, read once."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # type checkers see the standard decorator
    from dataclasses import dataclass
else:  # start-up time: no exec per generated method (flymigrate/_dataclass.py)
    from .._dataclass import dataclass

from ..model import Finding, Service

# Fly Proxy stops idle machines "every few minutes"; 300 s is what users saw in practice and the most
# faithful idle timeout to carry over (research/users.md P5). Targets default far lower (5-60 s).
FLY_IDLE_EQUIVALENT_S = 300


@dataclass(frozen=True)
class FlyScaling:
    always_on: bool  # auto_stop off (or never configured: Fly's default is off)
    suspend: bool
    min_running: int
    max_guess: int
    auto_start: bool
    soft: int | None
    hard: int | None
    ctype: str | None
    where: str | None
    concurrency_where: str | None


def read_fly_scaling(svc: Service | None, max_guess: int) -> tuple[FlyScaling, list[Finding]]:
    findings: list[Finding] = []
    if svc is None:
        return FlyScaling(True, False, 1, max(max_guess, 1), True, None, None, None, None, None), [
            Finding("warning", "no-service", "fly.toml has no [http_service] or [[services]]: the app is not "
                    "reachable over HTTP on Fly, so there is no request-driven scaling to translate. It is "
                    "treated as one always-on worker.", None, "scaling")]
    c = svc.concurrency
    always_on = svc.auto_stop == "off"
    if not svc.auto_stop_set:
        findings.append(Finding("info", "auto-stop-default", "auto_stop_machines is not set; Fly's default is "
                                "\"off\" (machines keep running), so the translation keeps capacity warm.",
                                svc.where, "scaling"))
    if svc.auto_stop != "off" and not svc.auto_start:
        findings.append(Finding("warning", "never-restarts", "auto_stop_machines is on and auto_start_machines is "
                                "false: on Fly a stopped machine never came back. The targets always start on "
                                "demand; check this is what you want.", svc.where, "scaling"))
    min_running = svc.min_machines_running
    return FlyScaling(always_on, svc.auto_stop == "suspend", min_running, max(max_guess, min_running, 1),
                      svc.auto_start, c.soft_limit if c else None, c.hard_limit if c else None,
                      c.type if c else None, svc.where, c.where if c else None), findings
