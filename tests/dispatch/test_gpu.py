from __future__ import annotations

import sys
import types
from collections.abc import Iterator

import pytest

from scheduler.dispatch.agent import describe_node
from scheduler.dispatch.gpu import Gpu, discover_gpus


def test_no_nvml_package_means_zero_gpus() -> None:
    assert discover_gpus("no_such_nvml_module") == []
    spec = describe_node("cpu-box", nvml_module="no_such_nvml_module")
    assert (spec.slots, spec.vram_gb, spec.gpus) == (1, 0.0, ())


@pytest.fixture
def fake_nvml() -> Iterator[types.ModuleType]:
    mod = types.ModuleType("fake_nvml")
    sys.modules["fake_nvml"] = mod
    yield mod
    del sys.modules["fake_nvml"]


def test_driver_missing_means_zero_gpus(fake_nvml: types.ModuleType) -> None:
    class NVMLError(Exception):
        pass

    def init() -> None:
        raise NVMLError("Driver Not Loaded")

    fake_nvml.nvmlInit = init  # type: ignore[attr-defined]
    assert discover_gpus("fake_nvml") == []


def test_gpus_reported_by_nvml(fake_nvml: types.ModuleType) -> None:
    mem = types.SimpleNamespace(total=24 * 2**30)
    fake_nvml.nvmlInit = lambda: None  # type: ignore[attr-defined]
    fake_nvml.nvmlShutdown = lambda: None  # type: ignore[attr-defined]
    fake_nvml.nvmlDeviceGetCount = lambda: 2  # type: ignore[attr-defined]
    fake_nvml.nvmlDeviceGetHandleByIndex = lambda i: i  # type: ignore[attr-defined]
    fake_nvml.nvmlDeviceGetName = lambda h: b"NVIDIA GeForce RTX 4090"  # type: ignore[attr-defined]
    fake_nvml.nvmlDeviceGetMemoryInfo = lambda h: mem  # type: ignore[attr-defined]
    gpus = discover_gpus("fake_nvml")
    rtx = "NVIDIA GeForce RTX 4090"
    assert gpus == [Gpu(0, rtx, 24.0), Gpu(1, rtx, 24.0)]
    spec = describe_node("gpu-box", nvml_module="fake_nvml")
    assert (spec.slots, spec.vram_gb) == (2, 24.0)


def test_real_nvml_on_this_machine_does_not_raise() -> None:
    assert isinstance(discover_gpus(), list)  # zero here without a driver; real GPUs with one
