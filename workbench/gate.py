"""CI gating: the config applied to findings, what fails a run (findings at or above `--fail-on`, a
step-time slowdown over `--max-slowdown`), the report's `gate` section and the exit code."""

from __future__ import annotations

from typing import Any

from workbench.config import Config
from workbench.inputs.analyzed import AnalyzedInput
from workbench.rules.finding import SEVERITIES, Finding, worth_pct
from workbench.rules.registry import RULES, failed_rules, load_builtin_rules

EXIT_OK, EXIT_GATE, EXIT_BAD_INPUT = 0, 1, 2
SLOWER_ROWS = 5  # kernels and operators named when a slowdown fails the gate


def tune(findings: list[Finding], config: Config) -> list[Finding]:
    """The config applied after the rules ran: severity overrides, the min-gain floor; most severe first."""
    for finding in findings:
        finding.severity = config.severity.get(finding.id, finding.severity)
    kept = [f for f in findings if worth_pct(f.estimated_gain) >= config.min_gain_pct]
    return sorted(kept, key=Finding.sort_key)


def rules_evaluated(inputs: list[AnalyzedInput], ignore: list[str]) -> dict[str, list[str]]:
    """The ids of the rules that ran on each input, by input path (not those that raised: `rules_failed`)."""
    load_builtin_rules()
    return {i.path: [r.id for r in RULES.values() if i.kind in r.kinds and r.id not in ignore
                     and r.id not in failed_rules(i)] for i in inputs}


def rules_failed(inputs: list[AnalyzedInput]) -> dict[str, list[str]]:
    """The ids of the rules that raised instead of running, by input path (only inputs with some)."""
    return {i.path: failed for i in inputs if (failed := failed_rules(i))}


def at_or_above(findings: list[dict[str, Any]], level: str | None) -> list[dict[str, Any]]:
    """The findings whose severity is `level` or worse (none when `level` is None)."""
    if level is None:
        return []
    floor = SEVERITIES.index(level)
    return [f for f in findings if SEVERITIES.index(f["severity"]) >= floor]


def gate_section(findings: list[dict[str, Any]], rules: dict[str, list[str]], config: Config,
                 fail_on: str | None, max_slowdown: float | None,
                 diff: dict[str, Any] | None = None, failed: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """The report's `gate`: the thresholds, where they came from, the rules run and whether the run passed
    (not when a rule failed to run: a check that did not run is not a pass)."""
    gate: dict[str, Any] = {
        "fail_on": fail_on, "max_slowdown": max_slowdown, "config": config.path,
        "severity_overrides": config.severity, "min_gain_pct": config.min_gain_pct, "rules": rules,
        "failing_findings": len(at_or_above(findings, fail_on)), "slowdown_exceeded": None,
    }
    if diff is not None and max_slowdown is not None and diff["step_time_change_pct"] is not None:
        gate["slowdown_exceeded"] = diff["step_time_change_pct"] > max_slowdown
    if failed:
        gate["rules_failed"] = failed
    gate["passed"] = not gate["failing_findings"] and not gate["slowdown_exceeded"] and not failed
    return gate


def exit_code(report: dict[str, Any]) -> int:
    """2 when a slowdown gate has no step times to compare, 1 when the gate failed, else 0."""
    gate = report["gate"]
    if gate["max_slowdown"] is not None and report.get("diff", {}).get("step_time_change_pct") is None:
        return EXIT_BAD_INPUT
    return EXIT_OK if gate["passed"] else EXIT_GATE


def gate_messages(report: dict[str, Any]) -> list[str]:
    """Why the gate failed (or could not judge), for stderr; empty when it passed."""
    gate, diff = report["gate"], report.get("diff")
    lines = []
    failing = at_or_above(report["findings"], gate["fail_on"])
    if failing:
        ids = ", ".join(dict.fromkeys(f["id"] for f in failing))
        lines.append(f"{len(failing)} finding(s) at or above --fail-on {gate['fail_on']}: {ids}")
    if gate["max_slowdown"] is not None and diff is not None and diff["step_time_change_pct"] is None:
        lines.append("warning: --max-slowdown needs ProfilerStep#N steps in both BASE and NEW; "
                     "no step time to compare")
    if gate["slowdown_exceeded"]:
        lines += slowdown_lines(diff, gate["max_slowdown"])
    for path, ids in gate.get("rules_failed", {}).items():
        lines.append(f"{len(ids)} rule(s) failed to run on {path}: {', '.join(ids)} (a check that did not run "
                     "is not a pass; the report's warnings say why)")
    return lines


def slowdown_lines(diff: dict[str, Any], max_slowdown: float) -> list[str]:
    """The step-time change over the limit, then the kernels and operators that got slower."""
    unit = "ms/step" if diff["per_step"] else "ms"
    lines = [f"step time {diff['step_time_change_pct']:+.1f} % exceeds --max-slowdown {max_slowdown:g} %"]
    labels = (("kernels", "kernel"), ("operators", "operator"), ("operators_cpu", "operator (self CPU)"))
    for table, label in labels:
        lines += [f"  slower {label}: {r['name']} ({r['delta_ms']:+.2f} {unit}, "
                  f"{r['base_ms']:.2f} -> {r['new_ms']:.2f})"
                  for r in slower_rows(diff, table)]
    return lines


def slower_rows(diff: dict[str, Any], table: str) -> list[dict[str, Any]]:
    """The rows of a diff table (`kernels`, `operators`, `operators_cpu`) that got slower, most first."""
    rows = [r for r in diff[table] if r["delta_ms"] > 0]
    return sorted(rows, key=lambda r: -r["delta_ms"])[:SLOWER_ROWS]
