"""`flymigrate compare`: golden output per fixture app and exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from flymigrate.cli import main

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures"
GOLDEN = HERE / "golden"

# fixture -> extra arguments (one case per traffic situation)
CASES = {
    "ondemand-a10": ["--weights-gb", "14.5"],
    "steady-l40s": ["--seconds-per-request", "4"],
    "multi-a100-80": ["--weights-gb", "120", "--requests-per-day", "3000", "--seconds-per-request", "6",
                      "--busy-hours", "12"],
    "worker-a100-40": [],
}


@pytest.fixture(autouse=True)
def _stable_env(monkeypatch, tmp_path):
    monkeypatch.setenv("FLYMIGRATE_TODAY", "2026-11-22")
    monkeypatch.setenv("FLYMIGRATE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("NO_COLOR", "1")


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden file {path}; run with UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"{name} changed; if intended, run with UPDATE_GOLDEN=1"


@pytest.mark.parametrize("fixture", sorted(CASES))
@pytest.mark.parametrize("fmt,ext", [("text", "txt"), ("markdown", "md"), ("json", "json")])
def test_golden(capsys, monkeypatch, fixture, fmt, ext):
    monkeypatch.chdir(FIXTURES)
    rc, out, err = run_cli(capsys, "compare", fixture, "--format", fmt, "--color", "never", *CASES[fixture])
    assert rc == 0, err
    check_golden(f"{fixture}.{ext}", out)


def test_golden_numbers_are_concrete(capsys, monkeypatch):
    monkeypatch.chdir(FIXTURES)
    rc, out, _ = run_cli(capsys, "compare", "multi-a100-80", "--format", "json", *CASES["multi-a100-80"])
    data = json.loads(out)
    assert rc == 0 and data["schema"] == "flymigrate/compare/v2"
    rows = {r["key"]: r for r in data["rows"]}
    assert rows["cloudrun"]["offered"] is False
    assert rows["modal"]["gpu"]["name"] == "A100-80GB:2"
    assert rows["fly"]["monthly_warm"] == pytest.approx(2 * 1.50 * 730)
    # 1 machine kept running (min_machines_running = 1): RunPod active = 2 x 0.00060 $/s all month + overflow
    assert data["traffic"]["warm_instances"] == 1
    assert rows["runpod-active"]["monthly_warm"] >= 2 * 0.00060 * 730 * 3600 - 0.01


def test_worker_volume_size_is_stated_not_used(capsys, monkeypatch):
    monkeypatch.chdir(FIXTURES)
    rc, out, _ = run_cli(capsys, "compare", "worker-a100-40", "--format", "json")
    data = json.loads(out)
    assert rc == 0 and data["weights_bytes"] is None
    assert any("models" in a and "100 GB" in a and "upper bound" in a for a in data["assumptions"])
    assert data["traffic"]["warm_instances"] == 1  # no service: Fly's proxy never stopped it


def test_gpu_override_and_targets(capsys, monkeypatch):
    monkeypatch.chdir(FIXTURES)
    rc, out, _ = run_cli(capsys, "compare", "ondemand-a10", "--gpu", "l40s:2", "--to", "cloudrun", "--to", "modal",
                         "--format", "json")
    data = json.loads(out)
    assert rc == 0
    assert data["gpu"] == {"kind": "l40s", "count": 2, "origin": "--gpu"}
    assert [r["key"] for r in data["rows"]] == ["modal", "cloudrun", "fly"]
    assert data["recommendation"]["key"] == "modal"  # Cloud Run cannot run 2 GPUs


def test_stale_data_warning_in_cli(capsys, monkeypatch):
    monkeypatch.chdir(FIXTURES)
    monkeypatch.setenv("FLYMIGRATE_TODAY", "2027-06-01")
    rc, out, _ = run_cli(capsys, "compare", "ondemand-a10")
    assert rc == 0
    assert "WARNING: The price data is from 2026-11-22, 191 days ago (over 90)" in out


@pytest.mark.parametrize("argv,needle", [
    (["compare", "does-not-exist"], "does not exist"),
    (["compare", "ondemand-a10", "--gpu", "v100"], "unknown GPU kind"),
    (["compare", "ondemand-a10", "--gpu", "a10:9"], "1-8"),
    (["compare", "ondemand-a10", "--busy-hours", "30"], "busy-hours"),
    (["compare", "ondemand-a10", "--seconds-per-request", "0"], "seconds-per-request"),
    (["compare", "ondemand-a10", "--weights-gb", "-1"], "weights-gb"),
    (["compare", "ondemand-a10", "--prices", "missing.toml"], "cannot read the price data"),
])
def test_usage_errors_exit_2(capsys, monkeypatch, argv, needle):
    monkeypatch.chdir(FIXTURES)
    rc, out, err = run_cli(capsys, *argv)
    assert rc == 2
    assert out == ""
    assert needle in err and err.startswith("flymigrate: error:")


def test_no_gpu_in_fly_toml_exits_2(capsys, monkeypatch, tmp_path):
    (tmp_path / "fly.toml").write_text('app = "cpu-only"\n[http_service]\n  internal_port = 8080\n')
    rc, _, err = run_cli(capsys, "compare", str(tmp_path))
    assert rc == 2 and "no GPU" in err and "--gpu" in err
    rc, out, _ = run_cli(capsys, "compare", str(tmp_path), "--gpu", "a10", "--format", "json")
    assert rc == 0 and json.loads(out)["gpu"]["origin"] == "--gpu"


def test_bad_format_is_argparse_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["compare", ".", "--format", "yaml"])
    assert exc.value.code == 2


def test_rich_output_when_color_forced(capsys, monkeypatch):
    monkeypatch.chdir(FIXTURES)
    rc, out, _ = run_cli(capsys, "compare", "ondemand-a10", "--color", "always", "--weights-gb", "14.5")
    assert rc == 0
    assert "\x1b[" in out and "Recommended:" in out


def test_zero_requests_costs_nothing_scaling_to_zero(capsys, monkeypatch):
    monkeypatch.chdir(FIXTURES)
    rc, out, _ = run_cli(capsys, "compare", "ondemand-a10", "--requests-per-day", "0", "--format", "json")
    data = json.loads(out)
    assert rc == 0
    assert data["recommendation"]["key"] == "modal" and data["recommendation"]["monthly"] == 0.0
    assert "costs the same as Cloud Run" in data["recommendation"]["text"]
    assert {r["key"]: r["monthly_scale_to_zero"] for r in data["rows"]}["runpod-flex"] == 0.0


def test_command_module_import_is_light():
    import subprocess
    import sys

    code = ("import sys, flymigrate.commands.compare; "
            "bad = [m for m in ('flymigrate.compare', 'rich', 'tomllib', 'textual', 'modal', 'runpod') "
            "if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(HERE.parent.parent)).stdout.strip()
    assert out == "[]"
