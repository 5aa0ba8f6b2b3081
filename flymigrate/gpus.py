"""GPU facts about Fly: its GPU kinds, VRAM and size presets. What a target offers for them is that target's
``map_gpu`` (in its module under ``flymigrate/targets/``).

Fly deleted its GPU docs (superfly/docs PR 2449), so flymigrate carries this knowledge itself.
Sources: research/fly.md 1.9-1.10 (flyctl / fly-go presets), research/users.md 4a, research/destinations.md.
Pure data and pure functions; no I/O.
"""

from __future__ import annotations

from .targets.base import TargetGpu

__all__ = ["FLY_GPU_KINDS", "GPU_SIZE_PRESETS", "CPU_SIZE_PRESETS", "DEFAULT_GPU_VM_SIZE", "GPU_KIND_ALIASES",
           "TargetGpu", "normalise_gpu_kind", "fly_vram_gb", "map_gpu"]

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


def fly_vram_gb(kind: str) -> int:
    return FLY_GPU_KINDS[kind]


def map_gpu(target: str, kind: str, count: int = 1) -> TargetGpu:
    """What ``target`` runs a legal Fly GPU kind (x count) on: that target's own ``map_gpu`` (each target module
    holds its GPU table and the reasons; this module only knows Fly's side)."""
    from .targets import get_target, is_target

    if not is_target(target):
        raise ValueError(f"unknown target {target!r}")
    return get_target(target).map_gpu(kind, count)
