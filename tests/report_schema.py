"""Validation of reports against `workbench/report.schema.json` (JSON Schema draft 2020-12)."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import pytest

from tests.conftest import ROOT

jsonschema = pytest.importorskip("jsonschema", reason="schema checks need jsonschema (pip install -e '.[dev]')")

SCHEMA_PATH = ROOT / "workbench" / "report.schema.json"


@lru_cache(maxsize=1)
def validator() -> Any:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def schema_errors(report: dict[str, Any]) -> list[str]:
    """Each way `report` breaks the schema, as 'path: message' (empty when it is valid)."""
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in sorted(validator().iter_errors(report), key=lambda e: list(map(str, e.absolute_path)))]


def assert_valid_report(report: dict[str, Any]) -> None:
    errors = schema_errors(report)
    assert not errors, "report breaks workbench/report.schema.json:\n" + "\n".join(errors[:20])
