"""Low-bit GEMMs that did not pay: weight-only int4 kernels at large M, fp8 GEMMs no faster than bf16 ones
(synthetic H100 traces written by tools/synthetic/low_bit_gemms.py; none on the real traces)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SAMPLES, shared_path
from workbench.analyses.quantized_gemms import gemm_shape
from workbench.inputs import AnalyzeOptions, analyze_path
from workbench.rules import run_rules

INT4 = SAMPLES / "synthetic" / "int4_prefill.synthetic.pt.trace.json.gz"
FP8 = SAMPLES / "synthetic" / "fp8_small_gemms.synthetic.pt.trace.json.gz"
RULE_IDS = ("low-bit-gemm-large-m", "fp8-gemm-not-faster")
REAL = ["h100/infer_decode/infer_decode.pt.trace.json.gz", "h100/infer_graph/infer_graph.pt.trace.json.gz",
        "public/tracelens/vllm_prefilldecode_piecewise/graph_execution.json.gz",
        "public/tracelens/sglang_prefilldecode/sglang_Qwen3-8B_prefilldecode.json.gz",
        "public/tracelens/h100_hf_qwen1.5_0.5b/Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz"]


def findings(path: Path, rule_id: str) -> list:
    return [f for f in run_rules(analyze_path(path, AnalyzeOptions())) if f.id == rule_id]


def test_gemm_shapes_from_operator_inputs() -> None:
    """M counts the activation's rows; tinygemm's int32 weight packs 8 int4 weights an element."""
    assert gemm_shape("aten::_weight_int4pack_mm", [[512, 4096], [2752, 32, 32, 4], [], [32, 22016, 2]]) == \
        (512, 22016, 4096)
    assert gemm_shape("aten::_weight_int8pack_mm", [[2, 3, 64], [128, 64], [128]]) == (6, 128, 64)
    assert gemm_shape("aten::_scaled_mm", [[256, 1024], [1024, 4096], [], []]) == (256, 4096, 1024)
    assert gemm_shape("aten::addmm", [[4096], [256, 1024], [1024, 4096]]) == (256, 4096, 1024)
    assert gemm_shape("aten::linear", [[1, 8, 64], [32, 64], []]) == (8, 32, 64)
    assert gemm_shape("aten::mm", [[8, 64], [32, 16]]) is None  # inner dimensions differ


def test_int4_weight_only_kernels_at_large_m() -> None:
    """Synthetic int4_prefill: a 512-token prefill's 8 tinygemm calls at 110 TFLOP/s; a bf16 GEMM of M=512,
    N=22016, K=4096 has a 93.37 µs floor at the H100's 989 TFLOP/s, and the estimate the gain counts from is that
    floor at 70 % plus writing the 16-bit weight copy at 3.35 TB/s (187.22 µs); the 64 decode calls (M = 1) stay."""
    (finding,) = findings(INT4, "low-bit-gemm-large-m")
    ev = finding.evidence
    assert (ev["large_m_calls"], ev["small_m_calls"], ev["peak_tflops"]) == (8, 64, 989)
    top = ev["by_shape"][0]
    assert (top["operator"], top["m"], top["n"], top["k"], top["calls"]) == ("aten::_weight_int4pack_mm", 512, 22016,
                                                                             4096, 2)
    assert "tinygemm" in top["kernel"]
    assert top["us_per_call"] == pytest.approx(2 * 512 * 22016 * 4096 / 110e12 * 1e6, abs=1e-3)
    assert top["bf16_floor_us_per_call"] == pytest.approx(2 * 512 * 22016 * 4096 / 989e12 * 1e6, abs=1e-3)
    assert top["dense_estimate_us_per_call"] == pytest.approx(187.221, abs=1e-3)
    assert (top["tflops"], top["time_over_bf16_floor"]) == (110.0, 8.99)
    assert finding.estimated_gain["time_ms"] == pytest.approx(2.928, abs=1e-3)
    assert "_weight_int8pack_mm" in finding.fix.code and "F.linear" in finding.fix.code
    assert not findings(INT4, "fp8-gemm-not-faster")


def test_fp8_gemms_slower_than_bf16_with_their_casts() -> None:
    """Synthetic fp8_small_gemms: 24 `_scaled_mm` calls of 256 x 4096 x 1024 and 256 x 1024 x 4096 at 4.3 µs (499
    TFLOP/s) each after 14 amax/scale/cast operators (39.5 µs of kernels: 13.5 for the activation, 26 for the weight),
    against the bf16 layer's 6.1 µs GEMMs of the same shapes (352 TFLOP/s): 0.139x, 12 x 39.5 µs saved a shape."""
    (finding,) = findings(FP8, "fp8-gemm-not-faster")
    ev = finding.evidence
    assert (ev["fp8_gemm_calls"], ev["bf16_gemm_calls"], len(ev["shapes"])) == (24, 8, 2)
    for row in ev["shapes"]:
        assert (row["matched_by"], row["fp8_calls"], row["bf16_calls"], row["cast_ops_per_gemm"]) == \
            ("same (M, N, K)", 12, 4, 14.0)
        assert (row["fp8_us_per_call"], row["cast_us_per_call"], row["bf16_us_per_call"]) == (4.3, 39.5, 6.1)
        assert (row["fp8_tflops"], row["bf16_tflops"], row["speedup_over_bf16"]) == (499.41, 352.05, 0.139)
        assert row["saved_us"] == pytest.approx(12 * 39.5)
    assert {(r["m"], r["n"], r["k"]) for r in ev["shapes"]} == {(256, 4096, 1024), (256, 1024, 4096)}
    assert finding.estimated_gain["time_ms"] == pytest.approx(0.948)
    assert "float8_e4m3fn" in finding.fix.code
    assert not findings(FP8, "low-bit-gemm-large-m")


