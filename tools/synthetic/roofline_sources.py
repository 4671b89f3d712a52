"""Write sample_traces/synthetic/{graph_decode_warmup,moe_decode_b1,moe_decode_b3}.synthetic.pt.trace.json.gz.

SYNTHETIC: no real trace here holds the eager warm-up before a CUDA graph's replays (`infer_graph` starts
profiling after capture) or a mixture-of-experts decode with its fused-experts operator's shapes (vLLM's gpt-oss
step runs its experts inside piecewise graphs), so these are Kineto traces written by hand in torch.profiler's
layout on an "NVIDIA H100 80GB HBM3", bf16 (`__nv_bfloat16` kernels), a model of 2 layers of hidden 1024:
- graph_decode_warmup: one eager warm-up pass (qkv 3072 x 1024, SDPA over a static cache of 16 heads x 512
  positions x 64, o 1024 x 1024, up 4096 x 1024, down 1024 x 4096 per layer, head 8000 x 1024: `aten::linear`
  and `aten::scaled_dot_product_attention` with shapes, one kernel each), then 6 `cudaGraphLaunch` replays of
  the same 11 kernels, with no shapes and no grid, 100 µs apart;
- moe_decode_b1 / moe_decode_b3: a 16-token prefill then 8 decode passes of batch 1 (or 3), each layer qkv, o,
  an 8-expert router and `vllm::outplace_fused_experts(hidden [T, 1024], w1 [8, 1024, 1024], w2 [8, 1024, 512],
  topk_weights [T, 2], topk_ids [T, 2])` launching a `fused_moe_kernel`, 200 µs a pass.
- vllm_full_graph_decode: vLLM step annotations: an eager 16-token prefill step (the GEMMs of graph_decode_warmup
  with shapes, `_C_cache_ops::reshape_and_cache_flash` of [16, 8, 64] keys and values a layer), then 4 decode
  steps of 2 requests (sk 40, 42, 44, 46 cached positions) each one `cudaGraphLaunch` replaying 9 Tensile GEMM
  kernels with neither shapes nor grid (as ROCm traces record them).
Run: python tools/synthetic/roofline_sources.py
"""

from __future__ import annotations

from pathlib import Path

from tools.synthetic.memory_bound_decode import op, write

OUT = Path(__file__).resolve().parents[2] / "sample_traces" / "synthetic"
HIDDEN, VOCAB, EXPERTS, TOP_K = 1024, 8000, 8, 2
DENSE = [[3 * HIDDEN, HIDDEN], [HIDDEN, HIDDEN], [4 * HIDDEN, HIDDEN], [HIDDEN, 4 * HIDDEN]] * 2 + [[VOCAB, HIDDEN]]
GEMM = "void gemv2T_kernel_val<int, int, __nv_bfloat16, __nv_bfloat16, float, 128, 16, 4, 4, false, false>"
ATTENTION = "void flash_fwd_kernel<Flash_fwd_kernel_traits<64, 128, 64, 4, false, false, cutlass::bfloat16_t>>"
SDPA_DIMS = [[1, 16, 1, 64], [1, 16, 512, 64], [1, 16, 512, 64], [], []]
MOE = "fused_moe_kernel"


