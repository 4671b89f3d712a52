"""The report as JUnit XML, for the test views of CI systems (GitHub, GitLab, Jenkins, Azure).

One `testsuite` per input whose rules ran, one `testcase` per rule evaluated (one per finding
when a rule found several), a `failure` per finding at or above the gate's `--fail-on` (none
without it: the failures are what fails the exit code) with the evidence and the fix in its text;
findings below it are the case's `system-out`, and a rule that crashed is an `error`. A diff gated
by `--max-slowdown` adds a `workbench diff` suite whose `max-slowdown` case fails with the kernels
and operators that got slower.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from workbench.gate import at_or_above, slowdown_lines
from workbench.reporters.common import gain_text
from workbench.reporters.json import dumps
from workbench.rules.registry import RULES, load_builtin_rules

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # characters XML 1.0 cannot hold


def render(report: dict[str, Any]) -> str:
    load_builtin_rules()
    root = ET.Element("testsuites", name="workbench")
    gate = report.get("gate") or {}
    if report.get("diff") is not None and gate.get("max_slowdown") is not None:
        root.append(_slowdown_suite(report["diff"], gate["max_slowdown"]))
    failing = {id(f) for f in at_or_above(report["findings"], gate.get("fail_on"))}
    rules = gate.get("rules") or {i["path"]: list(dict.fromkeys(f["id"] for f in report["findings"]
                                                                 if _belongs(f, i["path"])))
                                  for i in report["inputs"]}
    inputs = {i["path"]: i for i in report["inputs"]}
    for path, rule_ids in rules.items():
        suite = _suite(path)
        suite.append(_properties(inputs[path]))
        findings = [f for f in report["findings"] if _belongs(f, path)]
        for rule_id in rule_ids:
            for case in _rule_cases(rule_id, [f for f in findings if f["id"] == rule_id], failing,
                                    inputs[path].get("warnings", [])):
                suite.append(case)
        root.append(suite)
    _count(root, root.findall("testsuite/testcase"))
    for suite in root.findall("testsuite"):
        _count(suite, suite.findall("testcase"))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _belongs(finding: dict[str, Any], path: str) -> bool:
    """A finding of the input `path`, or of one of its ranks (`path (rank N)`)."""
    return finding["input"] == path or finding["input"].startswith(f"{path} (rank ")


def _suite(name: str) -> ET.Element:
    return ET.Element("testsuite", name=_clean(name))


def _properties(input_: dict[str, Any]) -> ET.Element:
    properties = ET.Element("properties")
    ET.SubElement(properties, "property", name="kind", value=input_["kind"])
    return properties


def _case(classname: str, name: str) -> ET.Element:
    return ET.Element("testcase", classname=classname, name=_clean(name), time="0")


def _rule_cases(rule_id: str, findings: list[dict[str, Any]], failing: set[int],
                warnings: list[str]) -> list[ET.Element]:
    """The testcases of one rule on one input: passing, crashed, or one per finding."""
    classname = f"workbench.{RULES[rule_id].category}" if rule_id in RULES else "workbench"
    if not findings:
        case = _case(classname, rule_id)
        crash = next((w for w in warnings if w.startswith(f"rule {rule_id} failed:")), None)
        if crash:
            ET.SubElement(case, "error", message=_clean(crash), type="RuleError")
        return [case]
    cases = []
    for n, finding in enumerate(findings, start=1):
        case = _case(classname, rule_id if len(findings) == 1 else f"{rule_id} [{n}]")
        message = f"{finding['severity']}: {finding['title']}"
        if id(finding) in failing:
            ET.SubElement(case, "failure", message=_clean(message), type=finding["severity"]).text = \
                _clean(_finding_text(finding))
        else:
            ET.SubElement(case, "system-out").text = _clean(f"{message}\n\n{_finding_text(finding)}")
        cases.append(case)
    return cases


def _finding_text(finding: dict[str, Any]) -> str:
    gain, fix = finding["estimated_gain"], finding["fix"]
    return "\n".join([
        f"input: {finding['input']}",
        f"estimated gain: {gain_text(gain)} ({gain['method']})",
        f"fix: {fix['summary']}",
        *(f"docs: {url}" for url in fix["docs"]),
        "", "evidence:", dumps(finding["evidence"]),
        "", "fix code:", fix["code"].rstrip(), "",
    ])


def _slowdown_suite(diff: dict[str, Any], max_slowdown: float) -> ET.Element:
    suite = _suite("workbench diff")
    case = _case("workbench.diff", "max-slowdown")
    change = diff["step_time_change_pct"]
    if change is None:
        ET.SubElement(case, "error", type="NoSteps",
                      message="--max-slowdown needs ProfilerStep#N steps in both BASE and NEW")
    elif change > max_slowdown:
        lines = slowdown_lines(diff, max_slowdown)
        ET.SubElement(case, "failure", message=_clean(lines[0]), type="slowdown").text = _clean(
            "\n".join([f"base: {diff['base']}", f"new: {diff['new']}", *lines, ""]))
    else:
        ET.SubElement(case, "system-out").text = _clean(
            f"step time {change:+.1f} % is within --max-slowdown {max_slowdown:g} %")
    suite.append(case)
    return suite


def _count(element: ET.Element, cases: list[ET.Element]) -> None:
    """The tests, failures, errors, skipped and time attributes of a suite (or of all suites) from its cases."""
    element.set("tests", str(len(cases)))
    for tag, attribute in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
        element.set(attribute, str(sum(case.find(tag) is not None for case in cases)))
    element.set("time", "0")


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)
