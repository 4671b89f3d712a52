"""CI gating on the real H100 runs: --fail-on, --ignore, the config file, JUnit output, --summary, diff's gate.

Facts read straight from the traces: ProfilerStep#4..6 last 86.0035, 85.2379, 93.5151 ms in
train_naive and 34.6182, 32.3155, 31.5043 ms in train_optimized (a +168.96 % change from
optimized to naive); the SIMT sgemm `cutlass_80_simt_sgemm_256x128_8x4_nn` runs 47.4962 ms in
naive (15.832 ms per step) and not at all in optimized. The sample traces are byte copies of
../shared/traces/h100/train_{naive,optimized}.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import NAIVE, OPTIMIZED, ROOT, SAMPLES, shared_path
from tests.junit_schema import failures, parse_junit
from tests.report_schema import assert_valid_report
from workbench.cli import main
from workbench.rules.registry import RULES

NAIVE_FINDINGS = ["fp32-matmul", "unfused-optimizer", "input-bound", "unfused-attention", "host-sync"]
NAIVE_SEVERITIES = ["critical", "critical", "warning", "warning", "info"]
OPTIMIZED_FINDINGS = ["host-bound", "low-gpu-utilization"]
SIMT_SGEMM = "cutlass_80_simt_sgemm_256x128_8x4_nn_align1"


@pytest.fixture(autouse=True)
def no_config_around(tmp_path, monkeypatch):
    """Run in an empty folder, so no workbench.toml or pyproject.toml above the checkout is read."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def report_of(capsys, *args) -> tuple[int, dict, str]:
    code, out, err = run(capsys, *args, "--format", "json")
    report = json.loads(out)
    assert_valid_report(report)
    return code, report, err


@pytest.fixture(params=["sample", "shared"])
def traces(request) -> tuple[Path, Path]:
    """train_naive and train_optimized: the sample copies, and the files in ../shared (skipped when absent)."""
    if request.param == "sample":
        return NAIVE, OPTIMIZED
    return (shared_path("h100/train_naive/train_naive.pt.trace.json.gz"),
            shared_path("h100/train_optimized/train_optimized.pt.trace.json.gz"))


def test_fail_on_warning_fails_naive_and_optimized_reports_less(capsys, traces):
    naive, optimized = traces
    code, report, err = report_of(capsys, "analyze", naive, "--fail-on", "warning")
    assert code == 1
    assert [f["id"] for f in report["findings"]] == NAIVE_FINDINGS
    assert [f["severity"] for f in report["findings"]] == NAIVE_SEVERITIES
    assert report["gate"]["failing_findings"] == 4 and report["gate"]["passed"] is False
    assert err.strip() == ("workbench: 4 finding(s) at or above --fail-on warning: "
                           "fp32-matmul, unfused-optimizer, input-bound, unfused-attention")
    code, smaller, _ = report_of(capsys, "analyze", optimized, "--fail-on", "warning")
    assert [f["id"] for f in smaller["findings"]] == OPTIMIZED_FINDINGS  # both critical: still a failure
    assert code == 1 and smaller["gate"]["failing_findings"] == 2
    assert len(json.dumps(smaller["findings"])) < len(json.dumps(report["findings"]))


def test_levels_and_ignore(capsys):
    assert run(capsys, "analyze", NAIVE, "--fail-on", "critical", "-o", "/dev/null")[0] == 1
    assert run(capsys, "analyze", NAIVE, "-o", "/dev/null")[0] == 0  # no level: report only
    ignored = [a for i in NAIVE_FINDINGS[:4] for a in ("--ignore", i)]
    code, report, err = report_of(capsys, "analyze", NAIVE, "--fail-on", "warning", *ignored)
    assert code == 0 and err == "" and [f["id"] for f in report["findings"]] == ["host-sync"]
    assert report["gate"]["passed"] is True and "fp32-matmul" not in report["gate"]["rules"][str(NAIVE)]
    assert run(capsys, "analyze", NAIVE, "--fail-on", "info", *ignored, "-o", "/dev/null")[0] == 1


