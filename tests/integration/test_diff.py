"""`workbench diff BASE NEW` on the shipped H100 traces, and `diff_inputs` on synthetic inputs."""

from __future__ import annotations

import json

import pytest

from tests.conftest import GRAPH, NAIVE, OPTIMIZED, SAMPLES
from workbench.analyses.trace_diff import DIFF_METRICS, diff_inputs
from workbench.cli import main
from workbench.inputs import AnalyzedInput

# ProfilerStep#4..6 durations read straight from the JSON: naive 86.0035, 85.2379, 93.5151 ms,
# optimized 34.6182, 32.3155, 31.5043 ms.
NAIVE_STEP_MS = 88.2522
OPTIMIZED_STEP_MS = 32.8127


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["diff", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def json_diff(tmp_path_factory) -> dict:
    """The JSON report of naive -> optimized, written with -o (module scope: the traces are analyzed once)."""
    target = tmp_path_factory.mktemp("diff") / "diff.json"
    assert main(["diff", str(NAIVE), str(OPTIMIZED), "--format", "json", "--top", "5", "-o", str(target)]) == 0
    return json.loads(target.read_text())


def test_report_holds_both_inputs_new_findings_and_the_diff(json_diff):
    assert json_diff["schema"] == "workbench.report/1"
    assert [i["path"] for i in json_diff["inputs"]] == [str(NAIVE), str(OPTIMIZED)]
    assert all(len(i["tables"]["kernels"]) == 5 for i in json_diff["inputs"])  # cut to --top
    assert all(f["input"] == str(OPTIMIZED) for f in json_diff["findings"])
    diff = json_diff["diff"]
    assert diff["base"] == str(NAIVE) and diff["new"] == str(OPTIMIZED) and diff["per_step"] is True
    assert set(diff["findings"]) == {"resolved", "introduced", "persisting"}


def test_step_time_drops_by_more_than_half(json_diff):
    diff = json_diff["diff"]
    metrics = {m["name"]: m for m in diff["metrics"]}
    assert [m["name"] for m in diff["metrics"]] == [n for n in DIFF_METRICS if not n.startswith("decode_")]  # both training traces have all but the inference ones
    step = metrics["step_time_ms_mean"]
    assert step["base"] == pytest.approx(NAIVE_STEP_MS, abs=1e-3)
    assert step["new"] == pytest.approx(OPTIMIZED_STEP_MS, abs=1e-3)
    assert step["delta"] == pytest.approx(OPTIMIZED_STEP_MS - NAIVE_STEP_MS, abs=1e-3)
    assert diff["step_time_change_pct"] == pytest.approx(-62.82, abs=0.01) == step["delta_pct"]
    assert metrics["kernels_per_step"]["delta"] == 380 - 1116
    assert metrics["communication_pct"]["delta_pct"] is None  # 0 -> 0: no relative change


def test_changed_kernels_and_operators_per_step(json_diff):
    kernels, operators = json_diff["diff"]["kernels"], json_diff["diff"]["operators"]
    assert len(kernels) == len(operators) == 5
    # fp32 SIMT sgemm (TF32 off) is gone: 47.496 ms over 3 steps in naive, absent in optimized
    assert "simt_sgemm_256x128_8x4_nn" in kernels[0]["name"]
    assert kernels[0]["base_ms"] == pytest.approx(47.4962 / 3, abs=1e-3) and kernels[0]["new_ms"] == 0
    # aten::mm launched 105.952 ms of kernels in naive, 7.591 ms in optimized
    assert operators[0]["name"] == "aten::mm"
    assert operators[0]["delta_ms"] == pytest.approx((7.5913 - 105.9519) / 3, abs=1e-3)
    deltas = [abs(r["delta_ms"]) for r in kernels]
    assert deltas == sorted(deltas, reverse=True)


@pytest.mark.parametrize("fmt, heading", [("text", "Kernels that changed most"), ("markdown", "### Change")])
def test_text_and_markdown_show_the_diff(capsys, fmt, heading):
    code, out, _ = run(capsys, NAIVE, OPTIMIZED, "--format", fmt, "--top", "3")
    assert code == 0 and heading in out
    assert "Step time mean" in out and "-55.44 ms" in out and "-62.8 %" in out
    assert "Finding changes" in out


def test_gate_passes_a_speedup_and_fails_a_slowdown(capsys):
    assert run(capsys, NAIVE, OPTIMIZED, "--max-slowdown", "5", "--format", "json")[0] == 0
    code, out, err = run(capsys, OPTIMIZED, NAIVE, "--max-slowdown", "5", "--format", "json")
    assert code == 1 and json.loads(out)["diff"]["step_time_change_pct"] > 160
    assert "exceeds --max-slowdown 5 %" in err


def test_gate_without_steps_exits_2(capsys):
    code, out, err = run(capsys, NAIVE, GRAPH, "--max-slowdown", "5", "--format", "json")
    assert code == 2 and json.loads(out)["diff"]["step_time_change_pct"] is None
    assert "ProfilerStep" in err and len(err.strip().splitlines()) == 1


def test_a_side_with_several_inputs_is_an_input_error(capsys):
    code, _, err = run(capsys, SAMPLES / "h100", NAIVE)
    assert code == 2 and "one input on each side" in err


def synthetic_input(path: str, steps: int, kernels: dict[str, float], operators: dict[str, float],
                    **metrics: float) -> AnalyzedInput:
    """A hand-built input: tables hold only the columns the diff reads."""
    return AnalyzedInput(
        path=path, kind="synthetic", metrics={"step_count": steps, **metrics},
        tables={"kernels": [{"name": n, "total_ms": ms} for n, ms in kernels.items()],
                "operators": [{"name": n, "gpu_ms": ms} for n, ms in operators.items()]},
    )


def test_diff_inputs_on_synthetic_inputs():
    base = synthetic_input("base", 2, {"gemm": 40.0, "relu": 4.0, "old": 6.0}, {"aten::mm": 40.0},
                           step_time_ms_mean=50.0, gpu_busy_pct=80.0, idle_sync_ms=0.0)
    new = synthetic_input("new", 4, {"gemm": 40.0, "relu": 8.0, "fresh": 1.0}, {"aten::mm": 40.0},
                          step_time_ms_mean=30.0, gpu_busy_pct=90.0, kernel_count=7)
    base_findings = [{"id": "fp32-matmul"}, {"id": "slow-input"}, {"id": "fp32-matmul"}]
    new_findings = [{"id": "tiny-kernels"}, {"id": "slow-input"}]
    diff = diff_inputs(base, new, base_findings, new_findings, top=2)

    assert diff["step_time_change_pct"] == pytest.approx(-40.0)
    metrics = {m["name"]: m for m in diff["metrics"]}
    assert list(metrics) == ["step_time_ms_mean", "gpu_busy_pct", "idle_sync_ms", "kernel_count"]
    assert metrics["gpu_busy_pct"]["delta"] == pytest.approx(10.0)
    assert metrics["gpu_busy_pct"]["delta_pct"] == pytest.approx(12.5)
    assert metrics["kernel_count"] == {"name": "kernel_count", "base": None, "new": 7, "delta": None,
                                       "delta_pct": None}
    # per step: gemm 20 -> 10, relu 2 -> 2 (unchanged, left out), old 3 -> 0, fresh 0 -> 0.25; top 2
    assert diff["kernels"] == [
        {"name": "gemm", "base_ms": 20.0, "new_ms": 10.0, "delta_ms": -10.0},
        {"name": "old", "base_ms": 3.0, "new_ms": 0.0, "delta_ms": -3.0},
    ]
    assert diff["operators"] == [{"name": "aten::mm", "base_ms": 20.0, "new_ms": 10.0, "delta_ms": -10.0}]
    assert diff["findings"] == {"resolved": ["fp32-matmul"], "introduced": ["tiny-kernels"],
                                "persisting": ["slow-input"]}


def test_diff_inputs_without_steps_compares_totals():
    base = synthetic_input("base", 0, {"gemm": 40.0}, {})
    new = synthetic_input("new", 3, {"gemm": 45.0}, {}, step_time_ms_mean=10.0)
    diff = diff_inputs(base, new, [], [], top=5)
    assert diff["per_step"] is False and diff["step_time_change_pct"] is None
    assert diff["kernels"] == [{"name": "gemm", "base_ms": 40.0, "new_ms": 45.0, "delta_ms": 5.0}]


def test_two_jobs_compare_their_rank_distributions_and_findings_by_rank(tmp_path, capsys):
    """Two real gloo jobs: 4 ranks with a slow loader on rank 2 -> 8 ranks with an extra branch on rank 5."""
    from workbench.inputs import AnalyzeOptions, analyze_path

    base_path, new_path = SAMPLES / "cpu" / "ddp_gloo_straggler", SAMPLES / "cpu" / "ddp_gloo_extra_compute"
    target = tmp_path / "diff.json"
    assert main(["diff", str(base_path), str(new_path), "--workers", "1", "--format", "json", "-o", str(target)]) == 0
    report = json.loads(target.read_text())
    ranks = report["diff"]["ranks"]
    assert (ranks["base_ranks"], ranks["new_ranks"]) == (4, 8)
    assert [len(i["tables"]["ranks"]) for i in report["inputs"]] == [4, 8]  # every rank, whatever --top
    (base,), (new,) = (analyze_path(p, AnalyzeOptions()) for p in (base_path, new_path))
    before = {r["metric"]: r for r in base.tables["rank_distribution"]}
    after = {r["metric"]: r for r in new.tables["rank_distribution"]}
    for row in ranks["distributions"]:
        for stat in ("min", "p50", "p90", "max"):
            b, n = before[row["metric"]][stat], after[row["metric"]][stat]
            assert row[stat]["base"] == pytest.approx(b, abs=1e-3) and row[stat]["new"] == pytest.approx(n, abs=1e-3)
            assert row[stat]["delta"] == pytest.approx(n - b, abs=2e-3)
    loading = next(r for r in ranks["distributions"] if r["metric"] == "input_ms_per_step")
    assert loading["outlier_ranks"] == {"base": [2], "new": [7]} and loading["max"]["delta"] < 0
    stragglers = {(r["rank"], r["status"]) for r in ranks["findings"] if r["id"] == "straggler-rank"}
    assert {(2, "resolved"), (5, "introduced")} <= stragglers  # ids alone: "straggler-rank persisting"
    assert report["diff"]["findings"]["persisting"] == ["straggler-rank"]
    metrics = {m["name"]: m for m in report["diff"]["metrics"]}
    assert (metrics["rank_count"]["base"], metrics["rank_count"]["new"]) == (4, 8)
    for fmt in ("text", "markdown"):
        code, out, _ = run(capsys, base_path, new_path, "--workers", "1", "--format", fmt)
        assert code == 0 and "Ranks as distributions (ms per step), base → new (4 → 8 ranks)" in out
        step = next(r for r in ranks["distributions"] if r["metric"] == "step_time_ms")
        assert f"{step['p50']['base']:.2f} → {step['p50']['new']:.2f}" in out
        assert "Findings on the ranks, base → new" in out


def test_a_diff_of_jobs_whose_ranks_wait_on_disk_equals_the_diff_of_ranks_in_memory(tmp_path, monkeypatch):
    """Beyond DETAILED_RANKS ranks a job's tables wait packed in its spill file: the diff reads every rank's kernels
    and operators back one rank at a time and finds what it finds with every rank's tables in memory."""
    from workbench.inputs import kineto

    base_path, new_path = SAMPLES / "cpu" / "ddp_gloo_straggler", SAMPLES / "cpu" / "ddp_gloo_extra_compute"
    diffs = []
    for detailed in (8, 2):  # 4 and 8 ranks: all in memory, then packed
        monkeypatch.setattr(kineto, "DETAILED_RANKS", detailed)
        target = tmp_path / f"diff{detailed}.json"
        assert main(["diff", str(base_path), str(new_path), "--workers", "1", "--format", "json",
                     "-o", str(target)]) == 0
        diffs.append(json.loads(target.read_text())["diff"])
    assert diffs[1] == diffs[0] and diffs[0]["operators_cpu"]


@pytest.mark.parametrize("new, rank, fix, title", [
    ("ddp_gloo_straggler", 2, "This rank waits on its input",
     "Rank 2 is a straggler (data loading): the other ranks wait 41.2 ms/step for it in collectives"),
    ("ddp_gloo_extra_compute", 5, "This rank runs work the others do not",
     "Rank 5 is a straggler (extra work: annotation aux_head): the other ranks wait 33.3 ms/step for it"),
])
def test_a_balanced_job_against_one_with_a_straggler_names_the_rank_introduced_and_its_cause(tmp_path, new, rank, fix,
                                                                                             title):
    """Real gloo jobs: 8 balanced ranks (no straggler on 2 shared cores) -> a slow loader on rank 2 of 4, or an
    extra branch on rank 5 of 8 (the same world size)."""
    base_path, new_path = SAMPLES / "cpu" / "ddp_gloo_balanced", SAMPLES / "cpu" / new
    target = tmp_path / "diff.json"
    assert main(["diff", str(base_path), str(new_path), "--workers", "1", "--format", "json", "-o", str(target)]) == 0
    report = json.loads(target.read_text())
    (changed,) = report["diff"]["ranks"]["findings"]
    assert (changed["id"], changed["rank"], changed["status"]) == ("straggler-rank", rank, "introduced")
    assert changed["fix"].startswith(fix)
    assert report["diff"]["findings"] == {"resolved": [], "introduced": ["straggler-rank"], "persisting": []}
    (finding,) = [f for f in report["findings"] if f["id"] == "straggler-rank"]
    assert finding["title"].startswith(title)
    waited = {r["metric"]: r for r in report["diff"]["ranks"]["distributions"]}["caused_wait_ms_per_step"]
    # the distribution lists the base's noise among its outliers (most waited for first); no finding names them
    assert waited["outlier_ranks"]["base"] == [6, 4, 2] and rank in waited["outlier_ranks"]["new"]
