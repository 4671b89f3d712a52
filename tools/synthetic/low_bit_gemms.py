"""Write sample_traces/synthetic/{int4_prefill,fp8_small_gemms}.synthetic.pt.trace.json.gz.

SYNTHETIC: no real trace here (../shared: the H100 captures, the public TraceLens, HTA and Kineto samples) runs a
weight-only int4 GEMM on a GPU or an fp8 `_scaled_mm`, so these are Kineto traces written by hand in
torch.profiler's layout on an "NVIDIA H100 80GB HBM3" (peaks 989 TFLOP/s bf16, 3.35 TB/s):
- int4_prefill: torchao int4 weight-only (tinygemm) on a 2-layer bf16 model of hidden 4096 (qkv 12288 x 4096, o
  4096 x 4096, gate/up 22016 x 4096, down 4096 x 11008, each `aten::_weight_int4pack_mm(x [M, K], w [N/8, K/128,
  32, 4] int32, group 128, scales_and_zeros [K/128, N, 2])` launching `tinygemm_m16n8k16_chunk_kernel`): a
  512-token prefill (M = 512) whose int4 kernels run at 110 TFLOP/s (tinygemm dequantizes each tile; a dense bf16
  GEMM of the shape would run near the tensor-core peak), then 8 one-token decode passes (M = 1) reading the int4
  weights at 2 TB/s + 3 µs; a bf16 32000 x 4096 head (cuBLAS `sm90_xmma_gemm_bf16bf16...` kernel).
- fp8_small_gemms: torchao float8 dynamic per-tensor scaling on 4 layers of up 4096 x 1024 and down 1024 x 4096, 4
  passes of 256 tokens; layer 0 left in bf16 (`aten::linear` -> `aten::mm`, 6.1 µs up / down: about 350 TFLOP/s),
  layers 1-3 fp8: for the activation and then the weight, `aten::abs`, `aten::max`, `aten::clamp`,
  `aten::reciprocal`, `aten::mul`, `aten::clamp`, `aten::to` (its `aten::_to_copy` and `aten::copy_` launching the
  cast), each kernel 1.5-3 µs (5 µs over the whole 4M-element weight), 13.5 µs for the activation, 26 for the weight, then `aten::_scaled_mm(x [256, K], w [K, N],
  scale_a [], scale_b [])` launching `sm90_xmma_gemm_e4m3bf16_e4m3f32...` in 4.3 µs (500 TFLOP/s).
Kernel names follow torch's int4mm.cu (tinygemm) and cuBLAS's sm90 xmma naming. Run: python tools/synthetic/low_bit_gemms.py
"""

from __future__ import annotations

from pathlib import Path

from tools.synthetic.memory_bound_decode import op, write

OUT = Path(__file__).resolve().parents[2] / "sample_traces" / "synthetic"
TINYGEMM = ("void at::native::(anonymous namespace)::tinygemm_m16n8k16_chunk_kernel<(at::native::(anonymous "
            "namespace)::KReductionType)0, (at::native::(anonymous namespace)::ALayout)1, (at::native::(anonymous "
            "namespace)::BLayout)2, 8, 8, 8>(at::native::(anonymous namespace)::GPUTensorInfo)")
BF16_GEMM = "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1_execute_segment_k_off_kernel__5x_cublas"
FP8_GEMM = "sm90_xmma_gemm_e4m3bf16_e4m3f32_f32_tn_n_tilesize64x128x128_warpgroupsize1x1x1_execute_segment_k_off_kernel__5x_cublas"
ELEMENTWISE = "void at::native::vectorized_elementwise_kernel<4, at::native::{}_kernel_cuda(at::TensorIteratorBase&)>"
REDUCE = "void at::native::reduce_kernel<512, 1, at::native::ReduceOp<c10::BFloat16, at::native::MaxOps<float>, unsigned int, c10::BFloat16, 4>>"
COPY = "void at::native::unrolled_elementwise_kernel<at::native::direct_copy_kernel_cuda(at::TensorIteratorBase&)>"
INT4_LAYER = [(12288, 4096), (4096, 4096), (22016, 4096), (4096, 11008)]  # (N, K)
# torchao's dynamic scaling of one operand: |x|, its max, the scale from it (clamped, inverted: on a scalar), x times
# the scale, saturated, cast: (operator, kernel, µs, whether it runs over the whole tensor)
CAST = [("aten::abs", ELEMENTWISE.format("abs"), 2.0, True), ("aten::max", REDUCE, 3.0, False),
        ("aten::clamp", ELEMENTWISE.format("clamp"), 1.5, False), ("aten::reciprocal", ELEMENTWISE.format("reciprocal"), 1.5, False),
        ("aten::mul", ELEMENTWISE.format("mul"), 2.0, True), ("aten::clamp", ELEMENTWISE.format("clamp"), 1.5, True)]


