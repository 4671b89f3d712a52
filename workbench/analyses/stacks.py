"""Python source lines behind host events (the `python_function` events of `with_stack=True`), and
which frames are the user's own code rather than torch's, a library's or the interpreter's."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

from workbench.models.trace import EventTable

PYTHON_CATEGORIES = frozenset({"python_function"})
# Frames of libraries rather than of the user's code: torch itself, builtins, the standard library.
_LIBRARY_FRAME = re.compile(r"^(<|torch/|typing\.py|contextlib\.py|threading\.py|functools\.py|"
                            r"site-packages/|dist-packages/|/usr/lib/python)")
# The same for a frame's full file path (allocator snapshots, Flight Recorder dumps): torch, installed
# packages, the standard library, C++ sources and `<frozen ...>`-like pseudo files.
_LIBRARY_FILE = re.compile(r"(^$|^<|/(torch|site-packages|dist-packages|lib/python\d[^/]*)/|\.(cpp|cc|cu|h|hpp)$)")


def is_user_frame(name: str) -> bool:
    """A profiler frame name (`file(line): function`) of the user's code."""
    return bool(name) and not _LIBRARY_FRAME.match(name)


def is_user_file(filename: str) -> bool:
    """A frame's file path that is the user's code."""
    return not _LIBRARY_FILE.search(filename)


class StackIndex:
    """Finds the Python frames that enclose a host event on its thread."""

    def __init__(self, events: EventTable) -> None:
        frames = np.flatnonzero(events.category_mask(PYTHON_CATEGORIES))
        self.events = events
        self.frames = frames
        self.available = len(frames) > 0

    def stack(self, index: int) -> list[str]:
        """Frame names enclosing event `index`, outermost first."""
        e = self.events
        f = self.frames
        same_thread = (e.pid[f] == e.pid[index]) & (e.tid[f] == e.tid[index])
        enclosing = same_thread & (e.ts[f] <= e.ts[index]) & (e.end[f] >= e.end[index])
        chosen = f[enclosing]
        chosen = chosen[np.argsort(e.ts[chosen], kind="stable")]
        return [e.names[c] for c in e.name[chosen].tolist()]

    def user_line(self, index: int) -> str | None:
        """The innermost frame of the user's own code that led to event `index`."""
        return next((name for name in reversed(self.stack(index)) if is_user_frame(name)), None)

    def library_line(self, index: int) -> str | None:
        """The innermost frame of any code (torch included), for calls made inside a library."""
        stack = [name for name in self.stack(index) if not name.startswith("<")]
        return stack[-1] if stack else None

    def top_lines(self, indexes: np.ndarray, limit: int = 5, sample: int = 500) -> list[dict[str, object]]:
        """The most frequent (user frame, innermost frame) pairs among up to `sample` of the events.

        Frames are named as the profiler names them, `file(first line of the function): function`.
        """
        if not self.available or not len(indexes):
            return []
        picked = indexes[np.linspace(0, len(indexes) - 1, min(sample, len(indexes))).astype(int)]
        counts = Counter((self.user_line(i), self.library_line(i)) for i in picked.tolist())
        scale = len(indexes) / len(picked)
        return [
            {"user_frame": user, "innermost_frame": inner, "count": round(n * scale)}
            for (user, inner), n in counts.most_common(limit)
            if user or inner
        ]
