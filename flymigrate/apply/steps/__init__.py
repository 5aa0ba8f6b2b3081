"""One module per apply step: each has ``preview(ctx) -> StepPreview`` and ``execute(ctx, preview) -> str``.

Steps read the plan's Deployment (``ctx.dep``) and the target (``ctx.target``); none decides a fact of the
deployment itself."""

from __future__ import annotations

from . import base_urls, deploy, dockerfile, scaling, secrets, weights

PREVIEW = {"weights": weights.preview_weights, "dockerfile": dockerfile.preview_dockerfile,
           "secrets": secrets.preview_secrets, "base_urls": base_urls.preview_base_urls,
           "scaling": scaling.preview_scaling, "deploy": deploy.preview_deploy}
EXECUTE = {"weights": weights.execute_weights, "dockerfile": dockerfile.execute_files,
           "secrets": secrets.execute_secrets, "base_urls": dockerfile.execute_files,
           "scaling": dockerfile.execute_files, "deploy": deploy.execute_deploy}
