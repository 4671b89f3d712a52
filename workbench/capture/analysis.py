"""A path analyzed into the `workbench.report/1` document, as `workbench analyze PATH` builds it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.inputs import AnalyzeOptions, analyze_path
from workbench.report import build_report
from workbench.rules import run_rules


def analyze_report(path: str | Path, top: int = 50) -> dict[str, Any]:
    inputs = analyze_path(path, AnalyzeOptions(top=top))
    return build_report(inputs, [f.to_json() for f in run_rules(inputs)])
