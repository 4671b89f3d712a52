"""README's two set-up commands: what CI runs (`.ci/run`) and what `make test` does."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.conftest import ROOT


def readme_commands() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.DOTALL)
    return block.group(1).splitlines()


def test_readme_opens_with_two_commands_that_ci_runs_verbatim():
    install_and_analyze, test = readme_commands()
    assert "workbench analyze sample_traces/" in install_and_analyze and test == "make test"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert install_and_analyze in ci and any(line.startswith(f"{test} ") or line == test for line in ci)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_test_installs_what_the_tests_need_then_runs_both_groups():
    steps = subprocess.run(["make", "-n", "-B", "test"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "apt-get install -y chromium" in steps  # only where chromium is missing and apt-get exists
    assert 'pip install -e ".[dev]"' in steps and '.venv-anchors/bin/pip install -e ".[anchors]"' in steps
    main, anchors = (line for line in steps.splitlines() if "-m pytest" in line)
    assert "tests/anchors" not in main and anchors.startswith(".venv-anchors/bin/python -m pytest")