class Recorder:
    """Operators on one host thread, each launching kernels queued on one stream (torch.profiler's ids)."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.host, self.gpu_free, self.correlation, self.external = 1000.0, 0.0, 1, 1

    def op(self, name: str, dims: list, dur: float, kernels: list[tuple[str, float]] = (), at: float | None = None) -> dict:
        """An operator at `at` (else the host's clock, which it advances) launching `kernels` (name, µs)."""
        ts = self.host if at is None else at
        event = op(name, ts, dur, dims)
        event["args"]["External id"], self.external = self.external, self.external + 1
        self.events.append(event)
        for j, (kernel, us) in enumerate(kernels):
            ids = {"correlation": self.correlation, "External id": event["args"]["External id"]}
            launch = ts + 1 + 3 * j
            self.events.append({"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1,
                                "ts": launch, "dur": 2.0, "args": ids})
            start = max(self.gpu_free, launch + 4)
            self.events.append({"ph": "X", "cat": "kernel", "name": kernel, "pid": 0, "tid": 7, "ts": start,
                                "dur": round(us, 3), "args": {"device": 0, "stream": 7, **ids}})
            self.gpu_free, self.correlation = start + us, self.correlation + 1
        if at is None:
            self.host = ts + dur + 1
        return event

    def wait(self) -> None:
        """The host catches up with the GPU (a pass's end: its logits read back)."""
        self.host = max(self.host, self.gpu_free) + 5


def int4_prefill() -> list[dict]:
    rec = Recorder()
    for tokens in [512] + [1] * 8:
        rec.op("aten::embedding", [[32000, 4096], [1, tokens], [], [], []], 4.0)
        for _ in range(2):
            for n, k in INT4_LAYER:
                flops = 2 * tokens * n * k
                us = flops / 110e12 * 1e6 if tokens > 1 else n * k / 2 / 2e12 * 1e6 + 3
                rec.op("aten::_weight_int4pack_mm", [[tokens, k], [n // 8, k // 128, 32, 4], [], [k // 128, n, 2]],
                       8.0, [(TINYGEMM, us)])
        linear = rec.op("aten::linear", [[1, tokens, 4096], [32000, 4096], []], 12.0)
        rec.op("aten::mm", [[tokens, 4096], [4096, 32000]], 9.0,
               [(BF16_GEMM, max(2 * tokens * 32000 * 4096 / 700e12, 32000 * 4096 * 2 / 2.6e12) * 1e6)], at=linear["ts"] + 2)
        rec.wait()
    return rec.events


def fp8_small_gemms(scaling: bool = True, inside_linear: bool = False) -> list[dict]:
    """`scaling`: each operand scaled dynamically before each `_scaled_mm` (else no cast: pre-scaled, static);
    `inside_linear`: each fp8 layer an `aten::linear` holding its casts and `_scaled_mm` (a tensor subclass)."""
    rec = Recorder()
    m, hidden = 256, 1024
    for _ in range(4):
        rec.op("aten::embedding", [[32000, hidden], [1, m], [], [], []], 4.0)
        for layer in range(4):
            for n, k in ((4 * hidden, hidden), (hidden, 4 * hidden)):
                if layer == 0:
                    linear = rec.op("aten::linear", [[1, m, k], [n, k], []], 10.0)
                    rec.op("aten::mm", [[m, k], [k, n]], 7.0, [(BF16_GEMM, 6.1)], at=linear["ts"] + 2)
                    continue
                if inside_linear:
                    outer = rec.op("aten::linear", [[1, m, k], [n, k], []], 140.0)
                    rec.host = outer["ts"] + 1
                for shape, weight in (([m, k], False), ([n, k], True)) if scaling else ():
                    for j, (name, kernel, us, whole) in enumerate(CAST):
                        dims = [shape if whole or j == 1 else [], []] if j else [shape]
                        rec.op(name, dims, 6.0, [(kernel, 5.0 if weight and whole else us)])
                    to = rec.op("aten::to", [shape, [], [], [], []], 12.0)
                    copy = rec.op("aten::_to_copy", [shape, [], [], [], [], [], []], 10.0, at=to["ts"] + 1)
                    rec.op("aten::copy_", [[*shape], shape, []], 8.0, [(COPY, 5.0 if weight else 2.0)], at=copy["ts"] + 1)
                rec.op("aten::_scaled_mm", [[m, k], [k, n], [], [], [], []], 9.0, [(FP8_GEMM, 4.3)])
                if inside_linear:
                    rec.host = max(rec.host, outer["ts"] + outer["dur"] + 1)
        rec.wait()
    return rec.events


def main() -> None:
    write(OUT / "int4_prefill.synthetic.pt.trace.json.gz", int4_prefill(), computeMajor=9, computeMinor=0)
    write(OUT / "fp8_small_gemms.synthetic.pt.trace.json.gz", fp8_small_gemms(), computeMajor=9, computeMinor=0)


if __name__ == "__main__":
    main()
