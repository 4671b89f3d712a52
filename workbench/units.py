"""Units: trace times (µs) to milliseconds, and bytes as people read them."""

from __future__ import annotations

US_PER_MS = 1000.0  # traces count microseconds; metrics and tables milliseconds


def format_bytes(value: float, signed: bool = False) -> str:
    """Bytes in binary units, as torch prints them: '15.73 GiB'."""
    sign = "-" if value < 0 else "+" if signed else ""
    value = abs(value)
    if value < 1024:
        return f"{sign}{int(value)} B"
    for unit in ("KiB", "MiB"):
        value /= 1024
        if value < 1024:
            return f"{sign}{value:.2f} {unit}"
    return f"{sign}{value / 1024:.2f} GiB"
