"""The GitHub Actions job of docs/ci.md, run locally: its `run:` commands in a temporary workspace.

The two checkouts are simulated by copying `examples/` (the pull request's copy edited to change
the model's width), `setup-python` and the install step are skipped (this environment has torch
and workbench), and the upload checks that the files it would upload exist. Steps run in order
with GitHub's `bash -eo pipefail`; after a failure only steps with `if: ${{ !cancelled() }}` run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.junit_schema import parse_junit
from tests.report_schema import assert_valid_report
from workbench.rules.registry import RULES, load_builtin_rules

yaml = pytest.importorskip("yaml", reason="the workflow test needs pyyaml (pip install -e '.[dev]')")
pytest.importorskip("torch", reason="the workflow profiles steps with torch (pip install -e '.[dev]')")

DOC = ROOT / "docs" / "ci.md"
EXAMPLE = "examples/ci_profile.py"
WIDTH = re.compile(r"^HIDDEN = \d+", re.MULTILINE)


def workflow() -> dict:
    (block,) = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    return yaml.safe_load(block)


def checkout(workspace: Path, hidden: int) -> None:
    """The files a checkout would bring: the example script, with the model HIDDEN wide."""
    target = workspace / EXAMPLE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(WIDTH.sub(f"HIDDEN = {hidden}", (ROOT / EXAMPLE).read_text(encoding="utf-8"), count=1))


def run_job(workspace: Path, base_hidden: int, new_hidden: int) -> dict[str, int | None]:
    """Each step's exit code by name (None: skipped or simulated) and the job summary, like a runner."""
    (job,) = workflow()["jobs"].values()
    env = {**os.environ, "GITHUB_STEP_SUMMARY": str(workspace / "summary.md"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    codes: dict[str, int | None] = {}
    failed = False
    for n, step in enumerate(job["steps"]):
        name = step.get("name", step.get("uses", str(n)))
        if failed and step.get("if") != "${{ !cancelled() }}":
            codes[name] = None
            continue
        uses, script = step.get("uses", ""), step.get("run", "")
        if uses.startswith("actions/checkout"):
            path = step.get("with", {}).get("path")
            checkout(workspace / path if path else workspace, base_hidden if path else new_hidden)
        elif uses.startswith("actions/upload-artifact"):
            assert list((workspace / step["with"]["path"]).iterdir()), "nothing to upload"
        elif script and "pip install" not in script:
            assert "${{" not in script  # the commands run as written
            result = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                                    cwd=workspace, env=env, capture_output=True, text=True, timeout=300)
            codes[name] = result.returncode
            failed |= result.returncode != 0
            continue
        codes[name] = None
    return codes


def test_a_regression_fails_the_diff_step(tmp_path):
    codes = run_job(tmp_path, base_hidden=256, new_hidden=2048)
    assert list(codes.values()) == [None, None, None, None, 0, 0, 1, 0, None]
    assert "Regression against the base (fail when over 10 % slower)" in [k for k, v in codes.items() if v == 1]
    report = json.loads((tmp_path / "reports" / "diff.json").read_text())
    assert_valid_report(report)
    assert report["gate"]["slowdown_exceeded"] is True and report["diff"]["step_time_change_pct"] > 10
    # The wider layers' GEMMs are named among the operators that got slower. Not which one is first:
    # on a shared CPU AdamW's element-wise ops (aten::div, aten::sqrt) grow 64x as well and can pass them.
    slower = {row["name"] for row in report["diff"]["operators_cpu"] if row["delta_ms"] > 0}
    assert {"aten::addmm", "aten::mm"} <= slower
    suite, = parse_junit((tmp_path / "reports" / "findings.xml").read_text()).findall("testsuite")
    assert suite.get("name").startswith("traces/new/") and int(suite.get("tests")) > 0  # the trace in the folder
    assert (tmp_path / "reports" / "report.html").read_text().startswith("<!DOCTYPE html>")  # uploaded with the rest
    summary = (tmp_path / "summary.md").read_text()
    assert summary.count("# workbench report\n") == 2 and "## Diff: `traces/base/" in summary


def test_an_improvement_passes_every_step(tmp_path):
    codes = run_job(tmp_path, base_hidden=2048, new_hidden=256)
    assert list(codes.values()) == [None, None, None, None, 0, 0, 0, 0, None]
    report = json.loads((tmp_path / "reports" / "diff.json").read_text())
    assert report["gate"]["passed"] is True and report["diff"]["step_time_change_pct"] < 0
    assert len(list((tmp_path / "traces" / "new").glob("*.pt.trace.json.gz"))) == 1


def test_the_docs_list_every_finding_id():
    load_builtin_rules()
    listed = set(re.findall(r"^\| `([a-z0-9-]+)` \|", DOC.read_text(encoding="utf-8"), flags=re.MULTILINE))
    assert listed == set(RULES), f"docs/ci.md's finding-id table: add {set(RULES) - listed}, drop {listed - set(RULES)}"
