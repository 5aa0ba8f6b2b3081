"""Cloud Run: the GPU the image can run on, the region that offers it, the startup probe inside the limits Cloud
Run accepts for services, a weights mount the server can start on, and private-by-default auth.

The generated service.yaml is parsed with PyYAML and checked against the verified limits (targets/cloudrun.py)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from flymigrate.errors import UserError
from flymigrate.targets.cloudrun import GPU_REGIONS, L4, PRO6000, TARGET
from targets.conftest import plan_for, rendered

VLLM_OLD = "FROM vllm/vllm-openai:v0.6.3\n"
VLLM_NEW = "FROM vllm/vllm-openai:v0.10.1\n"
BIG = {"MODEL": "meta-llama/Llama-3.1-70B-Instruct"}
SMALL = {"MODEL": "Qwen/Qwen2.5-7B-Instruct"}


def service(plan) -> dict:  # type: ignore[no-untyped-def]
    return yaml.safe_load(rendered(plan, "service.yaml"))


def container(svc: dict) -> dict:
    return svc["spec"]["template"]["spec"]["containers"][0]


def test_a_big_model_on_an_old_vllm_is_blocked_with_the_fix(make_app) -> None:
    p = plan_for(make_app(dockerfile=VLLM_OLD, env=BIG), "cloudrun")
    dep = p.deployment
    assert dep.gpu is None and len(dep.blockers) == 1
    why = dep.blockers[0]
    assert "vLLM 0.6.3" in why and "RTX PRO 6000" in why and "~140 GB" in why
    assert "vllm/vllm-openai >= 0.9" in why and "Modal / RunPod" in why
    text = rendered(p, "service.yaml")
    assert text.splitlines()[1].startswith("# BLOCKED: ")
    assert "run.googleapis.com/accelerator" not in text  # no GPU the image cannot use
    assert dep.to_json()["blockers"] == [why] and dep.to_json()["gpu"]["why"] == why
    assert "BLOCKED" in dep.gpu_label
    # apply --deploy refuses before any gcloud call
    with pytest.raises(UserError, match="cannot run this deployment"):
        TARGET.deploy(SimpleNamespace(dep=dep))


def test_a_big_model_on_a_blackwell_ready_image_gets_the_rtx_pro_6000(make_app) -> None:
    p = plan_for(make_app(dockerfile=VLLM_NEW, env=BIG, region="cdg"), "cloudrun")
    dep = p.deployment
    assert dep.blockers == () and dep.gpu == PRO6000 and "vLLM 0.10.1" in dep.gpu_reason
    assert dep.region == "europe-west4"  # cdg's nearest, europe-west1, has no RTX PRO 6000
    svc = service(p)
    tspec = svc["spec"]["template"]["spec"]
    assert tspec["nodeSelector"]["run.googleapis.com/accelerator"] == PRO6000
    lim = container(svc)["resources"]["limits"]
    assert int(lim["cpu"]) >= 20 and int(lim["memory"].removesuffix("Gi")) >= 80 and lim["nvidia.com/gpu"] == "1"
    assert svc["metadata"]["annotations"]["run.googleapis.com/launch-stage"] == "BETA"
    assert any("Total Nvidia" in n or "RTX PRO 6000 quota" in n for n in dep.notes)


def test_a_model_that_fits_in_24_gb_gets_the_l4_whatever_the_stack(make_app) -> None:
    p = plan_for(make_app(dockerfile=VLLM_OLD, env=SMALL, region="iad"), "cloudrun")
    dep = p.deployment
    assert dep.gpu == L4 and dep.blockers == () and "7B" in dep.gpu_reason
    assert dep.region == "us-east4"
    assert any('"Total Nvidia L4 GPU allocation without zonal redundancy, per project per region" in us-east4' in n
               for n in dep.notes)
    svc = service(p)
    assert svc["spec"]["template"]["spec"]["nodeSelector"]["run.googleapis.com/accelerator"] == L4
    ann = svc["spec"]["template"]["metadata"]["annotations"]
    assert ann["run.googleapis.com/gpu-zonal-redundancy-disabled"] == "true"  # the quota the note names


def test_a_24_gb_fly_gpu_maps_to_the_l4_even_when_the_size_is_unknown(make_app) -> None:
    dep = plan_for(make_app(dockerfile=VLLM_OLD, size="a10", env={"MODEL": "org/custom"}), "cloudrun").deployment
    assert dep.gpu == L4 and dep.blockers == ()


@pytest.mark.parametrize("dockerfile, ok", [
    ("FROM ollama/ollama:0.3.14\n", False),
    ("FROM ollama/ollama:0.6.2\n", True),
    ("FROM nvidia/cuda:12.4.1-runtime-ubuntu22.04\nRUN apt-get install -y python3\n", False),
    ("FROM nvidia/cuda:12.8.1-runtime-ubuntu22.04\nRUN apt-get install -y python3\n", True),
    ("FROM python:3.11\nRUN pip install torch==2.4.1 transformers\n", False),
    ("FROM python:3.11\nRUN pip install torch==2.7.1 transformers\n", True),
    ("FROM pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime\n", False),
])
def test_the_image_stack_decides_whether_blackwell_is_possible(make_app, dockerfile: str, ok: bool) -> None:
    dep = plan_for(make_app(dockerfile=dockerfile, env=BIG), "cloudrun").deployment
    if ok:
        assert dep.gpu == PRO6000 and dep.blockers == ()
    else:
        assert dep.gpu is None and "cannot run on it" in dep.blockers[0]


def test_an_unreadable_stack_and_size_blocks_and_names_both_overrides(make_app) -> None:
    dep = plan_for(make_app(dockerfile="FROM ghcr.io/acme/server:3\n", env={"MODEL": "org/custom"}),
                   "cloudrun").deployment
    assert dep.gpu is None
    assert f"--gpu-type {PRO6000}" in dep.blockers[0] and f"--gpu-type {L4}" in dep.blockers[0]
    assert "cannot tell the model's size" in dep.blockers[0]


def test_gpu_type_override(make_app) -> None:
    app = make_app(dockerfile=VLLM_OLD, env=BIG)
    dep = plan_for(app, "cloudrun", gpu_type=L4).deployment
    assert dep.gpu == L4 and dep.blockers == () and dep.gpu_reason == "chosen with --gpu-type"
    dep = plan_for(app, "cloudrun", gpu_type=PRO6000).deployment  # the user cannot make 0.6.3 run on sm_120
    assert "vLLM 0.6.3" in dep.blockers[0]
    dep = plan_for(app, "cloudrun", gpu_type="nvidia-a100-80gb").deployment
    assert "not a Cloud Run GPU" in dep.blockers[0]


def test_a_region_without_the_gpu_is_blocked(make_app) -> None:
    dep = plan_for(make_app(dockerfile=VLLM_NEW, env=BIG), "cloudrun", region="europe-west1").deployment
    assert dep.gpu == PRO6000 and "europe-west1 does not offer nvidia-rtx-pro-6000" in dep.blockers[0]
    assert "europe-west1" in GPU_REGIONS[L4] and "europe-west1" not in GPU_REGIONS[PRO6000]
    dep = plan_for(make_app(dockerfile=VLLM_OLD, env=SMALL), "cloudrun", region="europe-west1").deployment
    assert dep.gpu == L4 and dep.blockers == ()


@pytest.mark.parametrize("env, expect_initial", [
    ({"MODEL": "openai/whisper-large-v3"}, None),  # loads fast: no initial delay holding traffic back
    (SMALL, True),  # ~15 GB through FUSE: part of the window is an initial delay
    ({"MODEL": "org/custom"}, True),  # unknown size: the whole 480 s
])
def test_startup_probe_stays_inside_cloud_runs_limits_for_services(make_app, env, expect_initial) -> None:
    c = container(service(plan_for(make_app(dockerfile=VLLM_OLD, size="a10", env=env), "cloudrun")))
    probe = c["startupProbe"]
    assert probe["httpGet"]["path"] == "/health"
    assert probe["failureThreshold"] * probe["periodSeconds"] <= 240
    assert probe.get("initialDelaySeconds", 0) <= 240
    assert probe["periodSeconds"] <= 240 and probe["timeoutSeconds"] <= probe["periodSeconds"]
    assert bool(probe.get("initialDelaySeconds")) == bool(expect_initial)
    assert probe["failureThreshold"] * probe["periodSeconds"] == 240  # the whole window is used


def test_weights_mount_is_writable_and_hf_cache_is_offline(make_app) -> None:
    app = make_app(dockerfile=VLLM_OLD, size="a10", mount="/root/.cache/huggingface", env=SMALL)
    p = plan_for(app, "cloudrun", weights_from="hf://Qwen/Qwen2.5-7B-Instruct", bucket="b1")
    svc = service(p)
    vol = svc["spec"]["template"]["spec"]["volumes"][0]["csi"]
    assert vol["driver"] == "gcsfuse.run.googleapis.com" and vol["readOnly"] is False
    assert vol["volumeAttributes"]["bucketName"] == "b1"
    assert set(vol["volumeAttributes"]["mountOptions"].split(",")) == {"implicit-dirs", "only-dir=gpu-app"}
    env = {e["name"]: e.get("value") for e in container(svc)["env"]}
    assert env["HF_HUB_OFFLINE"] == "1" and "PORT" not in env
    assert "roles/storage.objectUser" in rendered(p, "service.yaml")


def test_private_with_the_identity_token_beside_the_apps_key(make_app) -> None:
    app = make_app(dockerfile=VLLM_OLD, size="a10", env=SMALL)
    # an http_service app was public on Fly (APP.fly.dev): by default it stays public, warned
    pub = plan_for(app, "cloudrun")
    assert pub.deployment.public and pub.deployment.auth_header is None
    ann = service(pub)["metadata"].get("annotations") or {}
    assert ann.get("run.googleapis.com/invoker-iam-disabled") == "true"
    assert any(f.code == "public-endpoint" for f in pub.findings)
    p = plan_for(app, "cloudrun", access="private")
    assert p.deployment.auth_header.startswith("X-Serverless-Authorization: Bearer ")
    svc = service(p)
    ann = svc["metadata"].get("annotations") or {}
    assert "run.googleapis.com/invoker-iam-disabled" not in ann  # private unless the user uncomments it
    text = rendered(p, "service.yaml")
    public = text.replace('# run.googleapis.com/invoker-iam-disabled: "true"',
                          'run.googleapis.com/invoker-iam-disabled: "true"')
    assert yaml.safe_load(public)["metadata"]["annotations"]["run.googleapis.com/invoker-iam-disabled"] == "true"


def test_fly_default_concurrency_is_translated(make_app) -> None:
    svc = service(plan_for(make_app(dockerfile=VLLM_OLD, size="a10", env=SMALL), "cloudrun"))
    assert svc["spec"]["template"]["spec"]["containerConcurrency"] == 20
    conc = '  [http_service.concurrency]\n    type = "requests"\n    soft_limit = 6\n    hard_limit = 9\n'
    svc = service(plan_for(make_app(name="b", dockerfile=VLLM_OLD, size="a10", env=SMALL, concurrency=conc),
                           "cloudrun"))
    assert svc["spec"]["template"]["spec"]["containerConcurrency"] == 9


def test_blackwell_base_advice_is_a_cuda_12_8_image(tmp_path: Path) -> None:
    """What the Dockerfile rewrite must put on a Blackwell GPU: a CUDA >= 12.8 base passes the stack check."""
    from flymigrate.targets.cloudrun import blackwell_stack

    def dep(df: str):  # type: ignore[no-untyped-def]
        return SimpleNamespace(dockerfile_text=df, registry_image=None)

    assert blackwell_stack(dep("FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04\n"))[0] is True  # type: ignore[arg-type]
    assert blackwell_stack(dep("FROM nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04\n"))[0] is False  # type: ignore[arg-type]


def test_a_cuda_13_image_cannot_run_on_the_l4_driver(make_app) -> None:
    df = "FROM nvidia/cuda:13.0.1-runtime-ubuntu24.04\nRUN apt-get install -y python3\n"
    dep = plan_for(make_app(dockerfile=df, size="a10"), "cloudrun").deployment
    assert dep.gpu == L4 and "CUDA 13" in dep.blockers[0]
    dep = plan_for(make_app(name="b", dockerfile=df, size="a10"), "cloudrun", gpu_type=PRO6000).deployment
    assert dep.gpu == PRO6000 and dep.blockers == ()
