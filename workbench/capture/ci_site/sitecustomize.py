"""Imported at start-up by each Python process of a `workbench ci` command (this folder is first on its
PYTHONPATH): when torch loads, a global optimizer-step hook hands every step to `workbench.capture.auto`,
and `torch.profiler.profile` is counted, so that a script that profiles itself is left to do so.
Nothing is imported before that; the sitecustomize this one shadows still runs.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from typing import Any, Callable

_pace: Any = None
_profilers = 0  # torch.profiler.profile objects the script made


def _on_step(optimizer: Any, args: Any, kwargs: Any) -> None:
    """Every optimizer step. At the first: a script that has imported `workbench.capture` or made a
    `torch.profiler.profile` profiles itself."""
    global _pace
    if _pace is None:
        script_profiles = _profilers > 0 or "workbench.capture.session" in sys.modules
        from workbench.capture.auto import pacer

        _pace = pacer(optimizer, script_profiles)
    _pace(optimizer)


def _count_profilers(module: Any) -> None:
    init = module.profile.__init__

    def counted_init(self: Any, *args: Any, **kwargs: Any) -> None:
        global _profilers
        _profilers += 1
        init(self, *args, **kwargs)

    module.profile.__init__ = counted_init


_WATCHED: dict[str, Callable[[Any], None]] = {
    "torch.optim.optimizer": lambda module: module.register_optimizer_step_post_hook(_on_step),
    "torch.profiler.profiler": _count_profilers,
}


class _TorchFinder:
    """A meta path entry that only watches the modules of `_WATCHED` load, to hook into each."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name not in _WATCHED:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        load, hook = spec.loader.exec_module, _WATCHED[name]

        def exec_module(module: Any) -> None:
            load(module)
            hook(module)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _run_shadowed() -> None:
    """Run the sitecustomize that this one hides (a distribution's or an environment's), if there is one."""
    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))


sys.meta_path.insert(0, _TorchFinder())
_run_shadowed()
