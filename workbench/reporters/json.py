"""The report as indented JSON."""

from __future__ import annotations

from typing import Any

import msgspec


def render(report: dict[str, Any]) -> str:
    return msgspec.json.format(msgspec.json.encode(report), indent=2).decode() + "\n"
