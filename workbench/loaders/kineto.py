"""Loader for Kineto / Chrome-trace JSON (`.json`, `.json.gz`) into a columnar `Trace`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from workbench.errors import InputError
from workbench.loaders.files import Progress, open_input
from workbench.loaders.json_stream import EventArrayReader, InvalidJson, MalformedStream, invalid_json
from workbench.loaders.kineto_comm_args import CommArgsBuilder
from workbench.loaders.kineto_schema import NO_ARGS, NOT_RECORDED, Event, decode_batch
from workbench.models.trace import EventTable, MemoryEvents, Trace

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
MAX_US = 1e17  # |ts| and dur beyond this (3,000 years in µs) are no real time
MAX_DEPTH = 1000  # about where a nested value exhausts the decoder's recursion
_TOP_LEVEL = msgspec.json.Decoder(dict[str, msgspec.Raw] | list[msgspec.Raw])

# Categories of the 2021-era schema (PyTorch 1.8-1.10) and their current names.
CATEGORY_ALIASES = {
    "Kernel": "kernel",
    "Memcpy": "gpu_memcpy",
    "Memset": "gpu_memset",
    "Runtime": "cuda_runtime",
    "Driver": "cuda_driver",
    "Operator": "cpu_op",
    "Python": "python_function",
}


def load_kineto(path: str | Path, progress: Progress | None = None) -> Trace:
    """Read a Kineto/Chrome trace; raise `InputError` with a one-line reason if it is bad."""
    columns = _Columns()
    with open_input(path) as handle:
        report = (lambda: progress(handle.fraction_read())) if progress else None
        reader = EventArrayReader(handle.stream, on_progress=report)
        try:
            for events, skipped, problem in reader.batches(_decode_events):
                columns.add(events, skipped, problem)
        except InvalidJson as exc:
            raise InputError(path, str(exc)) from None
        except MalformedStream as exc:
            raise InputError(path, f"not a Kineto/Chrome trace: {exc}") from None
        except _TooDeep:
            raise InputError(path, f"an event nested deeper than {MAX_DEPTH} levels: not a trace") from None
        remainder = reader.remainder
        if remainder[:1] == b"[" and not remainder.rstrip().endswith(b"]"):
            remainder = remainder.rstrip().rstrip(b",") + b"]"  # Chrome's array form may omit the closing ']'
        document = _decode_document(path, remainder)
    columns.duplicates = reader.duplicates
    metadata: dict[str, Any] = {}
    if isinstance(document, list):
        last_events = remainder
    else:
        events = document.pop("traceEvents", None)
        if events is None:
            raise InputError(path, "no 'traceEvents' key: not a Kineto/Chrome trace")
        last_events = bytes(events)
        if last_events[:1] != b"[":
            raise InputError(path, f"'traceEvents' is a {type(_decode_value(path, 'traceEvents', events)).__name__}, "
                                   "not a list")
        metadata = {key: _decode_value(path, key, raw) for key, raw in document.items()}
    columns.add(*_decode_events(last_events))
    return columns.build(str(path), metadata)


class _TooDeep(ValueError):
    pass


def _decode_events(data: bytes) -> tuple[list[Event], int, str]:
    try:
        return decode_batch(data)
    except RecursionError:
        raise _TooDeep() from None


def _decode_document(path: str | Path, data: bytes) -> dict[str, msgspec.Raw] | list[msgspec.Raw]:
    """The top level of what the stream left: its values undecoded (the last events are decoded as events, so
    that they are skipped as malformed as in any batch; the other values one by one, naming the one at fault)."""
    try:
        return _TOP_LEVEL.decode(data)
    except RecursionError:
        raise InputError(path, f"JSON nested deeper than {MAX_DEPTH} levels: not a trace") from None
    except msgspec.ValidationError:
        raise InputError(path, "JSON is not an object with 'traceEvents': not a Kineto/Chrome trace") from None
    except msgspec.DecodeError as exc:
        if "truncated" in str(exc):
            raise InputError(path, "truncated JSON: the file ends in the middle of the trace") from None
        raise InputError(path, str(invalid_json(exc, data))) from None


def _decode_value(path: str | Path, key: str, raw: msgspec.Raw) -> Any:
    try:
        return msgspec.json.decode(raw)
    except RecursionError:
        raise InputError(path, f"JSON nested deeper than {MAX_DEPTH} levels: not a trace") from None
    except msgspec.DecodeError as exc:
        raise InputError(path, str(invalid_json(exc, bytes(raw), key))) from None


def _as_int(value: int | str) -> int:
    """An id as an integer: decimal and hex strings are converted, labels become NOT_RECORDED."""
    if type(value) is int:
        return value if INT64_MIN <= value <= INT64_MAX else NOT_RECORDED
    if not isinstance(value, str) or len(value) > 20:
        return NOT_RECORDED
    try:
        number = int(value, 16) if value[:2].lower() == "0x" else int(value)
    except ValueError:
        return NOT_RECORDED
    return number if INT64_MIN <= number <= INT64_MAX else NOT_RECORDED


def _int_column(values: list[int | str]) -> np.ndarray:
    """Ids as an int64 column; the per-value conversion runs only when some are strings or out of its range
    (those become NOT_RECORDED)."""
    try:
        return np.array(values, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        return np.array([_as_int(v) for v in values], dtype=np.int64)


class _Interner:
    """Maps strings to dense integer codes."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}

    def encode(self, values: list[str]) -> np.ndarray:
        codes = self.codes
        # setdefault inserts a missing value with the next code, len(codes), in one C call
        return np.array([codes.setdefault(v, len(codes)) for v in values], dtype=np.int32)

    @property
    def strings(self) -> list[str]:
        return list(self.codes)


