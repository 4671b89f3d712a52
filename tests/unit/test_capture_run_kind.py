"""The capture_run kind on the shipped CPU run folder (no torch needed) and on broken manifests."""

from __future__ import annotations

import json
import shutil
from statistics import median

import pytest

from tests.conftest import SAMPLES
from workbench.errors import InputError
from workbench.inputs import AnalyzeOptions, analyze_path

RUN = SAMPLES / "cpu" / "capture_mlp"


def test_a_run_folder_is_its_manifest_plus_its_artifacts():
    inputs = {i.kind: i for i in analyze_path(RUN, AnalyzeOptions())}
    assert set(inputs) == {"capture_run", "kineto_trace"}
    manifest = json.loads((RUN / "manifest.json").read_text())
    run = inputs["capture_run"]
    assert run.path == str(RUN) and run.warnings == []
    assert run.metrics["captured_steps"] == 6
    assert run.metrics["host_step_ms_median"] == pytest.approx(median(manifest["timings"]["step_ms"]))
    assert run.meta["settings"]["schedule"] == {"wait": 1, "warmup": 1, "active": 3, "repeat": 1}
    assert run.meta["versions"]["torch"] == "2.13.0+cpu" and run.meta["ranks"] == [None]
    assert [row["path"] for row in run.tables["files"]] == [p.name for p in RUN.glob("*.pt.trace.json.gz")]
    assert inputs["kineto_trace"].metrics["step_count"] == 3  # the three active steps


def test_a_broken_manifest_is_one_line_naming_it(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(RUN, run)
    manifest = run / "manifest.json"
    manifest.write_text(manifest.read_text()[:200])
    with pytest.raises(InputError, match="manifest.json: malformed capture manifest"):
        analyze_path(run, AnalyzeOptions())
