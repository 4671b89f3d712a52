"""A job's ranks on a real Dask cluster: a `dask scheduler` and two `dask worker` processes on 127.0.0.1.

The cluster's report must equal the in-process one; a file a worker cannot read is that rank's
one-line failure; a scheduler that does not answer is a one-line error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest

from tests.conftest import ROOT, SAMPLES
from workbench.commands.analyze import inputs_report
from workbench.config import Config
from workbench.errors import WorkbenchError
from workbench.inputs import AnalyzeOptions, analyze_path
from workbench.inputs.kineto import summarize_rank
from workbench.inputs.rank_runner import DaskRunner, RankFailure, local_cluster_config, runner_for

GLOO = SAMPLES / "cpu" / "ddp_gloo_straggler"
START_S = 60  # the longest the fixture waits for the scheduler and its workers


def _dask(*args: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the workers import this checkout's workbench
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_" + args[0], *args[1:]],
                                env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dask")
    file = folder / "scheduler.json"
    log = folder / "dask.log"
    procs = [_dask("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                   "--scheduler-file", str(file), log=log)]
    try:
        for _ in range(START_S * 10):
            if file.exists() and file.stat().st_size:
                break
            if procs[0].poll() is not None:
                pytest.fail(f"dask scheduler exited: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        else:
            pytest.fail("dask scheduler did not start")
        address = json.loads(file.read_text())["address"]
        procs += [_dask("worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--no-dashboard",
                        "--no-nanny", log=log) for _ in range(2)]
        from distributed import Client

        with Client(address, timeout="10s") as client:
            client.wait_for_workers(2, timeout=START_S)
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def _report(options: AnalyzeOptions, path: Path = GLOO) -> dict:
    report = inputs_report(analyze_path(path, options), Config(), [], None)
    return json.loads(json.dumps(report))


def _on_cluster(scheduler: str, path: Path) -> dict:
    """The report of `path` analyzed on the cluster, checked equal to the in-process one."""
    runner = DaskRunner(scheduler=scheduler)
    try:
        on_cluster = _report(AnalyzeOptions(runner=runner), path)
    finally:
        runner.close()
    assert on_cluster == _report(AnalyzeOptions(), path)
    return on_cluster


def test_the_clusters_report_equals_the_in_process_one(scheduler):
    on_cluster = _on_cluster(scheduler, GLOO)
    assert on_cluster["inputs"][0]["kind"] == "kineto_trace_ranks"
    assert [f["id"] for f in on_cluster["findings"]] == ["straggler-rank"]


@pytest.mark.parametrize("case", ["missing", "order", "p2p", "stuck_rank", "detail_missing", "healthy"])
def test_flight_recorder_dumps_and_logs_on_the_cluster_give_the_in_process_report(scheduler, shared, case):
    """Real gloo hangs (../shared/traces/nccl_cpu): each dump and log is read by a worker."""
    on_cluster = _on_cluster(scheduler, shared(f"nccl_cpu/{case}"))
    assert on_cluster["inputs"][-1]["kind"] == "flight_recorder" and on_cluster["inputs"][-1]["metrics"]["dump_count"]


def test_nsight_exports_of_a_folder_on_the_cluster_give_each_exports_own_report(scheduler, shared):
    """Two real Nsight Systems exports in one folder: each is summarized, and its rules run, on a worker."""
    folder = shared("public/nsys/extrap")
    on_cluster = _on_cluster(scheduler, folder)
    alone = [_report(AnalyzeOptions(), export) for export in sorted(folder.glob("*.sqlite"))]
    assert [i["kind"] for i in on_cluster["inputs"]] == ["nsys_sqlite", "nsys_sqlite"]
    assert [i["metrics"] for i in on_cluster["inputs"]] == [a["inputs"][0]["metrics"] for a in alone]
    assert sorted(f["title"] for f in on_cluster["findings"]) == sorted(f["title"] for a in alone for f in a["findings"])


def test_an_unreadable_dump_is_left_out_with_one_line(tmp_path, shared):
    folder = tmp_path / "missing"
    folder.mkdir()
    for file in shared("nccl_cpu/missing").iterdir():
        (folder / file.name).write_bytes(file.read_bytes())
    (folder / "fr_rank_1").write_bytes(b"\x80\x04 not a dump")  # a pickle's first bytes, then garbage
    (hang,) = [i for i in analyze_path(folder, AnalyzeOptions()) if i.kind == "flight_recorder"]
    assert hang.meta["unread_files"] == [str(folder / "fr_rank_1")] and hang.meta["ranks"] == [0, 1, 2]
    (warning,) = [w for w in hang.warnings if "fr_rank_1" in w]
    assert "\n" not in warning and warning.endswith("(left out)")


def test_a_local_clusters_report_equals_the_in_process_one():
    runner = DaskRunner(workers=2)  # worker processes from a fork server on Linux
    try:
        local = _report(AnalyzeOptions(runner=runner))
        assert len(runner._client.scheduler_info()["workers"]) == 2
        assert os.getpid() not in runner._client.run(os.getppid).values()  # never forked from this process
    finally:
        runner.close()
    assert local == _report(AnalyzeOptions())
    assert "MALLOC_TRIM_THRESHOLD_" not in local_cluster_config()["distributed.nanny.pre-spawn-environ"]


def test_a_path_the_workers_cannot_read_is_that_ranks_failure(scheduler, tmp_path):
    missing = tmp_path / "gone" / "rank1.json.gz"
    runner = DaskRunner(scheduler=scheduler)
    try:
        ok, failed = runner.map(partial(summarize_rank, top=5), [GLOO / "rank-0.pt.trace.json.gz", missing],
                                lambda name: (lambda fraction: None))
    finally:
        runner.close()
    assert ok.rank == 0 and ok.trace is None
    assert isinstance(failed, RankFailure) and str(missing) in failed.message and "\n" not in failed.message


def test_a_scheduler_that_does_not_answer_is_one_line():
    runner = runner_for(None, "tcp://127.0.0.1:9")
    with pytest.raises(WorkbenchError, match=r"Dask scheduler tcp://127.0.0.1:9 does not answer"):
        runner.map(partial(summarize_rank, top=5), [GLOO / "rank-0.pt.trace.json.gz"], lambda name: (lambda f: None))
