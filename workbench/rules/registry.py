"""The rule registry: each rule has a stable kebab-case id and checks inputs of some kinds."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Iterable, Sequence

from workbench.inputs.analyzed import AnalyzedInput, RankResult
from workbench.rules.context import name_rank
from workbench.rules.finding import Finding, Fix, severity_for, worth_pct
from workbench.rules.job_findings import RankFinding, cited_ranks, job_findings

Check = Callable[[AnalyzedInput], Iterable[Finding]]
MIN_GAIN_PCT = 0.1  # findings worth less than this share of the time (or of memory) are noise
_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_FAILED = re.compile(r"rule ([a-z0-9-]{1,100}) failed\b")


@dataclass(frozen=True)
class Rule:
    id: str
    category: str
    kinds: frozenset[str]
    description: str
    check: Check


RULES: dict[str, Rule] = {}


def rule(id: str, category: str, kinds: Iterable[str], description: str) -> Callable[[Check], Check]:
    """Register `check` as the rule `id`, run on inputs whose kind is in `kinds`."""
    if not _ID.match(id):
        raise ValueError(f"rule id {id!r} is not kebab-case")

    def register(check: Check) -> Check:
        if id in RULES:
            raise ValueError(f"rule {id!r} registered twice")
        RULES[id] = Rule(id, category, frozenset(kinds), description, check)
        return check

    return register


def finding_of(rule_id: str, title: str, evidence: dict[str, Any], gain: dict[str, Any], fix: Fix,
               input: str = "") -> Finding:
    """A finding of the registered rule `rule_id`, in its category, as severe as the share of time `gain` saves."""
    return Finding(id=rule_id, title=title, severity=severity_for(gain["pct"]), category=RULES[rule_id].category,
                   evidence=evidence, estimated_gain=gain, fix=fix, input=input)


def run_rules(inputs: list[AnalyzedInput], ignore: Iterable[str] = ()) -> list[Finding]:
    """Findings of every rule that applies to each input, most severe and costly first."""
    load_builtin_rules()
    skipped = set(ignore)
    findings: list[Finding] = []
    for input_ in inputs:
        for r in RULES.values():
            if r.id in skipped or input_.kind not in r.kinds:
                continue
            try:
                found = list(r.check(input_))
            except Exception as exc:  # one rule's bug must not cost the user the whole report
                if os.environ.get("WORKBENCH_DEBUG"):
                    raise
                input_.warnings.append(f"rule {r.id} failed: {type(exc).__name__}: {exc}")
                continue
            if getattr(r.check, "per_trace", False) and len(input_.ranks) > 1:
                found = job_findings(input_, [f for f in [*map(RankFinding.of, found), *_found_in_ranks(input_, r.id)]
                                              if f.worth >= MIN_GAIN_PCT])
            else:
                if getattr(r.check, "per_trace", False):
                    found += [f.whole() for f in _found_in_ranks(input_, r.id)]
                found = [f for f in found if worth_pct(f.estimated_gain) >= MIN_GAIN_PCT]
            for finding in found:
                finding.input = finding.input or input_.path
                findings.append(finding)
    findings.sort(key=Finding.sort_key)
    return findings


def trace_findings(input_: AnalyzedInput, kinds: Iterable[str]) -> tuple[list[Finding], list[str]]:
    """The findings of the per-trace rules for `kinds` on a one-trace input, and a warning per rule that failed:
    run where the trace is (a Dask worker), so that the trace need not travel."""
    load_builtin_rules()
    wanted = set(kinds)
    findings: list[Finding] = []
    warnings: list[str] = []
    for r in RULES.values():
        if not getattr(r.check, "per_trace", False) or not r.kinds & wanted:
            continue
        try:
            findings += r.check(input_)
        except Exception as exc:
            if os.environ.get("WORKBENCH_DEBUG"):
                raise
            warnings.append(f"rule {r.id} failed on {input_.path}: {type(exc).__name__}: {exc}")
    return findings, warnings


def job_cited_ranks(ranks: Sequence[RankResult], ignore: Iterable[str] = ()) -> list[int]:
    """The ranks whose evidence the job's findings will cite (`job_findings.cited_ranks`), from the findings its
    ranks brought along, those of the `ignore`d rules left out."""
    skipped = set(ignore)
    return cited_ranks([RankFinding(r.rank, *row, lambda: None) for r in ranks if r.findings
                        for row in r.findings.rows if row[4] >= MIN_GAIN_PCT and row[0] not in skipped])


def _found_in_ranks(input_: AnalyzedInput, rule_id: str) -> list[RankFinding]:
    """The findings of `rule_id` that the ranks of a job brought along from where their traces were read, by their rows
    (`rank_findings`): each read whole, with its rank named, only where a job finding cites it."""
    return [RankFinding(rank.rank, *row, partial(_whole, input_, rank, i)) for rank in input_.ranks
            if rank.findings for i, row in enumerate(rank.findings.rows) if row[0] == rule_id]


def _whole(input_: AnalyzedInput, rank: RankResult, index: int) -> Finding:
    return name_rank(rank.findings.read()[index], input_, rank.rank)


def failed_rules(input_: AnalyzedInput) -> list[str]:
    """The ids of the rules that raised on `input_` (their warnings: `rule <id> failed...`), which did not run."""
    return list(dict.fromkeys(m.group(1) for w in input_.warnings if (m := _FAILED.match(w))))


def load_builtin_rules() -> None:
    """Import the modules whose `@rule` decorators fill the registry."""
    import workbench.rules.builtin  # noqa: F401
