"""Distributed jobs: Flight Recorder settings, and which rank and job a capturing process belongs to.

`enable_flight_recorder` only sets environment variables, so it needs no torch; it must run before
`torch.distributed.init_process_group`, which reads them.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

DUMP_PREFIX = "fr_rank_"
DEFAULT_BUFFER = 2000


def enable_flight_recorder(dump_dir: str | Path, buffer_size: int = DEFAULT_BUFFER,
                           prefix: str = DUMP_PREFIX) -> dict[str, str]:
    """Record the last `buffer_size` collectives of each process group and dump them, one file per
    rank (`<dump_dir>/<prefix><rank>`), when a collective times out. Returns the variables set."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        raise RuntimeError("enable_flight_recorder() must run before torch.distributed.init_process_group(): "
                           "the process group reads these settings when it starts")
    dump_dir = Path(dump_dir).resolve()
    dump_dir.mkdir(parents=True, exist_ok=True)
    settings = {
        "TORCH_FR_BUFFER_SIZE": str(buffer_size),
        "TORCH_NCCL_TRACE_BUFFER_SIZE": str(buffer_size),  # its name before torch 2.7
        "TORCH_NCCL_DUMP_ON_TIMEOUT": "1",
        "TORCH_FR_DUMP_TEMP_FILE": str(dump_dir / prefix),
        "TORCH_NCCL_DEBUG_INFO_TEMP_FILE": str(dump_dir / prefix),  # its name before torch 2.7
        "TORCH_NCCL_ENABLE_MONITORING": "1",
    }
    os.environ.update(settings)
    return settings


def rank_and_world() -> tuple[int | None, int]:
    """This process's rank and the world size: from the process group, else torchrun's environment;
    (None, 1) for a process that is not part of a job."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    if "RANK" in os.environ:
        return int(os.environ["RANK"]), int(os.environ.get("WORLD_SIZE", "1"))
    return None, 1


def worker_name(rank: int | None) -> str | None:
    """A rank's trace file stem (`rank3`); None lets torch name it `<hostname>_<pid>`."""
    return None if rank is None else f"rank{rank}"


def job_key() -> str | None:
    """A key every rank of this job shares, so that they write into one run folder; None outside a job.

    With a process group, rank 0 draws a fresh key and broadcasts it; before one exists, the key
    comes from the launcher's environment (torchrun's run id, Slurm's job and step)."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        key = [uuid.uuid4().hex if dist.get_rank() == 0 else None]
        dist.broadcast_object_list(key, src=0)
        return key[0]
    if "RANK" not in os.environ:
        return None
    parts = [os.environ.get(name, "") for name in ("TORCHELASTIC_RUN_ID", "SLURM_JOB_ID", "SLURM_STEP_ID",
                                                   "MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE")]
    return "env:" + ":".join(parts)


def dump_flight_recorder(path: Path) -> bool:
    """Write this rank's Flight Recorder record (what a timeout would dump) to `path`, atomically;
    False when this torch has no recorder."""
    import torch

    dump = getattr(torch._C._distributed_c10d, "_dump_fr_trace", None) or getattr(
        torch._C._distributed_c10d, "_dump_nccl_trace", None)
    if dump is None:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(dump())
    os.replace(partial, path)
    return True
