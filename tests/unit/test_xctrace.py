"""xctrace export XML. No real Metal System Trace export is public: these files are hand-written
in the export's layout, so the tests prove the XML handling (id/ref interning, sentinels, nested
values, process choice, skipped rows), not that Apple's columns are exactly these."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import SYNTHETIC
from workbench.errors import InputError
from workbench.inputs import AnalyzeOptions, analyze_path
from workbench.loaders.xctrace import is_xctrace_export, load_xctrace

FOLDER = SYNTHETIC / "xctrace_mps"
GPU = FOLDER / "metal-gpu-intervals.synthetic.xml"


def test_gpu_intervals_of_the_python_process_become_kernels_and_copies():
    trace = load_xctrace([GPU])
    events = trace.events
    kernels = events.category_mask({"kernel"})
    # python3.11's active depth-0 rows: two compute commands, one blit; WindowServer's larger
    # fragment row, the nested row and the idle row are left out
    assert events.ts[kernels].tolist() == [1000.0, 1300.0] and events.dur[kernels].tolist() == [200.0, 300.0]
    assert events.name_array[events.name[kernels]].tolist() == ["Compute Command 0"] * 2
    copies = events.category_mask({"gpu_memcpy"})
    assert events.ts[copies].tolist() == [1700.0] and events.correlation[copies].tolist() == [3]
    assert set(events.device.tolist()) == {0}
    assert trace.metadata["xctrace"]["gpu_processes"] == [
        {"pid": 4242, "process": "python3.11", "gpu_ms": 0.6}, {"pid": 300, "process": "WindowServer", "gpu_ms": 0.9}]


def test_a_folder_of_tables_is_one_recording_analyzed_like_a_trace():
    (result,) = analyze_path(FOLDER, AnalyzeOptions())
    assert result.kind == "xctrace_export" and result.meta["device_type"] == "mps"
    assert result.metrics["gpu_window_ms"] == pytest.approx(0.8)
    assert result.metrics["gpu_busy_pct"] == pytest.approx(75.0)  # 0.2 + 0.3 + 0.1 ms busy of 0.8
    assert result.metrics["memcpy_ms"] == pytest.approx(0.1)
    assert result.meta["profiler"]["mps_signposts"] == 3
    events = result.ranks[0].trace.events
    ops = events.category_mask({"gpu_user_annotation"})
    assert events.name_array[events.name[ops]].tolist() == ["aten::mm", "aten::addmm", "aten::copy_"]
    host = events.category_mask({"user_annotation"})
    assert events.name_array[events.name[host]].tolist() == ["train_step"]
    assert events.tid[host].tolist() == [10753]  # the thread's tid, through a ref to its first row


def test_the_public_signpost_fixture(shared):
    """The hand-written OSSignpostIntervals fixture of sforteln/xctrace-query-mcp-server (refs to a
    process defined in an earlier row, nested thread ids)."""
    path = shared("public/metal/synthetic_fixtures/OSSignpostIntervals.xml")
    events = load_xctrace([path]).events
    assert events.name_array[events.name].tolist() == ["PreFlight", "MCPFindProject"]
    assert events.ts.tolist() == [4_100_000.0, 5_200_000.0] and events.dur.tolist() == [820_000.0, 140_000.0]
    assert events.pid.tolist() == [2033, 2033] and events.tid.tolist() == [6659, 6672]
    assert np.all(events.device == -1)


def test_sniffing_and_malformed_exports(tmp_path):
    assert is_xctrace_export(GPU, GPU.read_bytes()[:4096])
    assert not is_xctrace_export(tmp_path / "x.xml", b"<?xml version='1.0'?><plist/>")
    broken = tmp_path / "cut.xml"
    broken.write_bytes(GPU.read_bytes()[:2000])
    with pytest.raises(InputError, match="malformed xctrace export XML"):
        load_xctrace([broken])
