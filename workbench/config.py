"""Team settings for gating, read once: `[tool.workbench]` in `pyproject.toml`, or a `workbench.toml`.

```toml
[tool.workbench]               # in workbench.toml: the same keys at the top level
fail-on = "warning"            # default of --fail-on
max-slowdown = 5.0             # default of `diff --max-slowdown` (percent)
ignore = ["host-sync"]         # rules turned off, added to --ignore
min-gain-pct = 1.0             # leave out findings worth less (the rules' own floor is 0.1)

[tool.workbench.severity]      # severity overrides, applied to the findings after the rules run
input-bound = "critical"
```
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import InputError
from workbench.rules.finding import SEVERITIES
from workbench.rules.registry import MIN_GAIN_PCT, RULES, load_builtin_rules

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG_FILE = "workbench.toml"
PYPROJECT = "pyproject.toml"
KEYS = ("fail-on", "max-slowdown", "ignore", "min-gain-pct", "severity")


@dataclass(frozen=True)
class Config:
    """Gating settings; `path` is the file they came from (None: the defaults)."""

    path: str | None = None
    fail_on: str | None = None
    max_slowdown: float | None = None
    ignore: tuple[str, ...] = ()
    min_gain_pct: float = MIN_GAIN_PCT
    severity: dict[str, str] = field(default_factory=dict)


def load_config(explicit: str | None = None, start: Path | None = None, within: Path | None = None) -> Config:
    """The settings of `explicit`, else of the nearest config file in `start` (the working folder) or above it,
    up to `within` when given."""
    if explicit is not None:
        path = Path(explicit)
        table = _table(path, _read_toml(path))
        if table is None:
            raise InputError(path, "has no [tool.workbench] table")
        return parse_config(path, table)
    here = (start or Path.cwd()).resolve()
    folders = [here, *here.parents]
    if within is not None:
        folders = [f for f in folders if f.is_relative_to(within.resolve())]
    for folder in folders:
        for name in (CONFIG_FILE, PYPROJECT):
            path = folder / name
            if path.is_file():
                table = _table(path, _read_toml(path))
                if table is not None:
                    return parse_config(path, table)
    return Config()


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise InputError(path, f"cannot be read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(path, f"is not valid TOML: {exc}") from None


def _table(path: Path, document: dict[str, Any]) -> dict[str, Any] | None:
    """The workbench settings of a parsed file: a pyproject's [tool.workbench], any other file's top level."""
    if path.name != PYPROJECT:
        return document
    tool = document.get("tool")
    return tool.get("workbench") if isinstance(tool, dict) else None


def parse_config(path: Path, table: dict[str, Any]) -> Config:
    """Checked settings; anything unknown or mistyped is an `InputError` naming the file."""
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise InputError(path, f"unknown setting {unknown[0]!r} (known: {', '.join(KEYS)})")
    load_builtin_rules()
    fail_on = table.get("fail-on")
    if fail_on is not None and fail_on not in SEVERITIES:
        raise InputError(path, f"fail-on must be one of {', '.join(SEVERITIES)}, not {fail_on!r}")
    ignore = table.get("ignore", [])
    if not isinstance(ignore, list) or not all(isinstance(i, str) for i in ignore):
        raise InputError(path, "ignore must be a list of rule ids")
    severity = table.get("severity", {})
    if not isinstance(severity, dict):
        raise InputError(path, "severity must be a table of rule id = severity")
    for rule_id in [*ignore, *severity]:
        if rule_id not in RULES:
            raise InputError(path, f"unknown rule id {rule_id!r} (`workbench rules` lists them)")
    for rule_id, level in severity.items():
        if level not in SEVERITIES:
            raise InputError(path, f"severity of {rule_id} must be one of {', '.join(SEVERITIES)}, not {level!r}")
    return Config(path=str(path), fail_on=fail_on, max_slowdown=_number(path, table, "max-slowdown", None),
                  ignore=tuple(ignore), min_gain_pct=_number(path, table, "min-gain-pct", MIN_GAIN_PCT),
                  severity=dict(severity))


def _number(path: Path, table: dict[str, Any], key: str, default: float | None) -> float | None:
    value = table.get(key, default)
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
        raise InputError(path, f"{key} must be a number of percent, 0 or more, not {value!r}")
    return None if value is None else float(value)
