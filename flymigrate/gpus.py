"""GPU facts: Fly's GPU kinds and size presets, and what each target offers for them.

Fly deleted its GPU docs (superfly/docs PR 2449), so flymigrate carries this knowledge itself.
Sources: research/fly.md 1.9-1.10 (flyctl / fly-go presets), research/users.md 4a, research/destinations.md.
Pure data and pure functions; no I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # type checkers see the standard decorator
    from dataclasses import dataclass
else:  # start-up time: no exec per generated method (flymigrate/_dataclass.py)
    from ._dataclass import dataclass

# Legal gpu_kind values (fly-go ToSize / flyctl --vm-gpu-kind help) and their VRAM in GB.
FLY_GPU_KINDS: dict[str, int] = {
    "a10": 24,
    "l40s": 48,
    "a100-pcie-40gb": 40,
    "a100-sxm4-80gb": 80,
}

# Size presets that carry a GPU: size -> (gpu_kind, cpus, memory_mb)
GPU_SIZE_PRESETS: dict[str, tuple[str, int, int]] = {
    "a10": ("a10", 8, 32768),
    "l40s": ("l40s", 8, 32768),
    "a100-40gb": ("a100-pcie-40gb", 8, 32768),
    "a100-80gb": ("a100-sxm4-80gb", 8, 32768),
}

# CPU presets: size -> (cpu_kind, cpus, memory_mb)
CPU_SIZE_PRESETS: dict[str, tuple[str, int, int]] = {
    **{f"shared-cpu-{n}x": ("shared", n, 256 * n) for n in (1, 2, 4, 6, 8)},
    **{f"performance-{n}x": ("performance", n, 2048 * n) for n in (1, 2, 4, 6, 8, 10, 12, 14, 16)},
    # older names still seen in scripts
    **{f"dedicated-cpu-{n}x": ("performance", n, 2048 * n) for n in (1, 2, 4, 8)},
}

DEFAULT_GPU_VM_SIZE = "performance-8x"  # fly.DefaultGPUVMSize: gpu_kind without size

# Illegal-but-seen values we understand with a warning.
GPU_KIND_ALIASES: dict[str, str] = {
    "a100-40gb": "a100-pcie-40gb",
    "a100-80gb": "a100-sxm4-80gb",
    "a100": "a100-pcie-40gb",
    "a10g": "a10",
    "l40": "l40s",
}


def normalise_gpu_kind(raw: str) -> tuple[str | None, bool]:
    """Return (legal kind or None, was_alias)."""
    k = raw.strip().lower()
    if k in FLY_GPU_KINDS:
        return k, False
    if k in GPU_KIND_ALIASES:
        return GPU_KIND_ALIASES[k], True
    return None, False


@dataclass(frozen=True)
class TargetGpu:
    """What a target would run a Fly GPU on."""

    target: str
    name: str | None  # the target's own identifier (Modal gpu=, RunPod pool id, Cloud Run accelerator); None = not offered
    label: str  # human name
    vram_gb: int | None
    count: int
    fits: bool  # VRAM per GPU >= Fly's and the count is possible
    blocked: bool  # the target cannot run this at all
    reason: str  # why this choice (always filled: it is shown in the plan)
    alternatives: tuple[str, ...] = ()


# Per target: fly kind -> (id, label, vram, reason)
_MODAL = {
    "a10": ("A10", "NVIDIA A10 24 GB", 24, "same GPU"),
    "l40s": ("L40S", "NVIDIA L40S 48 GB", 48, "same GPU"),
    "a100-pcie-40gb": ("A100-40GB", "NVIDIA A100 40 GB", 40, "same GPU"),
    "a100-sxm4-80gb": ("A100-80GB", "NVIDIA A100 80 GB", 80, "same GPU"),
}
_MODAL_MAX = {"A10": 4}  # per container; others up to 8

_RUNPOD = {
    "a10": ("AMPERE_24", "RunPod pool AMPERE_24 (A5000 / A4500 / 3090, 24 GB)", 24,
            "RunPod has no A10 pool; AMPERE_24 is the same architecture (sm_86) and VRAM"),
    "l40s": ("ADA_48_PRO", "RunPod pool ADA_48_PRO (L40S / L40 / RTX 6000 Ada, 48 GB)", 48, "same GPU family"),
    "a100-pcie-40gb": ("AMPERE_48", "RunPod pool AMPERE_48 (A40 / A6000, 48 GB)", 48,
                       "RunPod has no 40 GB pool; AMPERE_48 gives more VRAM on the same architecture at a lower "
                       "price. Pick AMPERE_80 (A100 80 GB) instead if the app relies on A100-only features "
                       "(NVLink, HBM bandwidth, MIG)"),
    "a100-sxm4-80gb": ("AMPERE_80", "RunPod pool AMPERE_80 (A100 80 GB PCIe / SXM)", 80, "same GPU"),
}
_RUNPOD_ALTS = {"a100-pcie-40gb": ("AMPERE_80",), "a10": ("ADA_24",)}

_CLOUDRUN_L4 = ("nvidia-l4", "NVIDIA L4 24 GB", 24)
_CLOUDRUN_PRO = ("nvidia-rtx-pro-6000", "NVIDIA RTX PRO 6000 Blackwell 96 GB (Preview for services)", 96)


def map_gpu(target: str, kind: str, count: int = 1) -> TargetGpu:
    """Map a legal Fly GPU kind (x count) onto a target. Deterministic, documented reasons."""
    fly_vram = FLY_GPU_KINDS[kind]
    if target == "modal":
        gid, label, vram, reason = _MODAL[kind]
        cap = _MODAL_MAX.get(gid, 8)
        if count > cap:
            return TargetGpu(target, f"{gid}:{count}", label, vram, count, False, True,
                             f"Modal allows at most {cap} x {gid} per container; Fly had {count}")
        name = gid if count == 1 else f"{gid}:{count}"
        return TargetGpu(target, name, label, vram, count, vram >= fly_vram, False, reason)
    if target == "runpod":
        gid, label, vram, reason = _RUNPOD[kind]
        if count > 8:
            return TargetGpu(target, gid, label, vram, count, False, True, "RunPod workers have at most 8 GPUs")
        return TargetGpu(target, gid, label, vram, count, vram >= fly_vram, False, reason,
                         _RUNPOD_ALTS.get(kind, ()))
    if target == "cloudrun":
        if count > 1:
            return TargetGpu(target, None, "not offered", None, count, False, True,
                             f"Cloud Run offers one GPU per instance; this app used {count} x {kind}. "
                             "Run it on Modal or RunPod, or change the app to fit one GPU")
        if fly_vram <= 24:
            gid, label, vram = _CLOUDRUN_L4
            return TargetGpu(target, gid, label, vram, 1, True, False,
                             "L4 has the same 24 GB of VRAM (Ada, sm_89)", (_CLOUDRUN_PRO[0],))
        gid, label, vram = _CLOUDRUN_PRO
        return TargetGpu(target, gid, label, vram, 1, True, False,
                         f"Cloud Run has no {fly_vram} GB GPU; the only one with enough VRAM is the RTX PRO 6000 "
                         "(96 GB, Preview for services, needs >= 20 vCPU / 80 GiB). nvidia-l4 (24 GB) is cheaper "
                         "if the model fits in 24 GB", (_CLOUDRUN_L4[0],))
    raise ValueError(f"unknown target {target!r}")
