"""Modal: a generated ``modal_app.py`` (``@app.function`` + ``@modal.web_server``), Volumes, Secrets."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from ..deployment import PYTHON_IMAGE_HINTS, Deployment
from ..gpus import FLY_GPU_KINDS
from ..model import Finding, FlyApp, ScalingPlan, Service
from ..naming import slug
from .base import BaseTarget, CostRow, GeneratedFile, TargetGpu, VerifySpec
from .common import FLY_IDLE_EQUIVALENT_S, image_facts, read_fly_scaling

__all__ = ["TARGET", "ModalTarget", "slug"]


# Fly kind -> (Modal gpu= id, label, VRAM GB, reason). Sources: research/destinations.md (Modal GPU types),
# research/fly.md 1.9 (Fly's kinds).
_GPUS = {
    "a10": ("A10", "NVIDIA A10 24 GB", 24, "same GPU"),
    "l40s": ("L40S", "NVIDIA L40S 48 GB", 48, "same GPU"),
    "a100-pcie-40gb": ("A100-40GB", "NVIDIA A100 40 GB", 40, "same GPU"),
    "a100-sxm4-80gb": ("A100-80GB", "NVIDIA A100 80 GB", 80, "same GPU"),
}
_MAX_PER_CONTAINER = {"A10": 4}  # per container; others up to 8


class ModalTarget(BaseTarget):
    name = "modal"
    label = "Modal"
    short_label = "Modal"
    config_language = "python"
    cpu_form = "a Modal function with no gpu="
    compare_row = "modal"
    weights_fields = ("from",)
    blurb = "serverless GPU containers; Python-defined app, per-second billing, Volumes for weights"
    weights_mount_root = None
    # proxy auth: Modal-Key / Modal-Secret headers (modal.com/docs/guide/webhook-proxy-auth). Modal names no env
    # variables for these tokens; these are the names verify reads (MODAL_PROXY_TOKEN_* first)
    verify_spec = VerifySpec(
        auth="header-pair", pair_env=(("MODAL_PROXY_TOKEN_ID", "MODAL_PROXY_TOKEN_SECRET"), ("MODAL_KEY", "MODAL_SECRET")),
        pair_headers=("Modal-Key", "Modal-Secret"),
        # a private endpoint (proxy auth) wants the token id and secret in Modal-Key / Modal-Secret on every request
        # (modal.com/docs/guide/webhook-proxy-auth); Modal names no env vars for them: MODAL_KEY / MODAL_SECRET, the
        # names the plan's auth line and verify use
        client_headers=(("Modal-Key", "", "MODAL_KEY"), ("Modal-Secret", "", "MODAL_SECRET")),
        client_auth_private=True,
        client_env_note="a Proxy Auth Token's id and secret, modal.com/settings/proxy-auth-tokens",
        auth_hint="give a Modal proxy-auth token (MODAL_PROXY_TOKEN_ID and MODAL_PROXY_TOKEN_SECRET, from "
                  "Settings > Proxy Auth Tokens), in the environment or the --secrets export")

    def map_gpu(self, kind: str, count: int) -> TargetGpu:
        fly_vram = FLY_GPU_KINDS[kind]
        gid, label, vram, reason = _GPUS[kind]
        cap = _MAX_PER_CONTAINER.get(gid, 8)
        if count > cap:
            return TargetGpu(self.name, f"{gid}:{count}", label, vram, count, False, True,
                             f"Modal allows at most {cap} x {gid} per container; Fly had {count}")
        name = gid if count == 1 else f"{gid}:{count}"
        return TargetGpu(self.name, name, label, vram, count, vram >= fly_vram, False, reason)

    def cost_rows(self, dep: Deployment, prices: Any) -> list[CostRow]:
        rows = super().cost_rows(dep, prices)
        if not rows[0].offered:
            return rows
        sec = self.price_section(prices)
        # Modal bills CPU and memory on top of the GPU (max of request and usage); the data file says what a GPU
        # inference server is assumed to use
        host = sec["host"]
        host_s = float(host["cores"]) * float(host["per_core_s"]) + float(host["memory_gib"]) * float(host["per_gib_s"])
        r = rows[0]
        return [replace(r, host_per_s=host_s, notes=(f"host: {host['note']} (${host_s * 3600:.3f}/h)",))]

    def scaling(self, app: FlyApp, svc: Service | None, max_guess: int) -> tuple[ScalingPlan, list[Finding]]:
        fs, findings = read_fly_scaling(svc, max_guess)
        notes: list[str] = []
        mx = fs.max_guess
        if fs.always_on:
            mn = mx = max(fs.min_running, mx) if fs.min_running else mx
            idle = None
            notes.append(f"auto_stop off -> min_containers = max_containers = {mx} (always warm, billed always)")
        else:
            mn = fs.min_running
            idle = FLY_IDLE_EQUIVALENT_S
            notes.append(f"auto_stop {'suspend' if fs.suspend else 'stop'} -> scaledown_window = {idle} s "
                         "(Fly stopped idle machines after a few minutes; Modal's default is 60 s)")
        if fs.suspend:
            findings.append(Finding("warning", "suspend", "auto_stop_machines = \"suspend\" has no direct Modal "
                                    "equivalent (and Fly never suspended GPU machines); the nearest is "
                                    "enable_memory_snapshot=True to cut restarts, which is added commented out.",
                                    fs.where, "scaling"))
        config: list[tuple[str, object]] = [("min_containers", mn), ("max_containers", mx)]
        if idle is not None:
            config.append(("scaledown_window", idle))
        # @app.server: target_concurrency is where the autoscaler adds containers, max_concurrency the hard cap
        # (requests above it get 429) - the same roles as Fly's soft_limit and hard_limit (modal 1.6.4
        # App.server docstring; modal.com/docs/guide/servers). Without a setting Modal gives a container one
        # request at a time, so a Fly app with no setting gets Fly's own default (targets/common.py).
        if svc is not None:
            mx_c = fs.hard
            tgt = fs.soft if fs.soft and (fs.hard is None or fs.soft <= fs.hard) else None
            if tgt:
                config.append(("target_concurrency", tgt))
            if mx_c:
                config.append(("max_concurrency", mx_c))
            if fs.concurrency_default:
                notes.append(f"no concurrency in fly.toml -> Fly's default soft_limit {fs.soft} -> "
                             f"target_concurrency = {fs.soft}, no max_concurrency (Fly's docs give no hard limit)")
            elif fs.hard is None and fs.soft:
                notes.append(f"no hard_limit on Fly -> target_concurrency = {fs.soft}, no max_concurrency")
        else:
            mx_c = tgt = None
        if fs.ctype == "connections" and svc is not None:
            findings.append(Finding("warning", "connections-vs-inputs", "Fly counted concurrent *connections*; "
                                    "Modal counts concurrent requests. Streaming and WebSocket clients hold one "
                                    "request each for their whole duration.", fs.concurrency_where, "scaling"))
        return ScalingPlan(mn, mx, idle, mx_c, tgt, tuple(config), tuple(notes)), findings

    def weights_destination(self, app_name: str) -> str:
        return f"modal-volume://{self.volume_name(app_name)}/"

    def volume_name(self, app_name: str) -> str:
        return f"flymigrate-{slug(app_name)}-weights"

    def secret_name(self, app_name: str) -> str:
        return f"flymigrate-{slug(app_name)}-secrets"

    def secret_ref(self, app_name: str, name: str) -> str:
        return f"modal.Secret.from_name({self.secret_name(app_name)!r}) -> ${name}"

    def placeholder_url(self, app_name: str) -> str:
        # @app.server URLs: https://<workspace>--<app>-<name>.<routing region>.modal.direct (modal 1.6.4
        # modal/cli/curl.py examples `user--my-app.us-west.modal.direct`; routing_region defaults to "us-east";
        # modal-examples #1553); the class is named "serve"
        return f"https://<workspace>--flymigrate-{slug(app_name)}-serve.us-east.modal.direct"

    # ---- the deployment
    def finalize(self, dep: Deployment, app: FlyApp) -> Deployment:
        # Modal starts the container's Python itself: "the image is expected to have Python on PATH as `python`,
        # along with `pip`", else add_python= (modal 1.6.4 Image.from_registry docstring;
        # modal.com/docs/guide/existing-images). add_python copies a standalone CPython into /usr/local, ahead of
        # the image's own on PATH - right for an image with no Python (ollama, nvidia/cuda), wrong for one whose
        # server *is* Python (vLLM's images ship only `python3`: /usr/local/bin/python3 would then lack vllm).
        # Those get a `python -> python3` link instead.
        facts = image_facts(dep.dockerfile_text, dep.registry_image)
        add_python = None
        link = False
        notes = list(dep.notes)
        if facts.python == "none":
            add_python = "3.11"
        elif facts.python == "python3":
            link = True
            notes.append("the image has `python3` but no `python`, which Modal needs to start the container: "
                         "modal_app.py links python -> python3 (Image.dockerfile_commands)")
        elif facts.python == "unknown":
            text = (dep.dockerfile_text or "") + " " + (dep.registry_image or "")
            if not any(h in text.lower() for h in PYTHON_IMAGE_HINTS):
                add_python = "3.11"
        gpu = dep.gpu_type_override or dep.gpu
        serves_http = app.primary_service is not None
        # @app.server requires proxy auth unless unauthenticated=True (App.server docstring); clients send a Proxy
        # Auth Token's id and secret in Modal-Key / Modal-Secret (modal.com/docs/guide/webhook-proxy-auth), which
        # leaves Authorization to the app's own key (vLLM's --api-key)
        auth = ("Modal-Key: $MODAL_KEY, Modal-Secret: $MODAL_SECRET (a Proxy Auth Token from modal.com/settings/"
                "proxy-auth-tokens)") if serves_http and not dep.public else None
        if not serves_http:
            notes.append("fly.toml has no HTTP service: modal_app.py runs the command as a function (no web "
                         "endpoint); start it with `modal run modal_app.py` or spawn it after `modal deploy`")
        return replace(dep, add_python=add_python, python_link=link, volume_name=self.volume_name(dep.app_name),
                       gpu=gpu, auth_header=auth, notes=tuple(dict.fromkeys(notes)))

    def render(self, dep: Deployment, *, dockerfile_rel: str | None = None,
               context_rel: str | None = None) -> list[GeneratedFile]:
        from .modal_files import render_modal_app

        return [GeneratedFile("modal_app.py", render_modal_app(dep, dockerfile_rel=dockerfile_rel,
                                                               context_rel=context_rel))]

    def plan_notes(self, dep: Deployment) -> dict[str, list[str]]:
        if dep.dockerfile_text is not None:
            src = f"the {'generated ' if dep.dockerfile_is_thin else ''}Dockerfile (modal.Image.from_dockerfile)"
        elif dep.registry_image:
            src = f"the registry image {dep.registry_image} (modal.Image.from_registry)"
        else:
            src = "a Dockerfile you add"
        return {"dockerfile": [f"Modal builds the image from {src}"]}

    def weights_needs(self) -> list[str]:
        return [f"Modal credentials: {MODAL_CREDENTIALS_WHERE}"]

    def secrets_summary(self, dep: Deployment, n_values: int) -> str:
        return (f"Create the Modal secret {self.secret_name(dep.app_name)!r} with {n_values} value(s) through the "
                "Modal API (needs Modal credentials); modal_app.py references it by name")

    def secrets_apply(self, ctx: Any, preview: Any) -> str:
        values, _ = ctx.secret_values()
        name = self.secret_name(ctx.dep.app_name)
        _modal_create_secret(name, values)
        ctx.pause()
        return f"Modal secret {name!r} has {len(values)} key(s): {', '.join(sorted(values))}"

    def deploy_commands(self, dep: Deployment) -> list[str]:
        return ["modal deploy modal_app.py"]

    def credentials(self, step: str) -> tuple[str, ...]:
        if step in ("secrets", "deploy"):
            return ("a Modal token: MODAL_TOKEN_ID / MODAL_TOKEN_SECRET, or ~/.modal.toml from `modal token new`",)
        return ()

    def credentials_missing(self, step: str, env: dict[str, str]) -> str | None:
        if step not in ("secrets", "deploy"):
            return None
        # the modal client reads MODAL_TOKEN_ID/MODAL_TOKEN_SECRET, else the profile in MODAL_CONFIG_PATH or
        # ~/.modal.toml (modal/config.py: user_config_path, _SETTINGS "token_id"/"token_secret")
        if env.get("MODAL_TOKEN_ID") and env.get("MODAL_TOKEN_SECRET"):
            return None
        import os

        cfg = env.get("MODAL_CONFIG_PATH") or os.path.join(os.path.expanduser("~"), ".modal.toml")
        if os.path.isfile(cfg):
            return None
        return ("no Modal credentials: MODAL_TOKEN_ID / MODAL_TOKEN_SECRET are not set and there is no "
                f"{cfg}. Run `modal token new` (or set both variables), then run the same command again.")

    def deploy(self, ctx: Any) -> str | None:
        require_modal_credentials("deploying modal_app.py")
        out = ctx.run_command(["modal", "deploy", "modal_app.py"])
        m = re.search(r"https://[A-Za-z0-9.-]+\.modal\.(?:run|direct)", out)
        return m.group(0) if m else None


MODAL_CREDENTIALS_WHERE = ("MODAL_TOKEN_ID and MODAL_TOKEN_SECRET in the environment, or a profile in ~/.modal.toml "
                           "(MODAL_CONFIG_PATH overrides the path; `modal token new` writes it)")


def modal_credentials_missing() -> bool:
    """True when neither the environment nor the Modal config file holds a token (what the modal client reads:
    modal/config.py - env MODAL_TOKEN_ID / MODAL_TOKEN_SECRET, else the active profile of MODAL_CONFIG_PATH or
    ~/.modal.toml)."""
    import os
    import tomllib
    from pathlib import Path

    if os.environ.get("MODAL_TOKEN_ID") and os.environ.get("MODAL_TOKEN_SECRET"):
        return False
    path = Path(os.environ.get("MODAL_CONFIG_PATH") or Path.home() / ".modal.toml")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True
    profiles = [v for v in data.values() if isinstance(v, dict)]
    want = os.environ.get("MODAL_PROFILE")
    if want:
        profiles = [data[want]] if isinstance(data.get(want), dict) else []
    else:
        active = [p for p in profiles if p.get("active")]
        profiles = active or profiles[:1]
    return not any(p.get("token_id") and p.get("token_secret") for p in profiles)


def require_modal_credentials(doing: str) -> None:
    """A missing Modal token is an input error (exit 2), not a remote failure."""
    from ..errors import UserError

    if modal_credentials_missing():
        raise UserError(f"no Modal credentials for {doing}.", hint=f"Set {MODAL_CREDENTIALS_WHERE}, then run "
                        "apply again (the steps that need no Modal account have run).")


def _modal_create_secret(name: str, values: dict[str, Any]) -> None:
    require_modal_credentials(f"creating the Modal secret {name!r}")
    import modal
    from modal.exception import NotFoundError

    from ..errors import FlymigrateError, RemoteError, UserError
    from ..redact import scrub_values

    env = {k: v.reveal() for k, v in values.items()}
    try:
        create = getattr(modal.Secret, "_create_deployed", None)
        if create is not None:
            # what `modal secret create --force` calls: the secret holds exactly the export's values, also on a
            # re-run after new values were supplied (objects.create(allow_existing=True) would keep old ones)
            create(name, env, overwrite=True)
        else:  # pragma: no cover - older/newer SDK without it
            modal.Secret.objects.create(name, env, allow_existing=True)
        modal.Secret.from_name(name, required_keys=sorted(env)).hydrate()
    except NotFoundError:
        raise UserError(f"the Modal secret {name!r} already exists without all of {', '.join(sorted(env))}.",
                        hint=f"Delete it (`modal secret delete {name}`) and run apply again.") from None
    except Exception as exc:  # the SDK's connection errors: never echo values (they are not in the message)
        if isinstance(exc, FlymigrateError):
            raise
        from modal.exception import AuthError

        if isinstance(exc, AuthError):
            raise UserError(f"Modal refused the credentials while creating the secret {name!r}.",
                            hint=f"Check {MODAL_CREDENTIALS_WHERE}.") from None
        raise RemoteError(f"creating the Modal secret {name!r} failed: {type(exc).__name__}: "
                          f"{scrub_values(str(exc), env.values())}") from None


TARGET = ModalTarget()
