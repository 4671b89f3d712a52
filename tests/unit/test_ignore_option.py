"""`--ignore` takes known rule ids only: a typo is a one-line usage error, not a rule left on."""

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
