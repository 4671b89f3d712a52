"""Imports every module that registers an input kind. Order matters: first match wins."""

import workbench.inputs.kineto  # noqa: F401
import workbench.inputs.nsys  # noqa: F401
import workbench.inputs.distributed  # noqa: F401
import workbench.inputs.memory  # noqa: F401
import workbench.inputs.capture_run  # noqa: F401
import workbench.inputs.xctrace  # noqa: F401
