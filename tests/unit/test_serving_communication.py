"""Serving engines' own collective kernels are communication, like NCCL's.

No published trace holds them, so the trace here is synthetic, written by the test: kernel names as
torch symmetric memory, vLLM's custom all-reduce, FlashInfer/TensorRT-LLM and DeepEP print them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.analyses import categories as cat
from workbench.analyses.trace_summary import summarize_trace
from workbench.loaders.kineto import load_kineto

COMMUNICATION = {
    "multimem_all_reduce_kernel<c10::BFloat16, 16, 8>": "all_reduce",
    "void (anonymous namespace)::two_shot_all_reduce_kernel_inplace<c10::BFloat16, 16, 2>(c10::BFloat16**)": "all_reduce",
    "one_shot_all_reduce_kernel<float, 8>": "all_reduce",
    "void vllm::cross_device_reduce_1stage<__nv_bfloat16, 8>(vllm::RankData*, vllm::RankSignals)": "all_reduce",
    "void sglang::cross_device_reduce_2stage<__half, 8>(sglang::RankData*)": "all_reduce",
    "void flashinfer::trtllm_allreduce_fusion::allreduce_fusion_kernel_oneshot_lamport<1, __nv_bfloat16, 8>": "all_reduce",
    "void deep_ep::intranode::dispatch<8, 768, 8192>(int4*, float*)": "all_to_all",
    "void deep_ep::internode_ll::combine<false, 7168>(void*)": "all_to_all",
}
COMPUTE = [
    "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64",
    "triton_poi_fused_add_all_reduce_4",  # Inductor's arithmetic around an all-reduce, not the collective
    "_finalize_matmul_scatter_bf16",
    "_matmul_ogs_NNT_bf16xbf16xmxfp4_128x128x128x1_swiglu",
    "void vllm::reshape_and_cache_flash_kernel<__nv_bfloat16>",
]


@pytest.mark.parametrize("name,kind", sorted(COMMUNICATION.items()))
def test_serving_collectives_are_communication(name: str, kind: str) -> None:
    assert cat.is_communication_kernel(name)
    assert cat.serving_collective(name) == kind


@pytest.mark.parametrize("name", COMPUTE)
def test_compute_kernels_stay_computation(name: str) -> None:
    assert not cat.is_communication_kernel(name)


def _trace(path: Path) -> Path:
    events, ts = [], 0
    for i, name in enumerate([*COMMUNICATION, *COMPUTE]):
        events.append({"ph": "X", "cat": "kernel", "name": name, "pid": 0, "tid": 7, "ts": ts, "dur": 10,
                       "args": {"correlation": i, "device": 0, "stream": 7}})
        ts += 20
    path.write_text(json.dumps({"schemaVersion": 1, "traceEvents": events}))
    return path


def test_breakdown_counts_them_as_communication(tmp_path: Path) -> None:
    summary = summarize_trace(load_kineto(_trace(tmp_path / "serving_comm.synthetic.json")))
    assert summary.metrics["communication_ms"] == pytest.approx(len(COMMUNICATION) * 10 / 1000)
    assert summary.metrics["computation_ms"] == pytest.approx(len(COMPUTE) * 10 / 1000)
    kinds = {row["name"]: row["kind"] for row in summary.tables["kernels"]}
    assert {kinds[name] for name in COMMUNICATION} == {"communication"}
    assert {kinds[name] for name in COMPUTE} == {"computation"}
    collectives = {row["kind"]: row["count"] for row in summary.tables["collectives"]}
    assert collectives == {"all_reduce": 6, "all_to_all": 2}
