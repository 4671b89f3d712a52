"""Usage errors of the report options: unknown `--ignore` ids, an `-o` that cannot be written; one line, exit 2."""

from __future__ import annotations

import json

from tests.conftest import OPTIMIZED
from workbench.cli import main


def test_unknown_rule_id_is_a_usage_error(capsys):
    code = main(["analyze", str(OPTIMIZED), "--ignore", "host-snyc"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        "workbench: error: --ignore: unknown rule id 'host-snyc' (`workbench rules` lists them)"]


def test_known_rule_id_is_accepted(capsys):
    code = main(["analyze", str(OPTIMIZED), "--ignore", "host-sync", "--format", "json"])
    evaluated = json.loads(capsys.readouterr().out)["gate"]["rules"][str(OPTIMIZED)]
    assert code == 0 and "host-sync" not in evaluated and "input-bound" in evaluated


def test_unwritable_output_is_one_line(tmp_path, capsys):
    code = main(["analyze", str(OPTIMIZED), "-o", str(tmp_path)])  # a folder, not a file
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.strip().splitlines() == [f"workbench: error: {tmp_path}: cannot write the report: Is a directory"]
