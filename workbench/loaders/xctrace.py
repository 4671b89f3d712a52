"""Instruments' Metal System Trace, exported with `xcrun xctrace export`, to `models.trace.Trace`.

An export is `<trace-query-result>` with one `<node>` per table: a `<schema>` naming its columns
(mnemonics), then `<row>`s holding one element per column, `<sentinel/>` for an empty cell. A
value is written once with `id="N"` and repeated as `<tag ref="N"/>` anywhere later in the file.

Tables read (everything else is listed in the metadata and left alone):
- `metal-gpu-intervals`: what the GPU ran, per channel (Compute, Vertex, Fragment) and encoder;
  the process whose Python (or, failing that, whose GPU time is largest) is the run's. Compute
  rows become `kernel` events named by their encoder label (less the numbered `Command Buffer N:`
  of unlabelled buffers), rows labelled as blits `gpu_memcpy`, all on device 0 (`mps`);
  nested rows (`event-depth` > 0) and non-`Active` rows are skipped so time is not counted twice.
- signpost interval tables (`os-signpost-interval`, `OSSignpostIntervals`, ...): the `PyTorchMPS`
  subsystem's intervals (`torch.mps.profiler`: one per graph, kernel or copy, from scheduling to
  completion) become `gpu_user_annotation` ranges named by their message; other subsystems'
  intervals become host `user_annotation` ranges.

Provenance: no real export of these tables is public (see sample_traces/README.md). The layout
follows the `xctrace export` output that public parsers read and the column mnemonics they use;
the tests run on hand-written files, so they prove the XML handling, not Apple's exact columns.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import numpy as np

from workbench.errors import InputError
from workbench.loaders.files import open_input
from workbench.models.trace import MISSING, EventTable, MemoryEvents, Trace

GPU_TABLE = "metal-gpu-intervals"
MPS_SUBSYSTEM = "PyTorchMPS"
ROOT_TAG = b"<trace-query-result"
_SIGNPOST_TABLE = re.compile(r"signpost", re.IGNORECASE)
_BLIT = re.compile(r"\bblit\b", re.IGNORECASE)
_BUFFER_PREFIX = re.compile(r"^Command Buffer \d+:")  # unlabelled command buffers, numbered in order
_COLUMNS = ("ts", "dur", "cat", "name", "pid", "tid", "device", "stream", "correlation")


class Value(NamedTuple):
    """One cell: its text (else its `fmt`), its `fmt`, and the texts of its direct children (a process's pid)."""

    text: str
    fmt: str
    nested: dict[str, str]


Row = dict[str, Value | None]


def is_xctrace_export(path: Path, head: bytes) -> bool:
    return path.name.endswith((".xml", ".xml.gz")) and ROOT_TAG in head[:4096]


def load_xctrace(paths: list[Path]) -> Trace:
    """One recording, exported as one or several XML files (one per table, as `--xpath` gives)."""
    tables: dict[str, list[Row]] = {}
    for path in paths:
        for name, rows in _read_tables(path):
            tables.setdefault(name, []).extend(rows)
    builder = _Events()
    try:
        gpu_processes = _gpu_intervals(builder, tables.get(GPU_TABLE, []))
        signposts = [rows for name, rows in tables.items() if _SIGNPOST_TABLE.search(name)]
        mps_signposts = sum(_signposts(builder, rows) for rows in signposts)
    except _BadInteger as exc:
        raise InputError(paths[0], f"malformed xctrace export: {exc}") from None
    metadata = {
        "deviceProperties": [{"id": 0, "name": "Apple GPU (Metal)", "type": "mps"}],
        "xctrace": {"tables": sorted(tables), "gpu_processes": gpu_processes,
                    "mps_signposts": mps_signposts, "files": [str(p) for p in paths]},
    }
    return Trace(path=str(paths[0]), events=builder.table(), memory=_no_memory(), metadata=metadata)


def _read_tables(path: Path) -> Iterator[tuple[str, list[Row]]]:
    """(schema name, rows) per `<node>`; each row maps a column mnemonic to its (resolved) element."""
    interned: dict[str, ET.Element] = {}
    name, columns, rows = "", [], []
    try:
        with open_input(path) as handle:
            for event, element in ET.iterparse(handle.stream, events=("end",)):
                if "id" in element.attrib:
                    interned[element.attrib["id"]] = element
                if element.tag == "schema":
                    name = element.get("name", "")
                    columns = [c.findtext("mnemonic") or "" for c in element.findall("col")]
                elif element.tag == "row":
                    rows.append({c: _value(cell, interned) for c, cell in zip(columns, element)})
                    element.clear()
                elif element.tag == "node":
                    yield name, rows
                    name, columns, rows = "", [], []
    except ET.ParseError as exc:
        raise InputError(path, f"malformed xctrace export XML: {exc}") from None


def _value(cell: ET.Element, interned: dict[str, ET.Element]) -> Value | None:
    if cell.tag == "sentinel":
        return None
    cell = _resolve(cell, interned)
    nested = {child.tag: _plain(_resolve(child, interned)) for child in cell}
    return Value(_plain(cell), cell.get("fmt", ""), nested)


def _resolve(element: ET.Element, interned: dict[str, ET.Element]) -> ET.Element:
    return interned.get(element.attrib["ref"], element) if "ref" in element.attrib else element


def _plain(element: ET.Element) -> str:
    return (element.text or "").strip() or element.get("fmt", "")


def _text(value: Value | None) -> str:
    return "" if value is None else value.text


class _BadInteger(ValueError):
    """A cell that should hold an integer (ns, ids) and holds something else."""


def _int(text: str, default: int = MISSING, field: str = "") -> int:
    """An integer cell, `default` when empty; `_BadInteger` when it is not a (64-bit) integer."""
    if not text:
        return default
    digits = text[1:] if text[:1] == "-" else text
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 18):
        raise _BadInteger(f"{field or 'a cell'} is {text[:40]!r}, not an integer of at most 18 digits")
    return int(text)


