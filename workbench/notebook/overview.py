"""Overview tab: the key metrics as cards, the GPU time breakdown as one bar, the top findings."""

from __future__ import annotations

from typing import Any

from workbench.notebook.parts import Html, Part, esc, heading, html_table, input_title
from workbench.notebook.sources import DashboardData
from workbench.notebook.style import COLORS
from workbench.reporters.common import describe_input, diff_sections, gain_text, metric_rows

BREAKDOWN = (("computation_pct", "computation"), ("communication_pct", "communication"),
             ("memory_pct", "memcpy"), ("idle_pct", "idle"))
TOP_FINDINGS = 3


def parts(data: DashboardData) -> list[Part]:
    report = data.report
    inputs = report["inputs"]
    out: list[Part] = [Html(f"<div class='wb-sub wb-source'>{esc(data.source)}</div>")] if data.source else []
    for input_ in inputs:
        out += input_title(input_, len(inputs) > 1)
        out.append(Html(f"<div class='wb-sub'>{esc(input_['path'])} · {esc(describe_input(input_))}</div>"))
        out.append(Html(metric_cards(input_["metrics"])))
        bar = breakdown_bar(input_["metrics"])
        if bar:
            out += [heading("GPU time"), Html(bar)]
        if input_.get("warnings"):
            out.append(Html("<ul class='wb-sub'>" + "".join(f"<li>{esc(w)}</li>" for w in input_["warnings"])
                            + "</ul>"))
    if "diff" in report:
        for title, header, rows in diff_sections(report["diff"]):
            out += [heading(title), Html(html_table(header, rows))]
    if report["findings"]:
        out += [heading("Top findings"), Html(top_findings(report["findings"]))]
    return out


def metric_cards(metrics: dict[str, Any]) -> str:
    cards = "".join(f"<div class='wb-card'><div class='v'>{esc(value)}</div><div class='l'>{esc(label.strip())}</div>"
                    "</div>" for label, value in metric_rows(metrics))
    return f"<div class='wb-cards'>{cards}</div>"


def breakdown_bar(metrics: dict[str, Any]) -> str:
    """The shares of the GPU window as one stacked bar (empty when the input has no GPU window)."""
    shares = [(name, metrics[key]) for key, name in BREAKDOWN if metrics.get(key)]
    if not shares:
        return ""
    segments = "".join(f"<div style='width:{pct}%;background:{COLORS[name]}' title='{name} {pct:.1f} %'>"
                       f"{name} {pct:.1f} %</div>" for name, pct in shares)
    return f"<div class='wb-bar'>{segments}</div>"


def severity_badge(severity: str) -> str:
    return f"<span class='wb-sev' style='background:{COLORS[severity]}'>{esc(severity)}</span>"


def top_findings(findings: list[dict[str, Any]]) -> str:
    items = "".join(f"<li>{severity_badge(f['severity'])}<b>{esc(f['id'])}</b> {esc(f['title'])} "
                    f"<span class='wb-sub'>(est. gain {esc(gain_text(f['estimated_gain']))})</span></li>"
                    for f in findings[:TOP_FINDINGS])
    more = f"<div class='wb-sub'>{len(findings) - TOP_FINDINGS} more in Findings</div>" \
        if len(findings) > TOP_FINDINGS else ""
    return f"<ul style='list-style:none;padding-left:0'>{items}</ul>{more}"
