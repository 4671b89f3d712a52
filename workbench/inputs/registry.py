"""Recognize what a path is and hand it to the analysis for that kind of artifact."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Callable

from workbench.errors import InputError
from workbench.inputs.analyzed import AnalyzedInput
from workbench.inputs.kineto import analyze_trace_files
from workbench.loaders.files import GZIP_MAGIC

SNIFF_BYTES = 1 << 16
TRACE_SUFFIXES = (".json", ".json.gz")

Progress = Callable[[float], None]


def _head(path: Path) -> bytes:
    """The first bytes of a file, decompressed if it is gzip; b'' if unreadable."""
    try:
        with open(path, "rb") as f:
            if f.read(2) != GZIP_MAGIC:
                f.seek(0)
                return f.read(SNIFF_BYTES)
            f.seek(0)
            with gzip.GzipFile(fileobj=f) as gz:
                return gz.read(SNIFF_BYTES)
    except (OSError, EOFError):
        return b""


def is_kineto_trace(path: Path) -> bool:
    """A JSON file whose head names `traceEvents`."""
    return path.name.endswith(TRACE_SUFFIXES) and b'"traceEvents"' in _head(path)


def analyze_path(path: str | Path, top: int, progress: Callable[[str], Progress]) -> list[AnalyzedInput]:
    """Analyze a file or folder; a folder of traces is one input with a rank per trace."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file or directory")
    if path.is_dir():
        traces = sorted(p for p in path.rglob("*") if p.is_file() and is_kineto_trace(p))
        if not traces:
            raise InputError(path, "folder holds no Kineto/Chrome trace (*.json, *.json.gz with traceEvents)")
        return [analyze_trace_files(path, traces, top, progress)]
    return [analyze_trace_files(path, [path], top, progress)]
