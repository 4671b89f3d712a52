"""Write sample_traces/synthetic/memory_bound_decode.synthetic.pt.trace.json.gz.

SYNTHETIC: no real trace here shows a decode loop that runs near the memory bandwidth (our H100
`infer_decode` is launch-bound at 0.65 % MBU; the public engine traces hold no decode pass), so this
writes a Kineto trace by hand in torch.profiler's layout: an "NVIDIA H100 80GB HBM3", a 16-token
prefill then 16 one-token decode passes of a bf16 model of 4 layers x 4 Linear(4096, 4096) and a
32000 x 4096 head, each GEMV kernel as long as its weight bytes take at 2.6 TB/s, a pass every 330 µs
(about 72 % of the 3.35 TB/s peak). It also writes the same decode on an "NVIDIA RTX 6000 Ada Generation",
a GPU without a peak in analyses/device_peaks.py (its MBU unknown: `quantize-weights` speaks, GPU-bound at 93 %
busy, not `weight-only-quantization`), as unknown_peak_decode.synthetic.pt.trace.json.gz.
Run: python tools/synthetic/memory_bound_decode.py
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

SYNTHETIC = Path(__file__).resolve().parents[2] / "sample_traces" / "synthetic"
OUT = SYNTHETIC / "memory_bound_decode.synthetic.pt.trace.json.gz"
UNKNOWN_PEAK = SYNTHETIC / "unknown_peak_decode.synthetic.pt.trace.json.gz"
HIDDEN, VOCAB, LAYERS, PROMPT, DECODE = 4096, 32000, 4, 16, 16
PASS_US, BANDWIDTH = 330.0, 2.6e12  # host time per pass; the bandwidth the kernels run at (bytes/s)
KERNEL = "void gemv2T_kernel_val<int, int, __nv_bfloat16, __nv_bfloat16, float, 128, 16, 4, 4, false, false>"


def events(external: bool = False) -> list[dict]:
    """The prefill and decode passes; `external`: each linear, its launch and its kernel share an External id, as
    torch.profiler links an operator to its kernels (the first file has none)."""
    out: list[dict] = []
    correlation, gpu_free = 1, 0.0
    weights = [[HIDDEN, HIDDEN]] * (4 * LAYERS) + [[VOCAB, HIDDEN]]
    for k in range(1 + DECODE):
        tokens = PROMPT if k == 0 else 1
        start = 1000.0 + k * PASS_US
        out.append(op("aten::embedding", start, 4.0, [[VOCAB, HIDDEN], [1, tokens], [], [], []]))
        for j, weight in enumerate(weights):
            ts = start + 10 + j * 15
            ids = {"correlation": correlation, **({"External id": correlation} if external else {})}
            linear = op("aten::linear", ts, 12.0, [[1, tokens, HIDDEN], weight, []])
            out.append({**linear, "args": {**linear["args"], **({"External id": correlation} if external else {})}})
            out.append({"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1,
                        "ts": ts + 2, "dur": 5.0, "args": dict(ids)})
            gpu_start = max(gpu_free, ts + 8)
            dur = weight[0] * weight[1] * 2 / BANDWIDTH * 1e6
            out.append({"ph": "X", "cat": "kernel", "name": KERNEL, "pid": 0, "tid": 7, "ts": gpu_start,
                        "dur": round(dur, 3), "args": {"device": 0, "stream": 7, **ids}})
            gpu_free, correlation = gpu_start + dur, correlation + 1
    return out


def op(name: str, ts: float, dur: float, dims: list) -> dict:
    return {"ph": "X", "cat": "cpu_op", "name": name, "pid": 1, "tid": 1, "ts": ts, "dur": dur,
            "args": {"Input Dims": dims}}


def write(path: Path, trace_events: list[dict], **device: object) -> None:
    """A gzipped Kineto trace of `trace_events` on one "NVIDIA H100 80GB HBM3" (or `device`'s properties)."""
    props = {"id": 0, "name": "NVIDIA H100 80GB HBM3", **device, "totalGlobalMem": 85045592064}
    with gzip.open(path, "wt") as f:
        json.dump({"schemaVersion": 1, "deviceProperties": [props], "traceEvents": trace_events}, f)
    print(path)


def main() -> None:
    write(OUT, events())
    write(UNKNOWN_PEAK, events(external=True), name="NVIDIA RTX 6000 Ada Generation")


if __name__ == "__main__":
    main()
