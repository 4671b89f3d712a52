"""Every finding's fix code runs (on the CPU here, its device-specific lines guarded)."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import pytest

from tests.conftest import (
    GRAPH, NAIVE, OOM_CAPACITY, OOM_EXPANDABLE, OPTIMIZED, RANKS, SAMPLES, SHARED, SYNTHETIC, wild_message_files,
)
from workbench.inputs import AnalyzeOptions, analyze_path
from workbench.rules import RULES, run_rules

torch = pytest.importorskip("torch", reason="the fix code needs torch (pip install -e '.[dev]')")

SHARED_TRACES = [
    "h100/infer_decode/infer_decode.pt.trace.json.gz",
    "public/tracelens/vllm_prefilldecode_piecewise/graph_execution.json.gz",  # the vLLM fixes
    "public/kineto/tb_plugin_samples/resnet50_num_workers_0/worker0.1623143089861.pt.trace.json.gz",
    "h100/nsys_small/h100_nsys_small.sqlite",  # gpu-gaps, low-gpu-utilization
    "public/nsys/extrap/ex-gpu.s10.sqlite",  # sync-memcpy
]


def collect_findings() -> dict[str, dict]:
    """The first finding of each rule over the sample traces and, when present, the shared ones."""
    paths = [NAIVE, OPTIMIZED, GRAPH, RANKS, SAMPLES / "cpu" / "ddp_gloo_straggler"]
    paths += [SAMPLES / "h100" / "nccl_timeout", SAMPLES / "h100" / "nccl_timeout" / "stdout_stderr.log"]
    paths += [SAMPLES / "nccl_cpu" / s for s in ("missing", "order", "p2p")]  # the hang rules
    paths += [OOM_CAPACITY, OOM_EXPANDABLE, OOM_CAPACITY / "oom_capacity.oom.txt"]  # the OOM rules
    paths += [SAMPLES / "cpu" / "tiny_generate" / "dequantize"]  # int8 weights dequantized before each linear
    paths += [SAMPLES / "cpu" / "tiny_generate" / "assisted"]  # a draft/verify loop (speculative-decoding)
    paths += sorted(SYNTHETIC.glob("*.synthetic.*"))  # memory problems no real file shows
    paths += [SHARED / p for p in SHARED_TRACES if (SHARED / p).exists()]
    paths += wild_message_files(Path(tempfile.mkdtemp(prefix="wild-")))  # OOM and NCCL wordings from public issues
    found: dict[str, dict] = {}
    for path in paths:
        for finding in run_rules(analyze_path(path, AnalyzeOptions())):
            found.setdefault(f"{finding.id}:{path.name}", finding.to_json())
    return found


FINDINGS = collect_findings()


@pytest.mark.parametrize("key", sorted(FINDINGS))
def test_fix_code_runs(key):
    code = FINDINGS[key]["fix"]["code"]
    compile(code, key, "exec")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(code, {"__name__": "__fix__"})


def test_every_rule_is_covered_when_the_shared_traces_are_present():
    if not all((SHARED / p).exists() for p in SHARED_TRACES):
        pytest.skip("../shared/traces is not present: only the sample traces' findings ran")
    covered = {key.split(":")[0] for key in FINDINGS}
    assert set(RULES) == covered
