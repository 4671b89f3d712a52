"""Loader for Nsight Systems SQLite exports (`nsys export -t sqlite`) into a columnar `Trace`.

The export's tables become the events the Kineto loader builds, so every analysis and rule
reads them alike: kernels (`kernel`), copies named as Kineto names them ("Memcpy HtoD
(Pageable -> Device)", `gpu_memcpy`), memsets (`gpu_memset`), CUDA runtime and driver calls
without their `_v3020` version suffixes (`cuda_runtime`, `cuda_driver`), synchronization
records (`cuda_sync`), OS runtime calls (`os_runtime`) and NVTX ranges: those named like a
step ("step 3", "iteration 3", "ProfilerStep#3") become `ProfilerStep#N` annotations, the
others plain `user_annotation`s. GPU events take the device as pid and the stream as tid, as
in Kineto. Times become microseconds; the export's nanosecond clock is kept as is.

`trace.metadata` holds `deviceProperties` and `schemaVersion` like a Kineto trace, `nsys`
(versions, processes, row counts) and `callstacks`: event index -> frames, innermost first,
for the runtime and OS runtime calls that nsys recorded a backtrace for.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import numpy as np

from workbench.loaders.files import Progress
from workbench.loaders.nsys_schema import Schema, open_export
from workbench.models.trace import MISSING, EventTable, MemoryEvents, Trace

# CUPTI enums, named as Kineto names them (the export's ENUM tables use longer labels).
COPY_KINDS = {1: "HtoD", 2: "DtoH", 3: "HtoA", 4: "AtoH", 5: "AtoA", 6: "AtoD", 7: "DtoA", 8: "DtoD", 9: "HtoH",
              10: "PtoP", 11: "HtoD", 12: "DtoH", 13: "DtoD"}
MEMORY_KINDS = {0: "Pageable", 1: "Pinned", 2: "Device", 3: "Array", 4: "Managed", 5: "Device Static",
                6: "Managed Static"}
SYNC_KINDS = {1: "Event Sync", 2: "Stream Wait Event", 3: "Stream Sync", 4: "Context Sync"}
RUNTIME_CLASS, DRIVER_CLASS = 0, 1
NVTX_RANGE_TYPES = (59, 60, 70, 71)  # push/pop and start/end ranges, of NVTX and NVTX-text
STEP_NAME = re.compile(r"^(?:ProfilerStep#|(?:train(?:ing)?[ _-]?)?(?:step|iter(?:ation)?|batch)[ _#:-]*)(\d{1,18})$",
                       re.IGNORECASE)
VERSION_SUFFIX = re.compile(r"_v\d+$")
HEX_FRAME = re.compile(r"^0x[0-9a-f]+$", re.IGNORECASE)
MAX_FRAMES = 12
TID_BITS = 24  # a globalTid packs (vm << 56) | (pid << 24) | tid


def load_nsys(path: str | Path, progress: Progress | None = None) -> Trace:
    """Read an Nsight Systems SQLite export; `InputError` with a one-line reason if it is bad."""
    path = Path(path)
    with open_export(path) as connection:
        return _Builder(Schema(connection, path), progress or (lambda fraction: None)).build()


def _pid(global_id: np.ndarray) -> np.ndarray:
    return (global_id >> TID_BITS) & 0xFFFFFF


def _tid(global_id: np.ndarray) -> np.ndarray:
    return global_id & 0xFFFFFF


class _Builder:
    """Reads each table into numpy columns and joins them into one `EventTable`."""

    def __init__(self, schema: Schema, progress: Progress) -> None:
        self.schema = schema
        self.progress = progress
        self.strings = schema.strings()
        self.names: dict[str, int] = {}
        self.categories: list[str] = []
        self.parts: list[dict[str, np.ndarray]] = []
        self.chain_of: list[np.ndarray] = []  # per part: (source, callchain id) key or MISSING
        self.counts: dict[str, int] = {}
        self.step_names: list[str] = []  # a few NVTX texts read as steps
        self.frames: dict[str, dict[int, list[str]]] = {}  # call chain table -> id -> frames

    def name_codes(self, ids: np.ndarray, text: Callable[[int], str]) -> np.ndarray:
        """Name codes for keys `ids`, each key named once by `text(key)`."""
        unique, inverse = np.unique(ids, return_inverse=True)
        table = np.array([self.names.setdefault(text(int(k)), len(self.names)) for k in unique.tolist()],
                         dtype=np.int32)
        return table[inverse.reshape(-1)] if len(ids) else np.empty(0, dtype=np.int32)

    def string(self, key: int) -> str:
        return self.strings.get(key, f"<string {key}>")

    def add(self, category: str, start: np.ndarray, end: np.ndarray, name: np.ndarray, *,
            pid: np.ndarray, tid: np.ndarray, device: np.ndarray | None = None, stream: np.ndarray | None = None,
            correlation: np.ndarray | None = None, nbytes: np.ndarray | None = None,
            chain: np.ndarray | None = None) -> None:
        n = len(start)
        self.counts[category] = self.counts.get(category, 0) + n
        if not n:
            return
        missing = np.full(n, MISSING, dtype=np.int64)
        if category not in self.categories:
            self.categories.append(category)
        self.parts.append({
            "ts": start / 1000.0, "dur": np.maximum(end - start, 0) / 1000.0,
            "cat": np.full(n, self.categories.index(category), dtype=np.int16), "name": name,
            "pid": pid, "tid": tid,
            "device": missing if device is None else device, "stream": missing if stream is None else stream,
            "correlation": missing if correlation is None else correlation, "external_id": missing,
            "flops": np.full(n, np.nan), "bytes": missing if nbytes is None else nbytes,
            "shapes": np.full(n, MISSING, dtype=np.int32),
        })
        self.chain_of.append(missing if chain is None else chain)

    def add_gpu(self, category: str, c: dict[str, np.ndarray], name: np.ndarray) -> None:
        self.add(category, c["start"], c["end"], name, pid=c["deviceId"], tid=c["streamId"], device=c["deviceId"],
                 stream=c["streamId"], correlation=c["correlationId"], nbytes=c.get("bytes"))

    def build(self) -> Trace:
        steps: list[Callable[[], None]] = [self.kernels, self.memcpys, self.memsets, self.syncs, self.runtime,
                                           self.nvtx, self.os_runtime]
        for done, step in enumerate(steps, 1):
            step()
            self.progress(done / len(steps))
        columns = {k: np.concatenate([p[k] for p in self.parts]) if self.parts else np.empty(0)
                   for k in ("ts", "dur", "cat", "name", "pid", "tid", "device", "stream", "correlation",
                             "external_id", "flops", "bytes", "shapes")}
        if not self.parts:
            ints = ("cat", "name", "pid", "tid", "device", "stream", "correlation", "external_id", "bytes", "shapes")
            columns.update({k: np.empty(0, dtype=np.int64) for k in ints})
        events = EventTable(**columns, categories=self.categories, names=list(self.names), strings=[])
        empty = np.empty(0, dtype=np.int64)
        memory = MemoryEvents(ts=np.empty(0), bytes=empty, total_allocated=empty, total_reserved=empty,
                              device=np.empty(0, dtype=np.int32))
        return Trace(path=str(self.schema.path), events=events, memory=memory, metadata=self.metadata(),
                     thread_names=self.thread_names())

    GPU_COLUMNS = {"start": 0, "end": 0, "deviceId": MISSING, "streamId": MISSING, "correlationId": MISSING}

    def kernels(self) -> None:
        table = "CUPTI_ACTIVITY_KIND_KERNEL"
        name = "demangledName" if self.schema.has(table, "demangledName") else "shortName"
        c = self.schema.int_columns(table, {**self.GPU_COLUMNS, name: MISSING})
        if c:
            self.add_gpu("kernel", c, self.name_codes(c[name], self.string))

    def memcpys(self) -> None:
        c = self.schema.int_columns("CUPTI_ACTIVITY_KIND_MEMCPY", {
            **self.GPU_COLUMNS, "bytes": MISSING, "copyKind": 0, "srcKind": MISSING, "dstKind": MISSING})
        if not c:
            return
        key = (c["copyKind"] * 256 + (c["srcKind"] & 0xFF)) * 256 + (c["dstKind"] & 0xFF)

        def name(k: int) -> str:
            copy, src, dst = k >> 16, (k >> 8) & 0xFF, k & 0xFF
            return (f"Memcpy {COPY_KINDS.get(copy, 'Unknown')} ({MEMORY_KINDS.get(src, 'Unknown')} -> "
                    f"{MEMORY_KINDS.get(dst, 'Unknown')})")

        self.add_gpu("gpu_memcpy", c, self.name_codes(key, name))

    def memsets(self) -> None:
        c = self.schema.int_columns("CUPTI_ACTIVITY_KIND_MEMSET", {**self.GPU_COLUMNS, "bytes": MISSING,
                                                                    "memKind": MISSING})
        if c:
            self.add_gpu("gpu_memset", c, self.name_codes(c["memKind"],
                                                           lambda k: f"Memset ({MEMORY_KINDS.get(k, 'Unknown')})"))

    def syncs(self) -> None:
        c = self.schema.int_columns("CUPTI_ACTIVITY_KIND_SYNCHRONIZATION", {**self.GPU_COLUMNS, "syncType": 0})
        if c:
            self.add_gpu("cuda_sync", c, self.name_codes(c["syncType"], lambda k: SYNC_KINDS.get(k, "Unknown Sync")))

    def runtime(self) -> None:
        """Runtime and driver calls; backtrace rows (another event class) lend their call chain by correlation."""
        c = self.schema.int_columns("CUPTI_ACTIVITY_KIND_RUNTIME", {
            "start": 0, "end": 0, "eventClass": RUNTIME_CLASS, "globalTid": 0, "correlationId": MISSING,
            "nameId": MISSING, "callchainId": MISSING})
        if not c:
            return
        calls = np.isin(c["eventClass"], (RUNTIME_CLASS, DRIVER_CLASS))
        chain = c["callchainId"].copy()
        traced = ~calls & (chain != MISSING)
        if traced.any():
            lookup = dict(zip(c["correlationId"][traced].tolist(), chain[traced].tolist()))
            chain = np.array([lookup.get(k, v) for k, v in zip(c["correlationId"].tolist(), chain.tolist())],
                             dtype=np.int64)
        names = self.name_codes(c["nameId"], lambda k: VERSION_SUFFIX.sub("", self.string(k)))
        chain = np.where(chain == MISSING, MISSING, chain + self.cuda_chain_offset(chain, names))
        for event_class, category in ((RUNTIME_CLASS, "cuda_runtime"), (DRIVER_CLASS, "cuda_driver")):
            rows = c["eventClass"] == event_class
            self.add(category, c["start"][rows], c["end"][rows], names[rows], pid=_pid(c["globalTid"][rows]),
                     tid=_tid(c["globalTid"][rows]), correlation=c["correlationId"][rows],
                     chain=self.chain_keys(chain[rows], "CUDA_CALLCHAINS"))
        self.counts["other_runtime_rows"] = int((~calls).sum())

    def nvtx(self) -> None:
        table = "NVTX_EVENTS"
        if not self.schema.has(table):
            return
        types = ", ".join(map(str, NVTX_RANGE_TYPES))
        text = self.schema.column(table, "text", "NULL")
        rows = self.schema.rows(
            f'SELECT start, "end", {self.schema.column(table, "globalTid", 0)}, {text}, '
            f'{self.schema.column(table, "textId", MISSING)} FROM {table} '
            f'WHERE eventType IN ({types}) AND "end" IS NOT NULL AND "end" >= start')
        if not rows:
            return
        start, end, tid = (np.array([r[i] for r in rows], dtype=np.int64) for i in range(3))
        texts = [r[3] if r[3] is not None else self.strings.get(r[4], "") for r in rows]
        names = [f"ProfilerStep#{m.group(1)}" if (m := STEP_NAME.match(t.strip())) else t for t in texts]
        codes = np.array([self.names.setdefault(n, len(self.names)) for n in names], dtype=np.int32)
        self.add("user_annotation", start, end, codes, pid=_pid(tid), tid=_tid(tid))
        self.step_names = sorted({t for t, n in zip(texts, names) if t != n})[:3]

    def os_runtime(self) -> None:
        c = self.schema.int_columns("OSRT_API", {"start": 0, "end": 0, "globalTid": 0, "nameId": MISSING,
                                                 "callchainId": MISSING})
        if c:
            self.add("os_runtime", c["start"], c["end"], self.name_codes(c["nameId"], self.string),
                     pid=_pid(c["globalTid"]), tid=_tid(c["globalTid"]),
                     chain=self.chain_keys(c["callchainId"], "OSRT_CALLCHAINS"))

    CHAIN_TABLES = ("CUDA_CALLCHAINS", "OSRT_CALLCHAINS")

    def chain_keys(self, ids: np.ndarray, table: str) -> np.ndarray:
        """Call chain ids made unique across the chain tables (MISSING stays MISSING)."""
        offset = self.CHAIN_TABLES.index(table) << 40
        return np.where(ids == MISSING, MISSING, ids + offset)

    def chain_frames(self, table: str) -> dict[int, list[str]]:
        """Call chain id -> frames, innermost first, as "symbol (module file)"; address-only frames left out."""
        if table not in self.frames:
            frames: dict[int, list[str]] = {}
            if self.schema.has(table, "stackDepth"):
                for chain, symbol, module in self.schema.rows(
                        f'SELECT id, symbol, {self.schema.column(table, "module")} FROM {table} '
                        f"WHERE stackDepth < {MAX_FRAMES} ORDER BY id, stackDepth"):
                    name = self.string(symbol)
                    if not HEX_FRAME.match(name):
                        where = Path(self.string(module)).name if module != MISSING else ""
                        frames.setdefault(chain, []).append(f"{name} ({where})" if where else name)
            self.frames[table] = frames
        return self.frames[table]

    def cuda_chain_offset(self, ids: np.ndarray, names: np.ndarray) -> int:
        """0, or 1 where the export numbers CUDA_CALLCHAINS from 1 but the calls' ids from 0 (pre-2022).

        The right numbering is the one under which a call's chain holds a frame named like the call.
        """
        frames = self.chain_frames("CUDA_CALLCHAINS")
        name_of = list(self.names)
        pairs = [(i, name_of[n]) for i, n in zip(ids.tolist(), names.tolist()) if i != MISSING]

        def hits(offset: int) -> int:
            return sum(any(f.startswith(name + " ") for f in frames.get(i + offset, ())) for i, name in pairs)

        return 1 if pairs and hits(1) > hits(0) else 0

    def callstacks(self) -> dict[int, list[str]]:
        """Event index -> frames of its call chain, innermost first."""
        keys = np.concatenate(self.chain_of) if self.chain_of else np.empty(0, dtype=np.int64)
        wanted = np.flatnonzero(keys != MISSING)
        frames = {k + (self.CHAIN_TABLES.index(t) << 40): v for t in self.CHAIN_TABLES
                  for k, v in self.chain_frames(t).items()}
        return {int(i): frames[k] for i, k in zip(wanted.tolist(), keys[wanted].tolist()) if k in frames}

    def devices(self) -> list[dict[str, Any]]:
        """CUDA devices in Kineto's `deviceProperties` shape; non-CUDA adapters (compute capability 0) left out."""
        s = self.schema
        if s.has("TARGET_INFO_GPU", "computeMajor"):
            sql = ("SELECT id, name, totalMemory, computeMajor, computeMinor, smCount FROM TARGET_INFO_GPU "
                   "WHERE computeMajor > 0")
        elif s.has("TARGET_INFO_CUDA_GPU", "computeCapabilityMajor"):
            sql = ("SELECT deviceId, name, globalMemorySize, computeCapabilityMajor, computeCapabilityMinor, "
                   "numMultiprocessors FROM TARGET_INFO_CUDA_GPU")
        elif s.has("TARGET_INFO_GPU", "name"):
            sql = f"SELECT {s.column('TARGET_INFO_GPU', 'deviceId', 'id')}, name, NULL, NULL, NULL, NULL FROM TARGET_INFO_GPU"
        else:
            return []
        keys = ("id", "name", "totalGlobalMem", "computeMajor", "computeMinor", "numSms")
        devices = {row[0]: dict(zip(keys, row)) for row in s.rows(sql)}
        return [devices[k] for k in sorted(devices)]

    def processes(self) -> list[dict[str, Any]]:
        """The processes that made CUDA calls or NVTX ranges (system-wide exports list every process)."""
        if not self.schema.has("PROCESSES", "pid") or not self.parts:
            return []
        host = [p["pid"][p["device"] == MISSING] for p in self.parts]
        active = set(np.unique(np.concatenate(host)).tolist())
        rows = self.schema.rows("SELECT DISTINCT pid, name FROM PROCESSES ORDER BY pid")
        return [{"pid": pid, "name": name} for pid, name in rows if pid in active]

    def thread_names(self) -> dict[tuple[int, int], str]:
        if not self.schema.has("ThreadNames", "globalTid"):
            return {}
        rows = self.schema.rows("SELECT globalTid, nameId FROM ThreadNames")
        return {(int(g >> TID_BITS) & 0xFFFFFF, int(g) & 0xFFFFFF): self.string(n) for g, n in rows if g is not None}

    def metadata(self) -> dict[str, Any]:
        export = self.schema.export_metadata()
        return {
            "deviceProperties": self.devices(),
            "schemaVersion": export.get("EXPORT_SCHEMA_VERSION"),
            "nsys": {
                "product_version": export.get("EXPORT_PRODUCT_VERSION"),
                "export_schema_version": export.get("EXPORT_SCHEMA_VERSION"),
                "metadata_table": self.schema.metadata_table,
                "processes": self.processes(),
                "rows": self.counts,
                "step_ranges": self.step_names,
            },
            "callstacks": self.callstacks(),
        }
