"""What the machine can do, for choices that depend on it (a leaf module: imports nothing else of dlmnist)."""

from __future__ import annotations

import os
from pathlib import Path

BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of CPUs with native bfloat16 arithmetic


def cpu_native_bf16() -> bool:
    """True when this CPU computes bfloat16 natively (AVX-512 BF16 or AMX), so ``precision: bf16-mixed`` pays off.

    ``DLMNIST_CPU_BF16=0`` or ``=1`` overrides the detection (to check the fp32 fallback on a CPU that has bf16).
    Read from ``/proc/cpuinfo`` on Linux; elsewhere from oneDNN's own check.
    """
    forced = os.environ.get("DLMNIST_CPU_BF16")
    if forced in ("0", "1"):
        return forced == "1"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        flags = {f for line in cpuinfo.read_text().splitlines() if line.startswith("flags") for f in line.split()}
        return any(flag in flags for flag in BF16_FLAGS)
    import torch

    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
