"""Multi-rank Kineto traces: collectives, waits and stragglers, checked against plain JSON passes.

`sampled_2of128_ranks` is ranks 0 and 1 of a 128-rank NCCL job (HTA's test data, with
events sampled away); `cpu/ddp_gloo_straggler` is a real 4-rank gloo DDP run on CPU whose
rank 2 sleeps in its dataset's `__getitem__` (tools/capture/gloo_straggler.py).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import RANKS, SAMPLES
from tests.reference import load_json
from workbench.analyses.rank_work import extra_work
from workbench.inputs import AnalyzeOptions, analyze_path
from workbench.rules import run_rules

GLOO = SAMPLES / "cpu" / "ddp_gloo_straggler"
CALL = re.compile(r"^(nccl|gloo):_?(\w+?)(_base)?$")
SIZES = {"float": 4, "long": 8, "int": 4, "unsigned char": 1, "signed char": 1}


def reference_calls(path: Path) -> list[dict]:
    """Collective calls of one rank with plain loops: kind, step, size, time (kernels or gloo call)."""
    events = [e for e in load_json(path)["traceEvents"] if e.get("ph") == "X"]
    steps = [e for e in events if e["name"].startswith("ProfilerStep#") and e.get("cat") != "gpu_user_annotation"]
    calls = sorted((e for e in events if CALL.match(e["name"]) and e.get("cat") in ("user_annotation", "cpu_op")),
                   key=lambda e: e["ts"])
    launches = {e["args"]["correlation"]: e for e in events if e.get("cat") == "cuda_runtime"
                and "correlation" in e.get("args", {})}
    out = []
    for call in calls:
        match = CALL.match(call["name"])
        kernels = [k for k in events if k.get("cat") == "kernel" and "nccl" in k["name"]
                   and (launch := launches.get(k["args"].get("correlation"))) is not None
                   and launch["tid"] == call["tid"] and call["ts"] <= launch["ts"] <= call["ts"] + call["dur"]]
        dims = call["args"]["Input Dims"][0]
        out.append({
            "kind": match.group(2),
            "step": next((s["name"] for s in steps if s["ts"] <= call["ts"] < s["ts"] + s["dur"]), None),
            "nelems": math.prod(dims),
            "bytes": math.prod(dims) * SIZES[call["args"]["Input type"][0]],
            "time": call["dur"] if match.group(1) == "gloo" else sum(k["dur"] for k in kernels),
        })
    return out


def reference_waits(per_rank: list[list[dict]]) -> list[float]:
    """Each rank's summed wait (its time minus the fastest rank's) over collectives found on every rank."""
    def key(c: dict, seen: dict) -> tuple:
        size = c["nelems"] if c["kind"] != "all_to_all" else None
        base = (c["kind"], c["step"], size)
        seen[base] = seen.get(base, -1) + 1
        return base + (seen[base],)

    keyed = []
    for calls in per_rank:
        seen: dict = {}
        keyed.append({key(c, seen): c["time"] for c in calls})
    common = set.intersection(*(set(k) for k in keyed))
    return [sum(k[c] - min(r[c] for r in keyed) for c in common) for k in keyed]


@pytest.fixture(scope="module")
def sampled():
    (result,) = analyze_path(RANKS, AnalyzeOptions())
    return result


@pytest.fixture(scope="module")
def gloo():
    (result,) = analyze_path(GLOO, AnalyzeOptions())
    return result


def test_collective_table_matches_a_plain_json_pass(sampled):
    for rank in sampled.ranks:
        calls = reference_calls(Path(rank.path))
        table = {row["kind"]: row for row in rank.tables["collectives"]}
        assert sum(row["count"] for row in table.values()) == len(calls) == 10
        for kind, row in table.items():
            mine = [c for c in calls if c["kind"] == kind]
            assert row["count"] == len(mine)
            assert row["total_ms"] == pytest.approx(sum(c["time"] for c in mine) / 1000)
            assert row["bytes_total"] == sum(c["bytes"] for c in mine)


def test_sampled_ranks_all_reduce_facts(sampled):
    rank0 = {row["kind"]: row for row in sampled.ranks[0].tables["collectives"]}
    # nccl:all_reduce of [[19618307]], [[26955536]], [[26258430]], [[5716654]] floats; 4 kernels
    assert rank0["all_reduce"]["bytes_total"] == 4 * (19618307 + 26955536 + 26258430 + 5716654)
    assert rank0["all_reduce"]["total_ms"] == pytest.approx((11727 + 47652 + 12119 + 36158) / 1000)
    assert set(rank0) == {"all_to_all", "all_reduce", "all_gather"}


def test_waits_match_a_plain_matching_of_the_same_collectives(sampled):
    expected = reference_waits([reference_calls(Path(r.path)) for r in sampled.ranks])
    rows = sampled.tables["ranks"]
    assert [r["wait_ms_per_step"] * 2 for r in rows] == pytest.approx([w / 1000 for w in expected])
    # by hand: rank 0 waited 21408 + 3357 + 28197 + 22320 + 1481 µs, rank 1 27255 + 248 + 69647 µs
    assert expected == pytest.approx([76763, 97150])
    assert sampled.metrics["collectives_matched"] == 8


def test_sampled_rank_1_computes_more_in_its_embedding_backward(sampled):
    (row,) = sampled.tables["stragglers"]
    assert row["rank"] == 1 and row["outlier_in"] == ["compute"]
    assert row["likely_cause"] == "slow kernel"
    assert "split_embedding_backward" in row["slow_kernel"]
    assert row["compute_ms_per_step"] > row["median_compute_ms_per_step"] * 1.25


def test_gloo_collectives_and_bytes(gloo):
    for rank in gloo.ranks:
        calls = reference_calls(Path(rank.path))
        (row,) = rank.tables["collectives"]
        assert row["kind"] == "all_reduce" and row["count"] == len(calls) == 6
        assert row["bytes_total"] == 3 * 4 * (1066000 + 263168) == sum(c["bytes"] for c in calls)
        assert row["total_ms"] == pytest.approx(sum(c["time"] for c in calls) / 1000)


def test_gloo_rank_2_is_the_straggler_and_its_loader_the_cause(gloo):
    events = [e for e in load_json(GLOO / "rank-2.pt.trace.json.gz")["traceEvents"] if e.get("ph") == "X"]
    loader_ms = sum(e["dur"] for e in events if "DataLoader" in e["name"]) / 1000 / 3
    assert loader_ms > 40  # 40 ms of sleep per batch on rank 2, 0.4 ms on the others
    assert gloo.metrics["straggler_ranks"] == [2]
    (row,) = gloo.tables["stragglers"]
    assert row["outlier_in"] == ["others waited"] and row["likely_cause"] == "data loading"
    assert row["late_in_collectives"] == 6
    ranks = {r["rank"]: r for r in gloo.tables["ranks"]}
    assert ranks[2]["input_ms_per_step"] == pytest.approx(loader_ms, rel=0.02)
    assert ranks[2]["wait_ms_per_step"] == 0
    assert all(35 < ranks[r]["wait_ms_per_step"] < 50 for r in (0, 1, 3))


def test_straggler_finding_names_the_rank_and_cause(gloo):
    (finding,) = [f for f in run_rules([gloo]) if f.id == "straggler-rank"]
    assert finding.evidence["rank"] == 2 and finding.evidence["likely_cause"] == "data loading"
    assert finding.severity == "critical"
    assert finding.estimated_gain["time_ms_per_step"] == pytest.approx(gloo.tables["stragglers"][0]
                                                                       ["others_wait_ms_per_step"], abs=1e-3)


def test_exposed_communication_on_the_nccl_ranks_is_one_job_finding(sampled):
    (finding,) = [f for f in run_rules([sampled]) if f.id == "exposed-communication"]
    job = finding.evidence
    assert (job["ranks_affected"], job["ranks_total"], job["ranks"]) == (2, 2, [0, 1])
    assert finding.input == str(sampled.path) and "on 2 of 2 ranks" in finding.title
    by_rank = {job[k]["rank"]: job[k] for k in ("median_rank", "worst_rank")}
    assert sorted(by_rank) == [0, 1]
    for rank in sampled.ranks:
        evidence = by_rank[rank.rank]
        assert evidence["exposed_comm_ms_per_step"] == pytest.approx(
            rank.metrics["communication_ms"] / rank.metrics["step_count"], abs=1e-3)
        assert evidence["comm_overlap_pct"] < 50
        assert evidence["collectives_by_time"][0]["kind"] == "all_to_all"
    # the job's gain is the median rank's (the lower of two), its distribution spans both
    gains = sorted(min(e["exposed_comm_ms_per_step"], e["compute_ms_per_step"]) for e in by_rank.values())
    assert finding.estimated_gain["time_ms_per_step"] == pytest.approx(gains[0], abs=1e-3)
    assert job["gain_ms_per_step"]["max"] == pytest.approx(gains[1], abs=1e-3)


def test_job_ranks_as_distributions(gloo):
    rows = {r["metric"]: r for r in gloo.tables["rank_distribution"]}
    ranks = gloo.tables["ranks"]
    loading = [r["input_ms_per_step"] for r in ranks]
    assert rows["input_ms_per_step"]["max"] == pytest.approx(max(loading))
    assert rows["input_ms_per_step"]["max_rank"] == 2 and rows["input_ms_per_step"]["outlier_ranks"] == [2]
    assert rows["caused_wait_ms_per_step"]["outlier_ranks"] == [2]
    assert rows["step_time_ms"]["min"] <= rows["step_time_ms"]["p50"] <= rows["step_time_ms"]["max"]


def test_a_job_analyzed_in_process_keeps_no_trace_but_its_findings(gloo):
    assert all(r.trace is None and r.findings is not None and r.collectives is not None for r in gloo.ranks)


def test_newer_nccl_args_give_message_sizes(shared):
    (result,) = analyze_path(shared("public/hta/nccl_parser_config/nccl_data.json.gz"), AnalyzeOptions())
    events = [e for e in load_json(shared("public/hta/nccl_parser_config/nccl_data.json.gz"))["traceEvents"]
              if e.get("ph") == "X"]
    kernels = [e for e in events if e.get("cat") == "kernel" and e["name"].startswith("ncclKernel_AllReduce")]
    table = {row["kind"]: row for row in result.tables["collectives"]}
    assert table["all_reduce"]["count"] == len(kernels) == 15
    assert table["all_reduce"]["total_ms"] == pytest.approx(sum(k["dur"] for k in kernels) / 1000)
    # the kernels carry the same In msg nelems and dtype as the record_param_comms around each call
    assert table["all_reduce"]["bytes_total"] == sum(4 * k["args"]["In msg nelems"] for k in kernels)


def test_df_index_resolver_has_2020_all_reduces_without_sizes(shared):
    path = shared("public/hta/df_index_resolver/df_index_resolver.json.gz")
    (result,) = analyze_path(path, AnalyzeOptions())
    kernels = [e for e in load_json(path)["traceEvents"] if e.get("cat") == "kernel" and "nccl" in e["name"]]
    (row,) = result.tables["collectives"]
    assert row["count"] == len(kernels) == 2020
    assert row["total_ms"] == pytest.approx(sum(k["dur"] for k in kernels) / 1000)
    assert row["bytes_total"] is None  # neither the annotations nor record_param_comms record sizes there


def test_gloo_ranks_have_host_compute_per_step(gloo):
    """CPU-only ranks: compute is their time in operators outside collectives and data loading."""
    for rank, row in zip(gloo.ranks, gloo.tables["ranks"]):
        events = [e for e in load_json(Path(rank.path))["traceEvents"] if e.get("ph") == "X" and e.get("cat") == "cpu_op"]
        assert 0 < row["compute_ms_per_step"] * rank.metrics["step_count"] <= sum(e["dur"] for e in events) / 1000
    rows = {r["metric"]: r for r in gloo.tables["rank_distribution"]}
    assert rows["compute_ms_per_step"]["ranks"] == 4


def test_the_rank_with_an_extra_branch_is_named_with_it_despite_the_noise():
    """8 gloo ranks on 2 cores (real capture): rank 5 also runs `aux_head` (tools/capture/gloo_straggler.py
    --case extra-compute). Compute per step varies across the other ranks as much as rank 5's excess; the
    calls do not."""
    (job,) = analyze_path(SAMPLES / "cpu" / "ddp_gloo_extra_compute", AnalyzeOptions())
    rows = {r["rank"]: r for r in job.tables["stragglers"]}
    five = rows[5]
    assert "extra work" in five["outlier_in"] and five["likely_cause"] == "extra work"
    first = five["extra_work"][0]
    assert (first["kind"], first["name"], first["calls_per_step"], first["median_calls_per_step"]) == (
        "annotation", "aux_head", 1.0, 0.0)
    assert all(not r["extra_work"] for rank, r in rows.items() if rank != 5)
    (finding,) = [f for f in run_rules([job]) if f.id == "straggler-rank" and f.evidence["rank"] == 5]
    assert "extra work: annotation aux_head" in finding.title


def test_the_rank_with_longer_sequences_is_named_with_the_operator():
    """4 gloo ranks on 2 loaded cores (real capture): rank 1's sequences are 4x as long, its calls as many. Its
    shortest addmm is 2.6x the median rank's; noise lengthens calls, never shortens them."""
    (job,) = analyze_path(SAMPLES / "cpu" / "ddp_gloo_long_sequences", AnalyzeOptions())
    (row,) = job.tables["stragglers"]
    assert row["rank"] == 1 and row["likely_cause"] == "extra work" and "extra work" in row["outlier_in"]
    first = row["extra_work"][0]
    assert (first["kind"], first["name"], first["slower_per_call"], first["calls_per_step"]) == (
        "operator", "aten::addmm", True, first["median_calls_per_step"])
    assert first["shortest_call_ms"] / first["median_shortest_call_ms"] == pytest.approx(2.55, abs=0.01)
    (finding,) = [f for f in run_rules([job]) if f.id == "straggler-rank"]
    assert "extra work: operator aten::addmm, 2.6x the median rank's time per call" in finding.title


