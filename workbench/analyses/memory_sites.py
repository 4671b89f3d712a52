"""Where live memory was allocated: the user's source line and a category read off the stack."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any, Iterable

from workbench.analyses.stacks import is_user_file
from workbench.models.memory import Frames

# What a stack says the memory is, checked innermost frame first; (category, file pattern, function pattern).
_CATEGORIES = (
    ("optimizer state", re.compile(r"/torch/optim/"), re.compile(r".")),
    ("gradients and backward temporaries", re.compile(r"/torch/(autograd/|_tensor\.py)"), re.compile(r"backward")),
    ("parameters and buffers", re.compile(r"/torch/nn/modules/module\.py"), re.compile(r"^(_apply|convert|to|cuda)$")),
    ("parameters and buffers", re.compile(r"/torch/nn/(modules|parameter)"), re.compile(r"^(__init__|reset_parameters)$")),
    ("input data", re.compile(r"/torch/utils/data/"), re.compile(r".")),
    ("activations and forward temporaries", re.compile(r"/torch/nn/modules/module\.py"), re.compile(r"_call_impl")),
)
UNKNOWN = "other (no Python frame says)"


def frame_text(frame: dict[str, Any]) -> str:
    return f"{frame.get('filename', '?')}:{frame.get('line', '?')} in {frame.get('name', '?')}"


def user_frame(frames: Frames) -> dict[str, Any] | None:
    """The innermost frame of the user's own code (frames are innermost first)."""
    python = [f for f in frames if f.get("filename", "").endswith(".py")]
    return next((f for f in python if is_user_file(f["filename"])), python[0] if python else None)


def site_name(frames: Frames) -> str:
    frame = user_frame(frames)
    return frame_text(frame) if frame else "(no frames recorded)"


def site_names(frames: list[Frames], indexes: Iterable[int]) -> list[str]:
    """`site_name` of many history events; events that share one frames list are named once."""
    names: dict[int, str] = {}
    out = []
    for j in indexes:
        key = id(frames[j])
        name = names.get(key)
        if name is None:
            name = names[key] = site_name(frames[j])
        out.append(name)
    return out


def category_of(frames: Frames) -> str:
    for frame in frames:
        filename, name = frame.get("filename", ""), frame.get("name", "")
        for category, file_pattern, name_pattern in _CATEGORIES:
            if file_pattern.search(filename) and name_pattern.search(name):
                return category
    return UNKNOWN


def user_stack(frames: Frames, limit: int = 6) -> list[str]:
    """The user's frames of a stack, innermost first (all Python frames if none is the user's)."""
    python = [f for f in frames if f.get("filename", "").endswith(".py")]
    mine = [f for f in python if is_user_file(f["filename"])] or python
    return [frame_text(f) for f in mine[:limit]]


def site_rows(blocks: Iterable[tuple[int, Frames]], top: int) -> list[dict[str, Any]]:
    """Live bytes grouped by allocation site (the user's innermost frame), largest first."""
    bytes_by: dict[str, int] = defaultdict(int)
    count_by: dict[str, int] = defaultdict(int)
    example: dict[str, Frames] = {}
    for size, frames in blocks:
        site = site_name(frames)
        bytes_by[site] += size
        count_by[site] += 1
        example.setdefault(site, frames)
    ranked = sorted(bytes_by, key=bytes_by.__getitem__, reverse=True)[:top]
    return [{"site": s, "bytes": bytes_by[s], "blocks": count_by[s], "category": category_of(example[s]),
             "stack": user_stack(example[s])} for s in ranked]


def category_rows(blocks: Iterable[tuple[int, Frames]]) -> list[dict[str, Any]]:
    """Live bytes by what the allocation stacks say they are, largest first."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for size, frames in blocks:
        row = totals[category_of(frames)]
        row[0] += size
        row[1] += 1
    return [{"category": c, "bytes": b, "blocks": n}
            for c, (b, n) in sorted(totals.items(), key=lambda kv: kv[1][0], reverse=True)]
