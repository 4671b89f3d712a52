"""Forward passes and phases of real inference traces, with the numbers their captures state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import GRAPH as GRAPH_SAMPLE, NAIVE, OPTIMIZED, SAMPLES, shared_path
from workbench.inputs import AnalyzeOptions, analyze_path

VLLM = "public/tracelens/vllm_prefilldecode_piecewise/graph_execution.json.gz"
SGLANG = "public/tracelens/sglang_prefilldecode/sglang_Qwen3-8B_prefilldecode.json.gz"
QWEN = "public/tracelens/h100_hf_qwen1.5_0.5b/Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz"
DECODE = "h100/infer_decode/infer_decode.pt.trace.json.gz"
GRAPH = "h100/infer_graph/infer_graph.pt.trace.json.gz"
TINY = SAMPLES / "cpu" / "tiny_generate"  # CPU generate() of tiny random Llama models: structure, not speed


def tiny_path(case: str) -> Path:
    (trace,) = (TINY / case).glob("*.pt.trace.json.gz")
    return trace


def tiny(case: str):
    return analyzed(tiny_path(case))


def analyzed(path: Path):
    (input_,) = analyze_path(path, AnalyzeOptions())
    return input_


def test_vllm_mixed_step() -> None:
    result = analyzed(shared_path(VLLM))
    m = result.metrics
    assert (m["inference_engine"], m["mixed_passes"], m["prefill_passes"], m["decode_passes"]) == ("vllm", 1, 0, 0)
    assert (m["prefill_tokens"], m["decode_tokens"]) == (8155, 37)
    assert (m["kv_cache"], m["attention_backend"], m["cuda_graph_replays"]) == ("paged", "triton", 25)
    (step,) = result.tables["inference_steps"]
    assert (step["phase"], step["prefill_requests"], step["decode_requests"], step["tokens"]) == ("mixed", 9, 37, 8192)


def test_sglang_prefill_step() -> None:
    result = analyzed(shared_path(SGLANG))
    m = result.metrics
    assert (m["inference_engine"], m["prefill_passes"], m["prefill_tokens"], m["decode_passes"]) == \
        ("sglang", 1, 15360, 0)
    assert (m["kv_cache"], m["attention_backend"]) == ("paged", "ck_fmha")
    (step,) = result.tables["inference_steps"]
    assert (step["phase"], step["prefill_requests"], step["tokens"]) == ("prefill", 15, 15360)


def test_transformers_prefill_from_the_model_module() -> None:
    """The token embedding's [16, 559] ids inside `nn.Module: Qwen2Model_0` (the capture called the base
    model): the pass spans that module."""
    result = analyzed(shared_path(QWEN))
    m = result.metrics
    assert (m["inference_engine"], m["inference_pass_source"]) == ("transformers", "module")
    assert result.tables["inference_steps"][0]["model"] == "Qwen2Model_0"
    assert (m["prefill_passes"], m["prefill_tokens"], m["decode_passes"]) == (1, 16 * 559, 0)
    assert m["attention_backend"] == "sdpa_flash"


def test_hand_written_decode_loop() -> None:
    result = analyzed(shared_path(DECODE))
    m = result.metrics
    assert (m["inference_engine"], m["prefill_passes"], m["prefill_tokens"]) == (None, 1, 32)
    assert (m["decode_passes"], m["decode_tokens"]) == (96, 96)
    assert (m["kv_cache"], m["attention_backend"]) == ("concat", "manual")
    # the cache grows by one position per pass: 2 tensors x 6 layers x 12 heads x 64 (K and V, old + new)
    assert m["kv_concat_elements_last_decode"] > m["kv_concat_elements_first_decode"]
    assert m["decode_tokens_per_s"] == pytest.approx(1000 / m["decode_ms_per_pass"])
    steps = result.tables["inference_steps"]
    assert [s["phase"] for s in steps] == ["prefill"] + ["decode"] * 96


def test_decode_roofline_of_the_hand_written_loop() -> None:
    """vocab 8192, d 768, 6 layers (qkv, proj, 2 MLP), float32: the weights one decode pass reads."""
    m = analyzed(shared_path(DECODE)).metrics
    params = 6 * (768 * 3 * 768 + 768 * 768 + 2 * 768 * 4 * 768) + 8192 * 768
    assert (m["weight_element_bytes"], m["decode_weight_bytes_per_pass"]) == (4, 4 * params)
    assert m["peak_memory_bandwidth_gbps"] == 3350  # H100 SXM (HBM3)
    floor_ms = m["decode_bytes_per_pass"] / 3350e9 * 1000
    assert m["decode_mbu_pct"] == pytest.approx(100 * floor_ms / m["decode_ms_per_pass"], rel=1e-3)
    assert m["decode_tokens_per_s_ceiling"] == pytest.approx(1000 / floor_ms, rel=1e-3)


def test_decode_roofline_of_the_graph_replayed_loop() -> None:
    """infer_graph runs infer_decode's model (the same cfg in both *.meta.json) in bf16 from one CUDA graph; the
    replays record no shapes, so each nvjet GEMM is sized by its 64-row tile x its grid (qkv [4, 9, 1]: 2304
    outputs; fc2's split-K [4, 6, 1]: 768 x 2 splits; lm_head [2, 64, 1]: 8192) and its input width by the
    chain (768 after attention, fc1's 3072 into fc2): the same 48,758,784 weights, at 2 bytes."""
    m = analyzed(shared_path(GRAPH)).metrics
    params = 6 * (768 * 3 * 768 + 768 * 768 + 2 * 768 * 4 * 768) + 8192 * 768
    assert analyzed(shared_path(DECODE)).metrics["decode_weight_bytes_per_pass"] == 4 * params == 195_035_136
    assert (m["decode_bytes_source"], m["weight_element_bytes"], m["decode_weight_bytes_per_pass"]) == \
        ("kernel_grid", 2, 2 * params)  # nvjet names no type: the kernels around it are BFloat16
    assert m["decode_kv_bytes_source"] is None and m["decode_kv_bytes_per_pass"] == 0  # the replayed SDPA: no shapes
    assert m["decode_bandwidth_gbps"] == pytest.approx(2 * params / (m["decode_ms_per_pass"] / 1000) / 1e9, rel=1e-4)
    assert m["decode_bandwidth_gbps"] == pytest.approx(256.8, abs=0.1)
    assert m["decode_mbu_pct"] == pytest.approx(7.67, abs=0.01)  # 0.0291 ms floor in 0.380 ms passes
    assert m["decode_passes_per_s_ceiling"] == pytest.approx(3350e9 / (2 * params), rel=1e-4)  # 34,353 / s
    assert "decode_tokens_per_s_ceiling" not in m  # a replay does not record its batch


def test_decode_bytes_of_the_vllm_mixed_step() -> None:
    """gpt-oss on vLLM (MI300X): the 24 layers' dense and MoE GEMMs (triton_kernels matmul_ogs, mxfp4 experts)
    are replayed from piecewise graphs with neither shapes nor grids: the weights read are unknown, and said so.
    The 37 decode requests' KV: the annotation's sk34489 positions x 24 cache writes of [8192, 8, 64] keys and
    values, bf16 (reshape_and_cache_flash_kernel<__hip_bfloat16, ..., Fp8KVCacheDataType 0>)."""
    m = analyzed(shared_path(VLLM)).metrics
    assert m["device_name"] == "AMD Instinct MI300X (identified: 304 CUs, 192 GiB)"  # deviceProperties: name ''
    assert m["decode_bytes_source"] is None and "decode_mbu_pct" not in m
    unsized = m["decode_unsized_gemm_kernels"]
    assert (unsized["kernels"], unsized["moe_kernels"]) == (5 * 24, 2 * 24)
    assert {n["name"] for n in unsized["names"]} >= {"_matmul_ogs_NNT_bf16xbf16xmxfp4_128x128x128x1_swiglu"}
    assert m["decode_kv_bytes_source"] == "engine_context_lengths"
    assert m["decode_kv_bytes_per_pass"] == 34489 * 24 * 2 * 8 * 64 * 2 == 1_695_203_328
    # the one GEMM with shapes is the lm_head over 46 rows: no prefill FLOPs from it (was 60.8 TFLOP/s)
    assert "prefill_tflops" not in m


def test_graph_replays_sized_by_the_eager_warm_up_pass() -> None:
    """Synthetic (tools/synthetic/roofline_sources.py): an eager pass of 9 `aten::linear` (2 layers of qkv, o, up,
    down at hidden 1024, an 8000 x 1024 head) and 2 SDPA calls over a static cache [1, 16, 512, 64], then 6 replays
    of their 11 kernels with neither shapes nor grid."""
    m = analyzed(SAMPLES / "synthetic" / "graph_decode_warmup.synthetic.pt.trace.json.gz").metrics
    weights = 2 * (3 + 1 + 4 + 4) * 1024 * 1024 + 8000 * 1024
    assert (m["decode_passes"], m["decode_bytes_source"], m["decode_weight_bytes_per_pass"]) == \
        (6, "eager_shapes", 2 * weights)
    assert (m["decode_kv_bytes_source"], m["decode_kv_bytes_per_pass"]) == \
        ("eager_sdpa_shapes", 2 * 2 * 16 * 512 * 64 * 2)


def test_full_graph_vllm_decode_sized_by_its_prefill_step() -> None:
    """Synthetic: vLLM decode steps that replay whole graphs (9 Tensile GEMMs with neither shapes nor grid) after an
    eager prefill step: the weights are the prefill's GEMMs, the KV the annotation's sk40 positions x the prefill's
    cache writes (2 layers x K and V [16, 8, 64], bf16)."""
    m = analyzed(SAMPLES / "synthetic" / "vllm_full_graph_decode.synthetic.pt.trace.json.gz").metrics
    weights = 2 * (3 + 1 + 4 + 4) * 1024 * 1024 + 8000 * 1024
    assert (m["inference_engine"], m["decode_passes"], m["decode_tokens"]) == ("vllm", 4, 8)
    assert (m["decode_bytes_source"], m["decode_weight_bytes_per_pass"]) == ("prefill_shapes", 2 * weights)
    assert (m["decode_kv_bytes_source"], m["decode_kv_bytes_per_pass"]) == \
        ("engine_context_lengths", 40 * 2 * 2 * 8 * 64 * 2)
    assert m["decode_tokens_per_s_ceiling"] == pytest.approx(2 * m["decode_passes_per_s_ceiling"], rel=1e-4)


@pytest.mark.parametrize("batch, experts_read, exact", [(1, 2, True), (3, 6, False)])
def test_moe_decode_reads_the_routed_experts(batch: int, experts_read: int, exact: bool) -> None:
    """Synthetic: 2 layers of `vllm::outplace_fused_experts` over 8 experts of w1 [1024, 1024] + w2 [1024, 512],
    top-2: one token reads its 2 experts a layer; 3 tokens at most 6 (which ones the trace does not record)."""
    result = analyzed(SAMPLES / "synthetic" / f"moe_decode_b{batch}.synthetic.pt.trace.json.gz")
    m = result.metrics
    dense = 2 * (3 * 1024 * 1024 + 1024 * 1024 + 8 * 1024) + 8000 * 1024
    expert = 1024 * 1024 + 1024 * 512
    assert m["decode_bytes_source"] == "operator_shapes"
    assert m["decode_weight_bytes_per_pass"] == 2 * (dense + 2 * experts_read * expert)
    moe = m["decode_moe"]
    assert (moe["experts"], moe["top_k"], moe["tokens"], moe["experts_read_per_call"], moe["exact"]) == \
        (8, 2, batch, experts_read, exact)
    # prefill: each of its 16 x batch tokens multiplies by its 2 experts
    per_token = 2 * (dense + 2 * 2 * expert)
    prefill_ms = result.tables["inference_steps"][0]["gpu_ms"]
    assert m["prefill_tflops"] == pytest.approx(per_token * 16 * batch / (prefill_ms / 1000) / 1e12, rel=1e-3)


def test_moe_without_expert_shapes_leaves_the_bytes_unknown(tmp_path: Path) -> None:
    """Synthetic: the same decode with vLLM's newer `vllm::moe_forward(hidden, router_logits, layer)`, whose inputs
    hold no expert weights: no weight bytes, no MBU, the fused_moe kernels named."""
    import gzip

    with gzip.open(SAMPLES / "synthetic" / "moe_decode_b1.synthetic.pt.trace.json.gz", "rt") as f:
        trace = json.load(f)
    for event in trace["traceEvents"]:
        if event["name"] == "vllm::outplace_fused_experts":
            event.update(name="vllm::moe_forward", args={"Input Dims": [[1, 1024], [1, 8], []]})
    path = tmp_path / "moe_forward.synthetic.pt.trace.json"
    path.write_text(json.dumps(trace))
    m = analyzed(path).metrics
    assert m["decode_bytes_source"] is None and "decode_mbu_pct" not in m
    assert m["decode_unsized_gemm_kernels"]["moe_kernels"] == 2 * 2  # 2 layers, 2 kernels a call
    assert m["decode_moe"]["unsized_calls"] == 2


def test_a_custom_gemm_op_leaves_the_bytes_unknown(tmp_path: Path) -> None:
    """Synthetic memory_bound_decode with its head's `aten::linear` renamed to a custom `mylib::lm_head` (linked to
    its kernel by External id): the GEMV it launches reads weights no shape shows, so no bytes are claimed."""
    import gzip

    with gzip.open(SAMPLES / "synthetic" / "memory_bound_decode.synthetic.pt.trace.json.gz", "rt") as f:
        trace = json.load(f)
    events = trace["traceEvents"]
    for op, launch in zip(events, events[1:]):
        if op["name"] == "aten::linear" and launch["name"] == "cudaLaunchKernel":
            op["args"]["External id"] = launch["args"]["External id"] = launch["args"]["correlation"]
            if op["args"]["Input Dims"][1] == [32000, 4096]:
                op["name"] = "mylib::lm_head"
    path = tmp_path / "custom_gemm.synthetic.pt.trace.json"
    path.write_text(json.dumps(trace))
    m = analyzed(path).metrics
    assert m["decode_bytes_source"] is None and "decode_mbu_pct" not in m
    (row,) = m["decode_unsized_gemm_kernels"]["names"]
    assert row["count"] == 1 and row["name"].endswith("(launched by mylib::lm_head)")


def test_prefill_against_peak_flops() -> None:
    m = analyzed(shared_path(SGLANG)).metrics
    assert (m["device_name"], m["peak_tflops"], m["weight_element_bytes"]) == ("AMD Instinct MI300X", 1307, 2)
    assert 0 < m["prefill_mfu_pct"] < 100


def test_graph_replays_are_decode_passes_of_unknown_batch() -> None:
    m = analyzed(shared_path(GRAPH)).metrics
    assert (m["cuda_graph_replays"], m["decode_passes"], m["inference_pass_source"]) == (128, 128, "graph_replay")
    assert m["decode_tokens"] is None and m["decode_tokens_per_s"] is None  # a replay does not record its batch
    assert (m["kv_cache"], m["attention_backend"]) == ("static", "sdpa_cudnn")


def test_graph_launches_on_the_per_thread_default_stream_are_replays_too(tmp_path: Path) -> None:
    """infer_graph with its 128 cudaGraphLaunch calls renamed cudaGraphLaunch_ptsz (the runtime's per-thread
    default-stream entry point): the same replays, decode passes and no launch-bound finding."""
    import gzip

    from workbench.rules import run_rules

    path = tmp_path / "infer_graph_ptsz.pt.trace.json"
    path.write_bytes(gzip.decompress(GRAPH_SAMPLE.read_bytes()).replace(b'"cudaGraphLaunch"', b'"cudaGraphLaunch_ptsz"'))
    inputs = analyze_path(path, AnalyzeOptions())
    m = inputs[0].metrics
    assert (m["cuda_graph_replays"], m["decode_passes"], m["inference_pass_source"]) == (128, 128, "graph_replay")
    assert "launch-bound" not in {f.id for f in run_rules(inputs)}


@pytest.mark.parametrize("path", [NAIVE, OPTIMIZED], ids=["train_naive", "train_optimized"])
def test_training_gets_no_inference_reading(path: Path) -> None:
    result = analyzed(path)
    assert "inference_steps" not in result.tables
    assert not any(k in result.metrics for k in ("prefill_passes", "decode_passes", "kv_cache"))


def test_unparseable_annotation_is_one_warning(tmp_path: Path) -> None:
    """Synthetic: vLLM-like annotations whose numbers are cut off; none becomes a step."""
    events = [{"ph": "X", "cat": "user_annotation", "name": f"execute_context_{n}(sq12sk", "pid": 1, "tid": 1,
               "ts": 100 * n, "dur": 50, "args": {}} for n in range(3)]
    path = tmp_path / "bad_annotation.synthetic.json"
    path.write_text(json.dumps({"traceEvents": events}))
    result = analyzed(path)
    assert "inference_steps" not in result.tables and "prefill_passes" not in result.metrics
    assert len([w for w in result.warnings if "do not parse" in w]) == 1


def test_kv_cache_concat_finding_shows_the_growing_copies() -> None:
    """6 layers x K and V x 12 heads x 64 x float32: each step copies one more position of all of them."""
    from workbench.rules import run_rules

    (finding,) = [f for f in run_rules([analyzed(shared_path(DECODE))]) if f.id == "kv-cache-concat"]
    per_position = 6 * 2 * 12 * 64 * 4
    assert finding.evidence["growth_bytes_per_step"] == per_position
    assert finding.evidence["bytes_copied_last_decode"] == per_position * (127 + 1)  # 32 prompt + 95 cached
    assert finding.evidence["new_entry_shape"] == [1, 12, 1, 64]
    assert "index_copy_" in finding.fix.code


def test_no_kv_cache_finding_with_a_static_cache() -> None:
    from workbench.rules import run_rules

    assert not [f for f in run_rules([analyzed(shared_path(GRAPH))]) if f.id == "kv-cache-concat"]


def test_diff_compares_ms_per_decode_pass() -> None:
    from workbench.analyses.trace_diff import metric_changes

    base, new = analyzed(shared_path(DECODE)), analyzed(shared_path(GRAPH))
    rows = {r["name"]: r for r in metric_changes(base.metrics, new.metrics)}
    change = rows["decode_ms_per_pass"]
    assert (change["base"], change["new"]) == (base.metrics["decode_ms_per_pass"], new.metrics["decode_ms_per_pass"])
    assert change["delta"] < 0  # the graph-replayed static-cache loop against the eager concat loop


def test_generate_with_a_dynamic_cache_on_the_cpu() -> None:
    """Batch 2, a 12-token prompt, 8 new tokens: one [2, 12] prefill and 7 [2, 1] decode passes, each the
    `nn.Module: LlamaForCausalLM_0` forward; SDPA's key length says the cache grows one position a pass."""
    result = tiny("dynamic")
    m = result.metrics
    assert (m["inference_engine"], m["inference_pass_source"]) == ("transformers", "module")
    assert (m["prefill_passes"], m["prefill_tokens"], m["decode_passes"], m["decode_tokens"]) == (1, 24, 7, 14)
    assert (m["kv_cache"], m["attention_backend"]) == ("concat", "sdpa_flash")
    steps = result.tables["inference_steps"]
    assert [s["past_tokens"] for s in steps] == [0, *range(12, 19)]
    assert {s["model"] for s in steps} == {"LlamaForCausalLM_0"}
    # 2 layers x (q 64x64, k/v 32x64, o 64x64, gate/up/down 128x64) + lm_head 512x64, float32
    assert m["decode_weight_bytes_per_pass"] == 4 * (2 * (2 * 4096 + 2 * 2048 + 3 * 8192) + 512 * 64)


def test_generate_with_a_static_cache_on_the_cpu() -> None:
    """StaticCache writes in place (`aten::index_copy_`); its fixed key length gives no past."""
    result = tiny("static")
    m = result.metrics
    assert (m["prefill_passes"], m["prefill_tokens"], m["decode_passes"], m["kv_cache"]) == (1, 12, 7, "static")
    assert all(s["past_tokens"] is None for s in result.tables["inference_steps"])


def test_assisted_generation_draft_and_verify_passes() -> None:
    """A 1-layer draft (`LlamaForCausalLM_0`, called first) proposes 4 tokens per round; the 2-layer target
    (`LlamaForCausalLM_1`) verifies them in one pass of 1 + 4 tokens ([1, 16] the first: prompt + 4)."""
    result = tiny("assisted")
    m = result.metrics
    assert (m["verify_passes"], m["draft_passes"], m["prefill_passes"], m["decode_passes"]) == (6, 24, 0, 0)
    steps = result.tables["inference_steps"]
    verify = [s for s in steps if s["phase"] == "verify"]
    assert {s["model"] for s in verify} == {"LlamaForCausalLM_1"}
    assert {s["model"] for s in steps if s["phase"] == "draft"} == {"LlamaForCausalLM_0"}
    assert [s["tokens"] for s in verify] == [16, 5, 5, 5, 5, 5]
    assert [s["proposed_tokens"] for s in verify] == [4] * 6
    # the next verify's cache says what was kept: 13 - (0 + 16) ... accepted 1, 0, 1, 0, 0; the last unknown
    assert [s["past_tokens"] for s in verify] == [0, 13, 14, 16, 17, 18]
    assert [s["accepted_tokens"] for s in verify] == [1, 0, 1, 0, 0, None]
    assert (m["speculative_method"], m["speculative_proposed_tokens"], m["speculative_accepted_tokens"]) == \
        ("draft_model", 20, 2)
    assert m["speculative_acceptance_pct"] == 10.0 and m["speculative_tokens_per_verify"] == 1.4
    assert 0 < m["draft_share_pct"] < 100
    assert m["kv_cache"] == "concat"


def test_prompt_lookup_verify_passes() -> None:
    """prompt_lookup_num_tokens=3 on a prompt that repeats: no draft model; a [1, 4] pass over a 20-position
    cache verifies 3 copied candidates and keeps 1 (the next pass starts at 22); [1, 1] passes decode."""
    result = tiny("prompt_lookup")
    m = result.metrics
    assert (m["prefill_passes"], m["decode_passes"], m["verify_passes"], m["draft_passes"]) == (1, 9, 1, 0)
    assert (m["speculative_method"], m["speculative_proposed_tokens"], m["speculative_accepted_tokens"]) == \
        ("prompt_lookup", 3, 1)
    steps = result.tables["inference_steps"]
    assert [s["phase"] for s in steps] == ["prefill"] + ["decode"] * 8 + ["verify", "decode"]
    assert (steps[9]["tokens"], steps[9]["past_tokens"], steps[10]["past_tokens"]) == (4, 20, 22)
    # the first pass holds the 12-token prompt and 3 candidates, of which the next pass's cache keeps none
    assert (steps[0]["tokens"], steps[1]["past_tokens"]) == (15, 12)


@pytest.mark.parametrize("case, fused, pairs", [("quantize_dynamic", "fbgemm_qlinear", 0),
                                                 ("int8pack", "int8_weight_only", 0), ("dequantize", None, 112)])
def test_int8_weight_generate_passes(case: str, fused: str | None, pairs: int) -> None:
    """The same int8 weights three ways: fbgemm's dynamic int8 Linear, `_weight_int8pack_mm`, and a float
    copy (`to` + a per-channel `mul`) before each of the 14 decoder-layer linears of the 8 passes."""
    m = tiny(case).metrics
    assert (m["prefill_passes"], m["prefill_tokens"], m["decode_passes"], m["decode_tokens"]) == (1, 12, 7, 7)
    assert (m["quantized_gemm"], m["dequantize_gemm_pairs"]) == (fused, pairs)


def test_roofline_bytes_of_int8_weights() -> None:
    """int8pack: the decoder layers' 73,728 weights read as one byte each by `_weight_int8pack_mm`, the float32
    512 x 64 head as four; dequantize: the dense linears read float32 copies of all of them."""
    int8 = tiny("int8pack").metrics
    assert (int8["decode_low_bit_weight_bytes_per_pass"], int8["decode_weight_bytes_per_pass"]) == \
        (73728, 73728 + 4 * 512 * 64)
    assert tiny("dequantize").metrics["decode_weight_bytes_per_pass"] == 4 * (73728 + 512 * 64)


def findings_of(rule_id: str, path: Path) -> list:
    from workbench.rules import run_rules

    return [f for f in run_rules([analyzed(path)]) if f.id == rule_id]


def test_graph_coverage_of_the_replayed_decode_loop() -> None:
    """infer_graph: per replay, two eager [1, 1] copy_ (the next token, ...) and one add_ (the position) run
    between the graphs; the GPU idles at those boundaries."""
    (finding,) = findings_of("cuda-graph-coverage", shared_path(GRAPH))
    ev = finding.evidence
    assert (ev["graph_replays"], ev["passes"], ev["piecewise"], ev["padding"]) == (128, 128, False, None)
    assert [o["op"] for o in ev["eager_operators"]] == ["aten::copy_", "aten::add_"]
    assert ev["eager_operators"][0]["input_shapes"] == "[[1, 1], [1, 1], []]"
    assert ev["eager_kernels"][0]["count"] == 2 * 127  # between the first and the last replayed kernel
    assert 0 < ev["eager_gpu_ms_per_pass"] < ev["boundary_idle_ms_per_pass"] < ev["graph_gpu_ms_per_pass"]
    assert 90 < ev["graph_coverage_pct"] < 100
    assert finding.estimated_gain["time_ms"] == pytest.approx(128 * ev["boundary_idle_ms_per_pass"], rel=1e-2)
    assert "torch.cuda.graph" in finding.fix.code


def test_piecewise_graph_gaps_of_the_vllm_step() -> None:
    """vLLM's mixed step: 25 graph pieces, the 24 layers' attention (unified_attention, reshape_and_cache) eager
    between them; the graphs ran the 8192 scheduled tokens (no padding)."""
    (finding,) = findings_of("cuda-graph-coverage", shared_path(VLLM))
    ev = finding.evidence
    assert (ev["graph_replays"], ev["passes"], ev["piecewise"], ev["eager_gpu_events_per_pass"]) == (25, 1, True, 48)
    assert {k["name"] for k in ev["eager_kernels"]} >= {"kernel_unified_attention_2d"}
    assert [k["count"] for k in ev["eager_kernels"]] == [24, 24]
    assert (ev["padding"]["scheduled_tokens"], ev["padding"]["graph_tokens"], ev["padding"]["padded_tokens"]) == \
        (8192, 8192, 0)
    assert "FULL_AND_PIECEWISE" in finding.fix.code


def test_hand_written_attention_in_the_decode_loop() -> None:
    """infer_decode: 6 layers x 97 passes of matmul, scale, masked_fill, softmax, matmul in float32 on an H100; the
    GPU is busy ~4% of the time, so the gain is the host time one fused call per attention would leave."""
    (finding,) = findings_of("attention-backend", shared_path(DECODE))
    ev = finding.evidence
    assert (ev["attention_backend"], ev["attention_calls"], ev["input_element_bytes"]) == ("manual", 6 * 97, 4)
    assert ev["last_call_q_kv_shapes"] == [[1, 12, 1, 64], [1, 12, 32 + 95 + 1, 64]]  # the last step's cache
    assert 5 <= ev["attention_operators_per_call"] <= 6
    assert 0 < ev["fused_estimate_ms"] < ev["attention_gpu_ms"]
    assert "H100" in ev["suggested_backend"] and "cuDNN" in ev["suggested_backend"]
    assert {o["op"] for o in ev["operators"]} >= {"aten::bmm", "aten::_softmax", "aten::masked_fill_"}
    assert "host time" in finding.estimated_gain["method"]
    assert finding.estimated_gain["time_ms"] < ev["attention_host_ms"]
    assert "scaled_dot_product_attention" in finding.fix.code


def test_fused_attention_is_no_attention_finding() -> None:
    """infer_graph (cuDNN SDPA, bf16), the Qwen forward (flash SDPA) and vLLM (Triton unified attention)."""
    assert not [f for p in (GRAPH, QWEN, VLLM) for f in findings_of("attention-backend", shared_path(p))]


def test_prefill_decode_interference_in_the_vllm_mixed_step() -> None:
    """vLLM's step: 9 prefill requests (8155 tokens) and 37 decode requests (37 tokens, 0.45 % of the step's)
    that each wait for the whole step; at 2048 tokens per step the prefill takes 5 steps."""
    (finding,) = findings_of("prefill-decode-interference", shared_path(VLLM))
    ev = finding.evidence
    assert (ev["prefill_requests"], ev["prefill_chunk_tokens"], ev["decode_requests"], ev["decode_tokens"]) == \
        (9, 8155, 37, 37)
    assert ev["decode_share_of_tokens_pct"] == pytest.approx(100 * 37 / 8192, abs=1e-3)
    assert ev["step_gpu_ms_at_budget"] == pytest.approx(ev["step_gpu_ms"] * 2048 / 8192, abs=1e-3)
    assert ev["prefill_steps_at_budget"] == 5  # ceil(8155 / (2048 - 37))
    assert finding.estimated_gain["time_ms"] == pytest.approx(ev["step_gpu_ms"] - ev["step_gpu_ms_at_budget"],
                                                              abs=1e-2)
    assert "max_num_batched_tokens" in finding.fix.code


def test_no_interference_without_decode_requests() -> None:
    """SGLang's step is a prefill only (EXTEND bs=15)."""
    assert not findings_of("prefill-decode-interference", shared_path(SGLANG))


def test_dequantized_weights_finding() -> None:
    (finding,) = findings_of("quantized-weights-dequantized", tiny_path("dequantize"))
    e = finding.evidence
    assert (e["dequantize_gemm_pairs"], e["pairs_per_pass"], e["time_measured_on"]) == (112, 14, "host operators")
    # per layer q, o [64, 64]; k, v [32, 64]; gate, up [128, 64]; down [64, 128]: x 2 layers x 8 passes
    assert {tuple(r["shape"]): r["pairs"] for r in e["weight_shapes"]} == \
        {(64, 64): 32, (32, 64): 32, (128, 64): 32, (64, 128): 16}
    assert {r["name"] for r in e["dequantize_operators"]} == {"aten::to", "aten::mul"}
    assert e["fused_low_bit_gemms_that_ran"] == [] and e["dequantize_ms"] > 0
    assert "_weight_int8pack_mm" in finding.fix.code


@pytest.mark.parametrize("case", ["int8pack", "quantize_dynamic", "dynamic"])
def test_no_dequantized_weights_finding_with_fused_kernels_or_float_weights(case: str) -> None:
    assert not findings_of("quantized-weights-dequantized", tiny_path(case))


def test_weight_only_quantization_of_a_memory_bound_decode() -> None:
    """Synthetic (sample_traces/synthetic/memory_bound_decode...): bf16 weights of 16 Linear(4096, 4096) and a
    32000 x 4096 head read at 72 % of an H100's 3.35 TB/s; int8 halves the bytes, int4 quarters them."""
    path = SAMPLES / "synthetic" / "memory_bound_decode.synthetic.pt.trace.json.gz"
    result = analyzed(path)
    weights = 2 * (16 * 4096 * 4096 + 32000 * 4096)
    assert (result.metrics["decode_weight_bytes_per_pass"], result.metrics["decode_passes"]) == (weights, 16)
    (finding,) = findings_of("weight-only-quantization", path)
    e = finding.evidence
    assert e["decode_mbu_pct"] == pytest.approx(71.88, abs=0.01)
    assert (e["int8"]["bytes_per_pass"], e["int4"]["bytes_per_pass"]) == (weights // 2, weights // 4)
    assert e["int8"]["tokens_per_s_ceiling"] == pytest.approx(2 * e["now"]["tokens_per_s_ceiling"], rel=1e-3)
    assert e["int4"]["floor_ms_per_pass"] == pytest.approx(weights / 4 / 3350e9 * 1000, rel=1e-3)
    assert not findings_of("quantize-weights", path)  # the same advice once, with the bytes per pass


def test_no_weight_only_quantization_for_a_launch_bound_decode() -> None:
    """infer_decode reads its fp32 weights at 0.65 % of the H100's bandwidth: launches, not bytes, bound it."""
    assert analyzed(shared_path(DECODE)).metrics["decode_mbu_pct"] < 1
    assert not findings_of("weight-only-quantization", shared_path(DECODE))


def test_speculative_decoding_what_if_on_the_batch_1_decode_loop() -> None:
    """infer_decode: batch 1, 96 decode passes of 8.986 ms, no draft; a pass of 5 tokens costs about one of 1
    (its FLOPs at the H100's peak are ~0.1 µs a token). E = (1 - a^5) / (1 - a) at a = 0.6 is 2.306 tokens."""
    from workbench.analyses.speculation import break_even_acceptance, tokens_per_round

    (finding,) = findings_of("speculative-decoding", shared_path(DECODE))
    ev = finding.evidence
    assert (ev["sequences_per_pass"], ev["decode_passes"], ev["layers"], ev["bound"]) == \
        (1.0, 96, 6, "launch/host-bound")
    assert ev["verify_cost_in_passes"] == pytest.approx(1.0, abs=1e-3)
    rows = {r["method"]: r for r in ev["methods"]}
    assert tokens_per_round(0.6, 4) == pytest.approx(2.3056)
    assert rows["prompt_lookup"]["speedup_at_0.6"] == pytest.approx(2.306, abs=1e-3)
    assert rows["eagle_head"]["draft_cost"] == pytest.approx(1 / 6, abs=1e-4)
    # break-even: E(a) = 4 x 1/6 + 1
    assert rows["eagle_head"]["break_even_acceptance"] == pytest.approx(break_even_acceptance(4, 1 / 6), abs=1e-3)
    assert tokens_per_round(rows["eagle_head"]["break_even_acceptance"], 4) == pytest.approx(4 / 6 + 1, abs=1e-3)
    least = min(r["speedup_at_0.6"] for r in ev["methods"])
    assert finding.estimated_gain["time_ms"] == pytest.approx(96 * ev["decode_ms_per_pass"] * (1 - 1 / least), rel=1e-3)
    assert "prompt_lookup_num_tokens" in finding.fix.code


def test_assisted_generation_that_does_not_pay() -> None:
    """tiny_generate/assisted (CPU, random weights): 2 of 20 proposed tokens accepted, the 1-layer draft 68 % of
    the loop: the rounds yield 1.4 tokens for more than 3 passes' time, below the break-even acceptance."""
    (finding,) = findings_of("speculative-decoding", tiny_path("assisted"))
    ev = finding.evidence
    assert (ev["method"], ev["proposed_tokens"], ev["accepted_tokens"], ev["tokens_per_verify"]) == \
        ("draft_model", 20, 2, 1.4)
    assert (ev["verify_passes"], ev["draft_passes"], ev["proposed_tokens_per_round"]) == (6, 24, 4)
    assert ev["measured_speedup"] < 1 and ev["break_even_acceptance"] > ev["acceptance_pct"] / 100
    assert ev["one_token_pass_from"].startswith("verify passes")


def test_prompt_lookup_that_pays_and_cpu_decoding_get_no_speculation_finding() -> None:
    """prompt_lookup: 1 of 3 candidates kept, the 4-token pass cheaper than two 1-token ones; dynamic: no
    device peaks (a CPU capture), so no MBU and no what-if."""
    for case in ("prompt_lookup", "dynamic"):
        assert not findings_of("speculative-decoding", tiny_path(case))


NSYS_SMALL = "h100/nsys_small/h100_nsys_small.sqlite"


def trtllm_export(tmp_path: Path) -> Path:
    """Synthetic: the real H100 nsys export (30 NVTX ranges `step 0` .. `step 29`) with a TensorRT-LLM
    `_forward_step` range added over each step, labelled as PyExecutor labels them (py_executor.py): a 2-request
    1024-token prefill, a mixed step, 27 decode steps of 3 requests, and one label of the older form
    without `ctx tokens`."""
    import shutil
    import sqlite3

    path = tmp_path / "trtllm_forward_step.synthetic.sqlite"
    shutil.copy(shared_path(NSYS_SMALL), path)
    path.chmod(0o644)
    with sqlite3.connect(path) as db:
        steps = db.execute("SELECT start, \"end\", globalTid, text FROM NVTX_EVENTS ORDER BY start").fetchall()
        for start, end, tid, text in steps:
            i = int(text.split()[1])
            label = (f"[Executor] _forward_step {i}: 2 ctx reqs, 1024 ctx tokens, 0 gen reqs" if i == 0 else
                     f"[Executor] _forward_step {i}: 1 ctx reqs, 512 ctx tokens, 2 gen reqs" if i == 1 else
                     f"[Executor] _forward_step {i}: 0 ctx reqs, 3 gen reqs" if i == 29 else
                     f"[Executor] _forward_step {i}: 0 ctx reqs, 0 ctx tokens, 3 gen reqs")
            db.execute("INSERT INTO NVTX_EVENTS (start, \"end\", eventType, text, globalTid) VALUES (?, ?, 59, ?, ?)",
                       (start, end, label, tid))
    return path


def test_tensorrt_llm_forward_steps_in_an_nsys_export(tmp_path: Path) -> None:
    result = analyzed(trtllm_export(tmp_path))
    m = result.metrics
    assert (m["inference_engine"], m["inference_pass_source"]) == ("tensorrt_llm", "engine_annotation")
    assert (m["prefill_passes"], m["mixed_passes"], m["decode_passes"]) == (1, 1, 28)
    assert (m["prefill_tokens"], m["decode_tokens"]) == (1024 + 512, 2 + 28 * 3)
    steps = result.tables["inference_steps"]
    assert (steps[1]["phase"], steps[1]["prefill_requests"], steps[1]["decode_requests"], steps[1]["tokens"]) == \
        ("mixed", 1, 2, 514)
    assert all(s["gpu_ms"] > 0 for s in steps)  # the kernels launched inside each range
    assert m["decode_tokens_per_s"] == pytest.approx(3 * 1000 / m["decode_ms_per_pass"], rel=1e-6)


def test_tensorrt_llm_labels_whose_numbers_do_not_parse(tmp_path: Path) -> None:
    """Synthetic: `_forward_step` ranges cut off before their request counts; no step, one warning."""
    import sqlite3

    path = trtllm_export(tmp_path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE NVTX_EVENTS SET text = '[Executor] _forward_step 7: 1 ctx' WHERE text LIKE '[Executor]%'")
    result = analyzed(path)
    assert "inference_steps" not in result.tables and "prefill_passes" not in result.metrics
    assert len([w for w in result.warnings if "do not parse" in w]) == 1


def test_float32_sdpa_on_the_memory_efficient_kernel() -> None:
    """Synthetic (sample_traces/synthetic/fp32_sdpa_decode...): 2 layers x 9 passes of SDPA on float32 inputs
    over a 4096-position cache, each fmha_cutlassF_f32 kernel 12.58 µs; a bf16 fused kernel at the H100's
    3.35 TB/s reads the same keys and values in 3.76 µs, and no fused call is shorter than the median kernel."""
    path = SAMPLES / "synthetic" / "fp32_sdpa_decode.synthetic.pt.trace.json.gz"
    (finding,) = findings_of("attention-backend", path)
    ev = finding.evidence
    assert (ev["attention_backend"], ev["attention_calls"], ev["attention_kernels"]) == ("sdpa_mem_efficient", 18, 18)
    assert ev["last_call_q_kv_shapes"] == [[1, 12, 1, 64], [1, 12, 4096, 64]]
    assert ev["attention_gpu_ms"] == pytest.approx(18 * 2 * 4096 * 12 * 64 * 4 / 2e12 * 1000, abs=1e-3)
    assert ev["fused_estimate_ms"] == pytest.approx(18 * (5 + 12.583) / 2 / 1000, abs=1e-3)  # the median kernel
    assert finding.estimated_gain["time_ms"] == pytest.approx(ev["attention_gpu_ms"] - ev["fused_estimate_ms"],
                                                              abs=2e-3)
    assert "bfloat16" in finding.fix.code


def test_speculative_decoding_what_if_on_a_memory_bound_decode() -> None:
    """Synthetic memory_bound_decode: MBU 72 %, 1 sequence a pass; a (1 + 4)-token pass costs 1.0097 one-token
    passes (4 x 2 x 2.2e8 FLOPs at 989 TFLOP/s over 0.332 ms)."""
    (finding,) = findings_of("speculative-decoding", SAMPLES / "synthetic" / "memory_bound_decode.synthetic.pt.trace.json.gz")
    ev = finding.evidence
    assert (ev["bound"], ev["sequences_per_pass"]) == ("memory-bound", 1.0)
    weights = 16 * 4096 * 4096 + 32000 * 4096
    assert ev["verify_cost_in_passes"] == pytest.approx(1 + 4 * 2 * weights / 989e12 * 1000 / ev["decode_ms_per_pass"],
                                                        abs=1e-3)
    assert [r["method"] for r in ev["methods"]] == ["prompt_lookup", "draft_model"]  # no attention: layers unknown


def test_two_models_taking_turns_are_not_draft_and_verify(tmp_path: Path) -> None:
    """Synthetic: two models (`nn.Module: Big_0`, `Small_0`) each decode one token in turn, as two chat
    sessions might: no pass of the larger takes the other's tokens plus one, so no draft or verify."""
    events, ts = [], 0
    for k in range(8):
        name, width = ("Big_0", 128) if k % 2 == 0 else ("Small_0", 32)
        tokens = 6 if k < 2 else 1
        events.append({"ph": "X", "cat": "python_function", "name": f"nn.Module: {name}", "pid": 1, "tid": 1,
                       "ts": ts, "dur": 90, "args": {}})
        for j, inner in enumerate(("Embedding_0", "Linear_0")):
            events.append({"ph": "X", "cat": "python_function", "name": f"nn.Module: {inner}", "pid": 1, "tid": 1,
                           "ts": ts + 5 + 40 * j, "dur": 30, "args": {}})
        events.append({"ph": "X", "cat": "cpu_op", "name": "aten::embedding", "pid": 1, "tid": 1, "ts": ts + 10,
                       "dur": 10, "args": {"Input Dims": [[1000, width], [1, tokens], [], [], []]}})
        ts += 100
    path = tmp_path / "two_models.synthetic.json"
    path.write_text(json.dumps({"traceEvents": events}))
    result = analyzed(path)
    m = result.metrics
    assert (m["inference_pass_source"], m["verify_passes"], m["draft_passes"]) == ("module", 0, 0)
    assert (m["prefill_passes"], m["decode_passes"]) == (2, 6)
    assert {s["model"] for s in result.tables["inference_steps"]} == {"Big_0", "Small_0"}
