"""The finding: what is wrong, the evidence for it, what fixing it is worth, and the fix."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("info", "warning", "critical")
CRITICAL_PCT = 10.0
WARNING_PCT = 3.0


def failure_gain(method: str, prevents: str) -> dict[str, Any]:
    """The gain of fixing a failure that stopped the run (an OOM, a hang): all of the run, and no
    speed-up; `prevents` says what the fix prevents ('the OOM that stopped the run'), which the
    reports show instead of a percentage."""
    return {"pct": 100.0, "method": method, "prevents": prevents}


def memory_gain(bytes_: int, pct: float, method: str) -> dict[str, Any]:
    """The gain of a memory problem: the bytes fixing it frees and their share (of the device, or of the
    bytes requested: `method` says), shown in a unit of its own, never as a share of the time."""
    return {"memory_bytes": int(bytes_), "memory_pct": round(pct, 2), "method": method}


def worth_pct(gain: dict[str, Any]) -> float:
    """What a gain is worth, to order findings and apply the min-gain floor: its share of the time, else of memory."""
    return float(gain.get("pct", gain.get("memory_pct")) or 0.0)


def severity_for(pct_of_time: float) -> str:
    """Severity from the share of step (or run) time a problem costs."""
    if pct_of_time >= CRITICAL_PCT:
        return "critical"
    if pct_of_time >= WARNING_PCT:
        return "warning"
    return "info"


@dataclass
class Fix:
    summary: str
    code: str
    docs: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"summary": self.summary, "code": self.code, "docs": self.docs}


@dataclass
class Finding:
    """One problem found in one input.

    `estimated_gain` holds `time_ms_per_step` and/or `pct` (share of step or run time that
    fixing it could save), always `method`, a sentence on how it was estimated, and for a failure
    `prevents`, what fixing it prevents (shown instead of the percentage); a memory problem's gain
    is `memory_bytes` and `memory_pct` instead (`memory_gain`).
    """

    id: str
    title: str
    severity: str
    category: str
    evidence: dict[str, Any]
    estimated_gain: dict[str, Any]
    fix: Fix
    input: str = ""

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")
        if "method" not in self.estimated_gain:
            raise ValueError("estimated_gain needs a 'method'")

    def sort_key(self) -> tuple[int, float]:
        return (-SEVERITIES.index(self.severity), -worth_pct(self.estimated_gain))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity,
            "category": self.category,
            "input": self.input,
            "evidence": self.evidence,
            "estimated_gain": self.estimated_gain,
            "fix": self.fix.to_json(),
        }