@pytest.mark.parametrize("case", ["int8pack", "quantize_dynamic", "dequantize"])
def test_no_finding_on_cpu_low_bit_generate(case: str) -> None:
    """tiny_generate's int8 weights on the CPU: no device peaks, no bf16 floor to compare with."""
    path = SAMPLES / "cpu" / "tiny_generate" / case
    assert not [f for f in run_rules(analyze_path(path, AnalyzeOptions())) if f.id in RULE_IDS]


@pytest.mark.parametrize("relative", REAL)
def test_no_finding_on_the_real_traces(relative: str) -> None:
    path = shared_path(relative)
    assert not [f for f in run_rules(analyze_path(path, AnalyzeOptions())) if f.id in RULE_IDS]


def fp8_trace(tmp_path: Path, **options: bool) -> Path:
    """fp8_small_gemms written with `options` (tools/synthetic/low_bit_gemms.py)."""
    from tools.synthetic.low_bit_gemms import fp8_small_gemms
    from tools.synthetic.memory_bound_decode import write

    path = tmp_path / "fp8.pt.trace.json.gz"
    write(path, fp8_small_gemms(**options), computeMajor=9, computeMinor=0)
    return path


def test_fp8_casts_found_inside_a_linear(tmp_path: Path) -> None:
    """The same layers with each fp8 layer's casts and `_scaled_mm` inside an `aten::linear` (a tensor subclass's
    dispatch): the 14 operators before the GEMM at its depth are still its casts."""
    (finding,) = findings(fp8_trace(tmp_path, inside_linear=True), "fp8-gemm-not-faster")
    assert [(r["cast_ops_per_gemm"], r["cast_us_per_call"]) for r in finding.evidence["shapes"]] == [(14.0, 39.5)] * 2


def test_no_finding_when_fp8_pays(tmp_path: Path) -> None:
    """Without the per-call casts (weights and activations scaled ahead), 4.3 µs against bf16's 6.1: 1.42x."""
    assert not findings(fp8_trace(tmp_path, scaling=False), "fp8-gemm-not-faster")


def test_vllm_cutlass_scaled_mm_shape() -> None:
    assert gemm_shape("_C::cutlass_scaled_mm", [[256, 4096], [256, 1024], [1024, 4096], [256, 1], [1, 4096], []]) == \
        (256, 4096, 1024)
