"""The generated configs are valid for their platform: modal_app.py imports with the installed modal and uses no
removed parameter; service.yaml parses and has what a Cloud Run GPU service needs; the RunPod spec only uses field
names of RunPod's saveTemplate / saveEndpoint inputs."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from flymigrate.targets.modal_files import REMOVED_PARAMS
from flymigrate.targets.runpod_files import ENDPOINT_FIELDS

GOLDEN = Path(__file__).parent / "golden"


def _files(name: str) -> list[Path]:
    return sorted(GOLDEN.glob(f"*/*/{name}"))


def test_modal_apps_import_with_installed_modal(tmp_path: Path) -> None:
    apps = _files("modal_app.py")
    assert len(apps) >= 5
    script = ["import importlib.util, sys"]
    for i, p in enumerate(apps):
        d = tmp_path / f"app{i}"
        d.mkdir()
        (d / "modal_app.py").write_text(p.read_text())
        (d / "Dockerfile").write_text("FROM python:3.11-slim\n")
        script.append(f"s = importlib.util.spec_from_file_location('m{i}', {str(d / 'modal_app.py')!r}); "
                      f"m = importlib.util.module_from_spec(s); s.loader.exec_module(m); "
                      f"assert getattr(m, 'Serve', None) is not None or hasattr(getattr(m, 'run', None), 'remote'), {str(p)!r}")
    env = dict(os.environ, MODAL_TOKEN_ID="ak-dummy", MODAL_TOKEN_SECRET="as-dummy",
               MODAL_SERVER_URL="http://127.0.0.1:9", HOME=str(tmp_path), MODAL_CONFIG_PATH=str(tmp_path / "m.toml"))
    r = subprocess.run([sys.executable, "-W", "error::DeprecationWarning:modal", "-c", "\n".join(script)], env=env,
                       capture_output=True, check=False, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]


def test_modal_apps_use_only_current_parameter_names() -> None:
    for p in _files("modal_app.py"):
        tree = ast.parse(p.read_text())
        kws = {k.arg for n in ast.walk(tree) if isinstance(n, ast.Call) for k in n.keywords}
        assert not kws & set(REMOVED_PARAMS), p


def test_cloudrun_yaml_has_gpu_service_fields() -> None:
    files = _files("service.yaml")
    assert files
    for p in files:
        doc = yaml.safe_load(p.read_text())
        assert doc["apiVersion"] == "serving.knative.dev/v1" and doc["kind"] == "Service", p
        tpl = doc["spec"]["template"]
        ann = tpl["metadata"]["annotations"]
        assert all(isinstance(v, str) for v in ann.values()), p  # annotations must be strings
        assert ann["run.googleapis.com/cpu-throttling"] == "false"
        assert int(ann["autoscaling.knative.dev/minScale"]) <= int(ann["autoscaling.knative.dev/maxScale"])
        spec = tpl["spec"]
        assert 1 <= spec["containerConcurrency"] <= 1000
        (c,) = spec["containers"]
        assert c["image"] and c["ports"][0]["containerPort"]
        assert "PORT" not in {e["name"] for e in c.get("env", [])}  # reserved by Cloud Run
        probe = c["startupProbe"]
        # Cloud Run's limits for services: failureThreshold x periodSeconds <= 240, initialDelaySeconds <= 240
        assert probe["periodSeconds"] * probe["failureThreshold"] <= 240 and probe.get("initialDelaySeconds", 0) <= 240
        if "nodeSelector" in spec:
            assert spec["nodeSelector"]["run.googleapis.com/accelerator"] in ("nvidia-l4", "nvidia-rtx-pro-6000")
            assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"
            assert ann["run.googleapis.com/execution-environment"] == "gen2"
        for e in c.get("env", []):
            if "valueFrom" in e:
                ref = e["valueFrom"]["secretKeyRef"]
                assert ref["name"] and ref["key"] == "latest"
            else:
                assert isinstance(e["value"], str)
        for v in spec.get("volumes", []):
            assert v["csi"]["driver"] == "gcsfuse.run.googleapis.com"
            assert v["csi"]["volumeAttributes"]["bucketName"]


def test_runpod_spec_field_names() -> None:
    files = _files("runpod-endpoint.json")
    assert files
    for p in files:
        spec = json.loads(p.read_text())
        ep = spec["endpoint"]
        assert set(ep) <= set(ENDPOINT_FIELDS), p  # REST API v2 CreateEndpointRequest fields
        assert ep["type"] == "LOAD_BALANCER" and ep["scaling"]["type"] == "REQUEST_COUNT"
        assert ep["gpu"]["pools"][0] in ("AMPERE_16", "AMPERE_24", "ADA_24", "AMPERE_48", "ADA_48_PRO",
                                         "AMPERE_80", "ADA_80_PRO", "HOPPER_141")
        assert "PORT" in ep["env"] and "PORT_HEALTH" in ep["env"]
        assert all(isinstance(v, str) for v in ep["env"].values()), p