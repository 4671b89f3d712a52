"""Out-of-memory error messages in logs, tracebacks and pasted text.

Read: the caching allocator's message in every wording since torch 0.4 (`(GPU 0; T total capacity;
A already allocated; F free; C cached)` of 2018-2019, `reserved in total by PyTorch` and `X allowed;`
of 1.x-2.0, the sentences of 2.1+ with other processes, private pools (CUDA Graphs) and the
`HIP out of memory` of ROCm builds, `XPU out of memory` of Intel GPUs), MPS's, and runtime OOMs
that carry no allocator numbers (`CUDA error: out of memory`, `CUDA driver error: out of memory`,
`cudaErrorMemoryAllocation`, `CUDA_ERROR_OUT_OF_MEMORY`, `CUBLAS_STATUS_ALLOC_FAILED`,
`torch.AcceleratorError`). Lines wrapped by a terminal or an issue tracker are joined; `[rankN]:`
prefixes, ANSI codes and JSON-lines wrapping are removed first (`error_text.clean_lines`).
"""

from __future__ import annotations

import re
from pathlib import Path

from workbench.errors import InputError
from workbench.loaders.error_text import Line, clean_lines
from workbench.loaders.files import may_be_log, read_tail, read_text
from workbench.models.memory import OomMessage

_WINDOW_LINES = 12  # a wrapped message spans at most this many lines
_WINDOW_CHARS = 4096
MARKERS = re.compile(
    rb"(?:CUDA|HIP|XPU) out of memory\.|MPS backend out of memory|(?:CUDA|HIP) (?:driver )?error: ?out of memory"
    rb"|cudaErrorMemoryAllocation|hipErrorOutOfMemory|CUDA_ERROR_OUT_OF_MEMORY"
    rb"|CUBLAS_STATUS_ALLOC_FAILED|CUDNN_STATUS_ALLOC_FAILED"
    rb"|is allocated by PyTorch|already allocated; ")

# Digits bounded and not preceded by a digit: linear on any run of digits, and a number too long to be a size
# is no size rather than its last digits.
_SIZE = r"(?<![\d.])(\d{1,15}(?:\.\d{1,15})?) ?(bytes|B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)\b"
_UNITS = {"bytes": 0, "B": 0, "KiB": 1, "MiB": 2, "GiB": 3, "TiB": 4, "KB": 1, "MB": 2, "GB": 3, "TB": 4}
_START = re.compile(r"\b(CUDA|HIP|XPU) out of memory\. Tried to allocate " + _SIZE)
_HEADLESS = re.compile(r"Including non-PyTorch memory, this process has|is allocated by PyTorch")
_MPS = re.compile(r"MPS backend out of memory \(MPS allocated: " + _SIZE + r", other allocations: " + _SIZE +
                  r", max allowed: " + _SIZE + r"\)\. Tried to allocate " + _SIZE + r"(?: on (\w+ pool))?")
_RUNTIME = re.compile(r"\b(CUDA|HIP) (?:driver )?error: ?out of memory"
                      r"|\b(cudaErrorMemoryAllocation|hipErrorOutOfMemory|CUDA_ERROR_OUT_OF_MEMORY)\b"
                      r"|\b(CUBLAS|CUDNN)_STATUS_ALLOC_FAILED(?: when calling `?(\w+)\()?")
_ERROR_TYPE = re.compile(r"\b((?:torch\.(?:cuda\.)?)?(?:OutOfMemoryError|AcceleratorError|RuntimeError)):")
# Each field of the allocator's message, in the wordings of torch >= 2.1 and of torch 0.4-2.0.
_FIELDS = {
    "device": re.compile(r"\bGPU (\d{1,9})(?!\d)"),
    "total_bytes": re.compile(r"total capac\w* of " + _SIZE + r"|" + _SIZE + r" total capacity"),
    "free_bytes": re.compile(r"of which " + _SIZE + r" is free|; " + _SIZE + r" free[;)]"),
    "process_bytes": re.compile(r"this process has " + _SIZE + r" memory in use"),
    "allocated_bytes": re.compile(_SIZE + r" is allocated by PyTorch|" + _SIZE + r" already allocated"),
    "reserved_unallocated_bytes": re.compile(_SIZE + r" is reserved by PyTorch but unallocated|; " + _SIZE +
                                             r" cached\)"),
    "reserved_bytes": re.compile(_SIZE + r" reserved in total by PyTorch"),
    "private_pool_bytes": re.compile(r"with " + _SIZE + r" allocated in private pools"),
    "allowed_bytes": re.compile(_SIZE + r" allowed;"),
}
_OTHER_PROCESS = re.compile(r"Process (\d{1,12}) has " + _SIZE + r" memory in use")
_FRAME = re.compile(r'File "([^"\n]{1,1000})", line (\d{1,9}), in (\S+)[ \t]*\n(?:[ \t]+(\S[^\n]*)\n)?')


def has_oom_marker(data: bytes) -> bool:
    return MARKERS.search(data) is not None


def is_oom_text(path: Path, head: bytes) -> bool:
    """A text file (not a document or JSON) with an out-of-memory message in its first or last bytes."""
    return may_be_log(path) and holds_oom_text(path, head)


