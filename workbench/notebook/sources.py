"""What the dashboard is given: a report, a path, a capture, or a before/after pair, as report + models.

The dashboard draws the report; the models behind it only serve zooming into the timeline, by
asking the analysis for a window's detail. When the dashboard was given a report, an input whose
path is here is analyzed again the first time its timeline is zoomed. A report offered for a path
(`offer_report`) is shown for that path while its files are unchanged.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.commands.analyze import inputs_report
from workbench.config import load_config
from workbench.errors import WorkbenchError
from workbench.inputs import AnalyzedInput, AnalyzeOptions, analyze_path
from workbench.report import SCHEMA
from workbench.server.artifacts import Signature, signature

_OFFERED: dict[str, tuple[Signature, str]] = {}  # real path -> (its files' signature, its report as JSON)
OFFERED_SOURCE = "The report the JupyterLab server made for the Workbench panel (not analyzed again here)."


@dataclass
class DashboardData:
    report: dict[str, Any]
    inputs: list[AnalyzedInput] = field(default_factory=list)  # the models of report["inputs"], when known
    top: int = 50
    source: str = ""  # where the report comes from, when the dashboard did not make it
    _loaded: dict[int, AnalyzedInput | None] = field(default_factory=dict, repr=False)

    def can_zoom(self, index: int) -> bool:
        """Whether the models of input `index` are known or can be loaded (its path is here)."""
        return index < len(self.inputs) or Path(self.report["inputs"][index]["path"]).exists()

    def model_of(self, index: int) -> AnalyzedInput | None:
        """The models of input `index`; a report's input is analyzed again the first time it is asked for."""
        if index < len(self.inputs):
            return self.inputs[index]
        if index not in self._loaded:
            input_ = self.report["inputs"][index]
            self._loaded[index] = _model(input_["path"], input_["kind"], self.top)
        return self._loaded[index]


def load(source: Any, top: int = 50) -> DashboardData:
    """A report dict, a path (file or folder), or a capture (anything with a run folder `path` or a `report()`)."""
    if isinstance(source, DashboardData):
        return source
    if isinstance(source, dict):
        if source.get("schema") != SCHEMA:
            raise WorkbenchError(f"not a {SCHEMA} document (schema: {source.get('schema')!r})")
        return DashboardData(source)
    if isinstance(source, (str, os.PathLike)):
        offered = _offered(source)
        return DashboardData(offered, top=top, source=OFFERED_SOURCE) if offered else analyze(source, top=top)
    folder = getattr(source, "path", None)
    if isinstance(folder, (str, os.PathLike)) and Path(folder).exists():
        return analyze(folder, top=top)
    if callable(getattr(source, "report", None)):
        return load(source.report())
    raise WorkbenchError(f"cannot show a {type(source).__name__}: give a report, a path or a capture")


def offer_report(path: str | os.PathLike, report_json: str) -> None:
    """A report of `path` made elsewhere (the JupyterLab server's cached analysis, handed over by the panel's
    "Open dashboard"): `load(path)` shows it instead of analyzing again, while the files it read are unchanged."""
    real = Path(os.path.realpath(path))
    _OFFERED[str(real)] = (signature(real), report_json)


def _offered(path: str | os.PathLike) -> dict[str, Any] | None:
    real = Path(os.path.realpath(path))
    stamp, text = _OFFERED.get(str(real), (None, ""))
    if stamp is None or not real.exists() or signature(real) != stamp:
        return None
    report = json.loads(text)
    return report if report.get("schema") == SCHEMA else None


def analyze(*paths: str | os.PathLike, top: int = 50) -> DashboardData:
    """What `workbench analyze PATH...` reports (the project's `[tool.workbench]` settings included),
    with the models kept for zooming."""
    inputs = [i for path in paths for i in analyze_path(path, AnalyzeOptions(top=top, keep_traces=True))]
    config = load_config()
    return DashboardData(inputs_report(inputs, config, list(config.ignore), config.fail_on), inputs, top)


def _model(path: str, kind: str, top: int) -> AnalyzedInput | None:
    """The analyzed input of `path` of this kind (None when the path is gone)."""
    if not Path(path).exists():
        return None
    found = analyze_path(path, AnalyzeOptions(top=top, keep_traces=True))
    return next((i for i in found if i.path == path and i.kind == kind), found[0] if found else None)


def diff(base: str | os.PathLike, new: str | os.PathLike, top: int = 15) -> DashboardData:
    """What `workbench diff BASE NEW` reports (its JSON, made by the command itself)."""
    from workbench.cli import EXIT_BAD_INPUT, main

    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "diff.json"
        code = main(["diff", str(base), str(new), "--top", str(top), "--format", "json", "-o", str(out)])
        if code == EXIT_BAD_INPUT or not out.exists():
            raise WorkbenchError(f"workbench diff {base} {new} failed (exit {code}); its error is printed above")
        return DashboardData(json.loads(out.read_text(encoding="utf-8")))
