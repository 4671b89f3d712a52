"""Write sample_traces/synthetic/fp32_sdpa_decode.synthetic.pt.trace.json.gz.

SYNTHETIC: no real trace here shows scaled_dot_product_attention on float32 inputs (our H100 `infer_graph`
runs it on bf16, `infer_decode` writes attention by hand), which SDPA sends to its memory-efficient CUTLASS
kernel (`fmha_cutlassF_f32_aligned_64x64_rf_sm80`, as torch.profiler names it) since the flash and cuDNN
kernels take only bf16/fp16. This writes a Kineto trace by hand in torch.profiler's layout: an "NVIDIA H100
80GB HBM3" (sm90), an 8-token prefill then 8 one-token decode passes of a 2-layer float32 model over a
4096-position cache, each layer one `aten::linear` (a 5 µs SIMT sgemm kernel) and one SDPA call whose
kernel reads the fp32 keys and values at 2 TB/s; the GPU is the bottleneck (passes back to back).
Run: python tools/synthetic/fp32_sdpa_decode.py
"""

from __future__ import annotations

from pathlib import Path

from memory_bound_decode import op, write

OUT = Path(__file__).resolve().parents[2] / "sample_traces" / "synthetic" / "fp32_sdpa_decode.synthetic.pt.trace.json.gz"
VOCAB, HIDDEN, HEADS, HEAD_DIM, LAYERS, CONTEXT, PROMPT, DECODE = 512, 768, 12, 64, 2, 4096, 8, 8
BANDWIDTH = 2e12  # bytes/s the attention kernel reads keys and values at
ATTENTION = ("fmha_cutlassF_f32_aligned_64x64_rf_sm80(PyTorchMemEffAttention::AttentionKernel<float, "
             "cutlass::arch::Sm80, true, 64, 64, 64, true, true>::Params)")
GEMM = "void cutlass::Kernel2<cutlass_80_simt_sgemm_128x64_8x5_nn_align1>(cutlass_80_simt_sgemm_128x64_8x5_nn_align1::Params)"


def events() -> list[dict]:
    out: list[dict] = []
    state = {"correlation": 1, "gpu_free": 0.0, "host": 1000.0, "external": 1}

    def numbered(event: dict) -> dict:
        """`event` appended with the next External id, as torch.profiler numbers operators."""
        event["args"]["External id"], state["external"] = state["external"], state["external"] + 1
        out.append(event)
        return event

    def launch(operator: dict, kernel: str, dur: float) -> None:
        """A cudaLaunchKernel inside `operator` and its kernel (its External id), queued behind the last one."""
        ts, ids = operator["ts"] + 2, {"correlation": state["correlation"], "External id": operator["args"]["External id"]}
        out.append({"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1,
                    "ts": ts, "dur": 3.0, "args": ids})
        start = max(state["gpu_free"], ts + 5)
        out.append({"ph": "X", "cat": "kernel", "name": kernel, "pid": 0, "tid": 7, "ts": start, "dur": dur,
                    "args": {"device": 0, "stream": 7, **ids}})
        state["gpu_free"], state["correlation"] = start + dur, state["correlation"] + 1

    for k in range(1 + DECODE):
        tokens = PROMPT if k == 0 else 1
        start = max(state["host"], state["gpu_free"] - 20)  # the host waits for the GPU a little ahead
        numbered(op("aten::embedding", start, 4.0, [[VOCAB, HIDDEN], [1, tokens], [], [], []]))
        ts = start + 6
        for _ in range(LAYERS):
            linear = numbered(op("aten::linear", ts, 8.0, [[1, tokens, HIDDEN], [3 * HIDDEN, HIDDEN], [3 * HIDDEN]]))
            launch(linear, GEMM, 5.0)
            q, kv = [1, HEADS, tokens, HEAD_DIM], [1, HEADS, CONTEXT, HEAD_DIM]
            numbered(op("aten::scaled_dot_product_attention", ts + 10, 14.0, [q, kv, kv, [], [], [], []]))
            inner = numbered(op("aten::_scaled_dot_product_efficient_attention", ts + 11, 12.0, [q, kv, kv, [], [], []]))
            launch(inner, ATTENTION, round(2 * CONTEXT * HEADS * HEAD_DIM * 4 / BANDWIDTH * 1e6, 3))
            ts += 26
        state["host"] = ts
    return out


def main() -> None:
    write(OUT, events(), computeMajor=9, computeMinor=0)


if __name__ == "__main__":
    main()
