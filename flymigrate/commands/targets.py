"""Target choices for the commands, from the registry (the only list of targets)."""

from __future__ import annotations

from typing import Any


class TargetChoices:
    """argparse ``choices`` that read the registry when parsing (a target registered later is accepted)."""

    def __contains__(self, x: object) -> bool:
        from ..targets import is_target

        return isinstance(x, str) and is_target(x)

    def __iter__(self):  # type: ignore[no-untyped-def]
        from ..targets import names

        return iter(names())


def add_target_arg(p: Any, *, required: bool = True) -> None:
    p.add_argument("--to", dest="target", required=required, choices=TargetChoices(), metavar="TARGET",
                   help="the target platform: " + ", ".join(TargetChoices()))


def add_deploy_options(p: Any) -> None:
    """What shapes the deployment: the same options for plan and apply, so plan shows what apply writes."""
    p.add_argument("--weights-from", metavar="SRC", help="the weights' source, overriding the plan's "
                   "(hf://ORG/REPO[@REV], s3://BUCKET/PREFIX, a local folder, fly-volume://APP/VOLUME/)")
    p.add_argument("--volume-id", metavar="ID", help="RunPod network volume id (fills <VOLUME_ID>)")
    p.add_argument("--datacenter", metavar="DC", help="RunPod datacenter of the network volume (e.g. EU-RO-1)")
    p.add_argument("--bucket", metavar="NAME", help="GCS bucket for the weights (fills <BUCKET>)")
    p.add_argument("--region", metavar="REGION", help="Cloud Run region (default: nearest to primary_region)")
    p.add_argument("--image", metavar="REF", help="the pushed image Cloud Run / RunPod pull (fills <REGISTRY>...)")
    p.add_argument("--endpoint-url", metavar="URL", help="S3 endpoint for the weights destination/source")
    p.add_argument("--access", choices=("public", "private"), help="who may call the new endpoint: public (no "
                   "platform auth, as an APP.fly.dev app was) or private (the platform's auth: Modal proxy-auth "
                   "tokens, Cloud Run identity tokens). Default: as the app was on Fly")
    p.add_argument("--keep-app-auth", action="store_true", help="keep the server's own API key check (vLLM/TGI "
                   "--api-key) on RunPod, whose gateway takes its own key in the same Authorization header (by "
                   "default flymigrate drops the server's check and clients send the RunPod key)")
    p.add_argument("--gpu-type", metavar="ID", help="the target's own GPU id, overriding the one flymigrate maps "
                   "from the Fly GPU (e.g. nvidia-l4 on Cloud Run, AMPERE_80 on RunPod, H100 on Modal)")


def deploy_options(args: Any):  # type: ignore[no-untyped-def]
    """DeployOptions from the parsed arguments: each of its fields the command defines (argparse dests match)."""
    from dataclasses import fields

    from ..deployment import DeployOptions

    return DeployOptions(**{f.name: getattr(args, f.name) for f in fields(DeployOptions) if hasattr(args, f.name)})
