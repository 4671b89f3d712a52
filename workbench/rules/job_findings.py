"""A job's per-rank findings as one finding per rule and cause, readable at any number of ranks.

The findings of a per-trace rule on the ranks of a job are grouped by their fix (a rule chooses its
fix from what it found, so one fix is one cause). Each group becomes one finding that names how
many ranks it holds on, its gain on the median and the worst of them, and carries the evidence of
those two ranks. Its estimated gain for the job is the median rank's: ranks in lockstep wait for
each other, so what the typical rank saves is what the job's step saves.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.inputs.analyzed import AnalyzedInput
from workbench.rules.finding import Finding, severity_for

PERCENTILES = {"min": 0, "p50": 50, "p90": 90, "max": 100}


def job_findings(input_: AnalyzedInput, found: list[Finding]) -> list[Finding]:
    """`found` (one rule's findings on the ranks of `input_`, each naming its rank) as one finding per cause; the
    ranks they cite keep their tables in the report."""
    out = [_job_finding(input_, group) for group in _by_cause(found)]
    _detail(input_, {f.evidence[side].get("rank") for f in out for side in ("median_rank", "worst_rank")})
    return out


def cited_ranks(found: list[Finding]) -> list[int]:
    """The ranks whose evidence `job_findings` cites for `found` (findings on a job's ranks, each naming its rank,
    of any rules): the median and the worst rank of each rule and cause."""
    by_rule: dict[str, list[Finding]] = {}
    for finding in found:
        by_rule.setdefault(finding.id, []).append(finding)
    return list(dict.fromkeys(_rank(f) for group in by_rule.values() for cause in _by_cause(group)
                              for f in _median_and_worst(cause)))


def _detail(input_: AnalyzedInput, ranks: set[int | None]) -> None:
    """Detail the cited `ranks` of a large job: those its ranks' findings named were chosen before the rules ran
    (`cited_ranks`); these are the ones the rules found on traces kept in memory (the notebook's), whole."""
    added = [r for r in input_.ranks if r.rank in ranks and not r.detailed]
    for rank in added:
        rank.unpack()
        rank.detailed = True
    if added:
        input_.meta["detailed_ranks"] = sorted({*input_.meta.get("detailed_ranks", []), *(r.rank for r in added)})


def _by_cause(found: list[Finding]) -> list[list[Finding]]:
    groups: dict[str, list[Finding]] = {}
    for finding in found:
        groups.setdefault(finding.fix.summary, []).append(finding)
    return list(groups.values())


def _median_and_worst(group: list[Finding]) -> tuple[Finding, Finding]:
    """The group's finding on its median rank and on its worst, by gain (of equal gains, the lower rank's is
    the worse)."""
    ordered = _by_gain(group)
    return ordered[(len(ordered) - 1) // 2], ordered[-1]


def _by_gain(group: list[Finding]) -> list[Finding]:
    return sorted(group, key=lambda f: (gain_ms(f), float(f.estimated_gain.get("pct") or 0.0), -_rank(f)))


def gain_ms(finding: Finding) -> float:
    gain = finding.estimated_gain
    return float(gain.get("time_ms_per_step", gain.get("time_ms")) or 0.0)


def _job_finding(input_: AnalyzedInput, group: list[Finding]) -> Finding:
    group = _by_gain(group)
    median, worst = _median_and_worst(group)
    total = len(input_.ranks)
    unit = "ms/step" if "time_ms_per_step" in median.estimated_gain else "ms"
    gains = np.array([gain_ms(f) for f in group])
    pcts = np.array([float(f.estimated_gain.get("pct") or 0.0) for f in group])
    gain = {**median.estimated_gain,
            "method": f"the median rank's, of the {len(group)} where it holds (ranks in lockstep wait for each "
                      f"other): {median.estimated_gain['method']}"}
    title = f"{median.title}: on {len(group)} of {total} ranks" + (
        f"; worth {gains[(len(group) - 1) // 2]:.1f} {unit} on the median rank, {gains[-1]:.1f} on the worst "
        f"(rank {_rank(worst)})" if len(group) > 1 else f" (rank {_rank(median)})")
    evidence: dict[str, Any] = {
        "ranks_affected": len(group),
        "ranks_total": total,
        "ranks": sorted(_rank(f) for f in group),
        f"gain_{unit.replace('/', '_per_')}": _distribution(gains),
        "gain_pct": _distribution(pcts),
        "median_rank": median.evidence,
        "worst_rank": worst.evidence,
    }
    return Finding(id=median.id, title=title, severity=severity_for(float(gain.get("pct") or 0.0)),
                   category=median.category, evidence=evidence, estimated_gain=gain, fix=worst.fix, input=input_.path)


def _distribution(values: np.ndarray) -> dict[str, float]:
    return {name: float(np.percentile(values, q)) for name, q in PERCENTILES.items()}


def _rank(finding: Finding) -> int:
    rank = finding.evidence.get("rank")
    return rank if isinstance(rank, int) else -1
