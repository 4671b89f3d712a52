"""`torch.profiler` memory timelines: `prof.export_memory_timeline("x.json")` (.json or .json.gz).

The file is `[times_us, sizes]`, where each row of `sizes` holds an unused leading slot and then
the bytes of each category in the order of torch's `_CATEGORY_TO_INDEX`.
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


def is_memory_timeline(path: Path, head: bytes) -> bool:
    return path.name.endswith((".json", ".json.gz")) and bool(_HEAD.match(head))


def load_memory_timeline(path: str | Path) -> MemoryTimeline:
    with open_input(path) as handle:
        raw = handle.stream.read()
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise InputError(path, f"not valid JSON ({exc}); a half-written memory timeline?") from None
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
