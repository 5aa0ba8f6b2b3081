"""What ``flymigrate apply`` was asked to do."""

from __future__ import annotations

from dataclasses import dataclass, fields

from ..deployment import DeployOptions


@dataclass(frozen=True)
class ApplyOptions:
    """What ``flymigrate apply`` was asked to do (everything but the plan). The deployment-shaping part is
    :meth:`deploy_options`, which ``plan`` takes too, so both decide the same Deployment."""

    target: str
    yes: bool = False
    dry_run: bool = False
    only: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    weights_from: str | None = None
    base_url: str | None = None
    out_dir: str | None = None  # where generated files go (default: the app folder)
    deploy: bool = False
    volume_id: str | None = None
    datacenter: str | None = None
    bucket: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    image: str | None = None
    state_dir: str | None = None  # transfer journals (default: the global state dir)
    gpu_type: str | None = None
    access: str | None = None
    keep_app_auth: bool = False

    def deploy_options(self, base_url: str | None = None) -> DeployOptions:
        """The options that shape the deployment: every DeployOptions field this run was given (one list, the
        dataclass's own)."""
        given = {f.name: getattr(self, f.name) for f in fields(DeployOptions) if hasattr(self, f.name)}
        return DeployOptions(**{**given, "base_url": base_url or self.base_url})
