"""Out-of-memory error messages (CUDA, all wordings since torch 1.x, and MPS) in logs and text files."""

from __future__ import annotations

import re
from pathlib import Path

from workbench.errors import InputError
from workbench.loaders.files import may_be_log, open_input
from workbench.models.memory import OomMessage

TEXT_SUFFIXES = (".txt", ".log", ".out", ".err", ".text")
TAIL_BYTES = 1 << 20
_MARKERS = (b"out of memory. Tried to allocate", b"MPS backend out of memory")

_SIZE = r"(\d+(?:\.\d+)?) ?(bytes|B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)\b"
_UNITS = {"bytes": 0, "B": 0, "KiB": 1, "MiB": 2, "GiB": 3, "TiB": 4, "KB": 1, "MB": 2, "GB": 3, "TB": 4}
_CUDA_START = re.compile(r"CUDA out of memory\. Tried to allocate " + _SIZE)
_MPS = re.compile(r"MPS backend out of memory \(MPS allocated: " + _SIZE + r", other allocations: " + _SIZE +
                  r", max allowed: " + _SIZE + r"\)\. Tried to allocate " + _SIZE + r"(?: on (\w+ pool))?")
# Each field of the CUDA message, in the wordings of torch >= 2.1 and of torch 1.x-2.0.
_FIELDS = {
    "device": re.compile(r"\bGPU (\d+)"),
    "total_bytes": re.compile(r"total capac\w* of " + _SIZE + r"|" + _SIZE + r" total capacity"),
    "free_bytes": re.compile(r"of which " + _SIZE + r" is free|; " + _SIZE + r" free;"),
    "process_bytes": re.compile(r"this process has " + _SIZE + r" memory in use"),
    "allocated_bytes": re.compile(_SIZE + r" is allocated by PyTorch|" + _SIZE + r" already allocated"),
    "reserved_unallocated_bytes": re.compile(_SIZE + r" is reserved by PyTorch but unallocated"),
    "reserved_bytes": re.compile(_SIZE + r" reserved in total by PyTorch"),
    "private_pool_bytes": re.compile(r"with " + _SIZE + r" allocated in private pools"),
    "allowed_bytes": re.compile(_SIZE + r" allowed;"),
}
_OTHER_PROCESS = re.compile(r"Process (\d+) has " + _SIZE + r" memory in use")
_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)[ \t]*\n(?:[ \t]+(\S[^\n]*)\n)?')


def is_oom_text(path: Path, head: bytes) -> bool:
    """A text file (not JSON) with an out-of-memory message in its first or last bytes."""
    if not may_be_log(path) or b"\x00" in head[:4096]:
        return False
    if any(m in head for m in _MARKERS):
        return True
    if not path.name.endswith(TEXT_SUFFIXES) or path.stat().st_size <= len(head):
        return False
    with open_input(path) as handle:  # a long log: its tail, where the error usually is
        if handle.compressed:
            return False
        handle.stream.seek(max(0, handle.size - TAIL_BYTES))
        tail = handle.stream.read()
    return any(m in tail for m in _MARKERS)


def load_oom_messages(path: str | Path) -> list[OomMessage]:
    """Every out-of-memory message in the file, in order; `InputError` if there is none."""
    with open_input(path) as handle:
        text = handle.stream.read().decode("utf-8", errors="replace")
    messages = [m for m in (_parse(line, text, at) for line, at in _message_lines(text)) if m]
    if not messages:
        raise InputError(path, "no CUDA or MPS out-of-memory message with its numbers was found")
    return messages


def _message_lines(text: str) -> list[tuple[str, int]]:
    out, position = [], 0
    for line in text.splitlines(keepends=True):
        if "out of memory" in line and "Tried to allocate" in line:
            out.append((line.strip(), position))
        position += len(line)
    return out


def _bytes(number: str, unit: str) -> int:
    return int(round(float(number) * 1024 ** _UNITS[unit]))


def _size(pattern: re.Pattern[str], text: str) -> int | None:
    match = pattern.search(text)
    if not match:
        return None
    groups = [g for g in match.groups() if g is not None]
    return _bytes(groups[0], groups[1]) if len(groups) >= 2 else int(groups[0])


def _parse(line: str, text: str, at: int) -> OomMessage | None:
    frames = _traceback_before(text, at)
    if mps := _MPS.search(line):
        g = mps.groups()
        return OomMessage(backend="mps", text=line, requested_bytes=_bytes(g[6], g[7]),
                          allocated_bytes=_bytes(g[0], g[1]), other_allocations_bytes=_bytes(g[2], g[3]),
                          allowed_bytes=_bytes(g[4], g[5]), pool=g[8], python_frames=frames)
    cuda = _CUDA_START.search(line)
    if not cuda:
        return None
    message = OomMessage(backend="cuda", text=line[cuda.start():], requested_bytes=_bytes(*cuda.groups()),
                         python_frames=frames)
    rest = line[cuda.end():]
    for name, pattern in _FIELDS.items():
        setattr(message, name, _size(pattern, rest))
    message.other_processes = {int(pid): _bytes(n, u) for pid, n, u in _OTHER_PROCESS.findall(rest)}
    if message.reserved_bytes is None and None not in (message.allocated_bytes, message.reserved_unallocated_bytes):
        message.reserved_bytes = message.allocated_bytes + message.reserved_unallocated_bytes
    elif message.reserved_unallocated_bytes is None and None not in (message.allocated_bytes, message.reserved_bytes):
        message.reserved_unallocated_bytes = max(0, message.reserved_bytes - message.allocated_bytes)
    return message


def _traceback_before(text: str, at: int) -> list[str]:
    """The frames of the Python traceback that ends at the message, innermost first, with their code."""
    start = text.rfind("Traceback (most recent call last):", 0, at)
    if start < 0:
        return []
    frames = _FRAME.findall(text, start, at)
    return [f"{f}:{line} in {name}" + (f": {code.strip()}" if code and not set(code.strip()) <= set("^~ ") else "")
            for f, line, name, code in reversed(frames)]