def test_a_balanced_job_on_shared_cores_has_no_straggler():
    """8 gloo ranks of one program on 2 cores (real capture, tools/capture/gloo_straggler.py --case balanced): the
    scheduler makes ranks 2, 4 and 6 the last to join collectives and the others wait 10-30 ms/step for them, yet
    none does anything the others do not: their data loading in their median step is the others' within 0.05 ms."""
    (job,) = analyze_path(SAMPLES / "cpu" / "ddp_gloo_balanced", AnalyzeOptions())
    assert job.metrics["straggler_ranks"] == [] and job.tables["stragglers"] == []
    assert not [f for f in run_rules([job]) if f.id == "straggler-rank"]
    rows = {r["rank"]: r for r in job.tables["ranks"]}
    waited_for = {rank: round(r["caused_wait_ms_per_step"], 2) for rank, r in rows.items() if r["late_in_collectives"]}
    assert waited_for == {2: 10.12, 4: 13.4, 6: 29.98}  # each over MIN_WAIT_SHARE of the 130.3 ms median step
    assert job.metrics["collective_wait_ms_per_step"] == pytest.approx(36.87, abs=0.01)
    loading = np.array([r.step_input_us for r in job.ranks]) / 1000
    for rank in waited_for:
        assert abs(loading[rank] - np.median(np.delete(loading, rank))) < 0.05
    compute = [r["compute_ms_per_step"] for r in rows.values()]
    assert (round(min(compute), 2), round(max(compute), 2)) == (25.0, 72.89)  # the noise, on rank 6 the most


