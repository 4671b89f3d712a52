"""Device peaks: each GPU's memory bandwidth and dense 16-bit FLOP/s by its name, from the vendors' datasheets, and a
trace's device as that table knows it."""

from __future__ import annotations

import re
from typing import Any

# (name pattern, peak memory bandwidth GB/s, dense 16-bit tensor peak TFLOP/s or None), first match wins; names as
# the devices report them (deviceProperties: `NVIDIA H100 80GB HBM3`, `NVIDIA A100-SXM4-80GB`, `NVIDIA A100 80GB
# PCIe`, `Tesla V100-SXM2-32GB`, `AMD Instinct MI300X`). Vendors' datasheets (dense = their "with sparsity" / 2):
_PEAKS = (
    # nvidia.com/en-us/data-center/h100 (SXM 3.35 TB/s, NVL 3.9 TB/s; BF16 1,979 / 1,671 sparse); H100 PCIe product
    # brief PB-11133-001 (2,000 GB/s; BF16 1,513 sparse)
    (r"H100.*PCIe", 2000, 756), (r"H100 NVL", 3900, 835), (r"H100", 3350, 989),
    # nvidia.com/en-us/data-center/grace-hopper-superchip (96 GB HBM3 4 TB/s, 144 GB HBM3e 4.9 TB/s; BF16 1,979 sparse)
    (r"GH200.*(144G|HBM3e)", 4900, 989), (r"GH200", 4000, 989),
    # nvidia.com/en-us/data-center/h200 (SXM and NVL 4.8 TB/s; BF16 1,979 / 1,671 sparse)
    (r"H200 NVL", 4800, 835), (r"H200", 4800, 989),
    # nvidia.com/en-us/data-center/gb200-nvl72 (72 GPUs: 576 TB/s, BF16 360 PFLOPS sparse);
    # nvidia.com/en-us/data-center/hgx (HGX B200, 8 GPUs: 64 TB/s, BF16 36 PFLOPS sparse; HGX B100: 28 PFLOPS sparse)
    (r"GB200", 8000, 2500), (r"B200", 8000, 2250), (r"B100", 8000, 1750),
    # nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf
    # (40GB PCIe/SXM 1,555 GB/s, 80GB PCIe 1,935, 80GB SXM 2,039; BF16 312 dense); A100-PG509-200 is a 40 GB SXM4 board
    (r"A100.*80GB.*PCIe|A100.*PCIe.*80GB", 1935, 312), (r"A100.*80GB", 2039, 312), (r"A100", 1555, 312),
    # nvidia.com/en-us/data-center/l40s (864 GB/s; BF16 362.05 dense), nvidia.com/en-us/data-center/l4 (300 GB/s;
    # BF16 242 sparse), nvidia.com/en-us/data-center/products/a10-gpu (600 GB/s; BF16 125 dense); A10G: AWS states
    # 600 GB/s but no tensor peak: 70 TFLOP/s from baseten.co/blog/nvidia-a10-vs-a10g-for-ml-model-inference
    # (third-party)
    (r"L40S", 864, 362), (r"L4\b", 300, 121), (r"A10G", 600, 70), (r"A10\b", 600, 125),
    # images.nvidia.com/content/technologies/volta/pdf/volta-v100-datasheet-update-us-1165301-r5.pdf (900 GB/s, V100S
    # 1,134; FP16 tensor SXM2 125, PCIe 112, V100S 130: no BF16)
    (r"V100S", 1134, 130), (r"V100.*PCIE", 900, 112), (r"V100", 900, 125),
    # amd.com/en/products/accelerators/instinct/mi300/mi300x.html (5.3 TB/s; BF16 1,307.4 dense), .../mi325x.html
    # (6 TB/s; 1,307.4), .../mi300a.html (5.3 TB/s; 980.6), .../mi350/mi355x.html (8 TB/s; 2.5 PFLOPS), .../mi350x.html
    # (8 TB/s; 2.3 PFLOPS), .../mi200/mi250x.html (3.2768 TB/s; 383), .../mi250.html (3.2768 TB/s; 362.1). An
    # MI250(X) is two GCDs and PyTorch sees each as a device: half of each figure. ROCm may name a GCD
    # `AMD Instinct MI250X/MI250`
    (r"MI300X", 5300, 1307), (r"MI325X", 6000, 1307), (r"MI300A", 5300, 981), (r"MI355X", 8000, 2500),
    (r"MI350X", 8000, 2300), (r"MI250X", 1638, 191.5), (r"MI250", 1638, 181),
    # apple.com/newsroom (M3 Ultra: 819 GB/s, M1/M2 Ultra 800; M4 Max 546 (410 on its 14-core CPU bin), M1-M3 Max 400
    # (M3 Max 14-core 300); M4 Pro 273, M1/M2 Pro 200, M3 Pro 150; M4 120, M2/M3 100, M1 68.25): the top bin where the
    # name does not say
    (r"M3 Ultra", 819, None), (r"M[12] Ultra", 800, None), (r"M4 Max", 546, None), (r"M[1-3] Max", 400, None),
    (r"M4 Pro", 273, None), (r"M[12] Pro", 200, None), (r"M3 Pro", 150, None),
    (r"Apple M4\b", 120, None), (r"Apple M[23]\b", 100, None), (r"Apple M1\b", 68.25, None),
)
DEVICE_PEAKS: tuple[tuple[re.Pattern[str], float, float | None], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), gbps, tflops) for pattern, gbps, tflops in _PEAKS)


# ROCm devices that report a generic name (`AMD Radeon Graphics`, or none): (compute major, minor, CUs, most memory
# GiB) -> the product; gfx90a GCDs of 110 / 104 CUs, gfx942 of 304 CUs with 192 / 256 GB, 228 CUs (MI300A)
AMD_BY_PROPERTIES = ((9, 0, 110, 64, "AMD Instinct MI250X"), (9, 0, 104, 64, "AMD Instinct MI250"),
                     (9, 4, 304, 192, "AMD Instinct MI300X"), (9, 4, 304, 256, "AMD Instinct MI325X"),
                     (9, 4, 228, 128, "AMD Instinct MI300A"))


def device_name(properties: dict[str, Any]) -> str | None:
    """A trace's device as `device_peaks` knows it: its reported name, else (an AMD GPU with a generic name) the
    product its compute capability, CU count and memory identify, marked as identified."""
    name = properties.get("name") or None
    if name and any(pattern.search(name) for pattern, _, _ in DEVICE_PEAKS):
        return name
    if properties.get("warpSize") == 64:
        memory = float(properties.get("totalGlobalMem") or 0) / 2**30
        for major, minor, cus, gib, product in AMD_BY_PROPERTIES:
            if (properties.get("computeMajor"), properties.get("computeMinor"), properties.get("numSms")) == \
                    (major, minor, cus) and memory <= gib:
                return f"{product} (identified: {cus} CUs, {memory:.0f} GiB)"
    return name


def device_peaks(name: str | None) -> tuple[float | None, float | None]:
    """(peak memory bandwidth GB/s, peak dense 16-bit TFLOP/s) of a device by its name; None unknown."""
    for pattern, gbps, tflops in DEVICE_PEAKS:
        if name and pattern.search(name):
            return gbps, tflops
    return None, None
