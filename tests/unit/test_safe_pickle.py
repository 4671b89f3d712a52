"""The restricted unpickler builds plain data and refuses everything else before calling it."""

from __future__ import annotations

import collections
import gzip
import json
import os
import pickle
import shutil

import pytest

from tests.conftest import SAMPLES
from workbench.commands.analyze import analyze_report
from workbench.config import Config
from workbench.errors import InputError
from workbench.inputs import AnalyzeOptions
from workbench.loaders.files import HEAD_BYTES
from workbench.loaders.safe_pickle import RefusedPickle, load_file, loads, loads_packed, looks_like_pickle


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch /tmp/workbench-pwned",))


def test_plain_data_round_trips():
    data = {"segments": [{"address": 1, "blocks": [(1, 2.5, None, True)]}], "s": {1, 2}, "b": b"x",
            "o": collections.OrderedDict(a=1)}
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert loads(pickle.dumps(data, protocol=protocol)) == data


def test_a_hostile_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = "/tmp/workbench-pwned"
    if os.path.exists(marker):
        os.remove(marker)
    with pytest.raises(RefusedPickle, match="posix.system|os.system"):
        loads(pickle.dumps({"x": Exploit()}))
    assert not os.path.exists(marker)


def test_load_file_names_the_file_and_says_unsafe(tmp_path):
    path = tmp_path / "snapshot.pickle.gz"
    path.write_bytes(gzip.compress(pickle.dumps([Exploit()])))
    with pytest.raises(InputError, match="unsafe pickle") as info:
        load_file(path)
    assert str(path) in str(info.value)


def test_load_file_rejects_garbage(tmp_path):
    path = tmp_path / "snapshot.pickle"
    path.write_bytes(b"\x80\x04not a pickle at all")
    with pytest.raises(InputError, match="not a readable pickle"):
        load_file(path)


SNAPSHOT_RUN = SAMPLES / "h100" / "oom_capacity"  # a real H100 snapshot with its OOM message
DUMPS = SAMPLES / "nccl_cpu" / "stuck_rank"  # real Flight Recorder dumps, rank logs and py-spy dumps


def test_every_protocol_looks_like_a_pickle_and_text_does_not():
    data = load_file(SNAPSHOT_RUN / "oom_capacity.snapshot.pickle.gz")
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert looks_like_pickle(pickle.dumps(data, protocol=protocol)[:HEAD_BYTES]), protocol  # a head cut anywhere
        assert looks_like_pickle(pickle.dumps({"a": [1]}, protocol=protocol)), protocol  # a whole small one
    for text in (b"(see the log below)\n", b"(dp0\nVsegments\np1\n. and then text", b"]]", b"}", b"",
                 (SAMPLES / "README.md").read_bytes()[:HEAD_BYTES], b"(" + (DUMPS / "rank0.log").read_bytes()):
        assert not looks_like_pickle(text), text[:40]


def _report(folder) -> str:
    report = analyze_report([str(folder)], AnalyzeOptions(), Config(), [], None)
    return json.dumps(report, sort_keys=True).replace(str(folder), "FOLDER")


@pytest.mark.parametrize("protocol", [0, 1])
@pytest.mark.parametrize("original", [SNAPSHOT_RUN, DUMPS], ids=["h100-snapshot", "nccl_cpu-dumps"])
def test_protocol_0_and_1_copies_of_real_pickles_give_the_same_report(tmp_path, original, protocol):
    copy = tmp_path / original.name
    shutil.copytree(original, copy)
    pickles = [f for f in copy.iterdir() if f.name.startswith("fr_rank") or ".pickle" in f.name]
    for path in pickles:
        data = pickle.dumps(load_file(path), protocol=protocol)
        path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    assert len(pickles) in (1, 6)
    assert _report(copy) == _report(original)


def test_what_a_job_task_packs_reads_back_and_nothing_else():
    """A real trace's packed work by name, collectives and findings (numpy arrays, workbench dataclasses) read back
    equal; a function of workbench's, or os.system, is refused."""
    import zlib

    from workbench.inputs.analyzed import read_packed
    from workbench.inputs.kineto import summarize_rank

    rank = summarize_rank(SAMPLES / "h100" / "train_naive.pt.trace.json.gz", lambda f: None, top=50, pack=True)
    for packed in (rank.work.packed, rank.collectives.packed, rank.findings.packed):
        assert pickle.dumps(read_packed(packed)) == pickle.dumps(pickle.loads(zlib.decompress(packed)))
    assert {f.id for f in read_packed(rank.findings.packed)} >= {"input-bound", "fp32-matmul"}
    for hostile in (Exploit(), analyze_report):
        with pytest.raises(RefusedPickle):
            loads_packed(pickle.dumps(hostile))