def test_a_stall_in_one_step_is_not_a_slow_input_pipeline():
    """ddp_gloo_extra_compute's rank 7 (no change of its own) loaded its batch of step 2 in 17 ms, those of steps 3 and 4
    in 0.52 and 0.85 ms: 6.14 ms/step on average made it an outlier in data loading, its median step does not."""
    (job,) = analyze_path(SAMPLES / "cpu" / "ddp_gloo_extra_compute", AnalyzeOptions())
    seven = job.tables["ranks"][7]
    assert seven["input_ms_per_step"] == pytest.approx(6.14, abs=0.01) and seven["caused_wait_ms_per_step"] > 12
    assert job.ranks[7].step_input_us / 1000 == pytest.approx(0.85, abs=0.01)
    assert job.metrics["straggler_ranks"] == [5]


@pytest.mark.parametrize("case", ["ddp_gloo_straggler", "ddp_gloo_extra_compute", "ddp_gloo_balanced"])
def test_noise_alone_makes_no_work_slower_per_call(case):
    """8 ranks on 2 cores: mean times per call differ up to 135x between ranks, shortest calls at most 1.6x."""
    (job,) = analyze_path(SAMPLES / "cpu" / case, AnalyzeOptions())
    steps = np.array([r.metrics["step_count"] for r in job.ranks], dtype=np.float64)
    every = extra_work([r.work for r in job.ranks], steps, min_slow_ms=0.0)  # however little it would be worth
    assert not [w for items in every for w in items if w["slower_per_call"]]