def test_junit_has_a_failure_per_finding(capsys, traces):
    naive, _ = traces
    code, out, _ = run(capsys, "analyze", naive, "--fail-on", "info", "--format", "junit")
    assert code == 1
    root = parse_junit(out)
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == str(naive)
    cases = suite.findall("testcase")
    kineto_rules = sorted(r.id for r in RULES.values() if "kineto_trace" in r.kinds)
    assert sorted(c.get("name") for c in cases) == kineto_rules  # one case per rule evaluated
    failed = failures(root)
    assert len(failed) == len(NAIVE_FINDINGS) == int(root.get("failures"))
    by_rule = {c.get("name"): c for c in cases}
    fp32 = by_rule["fp32-matmul"].find("failure")
    assert fp32.get("type") == "critical"
    assert fp32.get("message") == "critical: 79% of GPU kernel time is float32 GEMMs without tensor cores"
    assert SIMT_SGEMM in fp32.text and "torch.backends.cuda.matmul.allow_tf32 = True" in fp32.text  # evidence, fix
    assert by_rule["fp32-matmul"].get("classname") == "workbench.precision"


def test_junit_failures_follow_fail_on(capsys):
    code, out, _ = run(capsys, "analyze", NAIVE, "--fail-on", "warning", "--format", "junit")
    root = parse_junit(out)
    assert code == 1 and len(failures(root)) == 4
    host_sync = next(c for c in root.iter("testcase") if c.get("name") == "host-sync")
    assert host_sync.find("failure") is None and "info: " in host_sync.find("system-out").text
    code, out, _ = run(capsys, "analyze", NAIVE, "--format", "junit")
    assert code == 0 and failures(parse_junit(out)) == []


def test_diff_reversed_fails_and_names_the_slower_kernels(capsys, traces):
    naive, optimized = traces
    code, report, err = report_of(capsys, "diff", optimized, naive, "--max-slowdown", "5")
    assert code == 1 and report["gate"]["slowdown_exceeded"] is True
    assert report["diff"]["step_time_change_pct"] == pytest.approx(168.96, abs=0.01)
    lines = err.splitlines()
    assert lines[0] == "workbench: step time +169.0 % exceeds --max-slowdown 5 %"
    assert SIMT_SGEMM in lines[1] and "(+15.83 ms/step, 0.00 -> 15.83)" in lines[1]
    assert any("slower operator: aten::mm" in line for line in lines)
    code, out, _ = run(capsys, "diff", optimized, naive, "--max-slowdown", "5", "--format", "junit")
    root = parse_junit(out)
    diff_suite = root.find("testsuite[@name='workbench diff']")
    failure = diff_suite.find("testcase[@name='max-slowdown']/failure")
    assert failure.get("message") == "step time +169.0 % exceeds --max-slowdown 5 %" and SIMT_SGEMM in failure.text
    assert len(failures(root)) == 1  # no --fail-on: NEW's findings are listed, not failures
    assert run(capsys, "diff", naive, optimized, "--max-slowdown", "5", "-o", "/dev/null")[0] == 0


def test_diff_fail_on_gates_new_findings(capsys):
    code, report, err = report_of(capsys, "diff", NAIVE, OPTIMIZED, "--max-slowdown", "5", "--fail-on", "critical")
    assert code == 1 and report["gate"]["slowdown_exceeded"] is False
    assert report["gate"]["rules"].keys() == {str(OPTIMIZED)}
    assert "2 finding(s) at or above --fail-on critical: host-bound, low-gpu-utilization" in err


