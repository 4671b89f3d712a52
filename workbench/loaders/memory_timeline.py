"""`torch.profiler` memory timelines from `prof.export_memory_timeline(path)`.

Two shapes: `.json`/`.json.gz` is `[times_us, sizes]`, each row of `sizes` an unused leading
slot and then the bytes of each category in the order of torch's `_CATEGORY_TO_INDEX`;
`.raw.json.gz` is a list of `[time_ns, action, signed_bytes, category_index]` events (time -1
for memory that existed before profiling), which are summed into the same per-category curves.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from workbench.errors import InputError
from workbench.loaders.files import open_input
from workbench.models.memory import MemoryTimeline

CATEGORIES = ("parameter", "optimizer_state", "input", "temporary", "activation", "gradient",
              "autograd_detail", "unknown")
_HEAD = re.compile(rb"^\s*\[\s*\[\s*-?\d")
RAW_COLUMNS = 4


def is_memory_timeline(path: Path, head: bytes) -> bool:
    return path.name.endswith((".json", ".json.gz", ".raw.gz")) and bool(_HEAD.match(head))


def load_memory_timeline(path: str | Path) -> MemoryTimeline:
    with open_input(path) as handle:
        raw = handle.read_all()
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise InputError(path, f"not valid JSON ({exc}); a half-written memory timeline?") from None
    if _is_raw(data):
        return _from_raw_events(path, data)
    if not (isinstance(data, list) and len(data) == 2 and all(isinstance(x, list) for x in data)):
        raise InputError(path, "not a memory timeline (expected [times, sizes] from export_memory_timeline)")
    times, sizes = data
    if len(times) != len(sizes):
        raise InputError(path, f"memory timeline has {len(times)} times but {len(sizes)} rows of sizes")
    try:
        table = np.array(sizes, dtype=np.int64).reshape(len(sizes), -1)
    except (TypeError, ValueError) as exc:
        raise InputError(path, f"memory timeline sizes are not rows of integers ({exc})") from None
    if table.shape[1] != len(CATEGORIES) + 1:
        raise InputError(path, f"memory timeline rows have {table.shape[1]} columns, expected "
                               f"{len(CATEGORIES) + 1} (an unsupported torch version?)")
    return MemoryTimeline(path=str(path), time_us=np.array(times, dtype=np.int64),
                          bytes_by_category={c: table[:, i + 1] for i, c in enumerate(CATEGORIES)})


def _is_raw(data: object) -> bool:
    """Raw events are rows of four integers; the plot shape's second element is a list of rows."""
    if not (isinstance(data, list) and data and isinstance(data[0], list)):
        return False
    return len(data) == 1 or (isinstance(data[1], list) and len(data[1]) == RAW_COLUMNS
                              and all(isinstance(x, int) for x in data[1]))


def _from_raw_events(path: str | Path, rows: list[list[int]]) -> MemoryTimeline:
    """Per-category bytes after each distinct time, summed from raw (time, action, bytes, category) events."""
    try:
        table = np.array(rows, dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise InputError(path, f"raw memory timeline rows are not [time, action, bytes, category] ({exc})") from None
    if table.ndim != 2 or table.shape[1] != RAW_COLUMNS or not np.isin(table[:, 3], np.arange(len(CATEGORIES))).all():
        raise InputError(path, "raw memory timeline rows are not [time, action, bytes, category index 0-7]")
    time_ns = table[:, 0]
    started = time_ns[time_ns >= 0]
    time_ns = np.where(time_ns < 0, started.min() if len(started) else 0, time_ns)  # pre-existing memory
    order = np.argsort(time_ns, kind="stable")
    time_ns, delta, category = time_ns[order], table[order, 2], table[order, 3]
    last_of_time = np.r_[time_ns[1:] != time_ns[:-1], True]
    curves = {c: np.cumsum(np.where(category == i, delta, 0))[last_of_time] for i, c in enumerate(CATEGORIES)}
    return MemoryTimeline(path=str(path), time_us=time_ns[last_of_time] // 1000, bytes_by_category=curves)
