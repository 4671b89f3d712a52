"""The CUDA caching allocator during a capture: its history, its snapshot, and out-of-memory errors.

Each torch call is one small function, so the capture's logic is tested on machines without a GPU
by replacing these functions.
"""

from __future__ import annotations

import traceback
from pathlib import Path

MPS_OOM = "MPS backend out of memory"


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def start_history(max_entries: int) -> None:
    """Record every allocator event with its Python stack (what the memory analyses replay)."""
    import torch

    torch.cuda.memory._record_memory_history(enabled="all", context="all", stacks="python",
                                             max_entries=max_entries)


def stop_history() -> None:
    import torch

    torch.cuda.memory._record_memory_history(enabled=None)


def dump_snapshot(path: Path) -> None:
    """The allocator's segments and history, as `workbench analyze` reads them (`*.snapshot.pickle`)."""
    import torch

    torch.cuda.memory._dump_snapshot(str(path))


def is_out_of_memory(exc: BaseException) -> bool:
    """A `torch.OutOfMemoryError` (CUDA, HIP), MPS's out-of-memory `RuntimeError`, or a runtime OOM
    (`CUDA error: out of memory` as `RuntimeError` or `torch.AcceleratorError`, `CUBLAS_STATUS_ALLOC_FAILED`)."""
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    from workbench.loaders.oom_message import has_oom_marker  # the wordings `workbench analyze` reads

    return isinstance(exc, RuntimeError) and (MPS_OOM in str(exc) or has_oom_marker(str(exc)[:4096].encode()))


def write_oom(path: Path, exc: BaseException) -> None:
    """The error with its traceback: the message has the numbers, the frames show the failing line."""
    path.write_text("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)), encoding="utf-8")
