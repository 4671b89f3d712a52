"""Units: trace times (µs) to milliseconds, bytes as people read them, and long names cut to a width."""

from __future__ import annotations

US_PER_MS = 1000.0  # traces count microseconds; metrics and tables milliseconds


def binary_unit(value: float) -> tuple[str, int]:
    """The binary unit torch would print `value` bytes in, and its size in bytes: ('GiB', 2**30)."""
    value = abs(value)
    for power, unit in ((3, "GiB"), (2, "MiB"), (1, "KiB")):
        if value >= 1024 ** power:
            return unit, 1024 ** power
    return "B", 1


def format_bytes(value: float, signed: bool = False) -> str:
    """Bytes in binary units, as torch prints them: '15.73 GiB'."""
    sign = "-" if value < 0 else "+" if signed else ""
    unit, size = binary_unit(value)
    return f"{sign}{int(abs(value))} B" if size == 1 else f"{sign}{abs(value) / size:.2f} {unit}"


def shorten(text: str, width: int = 70) -> str:
    """`text` in at most `width` characters, cut from the middle: a kernel's or a path's
    distinguishing suffix (`..._nn_align1>(...)`, the file name) stays."""
    if len(text) <= width:
        return text
    tail = (width - 1) // 2
    return text[: width - 1 - tail] + "…" + text[len(text) - tail:]
