"""Apple GPUs (`mps`) during a capture: Metal signposts and the MPS allocator's memory per step.

torch.profiler records only CPU activities on `mps`; `torch.mps.profiler` adds os_signposts that
Instruments' Metal System Trace shows beside the GPU timeline (export it with `xcrun xctrace
export` and analyze the XML). Each torch call is one small function: no Mac runs the tests, so
the capture's logic is tested by replacing them.
"""

from __future__ import annotations

from typing import Any


def mps_available() -> bool:
    import torch

    return torch.backends.mps.is_available()


def start_signposts() -> None:
    """Interval signposts per operation, without waiting for each command buffer (no added syncs)."""
    import torch

    torch.mps.profiler.start(mode="interval", wait_until_completed=False)


def stop_signposts() -> None:
    import torch

    torch.mps.profiler.stop()


def memory_sample() -> dict[str, int]:
    """Bytes held by tensors, by the Metal driver for this process, and the recommended working set."""
    import torch

    return {"current_allocated_bytes": torch.mps.current_allocated_memory(),
            "driver_allocated_bytes": torch.mps.driver_allocated_memory(),
            "recommended_max_bytes": torch.mps.recommended_max_memory()}


def device_facts() -> dict[str, Any]:
    import platform

    return {"type": "mps", "name": f"Apple {platform.machine()} GPU (Metal)", "platform": platform.platform(),
            "recommended_max_bytes": memory_sample()["recommended_max_bytes"]}
