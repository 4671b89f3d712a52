"""Forward passes and phases of real inference traces, with the numbers their captures state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import NAIVE, OPTIMIZED, shared_path
from workbench.inputs import AnalyzeOptions, analyze_path

VLLM = "public/tracelens/vllm_prefilldecode_piecewise/graph_execution.json.gz"
SGLANG = "public/tracelens/sglang_prefilldecode/sglang_Qwen3-8B_prefilldecode.json.gz"
QWEN = "public/tracelens/h100_hf_qwen1.5_0.5b/Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz"
DECODE = "h100/infer_decode/infer_decode.pt.trace.json.gz"
GRAPH = "h100/infer_graph/infer_graph.pt.trace.json.gz"


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


def test_transformers_prefill_from_the_token_embedding() -> None:
    m = analyzed(shared_path(QWEN)).metrics
    assert (m["inference_engine"], m["inference_pass_source"]) == ("transformers", "token_embedding")
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


def test_prefill_against_peak_flops() -> None:
    m = analyzed(shared_path(SGLANG)).metrics
    assert (m["device_name"], m["peak_tflops"], m["weight_element_bytes"]) == ("AMD Instinct MI300X", 1307, 2)
    assert 0 < m["prefill_mfu_pct"] < 100


def test_graph_replays_are_decode_passes_of_unknown_batch() -> None:
    m = analyzed(shared_path(GRAPH)).metrics
    assert (m["cuda_graph_replays"], m["decode_passes"], m["inference_pass_source"]) == (128, 128, "graph_replay")
    assert m["decode_tokens"] is None and m["decode_tokens_per_s"] is None  # a replay does not record its batch
    assert (m["kv_cache"], m["attention_backend"]) == ("static", "sdpa_cudnn")


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
