"""Structural checks of JUnit XML as CI systems read it (the Ant/Jenkins `junit.xsd` structure).

testsuites(name, tests, failures, errors, time) / testsuite(name, tests, failures, errors,
skipped, time) / properties/property(name, value), testcase(classname, name, time) / at most one
failure or error (message, type, text), system-out, system-err. Counts must add up and times
must be decimals.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

DECIMAL = re.compile(r"^\d+(\.\d+)?$")
SUITE_ATTRIBUTES = {"name", "tests", "failures", "errors", "skipped", "disabled", "time", "timestamp",
                    "hostname", "id", "package", "file"}
CASE_ATTRIBUTES = {"name", "classname", "time", "assertions", "status", "file", "line"}
CASE_CHILDREN = {"failure", "error", "skipped", "system-out", "system-err"}


def parse_junit(text: str) -> ET.Element:
    """The root `testsuites` of a JUnit document, after checking its structure (AssertionError if wrong)."""
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(text.encode("utf-8"))
    assert root.tag == "testsuites" and set(root.attrib) <= {"name", "tests", "failures", "errors", "skipped",
                                                             "disabled", "time"}
    suites = list(root)
    assert all(s.tag == "testsuite" for s in suites)
    for suite in suites:
        _check_suite(suite)
    _check_counts(root, root.findall("testsuite/testcase"))
    return root


def _check_suite(suite: ET.Element) -> None:
    assert suite.get("name") and set(suite.attrib) <= SUITE_ATTRIBUTES, suite.attrib
    children = [c.tag for c in suite]
    assert set(children) <= {"properties", "testcase", "system-out", "system-err"}, children
    assert "properties" not in children[1:]  # at most one, first
    for prop in suite.findall("properties/property"):
        assert set(prop.attrib) == {"name", "value"}
    for case in suite.findall("testcase"):
        assert case.get("name") and case.get("classname") and set(case.attrib) <= CASE_ATTRIBUTES, case.attrib
        assert DECIMAL.match(case.get("time", "0"))
        tags = [c.tag for c in case]
        assert set(tags) <= CASE_CHILDREN and tags.count("failure") + tags.count("error") <= 1, tags
        for outcome in case:
            if outcome.tag in ("failure", "error"):
                assert outcome.get("message") and outcome.get("type") and set(outcome.attrib) == {"message", "type"}
    _check_counts(suite, suite.findall("testcase"))


def _check_counts(element: ET.Element, cases: list[ET.Element]) -> None:
    assert int(element.get("tests")) == len(cases)
    assert int(element.get("failures")) == sum(c.find("failure") is not None for c in cases)
    assert int(element.get("errors")) == sum(c.find("error") is not None for c in cases)
    assert DECIMAL.match(element.get("time"))


def failures(root: ET.Element) -> list[ET.Element]:
    return root.findall("testsuite/testcase/failure")