class _Columns:
    """Accumulates batches of decoded events as numpy arrays."""

    def __init__(self) -> None:
        self.parts: dict[str, list[np.ndarray]] = {}
        self.memory: dict[str, list[np.ndarray]] = {}
        self.categories = _Interner()
        self.names = _Interner()
        self.shapes = _Interner()
        self.comm = CommArgsBuilder(self.names.codes)
        self.thread_names: dict[tuple[int, int], str] = {}
        self.skipped = 0
        self.skipped_example = ""  # what was wrong with one skipped event
        self.other = 0
        self.duplicates = 0  # further top-level traceEvents arrays, not read

    def add(self, events: list[Event], skipped: int, problem: str) -> None:
        self.skipped += skipped
        self.skipped_example = self.skipped_example or problem
        complete = [e for e in events if e.ph == "X"]
        memory = [e for e in events if e.ph == "i" and e.name == "[memory]"]
        for e in events:
            if e.ph == "M" and e.name == "thread_name" and e.args is not None:
                self.thread_names[(_as_int(e.pid), _as_int(e.tid))] = e.args.label
        self.other += len(events) - len(complete) - len(memory)
        if complete:
            self._add_complete(complete)
        if memory:
            self._add_memory(memory)

    def _add_complete(self, events: list[Event]) -> None:
        args = [e.args or NO_ARGS for e in events]
        ts = np.array([e.ts for e in events], dtype=np.float64)
        dur = np.array([e.dur for e in events], dtype=np.float64)
        # malformed: a missing, infinite or negative time, or one beyond any real trace (years)
        valid = (np.abs(ts) < MAX_US) & (dur >= 0) & (dur < MAX_US)
        if not valid.all():
            self.skipped += int(len(events) - valid.sum())
            bad = int(np.argmin(valid))
            field, value = ("ts", ts[bad]) if not abs(ts[bad]) < MAX_US else ("dur", dur[bad])
            self.skipped_example = self.skipped_example or f"'{field}' is {value:g}"
        external = [a.external_id if a.external_id != NOT_RECORDED else a.external_id_v1 for a in args]
        columns = {
            "ts": ts,
            "dur": dur,
            "cat": self.categories.encode([e.cat for e in events]).astype(np.int16),
            "name": self.names.encode([e.name for e in events]),
            "pid": _int_column([e.pid for e in events]),
            "tid": _int_column([e.tid for e in events]),
            "device": _int_column([a.device for a in args]),
            "stream": _int_column([a.stream for a in args]),
            "correlation": _int_column([a.correlation for a in args]),
            "external_id": _int_column(external),
            "flops": np.array([a.flops for a in args], dtype=np.float64),
            "bytes": _int_column([a.bytes for a in args]),
            "shapes": self._raw_codes([a.input_dims for a in args]),
            "grid": self._raw_codes([a.grid for a in args]),
        }
        for key, column in columns.items():
            self.parts.setdefault(key, []).append(column if valid.all() else column[valid])
        self.comm.add(args, columns["name"], valid)

    def _raw_codes(self, values: list[msgspec.Raw]) -> np.ndarray:
        """Codes into the strings of raw JSON values as written (input shapes, launch grids); NOT_RECORDED where absent."""
        # no copy of each value's bytes; most events have none (kernels no shapes, operators no grid): no call for them
        codes = self.shapes.encode([str(v, "utf-8", "replace") if v else "" for v in values])
        absent = self.shapes.codes.get("")  # an absent value is empty (a JSON value never is)
        if absent is not None:
            codes[codes == absent] = NOT_RECORDED
        return codes

    def _add_memory(self, events: list[Event]) -> None:
        args = [e.args or NO_ARGS for e in events]
        columns = {
            "ts": np.array([e.ts for e in events], dtype=np.float64),
            "bytes": _int_column([a.alloc_bytes for a in args]),
            "total_allocated": _int_column([a.total_allocated for a in args]),
            "total_reserved": _int_column([a.total_reserved for a in args]),
            "device": _int_column([a.device_id for a in args]).astype(np.int32),
        }
        for key, column in columns.items():
            self.memory.setdefault(key, []).append(column)

    def build(self, path: str, metadata: dict[str, Any]) -> Trace:
        def joined(parts: dict[str, list[np.ndarray]], key: str, dtype: type) -> np.ndarray:
            chunks = parts.get(key)
            return np.concatenate(chunks) if chunks else np.empty(0, dtype=dtype)

        ints = {"cat": np.int16, "name": np.int32, "pid": np.int64, "tid": np.int64,
                "device": np.int64, "stream": np.int64, "correlation": np.int64,
                "external_id": np.int64, "bytes": np.int64, "shapes": np.int32, "grid": np.int32}
        fields = {k: joined(self.parts, k, ints.get(k, np.float64))
                  for k in ("ts", "dur", *ints, "flops")}
        events = EventTable(
            **fields,
            categories=[CATEGORY_ALIASES.get(c, c) for c in self.categories.strings],
            names=self.names.strings,
            strings=self.shapes.strings,
        )
        memory = MemoryEvents(
            ts=joined(self.memory, "ts", np.float64),
            bytes=joined(self.memory, "bytes", np.int64),
            total_allocated=joined(self.memory, "total_allocated", np.int64),
            total_reserved=joined(self.memory, "total_reserved", np.int64),
            device=joined(self.memory, "device", np.int32),
        )
        return Trace(
            path=path,
            events=events,
            memory=memory,
            metadata=metadata,
            thread_names=self.thread_names,
            skipped_events=self.skipped,
            skipped_example=self.skipped_example,
            ignored_event_arrays=self.duplicates,
            other_events=self.other,
            comm_args=self.comm.build(),
        )
