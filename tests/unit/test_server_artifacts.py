"""Listing and confining the artifacts under a root (the server extension's view of sample_traces)."""

from __future__ import annotations

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
