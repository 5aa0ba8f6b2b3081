"""What `flymigrate plan` loads: no vendor SDK and nothing a plan does not run (issue 16, "Fast to answer").

Start-up time is measured in scripts/bench_plan, never asserted here; this checks the import set, which is what
keeps it low: a fresh interpreter runs the CLI's `plan` (every target and format, the comparison embedded) and
reports which of the modules plan must not need were loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys

from .helpers import EXAMPLE, REPO

# vendor SDKs and UI toolkits (design.md layering) and the layers above the core
NEVER = ("modal", "runpod", "boto3", "botocore", "s3transfer", "google", "huggingface_hub", "grpclib", "textual",
         "rich", "yaml", "flymigrate.apply", "flymigrate.transfer", "flymigrate.tui", "flymigrate.verify",
         "flymigrate.commands.apply", "flymigrate.commands.compare", "flymigrate.commands.tui")
# standard-library modules only a crash, an apply or a transfer needs
NOT_FOR_PLAN = ("hashlib", "_hashlib", "traceback", "ssl", "http.client", "urllib.request", "asyncio", "sqlite3",
                "subprocess", "pickle", "socket", "logging", "concurrent.futures", "uuid", "decimal")


def _plan_in_fresh_interpreter(argv_list: list[list[str]]) -> dict:
    code = (
        "import sys, io, contextlib, json\n"
        "from flymigrate.cli import main\n"
        "outs = []\n"
        f"for argv in {argv_list!r}:\n"
        "    buf = io.StringIO()\n"
        "    with contextlib.redirect_stdout(buf):\n"
        "        rc = main(argv)\n"
        "    assert rc == 0, (argv, rc)\n"
        "    outs.append(buf.getvalue())\n"
        "print(json.dumps({'modules': sorted(sys.modules), 'outs': outs}))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _loaded(modules: list[str], names: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if any(m == n or m.startswith(n + ".") for m in modules))


def test_plan_loads_no_sdk_and_nothing_it_does_not_run():
    argv = [["plan", str(EXAMPLE), "--to", t, "--format", f] for t in ("modal", "runpod", "cloudrun")
            for f in ("text", "json", "markdown")]
    got = _plan_in_fresh_interpreter(argv)
    # the comparison is still embedded, sensitivity included (the work it costs is what bench_plan measures)
    text, js, md = got["outs"][:3]
    assert "Sensitivity" in text and "**Sensitivity**" in md
    assert json.loads(js)["compare"]["sensitivity"]
    assert _loaded(got["modules"], NEVER) == []
    assert _loaded(got["modules"], NOT_FOR_PLAN) == []
    # the check can fail: these are loaded by the same run
    assert _loaded(got["modules"], ("flymigrate.compare.rows", "tomllib", "argparse")) == [
        "argparse", "flymigrate.compare.rows", "tomllib"]
