"""Flight Recorder dumps and rank logs: what the loaders read from the real files, and bad input."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest

from tests.conftest import SAMPLES, shared_path
from workbench.cli import main
from workbench.errors import InputError
from workbench.loaders.distributed_logs import is_distributed_log, load_log
from workbench.loaders.flight_recorder import load_dump, rank_from_name

NCCL_TIMEOUT = SAMPLES / "h100" / "nccl_timeout"
GLOO = SAMPLES / "nccl_cpu"
MARKER = "/tmp/workbench-fr-pwned"


class Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


def test_h100_dump():
    dump = load_dump(NCCL_TIMEOUT / "fr_rank_0")
    assert (dump.rank, dump.version, dump.comm_lib_version, dump.backend) == (0, "2.10", "2.28.9", "nccl")
    assert dump.groups == {"0": [0]} and len(dump.entries) == 11
    status = dump.status[0]
    assert (status.enqueued, status.started, status.completed) == (11, -1, 10)
    last = dump.entries[-1]
    assert (last.seq, last.op, last.state, last.retired, last.input_sizes) == (11, "all_reduce", "scheduled", False,
                                                                              [[1048576]])
    assert last.started_ns is None and last.timeout_ms == 20000 and str(last.frames[2]) == \
        "sc_nccl_timeout (/home/ml/project/capture_runs.py:383)"
    assert all(e.state == "completed" for e in dump.entries[:10])


def test_gloo_dump_keys_its_config_by_empty_name():
    dump = load_dump(GLOO / "missing" / "fr_rank_2")
    assert dump.groups == {"": [0, 1, 2]} and dump.backend == "gloo" and not dump.tracks_states
    assert [e.seq for e in dump.entries] == [1, 2, 3, 4, 5, 6] and {e.group for e in dump.entries} == {"0"}


def test_json_variant():
    dump = load_dump(shared_path("nccl_cpu/healthy/fr_rank_1.json"))
    assert dump.rank == 1 and len(dump.entries) == 10 and dump.status[0].enqueued == 10
    assert dump.entries[1].op == "broadcast" and dump.entries[0].created_ns == 1795364635550984242
    assert dump.entries[0].started_ns is None and dump.entries[0].frames == []


def test_rank_from_file_names():
    assert [rank_from_name(n) for n in ("fr_rank_3", "fr_rank_0.midhang", "nccl_trace_rank_12", "trace7", "x")] == \
        [3, 0, 12, 7, None]


def test_hostile_dump_is_refused_and_runs_nothing(tmp_path, capsys):
    if os.path.exists(MARKER):
        os.remove(MARKER)
    path = tmp_path / "fr_rank_0"
    path.write_bytes(pickle.dumps({"version": "2.10", "pg_config": {}, "entries": [Exploit()]}))
    assert main(["analyze", str(tmp_path)]) == 2
    assert "unsafe pickle" in capsys.readouterr().err and not os.path.exists(MARKER)


def test_unsupported_version_and_shape(tmp_path):
    path = tmp_path / "fr_rank_0"
    path.write_bytes(pickle.dumps({"version": "3.0", "entries": []}))
    with pytest.raises(InputError, match="unsupported Flight Recorder format version '3.0'"):
        load_dump(path)
    path.write_text(json.dumps({"entries": "none", "pg_config": {}}))
    with pytest.raises(InputError, match="no 'entries' list"):
        load_dump(path)


def test_h100_watchdog_log():
    log = load_log(NCCL_TIMEOUT / "stdout_stderr.log")
    assert log.rank is None or log.rank == 0
    assert log.watchdog == [{"work": "WorkNCCL", "seq": 11, "op": "ALLREDUCE", "numel_in": 1048576,
                             "numel_out": 1048576, "timeout_ms": 20000, "ran_for_ms": 20044}]
    assert log.pg_status[0] == {"pg_id": 0, "pg": "0(default_pg)", "seq": 11, "last_enqueued": 11,
                                "last_completed": 10}
    assert [str(f) for f in log.failed_stack][2] == "sc_nccl_timeout (/home/ml/project/capture_runs.py:383)"
    assert log.fr_enabled


def test_gloo_logs():
    send = load_log(GLOO / "p2p" / "rank0.log")
    assert send.rank == 0 and send.transport_timeouts == [{"op": "send", "timeout_ms": 5000}]
    assert send.source_lines[1] == "dist.send(x, dst=1)" and send.traceback[1].line == 64
    closed = load_log(GLOO / "stuck_rank" / "rank2.log")
    assert closed.connection_closed and not closed.transport_timeouts
    pyspy = load_log(GLOO / "stuck_rank" / "pyspy_rank2.txt")
    assert pyspy.rank == 2 and str(pyspy.pyspy_stack[0]) == "load_batch (train_dist_stuck.py:28)"


def test_only_distributed_failures_are_claimed(tmp_path):
    def claims(name: str, text: str) -> bool:
        path = Path(tmp_path / name)
        path.write_text(text)
        return is_distributed_log(path, text.encode())

    assert not claims("oom.log", "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB")
    assert not claims("rank2.log", "rank 2: finished all collectives\n")
    assert claims("x.log", "vm:1:1 [0] NCCL WARN NET/Socket : peer closed connection\n")
