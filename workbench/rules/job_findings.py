"""A job's per-rank findings as one finding per rule and cause, readable at any number of ranks.

The findings of a per-trace rule on the ranks of a job are grouped by their fix (a rule chooses its
fix from what it found, so one fix is one cause). Each group becomes one finding that names how
many ranks it holds on, its gain on the median and the worst of them, and carries the evidence of
those two ranks. Its estimated gain for the job is the median rank's: ranks in lockstep wait for
each other, so what the typical rank saves is what the job's step saves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from workbench.inputs.analyzed import AnalyzedInput
from workbench.rules.finding import Finding, severity_for
from workbench.rules.rank_findings import row_of

PERCENTILES = {"min": 0, "p50": 50, "p90": 90, "max": 100}


@dataclass(frozen=True)
class RankFinding:
    """A finding on one rank of a job as the grouping reads it (a `rank_findings.Row`), read whole by `whole` for
    the ranks a job finding cites only."""

    rank: int
    id: str
    cause: str  # its fix's summary
    gain_ms: float
    pct: float
    worth: float
    whole: Callable[[], Finding]

    @classmethod
    def of(cls, finding: Finding) -> RankFinding:
        """A finding already whole (a rule run on a rank's kept trace), its rank in its evidence."""
        rank = finding.evidence.get("rank")
        return cls(rank if isinstance(rank, int) else -1, *row_of(finding), lambda: finding)


def job_findings(input_: AnalyzedInput, found: list[RankFinding]) -> list[Finding]:
    """`found` (one rule's findings on the ranks of `input_`) as one finding per cause; the ranks they cite keep
    their tables in the report (`cited_ranks`, chosen as the job is read: `inputs.kineto`)."""
    return [_job_finding(input_, group) for group in _by_cause(found)]


def cited_ranks(found: list[RankFinding]) -> list[int]:
    """The ranks whose evidence `job_findings` cites for `found` (findings on a job's ranks, of any rules): the
    median and the worst rank of each rule and cause."""
    by_rule: dict[str, list[RankFinding]] = {}
    for finding in found:
        by_rule.setdefault(finding.id, []).append(finding)
    return list(dict.fromkeys(f.rank for group in by_rule.values() for cause in _by_cause(group)
                              for f in _median_and_worst(cause)))


def _by_cause(found: list[RankFinding]) -> list[list[RankFinding]]:
    groups: dict[str, list[RankFinding]] = {}
    for finding in found:
        groups.setdefault(finding.cause, []).append(finding)
    return list(groups.values())


def _median_and_worst(group: list[RankFinding]) -> tuple[RankFinding, RankFinding]:
    """The group's finding on its median rank and on its worst, by gain (of equal gains, the lower rank's is
    the worse)."""
    ordered = _by_gain(group)
    return ordered[(len(ordered) - 1) // 2], ordered[-1]


def _by_gain(group: list[RankFinding]) -> list[RankFinding]:
    return sorted(group, key=lambda f: (f.gain_ms, f.pct, -f.rank))


def _job_finding(input_: AnalyzedInput, group: list[RankFinding]) -> Finding:
    group = _by_gain(group)
    median_of, worst_of = _median_and_worst(group)
    median, worst = median_of.whole(), worst_of.whole()
    total = len(input_.ranks)
    unit = "ms/step" if "time_ms_per_step" in median.estimated_gain else "ms"
    gains = np.array([f.gain_ms for f in group])
    pcts = np.array([f.pct for f in group])
    gain = {**median.estimated_gain,
            "method": f"the median rank's, of the {len(group)} where it holds (ranks in lockstep wait for each "
                      f"other): {median.estimated_gain['method']}"}
    title = f"{median.title}: on {len(group)} of {total} ranks" + (
        f"; worth {gains[(len(group) - 1) // 2]:.1f} {unit} on the median rank, {gains[-1]:.1f} on the worst "
        f"(rank {worst_of.rank})" if len(group) > 1 else f" (rank {median_of.rank})")
    evidence: dict[str, Any] = {
        "ranks_affected": len(group),
        "ranks_total": total,
        "ranks": sorted(f.rank for f in group),
        f"gain_{unit.replace('/', '_per_')}": _distribution(gains),
        "gain_pct": _distribution(pcts),
        "median_rank": median.evidence,
        "worst_rank": worst.evidence,
    }
    return Finding(id=median.id, title=title, severity=severity_for(float(gain.get("pct") or 0.0)),
                   category=median.category, evidence=evidence, estimated_gain=gain, fix=worst.fix, input=input_.path)


def _distribution(values: np.ndarray) -> dict[str, float]:
    return {name: float(np.percentile(values, q)) for name, q in PERCENTILES.items()}
