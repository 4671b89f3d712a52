"""The report as Markdown, suited to a pull-request comment or a CI job summary."""

from __future__ import annotations

from typing import Any

from workbench.reporters.common import (
    describe_input, diff_sections, finding_rows, gain_text, input_sections, metric_rows, rank_section, shorten,
)
from workbench.reporters.json import dumps


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return [line(header), "|" + "|".join("---" for _ in header) + "|",
            *(line([shorten(r[0]), *r[1:]]) for r in rows), ""]


def render(report: dict[str, Any]) -> str:
    lines = ["# workbench report", ""]
    if "diff" in report:
        diff = report["diff"]
        lines += [f"## Diff: `{diff['base']}` → `{diff['new']}`", ""]
        for title, header, rows in diff_sections(diff):
            lines += [f"### {title}", "", *_table(header, rows)]
    for input_ in report["inputs"]:
        lines += [f"## `{input_['path']}`", "", f"_{describe_input(input_)}_", ""]
        lines += _table(["Metric", "Value"], [list(r) for r in metric_rows(input_["metrics"])])
        if input_.get("ranks"):
            title, header, rows = rank_section(input_)
            lines += [f"### {title}", "", *_table(header, rows)]
        for title, header, rows in input_sections(input_):
            lines += [f"### {title}", "", *_table(header, rows)]
        lines += [f"> warning: {w}" for w in input_.get("warnings", [])]
    findings = report.get("findings", [])
    lines += ["## Findings", ""]
    if findings:
        lines += _table(*finding_rows(findings))
        for f in findings:
            lines += [f"### `{f['id']}`: {f['title']}", "", f"**Fix:** {f['fix']['summary']}",
                      f"_Estimated gain: {gain_text(f['estimated_gain'])}; {f['estimated_gain']['method']}._", "",
                      "<details><summary>Evidence and sample code</summary>", "",
                      "```json", dumps(f["evidence"]), "```", "",
                      "```python", f["fix"]["code"].rstrip(), "```", "", "</details>", ""]
    else:
        lines += ["No findings.", ""]
    return "\n".join(lines)
