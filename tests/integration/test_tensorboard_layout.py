"""TensorBoard log folders (one run per sub-folder) as `workbench analyze` and the plugin read them."""

from __future__ import annotations

import gzip
import shutil

from tests.conftest import NAIVE, RANKS
from workbench.interop.tensorboard import copy_to_logdir, parse_trace_name, runs, trace_file_name
from workbench.inputs import AnalyzeOptions, analyze_path


def test_handler_names_round_trip():
    name = trace_file_name("rank3", 1623143089861)
    assert name == "rank3.1623143089861.pt.trace.json.gz"
    assert parse_trace_name(name).worker == "rank3" and parse_trace_name(name).span == "1623143089861"
    assert parse_trace_name("host_12.pt.trace.json").span is None
    assert parse_trace_name("sampled_rank-0.json.gz") is None  # HTA's sample names are not plugin runs


def test_the_plugin_sample_logdir_gives_one_input_per_trace(shared):
    logdir = shared("public/kineto/tb_plugin_samples")
    assert {run: len(files) for run, files in runs(logdir).items()} == {
        "resnet50_num_workers_0": 2, "resnet50_num_workers_4": 2}
    results = analyze_path(logdir, AnalyzeOptions())
    assert sorted(r.kind for r in results) == ["kineto_trace"] * 4
    assert {r.meta["rank"] for r in results} == {None}


def test_each_run_folder_of_a_logdir_is_its_own_job(tmp_path):
    # two runs of the same two-rank job: grouped over the whole tree, their ranks would clash
    for run in ("run_a", "run_b"):
        copy_to_logdir(sorted(RANKS.iterdir()), tmp_path, run)
    assert sorted(runs(tmp_path)) == ["run_a", "run_b"]
    assert [p.name for p in runs(tmp_path)["run_a"]] == ["rank0.0.pt.trace.json.gz", "rank1.0.pt.trace.json.gz"]
    results = analyze_path(tmp_path, AnalyzeOptions())
    assert sorted((r.kind, r.path) for r in results) == [("kineto_trace_ranks", str(tmp_path / "run_a")),
                                                         ("kineto_trace_ranks", str(tmp_path / "run_b"))]
    alone = analyze_path(RANKS, AnalyzeOptions())[0]
    for result in results:
        assert [r.rank for r in result.ranks] == [0, 1]
        assert result.metrics["communication_pct"] == alone.metrics["communication_pct"]


def test_copy_to_logdir_gzips_and_names_by_stem_without_a_rank(tmp_path):
    plain = tmp_path / "train_naive.json"
    with gzip.open(NAIVE, "rb") as source, open(plain, "wb") as out:
        shutil.copyfileobj(source, out)
    [written] = copy_to_logdir([plain], tmp_path / "logs", "naive")
    assert written.parent == tmp_path / "logs" / "naive"
    assert parse_trace_name(written.name).worker == "train_naive"
    assert written.read_bytes()[:2] == b"\x1f\x8b"
    [result] = analyze_path(written, AnalyzeOptions())
    assert result.metrics["gpu_busy_pct"] == analyze_path(NAIVE, AnalyzeOptions())[0].metrics["gpu_busy_pct"]
