"""GPU discovery through NVML (nvidia-ml-py), imported lazily.

No package, no driver or no device all mean the same to the farm: zero GPUs. The agent then
runs CPU work on the slots it was told to declare.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Gpu:
    """One GPU as NVML reports it."""

    index: int
    model: str
    vram_gb: float


def discover_gpus(module: str = "pynvml") -> list[Gpu]:
    """The GPUs on this machine; ``[]`` when NVML (package or driver) is unavailable."""
    try:
        nvml: Any = importlib.import_module(module)
    except ImportError:
        return []
    try:
        nvml.nvmlInit()
    except Exception:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return []
    try:
        gpus = []
        for i in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            name = nvml.nvmlDeviceGetName(handle)
            if isinstance(name, bytes):
                name = name.decode(errors="replace")
            total = nvml.nvmlDeviceGetMemoryInfo(handle).total
            gpus.append(Gpu(index=i, model=str(name), vram_gb=round(total / 2**30, 1)))
        return gpus
    except Exception:
        return []
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception:
            pass
