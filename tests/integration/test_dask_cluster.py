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


def _report(options: AnalyzeOptions) -> dict:
    report = inputs_report(analyze_path(GLOO, options), Config(), [], None)
    return json.loads(json.dumps(report))


def test_the_clusters_report_equals_the_in_process_one(scheduler):
    runner = DaskRunner(scheduler=scheduler)
    try:
        on_cluster = _report(AnalyzeOptions(runner=runner))
    finally:
        runner.close()
    assert on_cluster == _report(AnalyzeOptions())
    assert on_cluster["inputs"][0]["kind"] == "kineto_trace_ranks"
    assert [f["id"] for f in on_cluster["findings"]] == ["straggler-rank"]


def test_a_local_clusters_report_equals_the_in_process_one():
    runner = DaskRunner(workers=2)  # forked worker processes on Linux
    try:
        local = _report(AnalyzeOptions(runner=runner))
        assert len(runner._client.scheduler_info()["workers"]) == 2
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
