"""What each event is: GPU computation, communication, memory traffic, host work."""

from __future__ import annotations

import re
from functools import lru_cache

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
PROFILER_STEP = re.compile(r"^ProfilerStep#\d{1,18}$")  # a longer number is no step
# Collectives done by kernels of their own, not NCCL's: torch symmetric memory (multimem / one-shot /
# two-shot), vLLM's and SGLang's custom all-reduce, TensorRT-LLM/FlashInfer fused and Lamport all-reduces,
# AITER's, and MoE all-to-all dispatch/combine (DeepEP, pplx, TensorRT-LLM's moe a2a).
SERVING_ALL_REDUCE = re.compile(
    r"multimem_all_?reduce|(one|two)_?shot_?all_?reduce|cross_device_reduce|allreduce_fusion|lamport"
    r"|custom_?all_?reduce|quick_?all_?reduce", re.IGNORECASE)
SERVING_ALL_TO_ALL = re.compile(
    r"deep_?ep::|pplx|a2a_?(dispatch|combine)|all_?to_?all_?(dispatch|combine)|moe_?a2a", re.IGNORECASE)
SERVING_ALL_GATHER = re.compile(r"multimem_all_?gather|(one|two)_?shot_?all_?gather", re.IGNORECASE)
SERVING_REDUCE_SCATTER = re.compile(r"multimem_reduce_scatter|reduce_scatter_kernel", re.IGNORECASE)
SERVING_COLLECTIVES = (("all_reduce", SERVING_ALL_REDUCE), ("all_to_all", SERVING_ALL_TO_ALL),
                       ("all_gather", SERVING_ALL_GATHER), ("reduce_scatter", SERVING_REDUCE_SCATTER))

COMPUTE, COMMUNICATION_KIND, MEMCPY, MEMSET, NOT_GPU = 0, 1, 2, 3, -1
GPU_KIND_NAMES = {COMPUTE: "computation", COMMUNICATION_KIND: "communication", MEMCPY: "memcpy", MEMSET: "memset"}
# Names classified per process, at most this many kept: a job's ranks (and a worker's tasks) name the same kernels,
# and gpu_kinds runs for each rule that reads it (the six patterns took 0.12 CPU-s a rank of a 26 MB A100 trace).
NAMES_CACHED = 1 << 14


@lru_cache(maxsize=NAMES_CACHED)
def is_communication_kernel(name: str) -> bool:
    """A kernel that moves data between devices: NCCL/RCCL/... or a serving engine's own collective."""
    return bool(COMMUNICATION.search(name)) or serving_collective(name) is not None


@lru_cache(maxsize=NAMES_CACHED)
def serving_collective(name: str) -> str | None:
    """The collective a non-NCCL communication kernel does (`all_reduce`, `all_to_all`, ...), else None."""
    return next((kind for kind, pattern in SERVING_COLLECTIVES if pattern.search(name)), None)


def gpu_kinds(events: EventTable) -> np.ndarray:
    """Per event: COMPUTE, COMMUNICATION_KIND, MEMCPY, MEMSET, or NOT_GPU."""
    kinds = np.full(len(events), NOT_GPU, dtype=np.int8)
    kernels = events.category_mask(KERNEL_CATEGORIES)
    kinds[kernels] = COMPUTE
    kinds[kernels & events.name_mask(is_communication_kernel)] = COMMUNICATION_KIND
    kinds[events.category_mask(MEMCPY_CATEGORIES) | (kernels & events.name_mask(MTIA_DMA.match))] = MEMCPY
    kinds[events.category_mask(MEMSET_CATEGORIES)] = MEMSET
    return kinds


def host_mask(events: EventTable) -> np.ndarray:
    """Events of the host's own work: operators and runtime/driver calls."""
    return events.category_mask(HOST_OP_CATEGORIES | RUNTIME_CATEGORIES)
