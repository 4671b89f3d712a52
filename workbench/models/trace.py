"""The columnar model of one profiler trace (one rank).

Times are microseconds, as in Kineto's Chrome-trace JSON. Strings (category, name, input
shapes) are stored once in a list and referenced by integer codes, so a column of names
costs four bytes per event.
"""

from __future__ import annotations

import json

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from workbench.models.comm_args import CommArgs

MISSING = -1
"""Value of an integer column where the trace recorded nothing."""


@dataclass
class EventTable:
    """Complete events ('ph': 'X') of a trace, one numpy array per field."""

    ts: np.ndarray  # float64, start in µs
    dur: np.ndarray  # float64, duration in µs
    cat: np.ndarray  # int16 code into `categories`
    name: np.ndarray  # int32 code into `names`
    pid: np.ndarray  # int64, MISSING when the trace used a non-numeric label
    tid: np.ndarray  # int64, MISSING likewise
    device: np.ndarray  # int64 GPU/accelerator index, MISSING on host events
    stream: np.ndarray  # int64, MISSING on host events
    correlation: np.ndarray  # int64 launch correlation id, MISSING when absent
    external_id: np.ndarray  # int64 "External id", MISSING when absent
    flops: np.ndarray  # float64, NaN when not recorded
    bytes: np.ndarray  # int64 bytes moved by a memcpy/memset, MISSING when absent
    shapes: np.ndarray  # int32 code into `strings` ("Input Dims" as JSON), MISSING when absent
    categories: list[str]
    names: list[str]
    strings: list[str]
    grid: np.ndarray | None = None  # int32 code into `strings` (a kernel's launch grid as JSON), MISSING; None unread

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def end(self) -> np.ndarray:
        return self.ts + self.dur

    def category_mask(self, categories: frozenset[str] | set[str]) -> np.ndarray:
        """Boolean mask of the events whose category is one of `categories`."""
        codes = [i for i, c in enumerate(self.categories) if c in categories]
        return np.isin(self.cat, codes)

    def name_mask(self, predicate) -> np.ndarray:
        """Boolean mask of the events whose name satisfies `predicate(name) -> bool`."""
        codes = [i for i, n in enumerate(self.names) if predicate(n)]
        return np.isin(self.name, codes)

    def dims_of_code(self, code: int) -> list[Any]:
        """The input shapes stored under string `code` (parsed once), [] for MISSING or bad JSON."""
        if code == MISSING:
            return []
        if code not in self._dims:
            try:
                self._dims[code] = json.loads(self.strings[code])
            except ValueError:
                self._dims[code] = []
        return self._dims[code]

    def grid_of(self, index: int) -> list[int] | None:
        """The launch grid [x, y, z] of kernel `index`, None where the trace recorded none."""
        if self.grid is None:
            return None
        grid = self.dims_of_code(int(self.grid[index]))
        return grid if grid and all(type(g) is int and g > 0 for g in grid) else None

    @cached_property
    def _dims(self) -> dict[int, list[Any]]:
        return {}

    @cached_property
    def name_array(self) -> np.ndarray:
        """The names as a numpy object array, indexable by the `name` codes."""
        return np.array(self.names, dtype=object)


@dataclass
class MemoryEvents:
    """The `[memory]` instant events of a trace recorded with `profile_memory=True`."""

    ts: np.ndarray  # float64 µs
    bytes: np.ndarray  # int64, positive for an allocation, negative for a free
    total_allocated: np.ndarray  # int64, MISSING when absent
    total_reserved: np.ndarray  # int64, MISSING when absent
    device: np.ndarray  # int32 device id, -1 for host memory

    def __len__(self) -> int:
        return len(self.ts)


@dataclass
class Trace:
    """One Kineto/Chrome trace file: its events, memory events and metadata."""

    path: str
    events: EventTable
    memory: MemoryEvents
    metadata: dict[str, Any] = field(default_factory=dict)
    thread_names: dict[tuple[int, int], str] = field(default_factory=dict)
    skipped_events: int = 0
    skipped_example: str = ""  # what was wrong with one skipped event ("'dur' is inf")
    ignored_event_arrays: int = 0  # top-level `traceEvents` arrays after the first (not read)
    other_events: int = 0
    comm_args: CommArgs | None = None  # arguments of the communication events, when loaded

    @property
    def distributed(self) -> dict[str, Any]:
        info = self.metadata.get("distributedInfo")
        return info if isinstance(info, dict) else {}

    @property
    def rank(self) -> int | None:
        rank = self.distributed.get("rank")
        return rank if isinstance(rank, int) else None

    @property
    def devices(self) -> list[dict[str, Any]]:
        props = self.metadata.get("deviceProperties")
        return [p for p in props if isinstance(p, dict)] if isinstance(props, list) else []
