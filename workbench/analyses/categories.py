"""What each event is: GPU computation, communication, memory traffic, host work."""

from __future__ import annotations

import re

import numpy as np

from workbench.models.comm_args import COMMUNICATION
from workbench.models.trace import EventTable

# Device-side activity. MTIA traces record device work as `mtia_ccp_events`.
KERNEL_CATEGORIES = frozenset({"kernel", "mtia_ccp_events"})
MEMCPY_CATEGORIES = frozenset({"gpu_memcpy"})
MEMSET_CATEGORIES = frozenset({"gpu_memset"})
GPU_CATEGORIES = KERNEL_CATEGORIES | MEMCPY_CATEGORIES | MEMSET_CATEGORIES
RUNTIME_CATEGORIES = frozenset({"cuda_runtime", "cuda_driver", "mtia_runtime"})
HOST_OP_CATEGORIES = frozenset({"cpu_op"})
ANNOTATION_CATEGORIES = frozenset({"user_annotation"})

MTIA_DMA = re.compile(r"^dma_request$")
# DataLoader iteration, and user annotations that name a data/input/batch phase ("## data ##").
DATA_LOADING = re.compile(r"dataloader|__next__|_next_data|data[_ ]?load|get_batch|\b(data|input|batch)\b",
                          re.IGNORECASE)
SYNCHRONIZATION = re.compile(
    r"^(cuda|hip)(Stream|Device|Event|Ctx)Synchronize$|^cu(Stream|Ctx|Event)Synchronize$"
    r"|^(cuda|hip)Memcpy$|^cuMemcpyDtoH(_v2)?$"
)
# cudaLaunchKernel(ExC), cudaGraphLaunch, hip(ExtModule)LaunchKernel, cuLaunchKernel(Ex), MTIA's runFunction
KERNEL_LAUNCH = re.compile(r"^(cuda|hip)\w*Launch|^cu(Graph)?Launch|^runFunction")
PROFILER_STEP = re.compile(r"^ProfilerStep#\d+$")

COMPUTE, COMMUNICATION_KIND, MEMCPY, MEMSET, NOT_GPU = 0, 1, 2, 3, -1
GPU_KIND_NAMES = {COMPUTE: "computation", COMMUNICATION_KIND: "communication", MEMCPY: "memcpy", MEMSET: "memset"}


def gpu_kinds(events: EventTable) -> np.ndarray:
    """Per event: COMPUTE, COMMUNICATION_KIND, MEMCPY, MEMSET, or NOT_GPU."""
    kinds = np.full(len(events), NOT_GPU, dtype=np.int8)
    kernels = events.category_mask(KERNEL_CATEGORIES)
    kinds[kernels] = COMPUTE
    kinds[kernels & events.name_mask(COMMUNICATION.search)] = COMMUNICATION_KIND
    kinds[events.category_mask(MEMCPY_CATEGORIES) | (kernels & events.name_mask(MTIA_DMA.match))] = MEMCPY
    kinds[events.category_mask(MEMSET_CATEGORIES)] = MEMSET
    return kinds


def host_mask(events: EventTable) -> np.ndarray:
    """Events of the host's own work: operators and runtime/driver calls."""
    return events.category_mask(HOST_OP_CATEGORIES | RUNTIME_CATEGORIES)
