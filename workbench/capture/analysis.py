"""A path analyzed into the `workbench.report/1` document exactly as `workbench analyze PATH` writes it
(the project's `[tool.workbench]` settings included)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.commands.analyze import analyze_report as command_report
from workbench.config import load_config
from workbench.inputs import AnalyzeOptions


def analyze_report(path: str | Path, top: int = 50) -> dict[str, Any]:
    config = load_config()
    return command_report([str(path)], AnalyzeOptions(top=top), config, list(config.ignore), config.fail_on)