def test_rank_tables_show_top_rows_in_text_and_markdown_and_every_rank_in_json(tmp_path, capsys):
    """--top caps the rank tables of the readable reports (the slowest ranks first); JSON keeps every rank."""
    from workbench.cli import main

    job = SAMPLES / "cpu" / "ddp_gloo_extra_compute"
    assert main(["analyze", str(job), "--workers", "1", "--top", "3", "--format", "json",
                 "-o", str(tmp_path / "r.json")]) == 0
    (input_,) = json.loads((tmp_path / "r.json").read_text())["inputs"]
    assert input_["meta"]["top"] == 3 and len(input_["tables"]["ranks"]) == len(input_["ranks"]) == 8
    assert all(len(r["outlier_ranks"]) <= 3 for r in input_["tables"]["rank_distribution"])
    slowest = sorted(input_["tables"]["ranks"], key=lambda r: -r["step_time_ms"])[:3]
    for fmt in ("text", "markdown"):
        assert main(["analyze", str(job), "--workers", "1", "--top", "3", "--format", fmt]) == 0
        out = capsys.readouterr().out
        assert "Ranks, per step (ms): the 3 slowest of 8 (all in JSON)" in out
        section = out[out.index("Ranks, per step (ms): the 3"):]
        shown = [int(line.strip("| ").split()[0]) for line in section.splitlines()[2:]
                 if line.strip("| ")[:1].isdigit()]
        assert shown[:3] == [r["rank"] for r in slowest]  # then the stragglers table's ranks


