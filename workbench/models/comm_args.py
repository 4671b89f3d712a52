"""What a trace records about its collectives, for the few events that carry it.

Communication events are a small share of a trace, so their arguments live in a sparse
table beside the event columns: one row per event, `index` pointing into `EventTable`.
Newer PyTorch writes `Collective name`, `In/Out msg nelems`, `dtype`, `Group size` and
`Process Group Name` on `record_param_comms` and on NCCL kernels; older traces only give
the `nccl:<op>` annotation's `Input Dims` (the event's `shapes`) and `Input type`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

# What the name of a communication event (kernel, annotation or op) looks like.
COMMUNICATION = re.compile(r"nccl|rccl|hccl|msccl|gloo|c10d", re.IGNORECASE)


@dataclass
class CommArgs:
    """Arguments of the communication events (rows in event order)."""

    index: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))  # into EventTable
    collective: list[str] = field(default_factory=list)  # "Collective name", "" when absent
    in_nelems: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))  # MISSING when absent
    out_nelems: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    group_size: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    dtype: list[str] = field(default_factory=list)  # "dtype" (Float, BFloat16...), "" when absent
    process_group: list[str] = field(default_factory=list)  # "Process Group Name", "" when absent
    input_type: list[str] = field(default_factory=list)  # first "Input type" (float, c10::BFloat16...)

    def __len__(self) -> int:
        return len(self.index)
