"""`manifest.json`: what a run folder holds and how it was made (versions, devices, settings, timings)."""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
from pathlib import Path
from typing import Any

from workbench import __version__

SCHEMA = "workbench.capture/1"
NAME = "manifest.json"
# Settings that change what a run does or records; recorded when set.
ENV_VARS = ("PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_ALLOC_CONF", "PYTORCH_MPS_HIGH_WATERMARK_RATIO",
            "PYTORCH_MPS_LOW_WATERMARK_RATIO", "CUDA_VISIBLE_DEVICES", "CUDA_LAUNCH_BLOCKING", "OMP_NUM_THREADS",
            "RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID",
            "TORCH_FR_BUFFER_SIZE", "TORCH_NCCL_TRACE_BUFFER_SIZE", "TORCH_NCCL_DUMP_ON_TIMEOUT",
            "TORCH_FR_DUMP_TEMP_FILE", "TORCH_NCCL_DEBUG_INFO_TEMP_FILE")


def manifest_name(rank: int | None) -> str:
    """`manifest.json` for one process or rank 0; `manifest.rank<r>.json` for the other ranks of a job."""
    return NAME if not rank else f"manifest.rank{rank}.json"


def versions() -> dict[str, Any]:
    import torch

    return {"workbench": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "cuda": torch.version.cuda, "hip": torch.version.hip,
            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None}


def host() -> dict[str, Any]:
    return {"hostname": socket.gethostname(), "pid": os.getpid(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count()}


def cuda_devices() -> list[dict[str, Any]]:
    """Properties of the visible CUDA (or ROCm) devices, named like Kineto's `deviceProperties`."""
    import torch

    out = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        out.append({"type": "cuda", "id": index, "name": props.name, "totalGlobalMem": props.total_memory,
                    "computeMajor": props.major, "computeMinor": props.minor,
                    "numSms": props.multi_processor_count})
    return out


def environment() -> dict[str, str]:
    return {name: os.environ[name] for name in ENV_VARS if name in os.environ}


def source(cell: str | None) -> dict[str, Any]:
    """What ran: the notebook cell when there is one (given, or IPython's current cell), else the command."""
    if cell is None:
        cell = _current_cell()
    if cell is not None:
        return {"kind": "notebook_cell", "code": cell}
    return {"kind": "command", "argv": list(sys.argv), "cwd": os.getcwd()}


def _current_cell() -> str | None:
    shell = sys.modules.get("IPython") and sys.modules["IPython"].get_ipython()
    history = getattr(getattr(shell, "history_manager", None), "input_hist_raw", None)
    return history[-1] if history else None


def list_files(folder: Path) -> list[dict[str, Any]]:
    """The run's files (paths relative to the folder, with sizes), claim files left out."""
    return [{"path": p.relative_to(folder).as_posix(), "bytes": p.stat().st_size}
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.startswith(".")]


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Written whole or not at all, so that a reader never sees half a manifest."""
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps({"schema": SCHEMA, **manifest}, indent=1, default=str), encoding="utf-8")
    os.replace(partial, path)
