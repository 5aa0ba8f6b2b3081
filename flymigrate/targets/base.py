"""Defaults shared by the bundled targets (a target may override any of them)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..deployment import Deployment
    from ..model import Finding, FlyApp


@dataclass(frozen=True)
class GeneratedFile:
    """A file a target renders from the Deployment, and the apply step that writes it."""

    name: str
    text: str
    mode: int | None = None
    step: str = "scaling"


@dataclass(frozen=True)
class VerifySpec:
    """How a deployed endpoint on this target is reached and probed (read by ``flymigrate verify``, which
    implements the mechanisms: auth schemes, readiness waiting, checks)."""

    # auth scheme: "platform-bearer" (a platform API key as Bearer in Authorization: the app's own key cannot
    # share the header), "header-pair" (two headers from an id/secret pair), "identity-token" (an OIDC identity
    # token, in X-Serverless-Authorization when the app's own key uses Authorization), "none"
    auth: str = "none"
    key_env: tuple[str, ...] = ()  # platform-bearer: where the key is read from
    pair_env: tuple[tuple[str, str], ...] = ()  # header-pair: (id var, secret var) pairs, first complete one wins
    pair_headers: tuple[str, str] = ("", "")
    auth_hint: str = "check the app's key"
    health_route: str | None = None  # a route the platform itself answers for every endpoint (RunPod LB: /ping)
    health_ready_status: int = 200
    no_worker_status: int | None = None  # the platform's "no worker became ready in time" status (retried)
    wrong_url: tuple[str, str, str, str] | None = None  # (host, path prefix, what it is, the fix)


class BaseTarget:
    name = "base"
    label = "base"
    short_label: str | None = None
    compare_row: str | None = None  # the compare row that prices this target
    weights_fields: tuple[str, ...] = ("from",)  # what the TUI's weights dialog asks for
    verify_spec = VerifySpec()
    config_language = "json"  # how the generated config spells values (true/false): json | yaml | python
    cpu_form = "a CPU deployment"  # what a CPU-only app becomes here
    blurb = ""
    weights_mount_root: str | None = None

    def image_placeholder(self, slug: str) -> str:
        return f"<REGISTRY>/{slug}:latest"

    def finalize(self, dep: Deployment, app: FlyApp) -> Deployment:
        return dep

    def render(self, dep: Deployment, *, dockerfile_rel: str | None = None,
               context_rel: str | None = None) -> list[GeneratedFile]:
        return []

    def findings(self, dep: Deployment, app: FlyApp) -> list[Finding]:
        """Findings only the target can see once the Deployment is decided (the planner adds them to the plan)."""
        return []

    def plan_notes(self, dep: Deployment) -> dict[str, list[str]]:
        """Per step id, lines the plan shows as "will change" that come from the platform itself."""
        return {}

    def weights_needs(self) -> list[str]:
        return []

    def weights_blocking(self, dep: Deployment) -> list[str]:
        return []

    def weights_option_hint(self) -> str:
        return "a destination"

    def secrets_summary(self, dep: Deployment, n_values: int) -> str:
        return f"Create {len(dep.secret_names)} secret(s) on {self.label}."

    def secrets_apply(self, ctx: Any, preview: Any) -> str:
        return "nothing to do"

    def secrets_manual(self, dep: Deployment) -> list[str]:
        return []

    def deploy_commands(self, dep: Deployment) -> list[str]:
        return []

    def credentials(self, step: str) -> tuple[str, ...]:
        """What a step needs configured on this machine (shown in the plan's needs), e.g. a token's env names."""
        return ()

    def credentials_missing(self, step: str, env: dict[str, str]) -> str | None:
        """Why a step cannot run on this machine for want of a credential (None: it can). Checked by apply before
        the step runs: the step is then blocked (exit 2) and the steps that need nothing remote still run."""
        return None

    def deploy(self, ctx: Any) -> str | None:
        return None

    @staticmethod
    def with_env(dep: Deployment, add: dict[str, str], origin: str, drop: tuple[str, ...] = ()) -> Deployment:
        env = {k: v for k, v in dep.env if k not in drop}
        env.update(add)
        origins = {k: v for k, v in dep.env_origins if k not in drop}
        origins.update({k: origin for k in add})
        return replace(dep, env=tuple(sorted(env.items())), env_origins=tuple(sorted(origins.items())))
