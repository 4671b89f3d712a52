"""Real OOM and distributed-failure messages quoted in public GitHub issues, diagnosed as `workbench analyze` does.

`tests/data/wild_messages.jsonl` holds each message byte for byte with the issue it was quoted in
and the diagnosis a distributed-systems engineer would sign: the root finding's rule id, the
request size (None where the text names none), every SeqNum and the ranks the text names.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import SAMPLES, SYNTHETIC, wild_messages
from workbench.commands.analyze import analyze_report
from workbench.config import Config
from workbench.inputs import AnalyzeOptions

MESSAGES = wild_messages()
_UNITS = {"bytes": 0, "KiB": 1, "MiB": 2, "GiB": 3, "KB": 1, "MB": 2, "GB": 3}
INFO_ONLY = {"oom-without-snapshot", "nccl-enable-flight-recorder"}


def _bytes(size: str) -> int:
    number, unit = re.fullmatch(r"([\d.]+) (\w+)", size).groups()
    return int(round(float(number) * 1024 ** _UNITS[unit]))


def _report(text: str, tmp_path: Path) -> dict:
    path = tmp_path / "pasted"  # no extension: any file holding the text is an input
    path.write_text(text, encoding="utf-8")
    return analyze_report([str(path)], AnalyzeOptions(), Config(), [], None)


def test_corpus_size():
    kinds = [m["kind"] for m in MESSAGES]
    assert kinds.count("oom") >= 40 and kinds.count("distributed") >= 25


@pytest.mark.parametrize("message", MESSAGES, ids=[m["id"] for m in MESSAGES])
def test_wild_message(message: dict, tmp_path: Path):
    report = _report(message["text"], tmp_path)
    findings = [f for f in report["findings"] if f["id"] not in INFO_ONLY]
    expect = message["expect"]
    assert findings, f"no finding for {message['url']}"
    root = findings[0]
    assert root["id"] == expect["finding"], (message["url"], [f["id"] for f in findings], root["title"])
    evidence = root["evidence"]
    if message["kind"] == "oom":
        requested = _bytes(expect["requested"]) if expect["requested"] else None
        assert evidence.get("requested_bytes") == requested, (message["url"], evidence)
        assert evidence.get("backend", "cuda") == expect["backend"]
    else:
        assert set(expect["seqs"]) <= set(evidence.get("seqs") or []), (message["url"], evidence.get("seqs"))
        assert set(expect["ranks"]) <= set(evidence.get("ranks_named") or []), (message["url"], evidence.get("ranks_named"))


def test_oom_on_one_rank_comes_before_the_timeouts_it_caused(tmp_path: Path):
    """Synthetic join of two real quotes: rank 1's OOM, then the watchdog timeouts of the ranks left waiting."""
    oom = next(m for m in MESSAGES if m["url"].endswith("OCRFlux/issues/64"))["text"]
    timeouts = next(m for m in MESSAGES if m["url"].endswith("BasicSR/issues/737"))["text"]
    text = "".join(f"[rank1]: {line}\n" for line in oom.splitlines()) + timeouts
    report = _report(text, tmp_path)
    ids = [f["id"] for f in report["findings"] if f["id"] not in INFO_ONLY]
    assert ids[0] == "oom-other-processes" and "nccl-stuck-collective" in ids
    assert [i["kind"] for i in report["inputs"]] == ["oom_message", "flight_recorder"]
    assert report["findings"][0]["evidence"]["rank"] == 1


def test_blocking_wait_is_one_ranks_view():
    """Synthetic: the blocking-wait wording (TORCH_NCCL_BLOCKING_WAIT=1); no public issue quoted it whole."""
    report = analyze_report([str(SYNTHETIC / "nccl_blocking_wait.synthetic.log")], AnalyzeOptions(), Config(), [], None)
    finding = report["findings"][0]
    assert finding["id"] == "nccl-blocking-wait-timeout"
    assert finding["evidence"]["seqs"] == [41] and finding["evidence"]["ranks_named"] == [2]
    assert "not known is which rank" in finding["title"]


def test_real_gloo_crash_joined_with_the_surviving_dump():
    """sample_traces/nccl_cpu/gloo_size_mismatch: rank 0 aborted (EnforceNotMet 64 vs 16), rank 1 dumped."""
    report = analyze_report([str(SAMPLES / "nccl_cpu" / "gloo_size_mismatch")], AnalyzeOptions(), Config(), [], None)
    assert report["inputs"][0]["metrics"]["log_count"] == 2 and report["inputs"][0]["metrics"]["dump_count"] == 1
    root = report["findings"][0]
    assert root["id"] == "gloo-size-mismatch"
    e = root["evidence"]
    assert (e["crashed_rank"], e["seq"], e["op"], e["sent_bytes"], e["expected_bytes"]) == (0, 2, "all_reduce", 64, 16)
    assert e["ranks"]["1"]["input_sizes"] == [[64]]  # the JSON report keys ranks as strings
    assert e["peers_lost_connection"] == [1]


def test_each_rank_that_ran_out_of_memory_is_diagnosed_the_first_one_first(tmp_path: Path):
    """Synthetic join of two real quotes printed by two ranks: each is an input, in the order of the text."""
    first = next(m for m in MESSAGES if m["url"].endswith("murong-xu/CADS/issues/4"))["text"].splitlines()[0]
    second = next(m for m in MESSAGES if m["url"].endswith("jhc13/taggui/issues/188"))["text"]
    report = _report(f"[rank3]: {first}\n[rank0]: {second}\n", tmp_path)
    roots = [f for f in report["findings"] if f["id"] not in INFO_ONLY]
    assert [(f["id"], f["evidence"]["rank"]) for f in roots] == [("oom-capacity", 3), ("oom-inconclusive", 0)]
    assert [i["path"].rsplit(" ", 2)[-2:] for i in report["inputs"]] == [["(rank", "3)"], ["(rank", "0)"]]


LONG = "9" * 5000  # past Python's 4,300-digit limit on int(str)


def test_a_number_of_thousands_of_digits_is_ignored_never_cut(tmp_path: Path):
    """Every number a message pattern reads has at most 18 digits: a longer one is no value (not its first digits)."""
    from workbench.loaders.distributed_logs import load_logs
    path = tmp_path / "rank0.log"
    path.write_text(f"NCCL WARN x\nwatchdog got stuck for {LONG} seconds\n"
                    f"WorkNCCL(SeqNum={LONG}, OpType=ALLREDUCE) timed out in blocking wait\nWorkNCCL(SeqNum={LONG})\n"
                    f"enforce fail at gloo/x.cc:1] op.nbytes == nbytes. 4 vs {LONG}\n"
                    f"Timed out after 30 seconds waiting for clients. {LONG}/2 clients joined\n"
                    f"failed (exitcode: 1) local_rank: {LONG} (pid: 7)\n", encoding="utf-8")
    log = load_logs(path)[0]
    assert (log.heartbeat_stuck_s, log.blocking_wait, log.seqs_named, log.gloo_enforce, log.rendezvous,
            log.child_failures) == (None, [], [], [], None, [])
    assert log.nccl_warnings == ["x"]
