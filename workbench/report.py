"""The `workbench.report/1` document: what the CLI prints, the widget draws and the panel fetches."""

from __future__ import annotations

import math
from typing import Any

from workbench import __version__
from workbench.inputs.analyzed import AnalyzedInput

SCHEMA = "workbench.report/1"
FLOAT_DIGITS = 4


def build_report(inputs: list[AnalyzedInput], findings: list[dict[str, Any]] | None = None,
                 diff: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON-serializable report of the analyzed inputs and their findings (and a diff of two inputs)."""
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "tool": {"name": "workbench", "version": __version__},
        "inputs": [i.to_json() for i in inputs],
        "findings": findings or [],
    }
    if diff is not None:
        report["diff"] = diff
    return to_plain(report)


def to_plain(value: Any) -> Any:
    """Plain JSON values: numpy scalars unwrapped, floats rounded, NaN and infinities as null."""
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float) or hasattr(value, "dtype"):
        number = value.item() if hasattr(value, "item") else value
        if isinstance(number, float):
            return round(number, FLOAT_DIGITS) if math.isfinite(number) else None
        return number
    return value