def test_the_ranks_a_large_job_details_include_each_findings_median_and_worst_rank(monkeypatch):
    """Beyond DETAILED_RANKS ranks, the report details a few: never fewer than the ranks a job finding cites."""
    from workbench.inputs import kineto

    monkeypatch.setattr(kineto, "DETAILED_RANKS", 1)
    (job,) = analyze_path(RANKS, AnalyzeOptions())
    cited = {f.evidence[side]["rank"] for f in run_rules([job]) if "ranks_affected" in f.evidence
             for side in ("median_rank", "worst_rank")}
    assert cited == {0, 1}  # exposed-communication: its median rank and its worst
    assert set(job.meta["detailed_ranks"]) == cited
    assert all(r.to_json()["tables"]["kernels"] for r in job.ranks)


def test_the_findings_of_ignored_rules_choose_no_rank_to_detail(monkeypatch):
    """`--ignore`d rules report nothing, so the ranks only they would cite are not detailed for them: with the three
    rules citing both ranks of this job ignored, one rank is detailed (DETAILED_RANKS 1), not two."""
    from workbench.commands.analyze import analyze_report
    from workbench.config import Config
    from workbench.inputs import kineto

    monkeypatch.setattr(kineto, "DETAILED_RANKS", 1)
    ignored = ["exposed-communication", "low-gpu-utilization", "host-bound"]
    report = analyze_report([str(RANKS)], AnalyzeOptions(), Config(), ignored, None)
    assert len(report["inputs"][0]["meta"]["detailed_ranks"]) == 1
    assert not {f["id"] for f in report["findings"]} & set(ignored)
    report = analyze_report([str(RANKS)], AnalyzeOptions(), Config(), [], None)
    assert report["inputs"][0]["meta"]["detailed_ranks"] == [0, 1]


def test_with_traces_kept_the_ranks_a_finding_cites_are_detailed_as_the_job_is_read(monkeypatch):
    """The notebook keeps the traces (its zoom): the per-trace rules still run where each rank is read, so its
    detailed ranks are chosen by the findings as without; the rules then read the ranks' findings, change nothing."""
    from workbench.inputs import kineto

    monkeypatch.setattr(kineto, "DETAILED_RANKS", 1)
    (job,) = analyze_path(RANKS, AnalyzeOptions(keep_traces=True))
    assert all(r.trace is not None for r in job.ranks) and set(job.meta["detailed_ranks"]) == {0, 1}
    before = (dict(job.meta), [r.to_json() for r in job.ranks])
    findings = run_rules([job])
    cited = {f.evidence[side]["rank"] for f in findings if "ranks_affected" in f.evidence
             for side in ("median_rank", "worst_rank")}
    assert cited == {0, 1} and (job.meta, [r.to_json() for r in job.ranks]) == before
    (kept,) = analyze_path(RANKS, AnalyzeOptions())  # traces dropped: the same findings
    assert [f.to_json() for f in findings] == [f.to_json() for f in run_rules([kept])]


def test_a_large_jobs_tables_wait_on_disk_until_its_detailed_ranks_are_chosen(monkeypatch):
    """Beyond DETAILED_RANKS ranks each rank's tables, findings, work by name and collectives are packed and
    spilled to a temporary file as it arrives; the detailed ranks read their tables back whole, the others stay there (a diff
    reads them one at a time)."""
    from workbench.inputs import analyzed, kineto

    spilled = []
    monkeypatch.setattr(kineto, "DETAILED_RANKS", 1)
    monkeypatch.setattr(analyzed.Spill, "put", lambda self, data, put=analyzed.Spill.put: spilled.append(len(data))
                        or put(self, data))
    (job,) = analyze_path(RANKS, AnalyzeOptions())
    (whole,) = analyze_path(RANKS, AnalyzeOptions(keep_traces=True))  # nothing packed
    assert len(spilled) == 8 and all(spilled)  # each rank's tables, findings, work by name and collectives
    for rank, kept in zip(job.ranks, whole.ranks):
        assert (rank.packed is None) == rank.detailed and rank.read_tables()["kernels"] == kept.tables["kernels"]
        if rank.detailed:
            assert rank.tables["timeline"] == kept.tables["timeline"] and rank.tables["timeline"]