def test_config_file_sets_the_gate(capsys, tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "model"\n\n[tool.workbench]\nfail-on = "critical"\nignore = ["fp32-matmul"]\n'
        'min-gain-pct = 5\nmax-slowdown = 200\n\n[tool.workbench.severity]\nunfused-optimizer = "warning"\n'
        '"input-bound" = "critical"\n')
    code, report, err = report_of(capsys, "analyze", NAIVE)
    # fp32-matmul ignored; host-sync (1.12 %) under the 5 % floor; unfused-optimizer down, input-bound up
    assert [(f["id"], f["severity"]) for f in report["findings"]] == [
        ("input-bound", "critical"), ("unfused-optimizer", "warning"), ("unfused-attention", "warning")]
    assert code == 1 and err.endswith("at or above --fail-on critical: input-bound\n")
    gate = report["gate"]
    assert gate["config"] == str(tmp_path / "pyproject.toml") and gate["min_gain_pct"] == 5.0
    assert gate["severity_overrides"] == {"unfused-optimizer": "warning", "input-bound": "critical"}
    assert run(capsys, "analyze", NAIVE, "--fail-on", "warning", "-o", "/dev/null")[0] == 1  # the flag wins
    code, report, _ = report_of(capsys, "diff", OPTIMIZED, NAIVE, "--ignore", "input-bound")
    assert report["gate"]["max_slowdown"] == 200.0 and code == 0  # +169 % is under the config's limit


def test_bad_config_is_one_line_and_exit_2(capsys, tmp_path):
    (tmp_path / "workbench.toml").write_text('fail-on = "fatal"\n')
    code, out, err = run(capsys, "analyze", NAIVE)
    assert code == 2 and out == ""
    assert err == (f"workbench: error: {tmp_path / 'workbench.toml'}: "
                   "fail-on must be one of info, warning, critical, not 'fatal'\n")


def test_summary_appends_markdown_to_the_job_summary(capsys, tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    run(capsys, "analyze", NAIVE, "--summary", "-o", str(tmp_path / "r.json"), "--format", "json")
    assert summary.read_text() == "earlier step\n"  # the variable is not set: nothing to append to
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    run(capsys, "analyze", NAIVE, "--summary", "-o", str(tmp_path / "r.xml"), "--format", "junit")
    run(capsys, "diff", NAIVE, OPTIMIZED, "--summary", "-o", str(tmp_path / "d.txt"))
    text = summary.read_text()
    assert text.startswith("earlier step\n# workbench report\n") and text.count("# workbench report\n") == 2
    assert "| GPU busy | 87.3 % |" in text and "### Change" in text
    run(capsys, "analyze", NAIVE, "-o", str(tmp_path / "r.txt"))  # no --summary: left alone
    assert summary.read_text() == text


def test_a_config_read_before_the_inputs_leaves_every_input_kind_known(tmp_path):
    """The config loads the rules first (to check their ids); a fresh process must still read a hang folder."""
    (tmp_path / "workbench.toml").write_text('ignore = ["host-sync"]\n')
    folder = ROOT / "sample_traces" / "h100" / "nccl_timeout"
    result = subprocess.run([sys.executable, "-m", "workbench", "analyze", str(folder), "--format", "json"],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert [i["kind"] for i in json.loads(result.stdout)["inputs"]] == ["flight_recorder"]


def test_a_rule_that_raises_fails_the_gate_and_the_report_says_so(monkeypatch, capsys, tmp_path):
    """Synthetic failure: `low-gpu-utilization` raising ZeroDivisionError (the issue's repro) is not a pass."""
    import dataclasses

    from workbench.rules.registry import RULES, load_builtin_rules

    load_builtin_rules()

    def boom(input_):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setitem(RULES, "low-gpu-utilization", dataclasses.replace(RULES["low-gpu-utilization"], check=boom))
    trace = SAMPLES / "public" / "mi250_minitoy_train_ROCm6_2_kineto.json.gz"
    out = tmp_path / "report.json"
    assert main(["analyze", str(trace), "--fail-on", "critical", "--format", "json", "-o", str(out),
                 "--ignore", "launch-bound"]) == 1
    report = json.loads(out.read_text())
    gate = report["gate"]
    assert gate["passed"] is False and gate["rules_failed"] == {str(trace): ["low-gpu-utilization"]}
    assert "low-gpu-utilization" not in gate["rules"][str(trace)]
    assert "rule low-gpu-utilization failed: ZeroDivisionError: division by zero" in report["inputs"][0]["warnings"]
    assert "1 rule(s) failed to run on" in capsys.readouterr().err
    assert_valid_report(report)
