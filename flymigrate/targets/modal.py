"""Modal: a generated ``modal_app.py`` (``@app.function`` + ``@modal.web_server``), Volumes, Secrets."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from ..deployment import PYTHON_IMAGE_HINTS, Deployment
from ..gpus import TargetGpu, map_gpu
from ..model import Finding, FlyApp, ScalingPlan, Service
from ..naming import slug
from .base import BaseTarget, GeneratedFile, VerifySpec
from .common import FLY_IDLE_EQUIVALENT_S, read_fly_scaling

__all__ = ["TARGET", "ModalTarget", "slug"]


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
        auth_hint="give a Modal proxy-auth token (MODAL_PROXY_TOKEN_ID and MODAL_PROXY_TOKEN_SECRET, from "
                  "Settings > Proxy Auth Tokens), in the environment or the --secrets export")

    def map_gpu(self, kind: str, count: int) -> TargetGpu:
        return map_gpu("modal", kind, count)

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
        max_inputs = fs.hard
        target_inputs = fs.soft if fs.soft and (fs.hard is None or fs.soft < fs.hard) else None
        if max_inputs or target_inputs:
            config.append(("concurrent.max_inputs", max_inputs or target_inputs))
            if target_inputs and max_inputs:
                config.append(("concurrent.target_inputs", target_inputs))
        if fs.ctype == "connections":
            findings.append(Finding("warning", "connections-vs-inputs", "Fly counted concurrent *connections*; "
                                    "@modal.concurrent counts concurrent requests (inputs). Streaming and WebSocket "
                                    "clients hold one input each for their whole duration.", fs.concurrency_where,
                                    "scaling"))
        if fs.hard is None and fs.soft:
            notes.append(f"no hard_limit on Fly -> @modal.concurrent(max_inputs={fs.soft}) from soft_limit")
        return ScalingPlan(mn, mx, idle, max_inputs or target_inputs, target_inputs, tuple(config),
                           tuple(notes)), findings

    def weights_destination(self, app_name: str) -> str:
        return f"modal-volume://{self.volume_name(app_name)}/"

    def volume_name(self, app_name: str) -> str:
        return f"flymigrate-{slug(app_name)}-weights"

    def secret_name(self, app_name: str) -> str:
        return f"flymigrate-{slug(app_name)}-secrets"

    def secret_ref(self, app_name: str, name: str) -> str:
        return f"modal.Secret.from_name({self.secret_name(app_name)!r}) -> ${name}"

    def placeholder_url(self, app_name: str) -> str:
        return f"https://<workspace>--flymigrate-{slug(app_name)}-serve.modal.run"

    # ---- the deployment
    def finalize(self, dep: Deployment, app: FlyApp) -> Deployment:
        add_python = None
        text = (dep.dockerfile_text or "") + " " + (dep.registry_image or "")
        if not any(h in text.lower() for h in PYTHON_IMAGE_HINTS):
            add_python = "3.11"
        return replace(dep, add_python=add_python, volume_name=self.volume_name(dep.app_name))

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
        return ["MODAL_TOKEN_ID / MODAL_TOKEN_SECRET (or ~/.modal.toml from `modal token new`)"]

    def secrets_summary(self, dep: Deployment, n_values: int) -> str:
        return (f"Create the Modal secret {self.secret_name(dep.app_name)!r} with {n_values} value(s) through the "
                "Modal API; modal_app.py references it by name")

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
        out = ctx.run_command(["modal", "deploy", "modal_app.py"])
        m = re.search(r"https://[A-Za-z0-9.-]+\.modal\.(?:run|direct)", out)
        return m.group(0) if m else None


def _modal_create_secret(name: str, values: dict[str, Any]) -> None:
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
        raise RemoteError(f"creating the Modal secret {name!r} failed: {type(exc).__name__}: "
                          f"{scrub_values(str(exc), env.values())}") from None


TARGET = ModalTarget()
