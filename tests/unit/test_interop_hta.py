"""workbench.interop.hta without pandas or HTA: which trace files an input hands to HTA."""

from __future__ import annotations

from tests.conftest import NAIVE, RANKS
from workbench.inputs import AnalyzeOptions, analyze_path
from workbench.interop.hta import rank_documents, trace_files


def test_a_job_hands_each_rank_file_under_its_rank():
    [job] = analyze_path(RANKS, AnalyzeOptions())
    assert trace_files(job) == {0: str((RANKS / "sampled_rank-0.json.gz").resolve()),
                                1: str((RANKS / "sampled_rank-1.json.gz").resolve())}
    assert trace_files(job.to_json()) == trace_files(job)  # a report's input dict works the same


def test_a_trace_without_a_rank_is_rank_zero():
    [single] = analyze_path(NAIVE, AnalyzeOptions())
    [doc] = rank_documents(single)
    assert doc["rank"] == 0 and doc["metrics"]["gpu_busy_pct"] == single.metrics["gpu_busy_pct"]
    assert trace_files(single) == {0: str(NAIVE.resolve())}
