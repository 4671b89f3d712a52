"""Findings tab: one card per finding (severity, evidence, estimated gain) and its fix code."""

from __future__ import annotations

from typing import Any

from workbench.notebook.overview import severity_badge
from workbench.notebook.parts import FixCode, Html, Part, cell_text, esc, html_table
from workbench.notebook.sources import DashboardData
from workbench.notebook.style import COLORS
from workbench.reporters.common import gain_text, shorten

EVIDENCE_ROWS = 8


def parts(data: DashboardData) -> list[Part]:
    out: list[Part] = []
    for finding in data.report["findings"]:
        out.append(Html(card(finding)))
        fix = finding["fix"]
        out.append(FixCode(finding["id"], fix["code"], fix.get("docs", [])))
    return out


def card(finding: dict[str, Any]) -> str:
    gain = finding["estimated_gain"]
    fix = finding["fix"]
    docs = " ".join(f"<a href='{esc(url)}' target='_blank'>{esc(shorten(url, 60))}</a>" for url in fix.get("docs", []))
    return (f"<div class='wb-finding' style='border-color:{COLORS[finding['severity']]}'>"
            f"<div>{severity_badge(finding['severity'])}<b>{esc(finding['id'])}</b> "
            f"<span class='wb-sub'>{esc(finding['category'])} · {esc(finding.get('input', ''))}</span></div>"
            f"<div style='font-size:14px;margin:4px 0'>{esc(finding['title'])}</div>"
            f"<div><b>Estimated gain:</b> {esc(gain_text(gain))} "
            f"<span class='wb-sub'>{esc(gain['method'])}</span></div>"
            f"<details><summary>Evidence</summary>{evidence_html(finding['evidence'])}</details>"
            f"<div><b>Fix:</b> {esc(fix['summary'])}</div><div class='wb-sub'>{docs}</div></div>")


def evidence_html(value: Any, key: str = "") -> str:
    """Evidence as nested tables: dicts as key/value rows, lists of dicts as tables (first rows)."""
    if isinstance(value, dict):
        rows = "".join(f"<tr><td><b>{esc(k)}</b></td><td>{evidence_html(v, k)}</td></tr>" for k, v in value.items()
                       if not _has_words(k, value))
        return f"<table class='wb-evidence'>{rows}</table>"
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        columns = list(dict.fromkeys(k for row in value[:EVIDENCE_ROWS] for k in row))
        rows = [[shorten(cell_text(c, row.get(c)), 90) for c in columns] for row in value[:EVIDENCE_ROWS]]
        more = f"<div class='wb-sub'>{len(value) - EVIDENCE_ROWS} more</div>" if len(value) > EVIDENCE_ROWS else ""
        return html_table(columns, rows) + more
    return esc(shorten(cell_text(key, value), 300))


def _has_words(key: str, record: dict[str, Any]) -> bool:
    """A `*_bytes` count beside the same size in words (`requested_bytes` beside `requested: 5.00 GiB`)."""
    return key.endswith("_bytes") and isinstance(record.get(key[: -len("_bytes")]), str)
