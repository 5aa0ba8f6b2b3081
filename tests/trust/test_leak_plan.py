"""No canary secret reaches stdout, stderr, reports, generated files, the state dir or argv: `plan`."""

from __future__ import annotations

import pytest
from conftest import Sandbox
from leak import Canaries, flymigrate, run_watched


@pytest.mark.parametrize("fmt", ["dotenv", "env-dump"])
def test_plan_every_format_leaks_nothing(sandbox: Sandbox, example_app, canaries: Canaries, fmt: str) -> None:
    secrets = canaries.write_secrets(sandbox.root / f"secrets.{fmt}", fmt)
    env = canaries.env(sandbox.env)
    for out_fmt in ("text", "markdown", "json"):
        out = sandbox.root / f"plan.{out_fmt}"
        run = run_watched(flymigrate("plan", str(example_app), "--to", "modal", "--secrets", str(secrets),
                                     "--secrets", str(example_app / "fly-secrets.json"), "--format", out_fmt,
                                     "--out", str(out)), env=env, cwd=example_app)
        assert run.returncode == 0, run.stderr
        assert out.exists()
        # the export's names do show up (that is the point), the values never
        assert "OPENAI_API_KEY" in run.stdout or "HF_TOKEN" in run.stdout
        canaries.assert_clean(run=run, paths=[sandbox.root], exclude=[secrets])


def test_plan_names_only_and_values_export_across_targets(sandbox: Sandbox, example_app, canaries: Canaries) -> None:
    secrets = canaries.write_secrets(sandbox.root / "secrets.env")
    names = canaries.write_secrets(sandbox.root / "names.json", "fly-json")
    env = canaries.env(sandbox.env)
    for target in ("runpod", "cloudrun"):
        run = run_watched(flymigrate("plan", str(example_app), "--to", target, "--secrets", str(names),
                                     "--secrets", str(secrets), "--format", "json"), env=env)
        assert run.returncode == 0, run.stderr
        canaries.assert_clean(run=run, paths=[sandbox.root], exclude=[secrets])


def test_bad_secrets_file_error_does_not_echo_values(sandbox: Sandbox, example_app, canaries: Canaries) -> None:
    v = canaries.values["SECRET_PLAIN"]
    cases = {
        "no-equals": f"GOOD=1\n{v}\n",
        "bad-name": f"{v}+x==\n", "bad-name2": f"my {v}=x\n",
        "unclosed": f"K='{v}\n",
        "trailing": f"K='a' {v}\n",
        "unclosed-triple": f'K="""{v}\n',
        "json": f'[{{"Name": "A", "Value": "{v}"}}, ',
        "latin1": ("K=" + v + "\xe9\n").encode("latin-1").decode("latin-1"),
    }
    env = canaries.env(sandbox.env)
    for name, text in cases.items():
        p = sandbox.root / f"bad-{name}.env"
        p.write_bytes(text.encode("latin-1") if name == "latin1" else text.encode())
        p.chmod(0o600)
        run = run_watched(flymigrate("plan", str(example_app), "--to", "modal", "--secrets", str(p)), env=env)
        assert run.returncode == 2, (name, run.returncode, run.stderr)
        assert "Traceback" not in run.stderr
        canaries.assert_clean(run=run, paths=[sandbox.state, sandbox.home])


def test_secrets_in_fly_toml_env_and_code_stay_out_of_crash_logs(sandbox: Sandbox, example_app, canaries: Canaries
                                                                  ) -> None:
    """An internal error (forced via a broken module) writes a crash log: it must hold no value."""
    secrets = canaries.write_secrets(sandbox.root / "secrets.env")
    env = canaries.env(sandbox.env)
    # make the renderer blow up with the value in a local variable and in the exception's message path
    shim = sandbox.root / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(
        "import flymigrate.parse.secrets as m\n"
        "orig = m.load_secrets\n"
        "def boom(*a, **k):\n"
        "    exp = orig(*a, **k)\n"
        "    vals = [s.value.reveal() for s in exp.secrets if s.value]\n"
        "    raise RuntimeError('parse failed near ' + repr(vals))\n"
        "m.load_secrets = boom\n")
    env["PYTHONPATH"] = f"{shim}:{env['PYTHONPATH']}"
    run = run_watched(flymigrate("plan", str(example_app), "--to", "modal", "--secrets", str(secrets)), env=env)
    assert run.returncode == 1, run.stderr
    assert "internal error" in run.stderr and "Traceback" not in run.stderr
    crash = list((sandbox.state / "crash").glob("*.log"))
    assert crash, run.stderr
    canaries.assert_clean(run=run, paths=[sandbox.state, sandbox.home, example_app])
    # --debug shows the traceback on screen: redacted too
    run = run_watched(flymigrate("--debug", "plan", str(example_app), "--to", "modal", "--secrets", str(secrets)),
                      env=env)
    assert run.returncode == 1 and "RuntimeError" in run.stderr
    canaries.assert_clean(run=run, paths=[sandbox.state, sandbox.home, example_app])
