"""The anchors group: workbench's numbers cross-checked against HTA and the TensorBoard profiler plugin.

Its pinned tools (`pip install -e ".[anchors]"`, HTA needs pandas<3) live in their own virtual
environment (see README); in the main environment every module here skips with this reason.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest

SKIP_REASON = ('anchors group: needs HTA and torch-tb-profiler, pinned in the [anchors] extra '
               '(python -m venv .venv-anchors && .venv-anchors/bin/pip install -e ".[anchors]")')


@pytest.fixture(autouse=True)
def _quiet_anchors():
    """HTA and the plugin log and warn (pandas FutureWarnings) on every call."""
    logging.disable(logging.CRITICAL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
    logging.disable(logging.NOTSET)


def absolute(path: Path) -> str:
    return str(path.resolve())
