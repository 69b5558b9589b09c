"""Which device a run uses and the arithmetic VGG-19 runs in there."""

from __future__ import annotations

import os

import torch

from framestyle.errors import UsageError
from framestyle.settings import PRECISIONS


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then MPS, then the CPU; an absent device asked for
    by name is a usage error."""
    name = name.strip().lower()
    mps = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps and mps.is_available())
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if mps_ok else torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"--device {name}: not a device; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: no CUDA device is available")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UsageError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not mps_ok:
        raise UsageError(f"--device {name}: no MPS device is available")
    if device.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"--device {name}: unsupported; use auto, cpu, cuda or mps")
    return device


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The dtype VGG-19 runs in under autocast, or None for float32.

    ``auto`` picks bfloat16 where the hardware does it natively (CUDA with
    bf16, CPUs with AVX512-BF16 or AMX; docs/performance/speed.md: mixed precision)
    and float32 elsewhere; fp16 is offered for GPUs without bf16."""
    precision = precision.strip().lower()
    if precision not in PRECISIONS:
        raise UsageError(f"--precision {precision}: choose {', '.join(PRECISIONS)}")
    if precision == "fp32" or device.type == "mps" and precision == "auto":
        return None
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if cpu_has_native_bf16() else None
    if precision == "fp16" and device.type == "cpu":
        raise UsageError("--precision fp16: not on the CPU (use bf16 or fp32)")
    return torch.bfloat16 if precision == "bf16" else torch.float16


def cpu_has_native_bf16() -> bool:
    """Whether this CPU does bfloat16 natively (AVX512-BF16 or AMX), unless
    ``FRAMESTYLE_NO_NATIVE_BF16=1`` says to treat it as one that does not: so
    the choices made on CPUs without it (float32) can be run and tested on
    one with it."""
    if native_bf16_turned_off():
        return False
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def native_bf16_turned_off() -> bool:
    """Whether ``FRAMESTYLE_NO_NATIVE_BF16`` is set (to anything but 0)."""
    return os.environ.get("FRAMESTYLE_NO_NATIVE_BF16", "") not in ("", "0")
