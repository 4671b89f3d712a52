"""`workbench.notebook.analyze` reports what `workbench analyze` reports: the project's settings applied."""

from __future__ import annotations

import pytest

pytest.importorskip("plotly")

from tests.conftest import NAIVE  # noqa: E402
from workbench.commands.analyze import analyze_report  # noqa: E402
from workbench.config import load_config  # noqa: E402
from workbench.inputs import AnalyzeOptions  # noqa: E402
from workbench.notebook import analyze  # noqa: E402

SETTINGS = 'fail-on = "critical"\nignore = ["host-sync"]\n[severity]\nunfused-attention = "critical"\n'


def test_the_dashboard_applies_the_config_like_the_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    without = analyze(NAIVE).report
    assert [(f["id"], f["severity"]) for f in without["findings"]] == [
        ("fp32-matmul", "critical"), ("unfused-optimizer", "critical"), ("input-bound", "warning"),
        ("unfused-attention", "warning"), ("host-sync", "info")]
    (tmp_path / "workbench.toml").write_text(SETTINGS)
    data = analyze(NAIVE)
    assert [(f["id"], f["severity"]) for f in data.report["findings"]] == [
        ("fp32-matmul", "critical"), ("unfused-optimizer", "critical"), ("unfused-attention", "critical"),
        ("input-bound", "warning")]
    gate = data.report["gate"]
    assert (gate["config"], gate["fail_on"], gate["failing_findings"]) == (str(tmp_path / "workbench.toml"),
                                                                            "critical", 3)
    assert "host-sync" not in gate["rules"][str(NAIVE)]
    config = load_config()
    command = analyze_report([str(NAIVE)], AnalyzeOptions(), config, list(config.ignore), config.fail_on)
    assert data.report["findings"] == command["findings"] and data.report["gate"] == command["gate"]
    assert [i.path for i in data.inputs] == [str(NAIVE)]  # the models stay for the timeline's zoom
