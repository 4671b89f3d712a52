"""A rank's per-trace findings as its job's coordinator holds them: a small row per finding and the rest packed.

A job groups its ranks' findings by rule and cause and cites the evidence of the median and the worst
rank of each group (`job_findings`). What the grouping reads of a finding is its row: rule, cause (its
fix's summary), gain in ms and share of the time; the findings whole (titles, evidence, fixes) travel
pickled and compressed, set aside in the job's spill file, and are read back only for the ranks cited.
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.inputs.analyzed import Spilled, pack_value, read_packed
from workbench.rules.finding import Finding, worth_pct

Row = tuple[str, str, float, float, float]  # rule id, cause (its fix's summary), gain ms, pct, worth pct


def gain_ms(finding: Finding) -> float:
    """A finding's gain in ms: per step, else in all (0 without one)."""
    gain = finding.estimated_gain
    return float(gain.get("time_ms_per_step", gain.get("time_ms")) or 0.0)


def row_of(finding: Finding) -> Row:
    return (finding.id, finding.fix.summary, gain_ms(finding), float(finding.estimated_gain.get("pct") or 0.0),
            worth_pct(finding.estimated_gain))


@dataclass
class RankFindings:
    """One rank's findings: their rows, in order, and all of them whole in `packed`."""

    rows: tuple[Row, ...]
    packed: bytes | Spilled

    @classmethod
    def pack(cls, findings: list[Finding]) -> RankFindings:
        return cls(tuple(row_of(f) for f in findings), pack_value(findings))

    def read(self) -> list[Finding]:
        return read_packed(self.packed)
