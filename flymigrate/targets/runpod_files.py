"""Render the RunPod Serverless endpoint spec (JSON). Pure and deterministic.

The ``endpoint`` object is the body of RunPod's REST API v2 ``POST /v2/serverless`` (``CreateEndpointRequest``),
which ``apply --deploy`` sends unchanged (and, minus ``type``, as ``PATCH /v2/serverless/{id}`` when it changed).
Source: runpod/docs ``api-reference-v2/openapi.json`` (snapshot 2026-08-20, "Runpod public REST API - v2"):

* ``type: LOAD_BALANCER`` - requests go straight to the worker's HTTP server at
  ``https://<ENDPOINT_ID>.api.runpod.ai/<path>``; a ``QUEUE`` endpoint (what ``runpod.create_endpoint()`` of the
  Python SDK creates: its ``saveEndpoint`` mutation sends no type, runpod-python ``api/mutations/endpoints.py``)
  only runs ``/run`` jobs through a handler and never calls an HTTP server.
* ``scaling: {type: REQUEST_COUNT, requestCount}`` - required for load-balancing endpoints (``RequestCountScaling``:
  "Required for load-balancing endpoints"); RunPod's own Flash SDK does the same for LB endpoints
  (runpod/flash ``core/resources/load_balancer_sls_resource.py``: ``type = LB``, ``REQUEST_COUNT`` scaler).
* container settings inline (``image``, ``env`` as an object, ``ports`` as ``["8000/http"]``, ``disk``): v2 needs
  no separate template. ``env`` carries plain values and ``{{ RUNPOD_SECRET_<name> }}`` references only.
* ``gpu: {pools, count}`` (pool ids such as ``AMPERE_80``), ``workers: {min, max, idleTimeout}``,
  ``flashboot: FLASHBOOT|OFF``, ``dataCenterIds``, ``networkVolumes``.
"""

from __future__ import annotations

import json
from typing import Any

SCHEMA = "flymigrate/runpod-endpoint/v2"
# the CreateEndpointRequest fields flymigrate sends (UpdateEndpointRequest takes the same minus "type")
ENDPOINT_FIELDS = ("name", "type", "image", "args", "disk", "ports", "env", "registry", "gpu", "workers", "scaling",
                   "flashboot", "dataCenterIds", "networkVolumes", "timeout", "templateId", "cpu")
UPDATE_EXCLUDED = ("type",)
DEFAULT_POOL = "AMPERE_24"
CONTAINER_DISK_GB = 20
DEFAULT_REQUEST_COUNT = 20  # Fly's default soft_limit (type connections) when fly.toml sets none


def runpod_spec(dep: Any) -> dict[str, Any]:
    cfg = dict(dep.scaling.config) if dep.scaling else {}
    env = {k: v for k, v in dep.env}
    env.update({name: ref for name, ref in dep.secret_refs})
    health_port = int(env.get("PORT_HEALTH") or dep.port)
    ports = [f"{dep.port}/http"] + ([f"{health_port}/http"] if health_port != dep.port else [])
    workers: dict[str, Any] = {"min": int(cfg.get("workersMin", 0)), "max": int(cfg.get("workersMax", 1))}
    if cfg.get("idleTimeout"):
        workers["idleTimeout"] = max(1, min(3600, int(cfg["idleTimeout"])))  # EndpointWorkers: 1..3600 s
    endpoint: dict[str, Any] = {
        "name": f"flymigrate-{dep.slug}",
        "type": "LOAD_BALANCER",
        "image": dep.image_ref,
        "disk": CONTAINER_DISK_GB,
        "ports": ports,
        "env": dict(sorted(env.items())),
        "gpu": {"pools": [dep.gpu or DEFAULT_POOL], "count": max(dep.gpu_count, 1)},
        "workers": workers,
        "scaling": {"type": "REQUEST_COUNT",
                    "requestCount": int(cfg.get("scalerValue") or DEFAULT_REQUEST_COUNT)},
        "flashboot": "FLASHBOOT" if cfg.get("flashboot") else "OFF",
    }
    if dep.layout.mount_path:
        endpoint["dataCenterIds"] = [dep.datacenter or "<DATACENTER>"]
        endpoint["networkVolumes"] = [dep.volume_id or "<VOLUME_ID>"]
    elif dep.datacenter:
        endpoint["dataCenterIds"] = [dep.datacenter]
    return {"schema": SCHEMA, "api": "POST https://api.runpod.io/v2/serverless", "endpoint": endpoint,
            "health": {"path": "/ping", "port": health_port},
            "auth_header": dep.auth_header}


def update_body(endpoint: dict[str, Any]) -> dict[str, Any]:
    """The PATCH /v2/serverless/{id} body: everything but the routing type (fixed at create)."""
    return {k: v for k, v in endpoint.items() if k not in UPDATE_EXCLUDED}


def render_runpod_spec(dep: Any) -> str:
    return json.dumps(runpod_spec(dep), indent=2, sort_keys=False) + "\n"
