"""Render the RunPod Serverless template + endpoint spec (JSON). Pure and deterministic.

Field names are those of RunPod's GraphQL ``saveTemplate`` / ``saveEndpoint`` inputs, the API the runpod SDK
(``runpod.create_template`` / ``runpod.create_endpoint``) sends, so ``--deploy`` passes them through unchanged.
The worker is a load-balancing one: the server listens on ``PORT`` and answers ``GET /ping`` on ``PORT_HEALTH``.
"""

from __future__ import annotations

import json
from typing import Any

TEMPLATE_FIELDS = ("name", "imageName", "dockerArgs", "containerDiskInGb", "volumeInGb", "volumeMountPath", "ports",
                   "env", "isServerless", "containerRegistryAuthId", "startSsh", "isPublic", "readme")
ENDPOINT_FIELDS = ("name", "templateId", "gpuIds", "networkVolumeId", "locations", "idleTimeout", "scalerType",
                   "scalerValue", "workersMin", "workersMax", "allowedCudaVersions", "gpuCount", "flashBootType")


def runpod_spec(spec: Any) -> dict[str, Any]:
    s = spec
    cfg = dict(s.scaling.config) if s.scaling else {}
    env = [{"key": k, "value": v} for k, v in s.env]
    env += [{"key": name, "value": ref} for name, ref in s.secret_refs]
    template: dict[str, Any] = {
        "name": f"flymigrate-{s.slug}",
        "imageName": s.image_ref,
        "dockerArgs": " ".join(s.command) if s.command and s.dockerfile_text is None and s.registry_image else "",
        "containerDiskInGb": 20,
        "volumeInGb": 0,
        "ports": f"{s.port}/http",
        "env": env,
        "isServerless": True,
    }
    endpoint: dict[str, Any] = {
        "name": f"flymigrate-{s.slug}",
        "gpuIds": s.gpu or "AMPERE_24",
        "gpuCount": max(s.gpu_count, 1),
        "networkVolumeId": s.volume_id or ("<VOLUME_ID>" if s.layout.mount_path else ""),
        "locations": s.datacenter or ("<DATACENTER>" if s.layout.mount_path else ""),
        "idleTimeout": cfg.get("idleTimeout", 5),
        "scalerType": cfg.get("scalerType", "QUEUE_DELAY"),
        "scalerValue": cfg.get("scalerValue", 4),
        "workersMin": cfg.get("workersMin", 0),
        "workersMax": cfg.get("workersMax", 1),
    }
    if cfg.get("flashboot"):
        endpoint["flashBootType"] = "FLASHBOOT"
    return {"schema": "flymigrate/runpod-endpoint/v1", "template": template, "endpoint": endpoint,
            "health": {"path": "/ping", "port": s.port}}


def render_runpod_spec(spec: Any) -> str:
    return json.dumps(runpod_spec(spec), indent=2, sort_keys=False) + "\n"