def holds_oom_text(path: Path, head: bytes) -> bool:
    """Whatever its name: text with an out-of-memory message in its first or last bytes."""
    if b"\x00" in head[:4096]:
        return False
    if has_oom_marker(head):
        return True
    return path.stat().st_size > len(head) and has_oom_marker(read_tail(path))  # a long log: its tail


def load_oom_messages(path: str | Path) -> list[OomMessage]:
    """Every out-of-memory message in the file, in order; `InputError` if there is none."""
    messages = find_oom_messages(read_text(path))
    if not messages:
        raise InputError(path, "no CUDA, HIP or MPS out-of-memory message was found")
    return messages


def find_oom_messages(text: str) -> list[OomMessage]:
    """Every out-of-memory message in a text, in order (a wrapped message is read whole)."""
    lines = clean_lines(text)
    out: list[OomMessage] = []
    consumed = -1
    for i, line in enumerate(lines):
        if i <= consumed:
            continue
        found = _message_at(lines, i)
        if found is not None:
            message, last = found
            message.python_frames = _traceback_before(lines, i)
            out.append(message)
            consumed = last
    return out


def _window(lines: list[Line], i: int) -> tuple[str, int]:
    """The line and its continuation lines joined (a message wrapped by a terminal or tracker)."""
    parts, size, last = [lines[i].text.strip()], len(lines[i].text), i
    for j in range(i + 1, min(len(lines), i + _WINDOW_LINES)):
        nxt = lines[j].text.strip()
        if not nxt or size > _WINDOW_CHARS or _START.search(nxt) or nxt.startswith(("Traceback", "File ")):
            break
        parts.append(nxt)
        size += len(nxt)
        last = j
    return " ".join(parts), last


def _message_at(lines: list[Line], i: int) -> tuple[OomMessage, int] | None:
    text = lines[i].text
    if "out of memory" not in text and "ALLOC_FAILED" not in text and "MemoryAllocation" not in text \
            and "OutOfMemory" not in text and "OUT_OF_MEMORY" not in text and "PyTorch" not in text:
        return None
    rank = lines[i].rank
    if mps := _MPS.search(text):
        g = mps.groups()
        return OomMessage(backend="mps", text=text[mps.start():].strip(), requested_bytes=_bytes(g[6], g[7]),
                          allocated_bytes=_bytes(g[0], g[1]), other_allocations_bytes=_bytes(g[2], g[3]),
                          allowed_bytes=_bytes(g[4], g[5]), pool=g[8], rank=rank), i
    if start := _START.search(text):
        window, last = _window(lines, i)
        begin = window.find(start.group(0))
        message = OomMessage(backend=start.group(1).lower(), text=window[begin:].strip(),
                             requested_bytes=_bytes(start.group(2), start.group(3)), rank=rank)
        _read_fields(message, window[begin + len(start.group(0)):])
        return message, last
    if _HEADLESS.search(text):
        window, last = _window(lines, i)
        message = OomMessage(backend="cuda", text=window.strip(), requested_bytes=None, rank=rank)
        _read_fields(message, window)
        return (message, last) if message.allocated_bytes is not None else None
    if runtime := _RUNTIME.search(text):
        window, last = _window(lines, i)
        backend = "hip" if (runtime.group(1) == "HIP" or runtime.group(2) == "hipErrorOutOfMemory") else "cuda"
        error_type = _ERROR_TYPE.search(text)
        message = OomMessage(backend=backend, text=window[:600].strip(), requested_bytes=None, kind="runtime",
                             library=runtime.group(3), library_call=runtime.group(4), rank=rank,
                             error_type=error_type.group(1) if error_type else None)
        return message, last
    return None


def _read_fields(message: OomMessage, rest: str) -> None:
    for name, pattern in _FIELDS.items():
        setattr(message, name, _size(pattern, rest))
    message.other_processes = {int(pid): _bytes(n, u) for pid, n, u in _OTHER_PROCESS.findall(rest)}
    if message.reserved_bytes is None and None not in (message.allocated_bytes, message.reserved_unallocated_bytes):
        message.reserved_bytes = message.allocated_bytes + message.reserved_unallocated_bytes
    elif message.reserved_unallocated_bytes is None and None not in (message.allocated_bytes, message.reserved_bytes):
        message.reserved_unallocated_bytes = max(0, message.reserved_bytes - message.allocated_bytes)


def _bytes(number: str, unit: str) -> int:
    return int(round(float(number) * 1024 ** _UNITS[unit]))


def _size(pattern: re.Pattern[str], text: str) -> int | None:
    match = pattern.search(text)
    if not match:
        return None
    groups = [g for g in match.groups() if g is not None]
    return _bytes(groups[0], groups[1]) if len(groups) >= 2 else int(groups[0])


def _traceback_before(lines: list[Line], at: int) -> list[str]:
    """The frames of the Python traceback that ends at the message, innermost first, with their code."""
    start = next((j for j in range(at - 1, max(-1, at - 400), -1)
                  if lines[j].text.lstrip().startswith("Traceback (most recent call last):")), None)
    if start is None:
        return []
    block = "\n".join(line.text for line in lines[start:at]) + "\n"
    frames = _FRAME.findall(block)
    return [f"{f}:{line} in {name}" + (f": {code.strip()}" if code and not set(code.strip()) <= set("^~ ") else "")
            for f, line, name, code in reversed(frames)]
