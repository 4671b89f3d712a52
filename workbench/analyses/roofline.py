"""The bandwidth roofline of decoding and the FLOP roofline of prefill.

A decode pass must read every weight once and the KV cache of its sequences (`decode_bytes.py`: each byte count with
its source); at the device's peak memory bandwidth (`device_peaks.py`) that sets a floor on its time and a ceiling
on tokens/s. Prefill's matrix-multiply FLOPs against the device's dense peak give its TFLOP/s and MFU.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.analyses import categories as cat
from workbench.analyses.decode_bytes import (GEMM_KERNEL, decode_kv_bytes, decode_weights, gemm_element_bytes,
                                             pass_low_bit_weights, pass_moe_weights, pass_weights, unsized_summary)
from workbench.analyses.device_peaks import device_name, device_peaks
from workbench.models.trace import Trace
from workbench.units import US_PER_MS

if TYPE_CHECKING:
    from workbench.analyses.inference import Passes


def decode_roofline(weight_bytes: float, kv_bytes: float, tokens_per_pass: float | None,
                    ms_per_pass: float | None, peak_gbps: float | None) -> dict[str, Any]:
    """Bytes per decode pass against the device's bandwidth: achieved GB/s, MBU, floor and tokens/s ceiling."""
    moved = weight_bytes + kv_bytes
    out: dict[str, Any] = {"decode_weight_bytes_per_pass": int(weight_bytes), "decode_kv_bytes_per_pass": int(kv_bytes),
                           "decode_bytes_per_pass": int(moved), "peak_memory_bandwidth_gbps": peak_gbps}
    if moved and ms_per_pass:
        out["decode_bandwidth_gbps"] = round(moved / (ms_per_pass / 1000) / 1e9, 3)
    if moved and peak_gbps:
        floor_ms = moved / (peak_gbps * 1e9) * 1000
        out["decode_floor_ms_per_pass"] = round(floor_ms, 5)
        if ms_per_pass:
            out["decode_mbu_pct"] = round(100 * floor_ms / ms_per_pass, 3)
        out["decode_passes_per_s_ceiling"] = round(1000 / floor_ms, 1)
        if tokens_per_pass:
            out["decode_tokens_per_s_ceiling"] = round(tokens_per_pass * 1000 / floor_ms, 1)
    return out


def prefill_roofline(flops: float, gpu_ms: float | None, peak_tflops: float | None) -> dict[str, Any]:
    """Matrix-multiply FLOPs of the prefill against the device's dense peak: achieved TFLOP/s and MFU."""
    if not flops or not gpu_ms:
        return {}
    achieved = flops / (gpu_ms / 1000) / 1e12
    out: dict[str, Any] = {"prefill_tflops": round(achieved, 3), "peak_tflops": peak_tflops}
    if peak_tflops:
        out["prefill_mfu_pct"] = round(100 * achieved / peak_tflops, 3)
    return out


def attention_floor_us(matrices: int, seq_q: int, seq_k: int, head_dim: int, element_bytes: float,
                       peak_gbps: float | None, peak_tflops: float | None) -> float:
    """The least time one fused attention call takes at the device's peaks: Q, K, V read and O written once
    (bytes), 4 x matrices x seq_q x seq_k x head_dim FLOPs (QK^T and PV); 0 where the peaks are unknown."""
    moved = (2 * seq_q + 2 * seq_k) * matrices * head_dim * element_bytes
    flops = 4 * matrices * seq_q * seq_k * head_dim
    return max(moved / (peak_gbps * 1e3) if peak_gbps else 0.0, flops / (peak_tflops * 1e6) if peak_tflops else 0.0)


def roofline_metrics(trace: Trace, kinds: np.ndarray, passes: Passes, bounds: np.ndarray, gpu: np.ndarray,
                     of_pass: np.ndarray, replayed: np.ndarray, concat: np.ndarray, gpu_us: np.ndarray,
                     ms_per_pass: float | None) -> dict[str, Any]:
    """Decode against peak bandwidth (its first decode pass, else the decode requests of its first mixed step),
    prefill against peak FLOPs; each byte count with the source it came from. `gpu`, `of_pass`, `replayed`: the
    GPU events, the pass each belongs to and whether a graph replay launched it."""
    events = trace.events
    device = next((name for name in map(device_name, trace.devices) if name), None)
    peak_gbps, peak_tflops = device_peaks(device)
    width = gemm_element_bytes(events, kinds)
    out: dict[str, Any] = {"device_name": device, "weight_element_bytes": width}
    phase = list(passes.phase)
    k = next((k for k, p in enumerate(phase) if p == "decode"),
             next((k for k, p in enumerate(phase) if p == "mixed"), None))
    if k is not None:
        kernels = gpu[(of_pass == k) & (kinds[gpu] == cat.COMPUTE)]
        kernels = kernels[np.argsort(events.ts[kernels], kind="stable")]
        graph_kernels = gpu[(of_pass == k) & replayed & (kinds[gpu] == cat.COMPUTE)]
        weights, low_bit, source, unsized = decode_weights(events, kinds, passes, bounds, k, kernels, graph_kernels)
        kv, kv_source = decode_kv_bytes(events, kinds, passes, bounds, k, concat, width, graph_kernels)
        tokens = int(passes.decode_tokens[k]) if passes.decode_tokens[k] > 0 else None
        out.update({"decode_bytes_source": source, "decode_kv_bytes_source": kv_source})
        if unsized:
            out["decode_unsized_gemm_kernels"] = unsized_summary(unsized)
        moe = pass_moe_weights(events, float(passes.start_us[k]), float(bounds[k]))[2]
        if moe:
            out["decode_moe"] = moe
        if source is not None:
            out.update(decode_roofline(weights * width + low_bit, kv, tokens,
                                       ms_per_pass if phase[k] == "decode" else None, peak_gbps))
            if low_bit:
                out["decode_low_bit_weight_bytes_per_pass"] = int(low_bit)
        elif kv:
            out["decode_kv_bytes_per_pass"] = int(kv)
    prefill = [k for k, p in enumerate(phase) if p in ("prefill", "mixed")]
    flops = 0.0
    for k in prefill:
        if (replayed & (of_pass == k) & events.name_mask(GEMM_KERNEL.search)[gpu]).any():
            flops = 0.0  # GEMMs inside graphs: the operators' shapes hold only part of the FLOPs
            break
        start, end = float(passes.start_us[k]), float(bounds[k])
        per_token = pass_weights(events, start, end)[1] + 2 * pass_low_bit_weights(events, start, end)[0] + \
            2 * pass_moe_weights(events, start, end)[1]
        flops += per_token * max(int(passes.prefill_tokens[k] + passes.decode_tokens[k]), 0)
    out.update(prefill_roofline(flops, float(gpu_us[prefill].sum()) / US_PER_MS if prefill else None, peak_tflops))
    return out
