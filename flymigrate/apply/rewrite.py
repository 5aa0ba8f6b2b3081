"""The Dockerfile step's text rewrites live in the core (``flymigrate.rewrite`` and ``flymigrate.rules``), where
the planner runs the same code to know what apply will really change. This module keeps the old import path."""

from __future__ import annotations

from ..rewrite import (
    COMMAND,
    CUDA_BASE,
    FILES,
    MARK,
    NO_CUDA,
    REGISTRY,
    RewriteContext,
    dockerfile_checks,
    effective_command,
    explicit_command_lines,
    files_lines,
    fix_env_value,
    fix_fly_vars,
    fix_ipv6,
    fly_value,
    rewrite_dockerfile,
    rewrite_script,
    runpod_link_lines,
    script_checks,
    served_process_command,
    thin_dockerfile,
)

__all__ = ["COMMAND", "CUDA_BASE", "FILES", "MARK", "NO_CUDA", "REGISTRY", "RewriteContext", "dockerfile_checks",
           "effective_command", "explicit_command_lines", "files_lines", "fix_env_value", "fix_fly_vars", "fix_ipv6",
           "fly_value", "rewrite_dockerfile", "rewrite_script", "runpod_link_lines", "script_checks",
           "served_process_command", "thin_dockerfile"]