def _field_int(row: Row, field: str, default: int = MISSING) -> int:
    return _int(_text(row.get(field)), default, field)


def _without_process(label: str) -> str:
    """'Compute Command 0     ( python )' -> 'Compute Command 0': cut at 2+ spaces before a '(' when the label
    ends with ')'; plain string scans, linear in the label."""
    end = label.rstrip()
    if not end.endswith(")"):
        return label
    at = end.find("(")
    while at >= 0:
        run = 0
        while run < at and end[at - run - 1].isspace():
            run += 1
        if run >= 2:
            return label[:at - run]
        at = end.find("(", at + 1)
    return label


def _process(value: Value | None) -> tuple[int, str]:
    if value is None:
        return MISSING, ""
    return _int(value.nested.get("pid", ""), field="pid"), value.fmt.split(" (")[0]


class _Events:
    """Events appended one at a time, then made into numpy columns."""

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {c: [] for c in _COLUMNS}
        self.categories: list[str] = []
        self.names: dict[str, int] = {}

    def add(self, category: str, name: str, start_ns: int, duration_ns: int, *, pid: int = MISSING,
            tid: int = MISSING, device: int = MISSING, stream: int = MISSING, correlation: int = MISSING) -> None:
        if category not in self.categories:
            self.categories.append(category)
        values = (start_ns / 1000.0, duration_ns / 1000.0, self.categories.index(category),
                  self.names.setdefault(name, len(self.names)), pid, tid, device, stream, correlation)
        for column, value in zip(_COLUMNS, values):
            self.columns[column].append(value)

    def table(self) -> EventTable:
        n = len(self.columns["ts"])
        c = self.columns
        ints = {k: np.asarray(c[k], dtype=np.int64) for k in ("pid", "tid", "device", "stream", "correlation")}
        return EventTable(ts=np.asarray(c["ts"], dtype=np.float64), dur=np.asarray(c["dur"], dtype=np.float64),
                          cat=np.asarray(c["cat"], dtype=np.int16), name=np.asarray(c["name"], dtype=np.int32),
                          **ints, external_id=np.full(n, MISSING, dtype=np.int64), flops=np.full(n, np.nan),
                          bytes=np.full(n, MISSING, dtype=np.int64), shapes=np.full(n, MISSING, dtype=np.int32),
                          categories=self.categories, names=list(self.names), strings=[])


def _gpu_intervals(events: _Events, rows: list[Row]) -> list[dict[str, Any]]:
    """Add the run's GPU intervals; returns GPU time per process (the run's first)."""
    rows = [r for r in rows if _text(r.get("state")) in ("", "Active") and _field_int(r, "event-depth", 0) == 0]
    busy: dict[tuple[int, str], int] = {}
    for row in rows:
        key = _process(row.get("process"))
        busy[key] = busy.get(key, 0) + max(_field_int(row, "duration", 0), 0)
    if not busy:
        return []
    ranked = sorted(busy, key=lambda k: (not re.search("python", k[1], re.IGNORECASE), -busy[k]))
    ours = ranked[0]
    channels: dict[str, int] = {}
    for row in rows:
        if _process(row.get("process")) != ours:
            continue
        label = _BUFFER_PREFIX.sub("", _without_process(_text(row.get("event-label"))))
        channel = _text(row.get("channel-name")) or "Compute"
        category = "gpu_memcpy" if _BLIT.search(label) else "kernel"
        stream = channels.setdefault(channel, len(channels))
        events.add(category, label or "GPU command", _field_int(row, "start", 0),
                   _field_int(row, "duration", 0), pid=0, tid=stream, device=0, stream=stream,
                   correlation=_field_int(row, "cmdbuffer-id"))
    return [{"pid": pid, "process": name, "gpu_ms": busy[(pid, name)] / 1e6} for pid, name in ranked]


def _signposts(events: _Events, rows: list[Row]) -> int:
    """Add signpost intervals; returns how many were PyTorch MPS operations."""
    mps = 0
    for row in rows:
        if "duration" not in row:
            continue
        pid, _ = _process(row.get("process"))
        thread = row.get("start-thread") or row.get("thread")
        tid = _int(thread.nested.get("tid", ""), field="tid") if thread else MISSING
        message = _text(row.get("start-message") or row.get("message"))
        start, duration = _field_int(row, "start", 0), _field_int(row, "duration", 0)
        if _text(row.get("subsystem")) == MPS_SUBSYSTEM:
            mps += 1
            events.add("gpu_user_annotation", message or _text(row.get("name")), start, duration, pid=0,
                       device=0)
        else:
            events.add("user_annotation", _text(row.get("name")) or message, start, duration, pid=pid, tid=tid)
    return mps


def _no_memory() -> MemoryEvents:
    empty = np.empty(0, dtype=np.int64)
    return MemoryEvents(ts=np.empty(0), bytes=empty, total_allocated=empty, total_reserved=empty,
                        device=np.empty(0, dtype=np.int32))
