"""Capturing a run: `workbench.capture(out=..., steps=...)` profiles steps into a new run folder.

The package is callable (`workbench.capture(...)` is `Capture(...)`), so that the function and
its modules share one name. Nothing here imports torch until a capture starts.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from workbench.capture.schedule import Schedule
from workbench.capture.session import Capture

__all__ = ["Capture", "Schedule"]


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Capture:
        return Capture(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
