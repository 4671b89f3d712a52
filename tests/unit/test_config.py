"""Finding and checking the gate's settings: [tool.workbench] in pyproject.toml, or workbench.toml."""

from __future__ import annotations

import pytest

from workbench.config import Config, load_config
from workbench.errors import InputError
from workbench.gate import at_or_above, tune
from workbench.rules.finding import Finding, Fix


def test_no_file_gives_the_defaults(tmp_path):
    assert load_config(start=tmp_path) == Config()


def test_pyproject_table_found_from_a_subfolder(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.workbench]\nfail-on = "warning"\nignore = ["host-sync"]\n')
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    config = load_config(start=tmp_path / "src" / "pkg")
    assert config == Config(path=str(tmp_path / "pyproject.toml"), fail_on="warning", ignore=("host-sync",))


def test_a_pyproject_without_the_table_is_passed_over(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.workbench]\nmax-slowdown = 3\n')
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "pyproject.toml").write_text('[project]\nname = "app"\n')
    assert load_config(start=tmp_path / "app").max_slowdown == 3.0


def test_workbench_toml_wins_over_pyproject_in_the_same_folder(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.workbench]\nfail-on = "info"\n')
    (tmp_path / "workbench.toml").write_text('fail-on = "critical"\n[severity]\nhost-sync = "warning"\n')
    config = load_config(start=tmp_path)
    assert (config.fail_on, config.severity) == ("critical", {"host-sync": "warning"})


def test_explicit_file(tmp_path):
    path = tmp_path / "ci.toml"
    path.write_text("min-gain-pct = 2.5\n")
    assert load_config(str(path), start=tmp_path).min_gain_pct == 2.5
    with pytest.raises(InputError, match="has no \\[tool.workbench\\] table"):
        (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
        load_config(str(tmp_path / "pyproject.toml"))
    with pytest.raises(InputError, match="no-such.toml: cannot be read"):
        load_config(str(tmp_path / "no-such.toml"))


@pytest.mark.parametrize("text, problem", [
    ("fail-on = [", "is not valid TOML"),
    ("fail_on = 'info'", "unknown setting 'fail_on'"),
    ("ignore = 'host-sync'", "ignore must be a list of rule ids"),
    ("ignore = ['no-such-rule']", "unknown rule id 'no-such-rule'"),
    ("[severity]\nhost-sync = 'high'", "severity of host-sync must be one of info, warning, critical, not 'high'"),
    ("severity = 'info'", "severity must be a table"),
    ("max-slowdown = '5%'", "max-slowdown must be a number of percent"),
    ("min-gain-pct = -1", "min-gain-pct must be a number of percent"),
    ("max-slowdown = true", "max-slowdown must be a number of percent"),
])
def test_bad_settings_name_the_file(tmp_path, text, problem):
    (tmp_path / "workbench.toml").write_text(text + "\n")
    with pytest.raises(InputError) as info:
        load_config(start=tmp_path)
    assert info.value.path == str(tmp_path / "workbench.toml") and problem in info.value.problem


def finding(id_: str, severity: str, pct: float) -> Finding:
    return Finding(id_, id_, severity, "launch", {}, {"pct": pct, "method": "test"}, Fix("fix", "pass"))


def test_tune_overrides_severities_drops_small_findings_and_resorts():
    findings = [finding("host-bound", "critical", 20.0), finding("host-sync", "info", 0.5),
                finding("input-bound", "warning", 4.0)]
    config = Config(min_gain_pct=1.0, severity={"input-bound": "critical", "host-bound": "warning"})
    assert [(f.id, f.severity) for f in tune(findings, config)] == [("input-bound", "critical"),
                                                                    ("host-bound", "warning")]


def test_at_or_above():
    findings = [{"severity": s} for s in ("critical", "warning", "info")]
    assert at_or_above(findings, None) == []
    assert at_or_above(findings, "warning") == findings[:2]
    assert at_or_above(findings, "info") == findings
