"""The core imports no vendor SDK and no textual: `flymigrate plan` starts fast (design.md layering)."""

from __future__ import annotations

import subprocess
import sys

from .helpers import EXAMPLE, REPO

HEAVY = ("textual", "modal", "boto3", "botocore", "google", "huggingface_hub", "runpod", "grpclib", "rich", "yaml")


def test_plan_imports_no_sdk():
    code = (
        "import sys, io, contextlib\n"
        "from flymigrate.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    rc = main(['plan', {str(EXAMPLE)!r}, '--to', 'modal'])\n"
        "assert rc == 0, rc\n"
        f"bad = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
        "print(','.join(bad))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ""


def test_core_modules_import_nothing_heavy():
    mods = ["flymigrate.api", "flymigrate.model", "flymigrate.planner", "flymigrate.parse.flytoml",
            "flymigrate.targets.modal", "flymigrate.targets.runpod", "flymigrate.targets.cloudrun",
            "flymigrate.transfer"]
    code = "import sys\n" + "".join(f"import {m}\n" for m in mods) + (
        f"print(','.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ""
