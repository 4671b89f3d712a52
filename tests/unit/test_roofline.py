"""Device peaks by the names real traces report (deviceProperties), against the vendors' datasheets."""

from __future__ import annotations

import gzip
import json

import pytest

from tests.conftest import AMD
from workbench.analyses.device_peaks import device_name, device_peaks


@pytest.mark.parametrize("name, peaks", [
    ("NVIDIA H100 80GB HBM3", (3350, 989)),  # the H100 SXM of ../shared/traces/h100
    ("NVIDIA H100 PCIe", (2000, 756)),
    ("NVIDIA H100 NVL", (3900, 835)),
    ("NVIDIA H200", (4800, 989)),
    ("NVIDIA H200 NVL", (4800, 835)),
    ("NVIDIA GH200 480GB", (4000, 989)),  # was read as an H200 (4.8 TB/s)
    ("NVIDIA B200", (8000, 2250)),
    ("NVIDIA GB200", (8000, 2500)),
    ("NVIDIA A100-SXM4-80GB", (2039, 312)),
    ("NVIDIA A100 80GB PCIe", (1935, 312)),  # was 2,039 (the SXM's)
    ("NVIDIA A100-SXM4-40GB", (1555, 312)),
    ("NVIDIA A100-PG509-200", (1555, 312)),  # HTA's trace_diff control
    ("NVIDIA L40S", (864, 362)),
    ("NVIDIA L4", (300, 121)),
    ("NVIDIA A10G", (600, 70)),
    ("NVIDIA A10", (600, 125)),
    ("Tesla V100-SXM2-16GB", (900, 125)),
    ("Tesla V100-PCIE-32GB", (900, 112)),
    ("AMD Instinct MI300X", (5300, 1307)),
    ("AMD Instinct MI250X/MI250", (1638, 191.5)),  # one GCD of the two: half the package's 3.28 TB/s, 383 TFLOP/s
    ("AMD Instinct MI355X", (8000, 2500)),
    ("Apple M3 Ultra", (819, None)),
    ("Apple M4 Max", (546, None)),
    ("Apple M4 Pro", (273, None)),
    ("Apple M2", (100, None)),
    ("Apple GPU (Metal)", (None, None)),  # what an MPS trace says: no chip, no peaks
    ("NVIDIA L40", (None, None)),
])
def test_device_peaks(name: str, peaks: tuple) -> None:
    assert device_peaks(name) == peaks


def test_amd_devices_with_a_generic_name() -> None:
    """ROCm 6.2 named the sample's MI250 GCD `AMD Radeon Graphics` (gfx90a, 104 CUs, 64 GB); the vLLM trace's
    deviceProperties leave the MI300X's name empty (gfx942, 304 CUs, 192 GB)."""
    with gzip.open(AMD) as f:
        (props, *_) = json.load(f)["deviceProperties"]
    assert props["name"] == "AMD Radeon Graphics"
    assert device_name(props) == "AMD Instinct MI250 (identified: 104 CUs, 64 GiB)"
    assert device_peaks(device_name(props)) == (1638, 181)
    vllm = {"name": "", "totalGlobalMem": 206141652992, "computeMajor": 9, "computeMinor": 4, "warpSize": 64,
            "numSms": 304}
    assert device_peaks(device_name(vllm)) == (5300, 1307)
    assert device_name({"name": "NVIDIA H100 80GB HBM3"}) == "NVIDIA H100 80GB HBM3"