class Trace:
    """Events in time order, each launch tied to its kernel by a correlation id."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.correlation = 1
        self.gpu_free = 0.0

    def launch(self, ts: float, kernel: str, api: str = "cudaLaunchKernel", kernels: int = 1) -> None:
        self.events.append({"ph": "X", "cat": "cuda_runtime", "name": api, "pid": 1, "tid": 1, "ts": ts, "dur": 4.0,
                            "args": {"correlation": self.correlation}})
        for _ in range(kernels):
            start = max(self.gpu_free, ts + 5)
            self.events.append({"ph": "X", "cat": "kernel", "name": kernel, "pid": 0, "tid": 7, "ts": start,
                                "dur": 3.0, "args": {"device": 0, "stream": 7, "correlation": self.correlation}})
            self.gpu_free = start + 3.0
        self.correlation += 1

    def linear(self, ts: float, tokens: int, weight: list[int]) -> None:
        self.events.append(op("aten::linear", ts, 8.0, [[1, tokens, weight[1]], weight, []]))
        self.launch(ts + 1, GEMM)


def graph_decode_warmup() -> list[dict]:
    trace = Trace()
    kernels = []
    for j, weight in enumerate(DENSE):
        trace.linear(1000.0 + 20 * j, 1, weight)
        kernels.append(GEMM)
        if j % 4 == 0 and j < 8:  # after each layer's qkv
            trace.events.append(op("aten::scaled_dot_product_attention", 1010.0 + 20 * j, 8.0, SDPA_DIMS))
            trace.launch(1011.0 + 20 * j, ATTENTION)
            kernels.append(ATTENTION)
    for r in range(6):
        ts = 2000.0 + 100 * r
        trace.events.append({"ph": "X", "cat": "cuda_runtime", "name": "cudaGraphLaunch", "pid": 1, "tid": 1,
                             "ts": ts, "dur": 6.0, "args": {"correlation": trace.correlation}})
        for kernel in kernels:
            start = max(trace.gpu_free, ts + 8)
            trace.events.append({"ph": "X", "cat": "kernel", "name": kernel, "pid": 0, "tid": 7, "ts": start,
                                 "dur": 3.0, "args": {"device": 0, "stream": 7, "correlation": trace.correlation}})
            trace.gpu_free = start + 3.0
        trace.correlation += 1
    return trace.events


def moe_decode(batch: int) -> list[dict]:
    trace = Trace()
    for k in range(9):
        tokens, start = (16, 1000.0) if k == 0 else (1, 1000.0 + 200 * k)
        rows = batch * tokens
        trace.events.append(op("aten::embedding", start, 4.0, [[VOCAB, HIDDEN], [batch, tokens], [], [], []]))
        ts = start + 10
        for _ in range(2):
            for weight in ([3 * HIDDEN, HIDDEN], [HIDDEN, HIDDEN], [EXPERTS, HIDDEN]):
                trace.linear(ts, tokens, weight)
                ts += 10
            trace.events.append(op("vllm::outplace_fused_experts", ts, 20.0, [
                [rows, HIDDEN], [EXPERTS, 2 * 512, HIDDEN], [EXPERTS, HIDDEN, 512], [rows, TOP_K], [rows, TOP_K],
                [], [], []]))
            trace.launch(ts + 2, MOE, kernels=2)
            ts += 25
        trace.linear(ts, tokens, [VOCAB, HIDDEN])
    return trace.events


def vllm_full_graph_decode() -> list[dict]:
    trace = Trace()
    cache = "void vllm::reshape_and_cache_flash_kernel<__nv_bfloat16, __nv_bfloat16, (vllm::Fp8KVCacheDataType)0>"
    tensile = "Cijk_Alik_Bljk_BBS_BH_Bias_HA_S_SAV_UserArgs_MT64x64x64_MI16x16x1_SN_LDSB1"
    trace.events.append(annotation("execute_16_context_1(sq16sk16sqsq256sqsk256)_generation_0(sq0sk0sqsq0sqsk0)",
                                   1000.0, 300.0))
    for j, weight in enumerate(DENSE):
        trace.linear(1010.0 + 25 * j, 16, weight)
        if j % 4 == 0 and j < 8:
            trace.events.append(op("_C_cache_ops::reshape_and_cache_flash", 1020.0 + 25 * j, 4.0, [
                [16, 8, 64], [16, 8, 64], [1024, 16, 8, 64], [1024, 16, 8, 64], [16], [], [], []]))
            trace.launch(1021.0 + 25 * j, cache)
    for step in range(4):
        ts, context = 2000.0 + 100 * step, 40 + 2 * step
        trace.events.append(annotation(f"execute_2_context_0(sq0sk0sqsq0sqsk0)_generation_2(sq2sk{context}"
                                       f"sqsq2sqsk{context})", ts, 60.0))
        trace.launch(ts + 2, tensile, api="cudaGraphLaunch", kernels=len(DENSE))
    return trace.events


def annotation(name: str, ts: float, dur: float) -> dict:
    return {"ph": "X", "cat": "user_annotation", "name": name, "pid": 1, "tid": 1, "ts": ts, "dur": dur, "args": {}}


def main() -> None:
    write(OUT / "graph_decode_warmup.synthetic.pt.trace.json.gz", graph_decode_warmup())
    write(OUT / "vllm_full_graph_decode.synthetic.pt.trace.json.gz", vllm_full_graph_decode())
    for batch in (1, 3):
        write(OUT / f"moe_decode_b{batch}.synthetic.pt.trace.json.gz", moe_decode(batch))


if __name__ == "__main__":
    main()
