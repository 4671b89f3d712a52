"""The panel's frontend unit tests (jest, set up as the JupyterLab extension template does), run by pytest.

The first run installs the extension's node packages with `jlpm install` from its yarn.lock
(about a minute); skips where Node.js or jlpm (JupyterLab's bundled yarn) is missing.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import ROOT

EXTENSION = ROOT / "extensions" / "workbench-lab"
JLPM = shutil.which("jlpm")


@pytest.mark.skipif(shutil.which("node") is None or JLPM is None, reason="needs Node.js and jlpm (jupyterlab)")
def test_frontend_unit_tests_pass():
    if not (EXTENSION / "node_modules").is_dir():
        install = subprocess.run([JLPM, "install"], cwd=EXTENSION, capture_output=True, text=True, timeout=900)
        assert install.returncode == 0, install.stdout[-4000:] + install.stderr[-4000:]
    result = subprocess.run([JLPM, "test", "--ci"], cwd=EXTENSION, capture_output=True, text=True, timeout=600)
    summary = [line for line in result.stderr.splitlines() if line.startswith("Tests:")]
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert summary and "failed" not in summary[0]
