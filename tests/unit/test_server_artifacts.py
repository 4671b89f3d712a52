"""Listing and confining the artifacts under a root (the server extension's view of sample_traces)."""

from __future__ import annotations

import os

import pytest

from tests.conftest import SAMPLES
from workbench.server.artifacts import ArtifactIndex, PathRefused, resolve, signature


def test_sample_traces_list_one_artifact_per_analysis():
    artifacts = {a.path: (a.kind, a.folder, a.files) for a in ArtifactIndex(SAMPLES).list()}
    assert artifacts["cpu/ddp_gloo_straggler"] == ("kineto_trace_ranks", True, 4)
    assert artifacts["h100/train_naive.pt.trace.json.gz"] == ("kineto_trace", False, 1)
    assert artifacts["h100/oom_capacity"] == ("memory", True, 3)  # snapshot, OOM message, meta
    assert artifacts["nccl_cpu/stuck_rank"] == ("flight_recorder", True, 12)
    assert artifacts["public/nsys/con_kernel.sqlite"] == ("nsys_sqlite", False, 1)
    assert artifacts["cpu/capture_mlp"] == ("capture_run", True, 2)  # manifest.json and the trace beside it
    assert "h100/train_naive.meta.json" not in artifacts  # sniffed as nothing workbench reads
    assert not any(path.startswith("cpu/ddp_gloo_straggler/") for path in artifacts)


def test_traces_without_ranks_in_a_folder_stay_separate(tmp_path):
    for name in ("train_naive", "train_optimized"):
        (tmp_path / f"{name}.json.gz").write_bytes((SAMPLES / "h100" / f"{name}.pt.trace.json.gz").read_bytes())
    assert [(a.path, a.kind) for a in ArtifactIndex(tmp_path).list()] == [
        ("train_naive.json.gz", "kineto_trace"), ("train_optimized.json.gz", "kineto_trace")]


def test_resolve_refuses_dot_dot_and_links_out(tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "outside.txt").write_text("x")
    (tmp_path / "root" / "link").symlink_to(tmp_path / "outside.txt")
    for path in ("../outside.txt", "link", "/../outside.txt"):
        with pytest.raises(PathRefused):
            resolve(tmp_path / "root", path)
    with pytest.raises(FileNotFoundError):
        resolve(tmp_path / "root", "absent")


def test_signature_changes_with_any_file_of_a_folder(tmp_path):
    (tmp_path / "a.log").write_text("one")
    before = signature(tmp_path, tmp_path)
    (tmp_path / "b.log").write_text("two")
    assert signature(tmp_path, tmp_path) != before
    assert signature(tmp_path / "a.log", tmp_path) == ((".", 3, (tmp_path / "a.log").stat().st_mtime_ns),)


def test_memory_files_are_labelled_by_what_their_first_bytes_say(tmp_path, shared):
    """Names that mislead (a snapshot without `.pickle`, an OOM log named like a snapshot) do not change the label."""
    oom = SAMPLES / "h100" / "oom_capacity"
    timeline = shared("h100/train_naive/train_naive.memory_timeline.json.gz")
    for path, source in (("a/dump.bin", oom / "oom_capacity.snapshot.pickle.gz"),
                         ("b/snapshot_notes.log", oom / "oom_capacity.oom.txt"),
                         ("c/export.json.gz", timeline),
                         ("d/run.snapshot.pickle.gz", oom / "oom_capacity.snapshot.pickle.gz"),
                         ("d/run.oom.txt", oom / "oom_capacity.oom.txt")):
        (tmp_path / path).parent.mkdir(exist_ok=True)
        (tmp_path / path).write_bytes(source.read_bytes())
    listed = {a.path: (a.kind, a.reads_as) for a in ArtifactIndex(tmp_path).list()}
    assert listed == {"a/dump.bin": ("memory", ("memory_snapshot",)),
                      "b/snapshot_notes.log": ("memory", ("oom_message",)),
                      "c/export.json.gz": ("memory", ("memory_timeline",)),
                      "d": ("memory", ("memory_snapshot", "oom_message"))}
    assert ArtifactIndex(SAMPLES).list()[0].reads_as == ()  # other kinds are what their kind says


def _bytes_read() -> int:
    """Bytes this process has read through read() calls so far (Linux)."""
    with open("/proc/self/io") as io:
        return next(int(line.split()[1]) for line in io if line.startswith("rchar:"))


@pytest.mark.skipif(not os.access("/proc/self/io", os.R_OK), reason="bytes read are counted by /proc/self/io")
def test_a_200_mb_log_is_listed_from_its_head_and_tail_only(tmp_path):
    """The failure at the end of a long rank log is found in its last MiB; the 200 MB are not read."""
    path = tmp_path / "rank0.log"
    with path.open("wb") as handle:
        handle.write(b"[rank0]: step 1 loss 2.0\n" * 8000)
        handle.seek(200_000_000 - (2 << 20))  # sparse: no disk is spent on the middle
        handle.write(b"[rank0]: step 9 loss 1.0\n" * 80000)
        handle.write(b"[rank0]:[E1207 01:02:03 ProcessGroupNCCL.cpp:632] [Rank 0] Watchdog caught collective operation "
                     b"timeout: WorkNCCL(SeqNum=9, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=600000) ran for "
                     b"600001 milliseconds before timing out.\n")
    ArtifactIndex(tmp_path).list()  # imports every kind's modules
    before = _bytes_read()
    listed = [(a.path, a.kind) for a in ArtifactIndex(tmp_path).list()]
    read = _bytes_read() - before
    assert path.stat().st_size > 199_000_000
    assert listed == [("rank0.log", "flight_recorder")]
    assert read < 4 << 20  # the head (64 KiB) and the last MiB, for the log and the OOM-message sniffers
