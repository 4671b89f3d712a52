"""The report cache's worker side (run in-process here) and its progress messages."""

from __future__ import annotations

import asyncio
import os
import queue
from pathlib import Path

import pytest

from tests.conftest import SAMPLES
from workbench.server import cache
from workbench.server.cache import Job, ReportCache, analyze_artifact


@pytest.fixture
def progress(monkeypatch):
    messages: queue.Queue = queue.Queue()
    monkeypatch.setattr(cache, "_progress_queue", messages)
    monkeypatch.chdir(SAMPLES)
    return messages


def test_worker_reports_progress_per_file_and_the_report(progress):
    outcome = analyze_artifact("public/sampled_2of128_ranks")
    sent = [progress.get_nowait() for _ in range(progress.qsize())]
    assert {label for _, label, _ in sent} == {"sampled_rank-0.json.gz", "sampled_rank-1.json.gz"}
    assert all(path == "public/sampled_2of128_ranks" for path, _, _ in sent)
    for name in ("sampled_rank-0.json.gz", "sampled_rank-1.json.gz"):  # read a chunk at a time, up to the end
        fractions = [fraction for _, label, fraction in sent if label == name]
        assert fractions == sorted(fractions) and 0 < fractions[0] and fractions[-1] == 1.0
    assert outcome["report"]["inputs"][0]["kind"] == "kineto_trace_ranks"


def test_worker_turns_bad_input_into_its_one_line_error(progress):
    assert analyze_artifact("README.md") == {
        "error": "README.md: unrecognized file: not a trace, snapshot, dump or log that workbench reads"}


def test_status_shows_the_progress_sent_by_workers():
    reports = ReportCache(SAMPLES)
    stamp = (("", 1, 1),)
    reports._jobs["a.json"] = Job(stamp)
    reports._queue.put(("a.json", "a.json", 0.25))
    for _ in range(50):  # a multiprocessing queue hands the message over from a feeder thread
        if reports.status("a.json", stamp).get("fraction"):
            break
        asyncio.run(asyncio.sleep(0.01))
    assert reports.status("a.json", stamp) == {"state": "running", "label": "a.json", "fraction": 0.25}
    assert reports.status("a.json", (("", 2, 1),)) == {"state": "not_analyzed"}


def test_done_job_counts_findings_by_severity():
    job = Job((), report={"findings": [{"severity": "critical"}, {"severity": "info"}, {"severity": "info"}]})
    assert job.status() == {"state": "done", "findings": {"critical": 1, "warning": 0, "info": 2}, "seconds": 0.0}


AMD = "public/mi250_minitoy_train_ROCm6_2_kineto.json.gz"


async def _finish(reports, relative):
    job = reports.start(relative, ((relative, 1, 1),))
    await job.future
    return job


def test_a_killed_or_timed_out_worker_fails_only_its_analysis_and_the_next_runs_fresh():
    async def scenario():
        reports = ReportCache(SAMPLES, workers=1)
        try:
            job = reports.start(AMD, ((AMD, 1, 1),))
            while not reports._busy:
                await asyncio.sleep(0.01)
            reports._busy[AMD].process.kill()  # what the out-of-memory killer does
            await job.future
            killed = job.error
            reports.timeout_s = 0.05
            late = (await _finish(reports, "public/sampled_2of128_ranks")).error
            reports.timeout_s = 600
            after = await _finish(reports, AMD)
            return killed, late, after
        finally:
            reports.close()

    killed, late, after = asyncio.run(scenario())
    assert killed == (f"{AMD}: the analysis process was killed (likely out of memory: SIGKILL is what the system's "
                      "out-of-memory killer sends)")
    assert late == "public/sampled_2of128_ranks: the analysis ran past its time limit of 0.05 s and was stopped"
    assert after.error is None and after.report["inputs"][0]["kind"] == "kineto_trace"


def test_a_cancelled_analysis_says_so():
    async def scenario():
        reports = ReportCache(SAMPLES, workers=1)
        try:
            job = reports.start(AMD, ((AMD, 1, 1),))
            assert reports.cancel(AMD)
            await job.future
            return job.error, reports.cancel(AMD)
        finally:
            reports.close()

    assert asyncio.run(scenario()) == (f"{AMD}: the analysis was cancelled", False)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="resident memory is read from /proc")
def test_a_worker_over_its_memory_limit_fails_as_out_of_memory_and_the_next_runs_fresh():
    async def scenario():
        reports = ReportCache(SAMPLES, workers=1, memory_bytes=1 << 20)  # any process holds more than 1 MiB
        try:
            over = (await _finish(reports, AMD)).error
            reports.memory_bytes = 1 << 40
            return over, await _finish(reports, AMD)
        finally:
            reports.close()

    over, after = asyncio.run(scenario())
    assert over == (f"{AMD}: the analysis ran out of memory: its process passed 1.00 MiB (the workers' limit) "
                    "and was stopped")
    assert after.error is None and after.report["inputs"][0]["kind"] == "kineto_trace"


def test_the_default_memory_limit_is_a_share_of_the_machine():
    assert 0 < ReportCache(SAMPLES).memory_bytes <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
