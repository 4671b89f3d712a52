"""The result of analyzing one input: what goes into the report, plus the models behind it."""

from __future__ import annotations

import pickle
import tempfile
import zlib
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Sequence

import msgspec
import numpy as np

from workbench.analyses.collectives import Collectives
from workbench.analyses.quantized_gemms import QuantizedWeights
from workbench.analyses.rank_work import Work
from workbench.analyses.stragglers import KernelTimes
from workbench.loaders import safe_pickle
from workbench.models.trace import Trace

if TYPE_CHECKING:
    from workbench.rules.rank_findings import RankFindings


UNDETAILED_META_LEFT_OUT = {"devices", "world_size", "backend", "timeline_origin_us", "timeline_aligned_on"}


@dataclass(frozen=True)
class Spilled:
    """Bytes set aside in a `Spill` file."""

    file: IO[bytes]
    at: int
    size: int

    def read(self) -> bytes:
        self.file.seek(self.at)
        return self.file.read(self.size)


def pack_value(value: Any) -> bytes:
    """`value` pickled and compressed: what a job's task sends packed besides its tables (findings, work by name,
    collectives)."""
    return zlib.compress(pickle.dumps(value, pickle.HIGHEST_PROTOCOL), 1)


def read_packed(packed: bytes | Spilled) -> Any:
    """A value `pack_value` packed, read back through the restricted unpickler (plain data, arrays, workbench's
    dataclasses), though it is this job's own task's."""
    return safe_pickle.loads_packed(zlib.decompress(packed_bytes(packed)))


def packed_bytes(packed: bytes | Spilled) -> bytes:
    return packed.read() if isinstance(packed, Spilled) else packed


@dataclass
class Packed:
    """A value `pack_value` packed (a large job's work by name and collectives), read back each time it is used."""

    packed: bytes | Spilled

    def read(self) -> Any:
        return read_packed(self.packed)

    def items(self) -> Any:
        """The items of the mapping it holds: the reduce goes over a job's work by name one rank at a time."""
        return self.read().items()


class ReadBack(Sequence[Any]):
    """Values as a sequence whose `Packed` ones are read back when taken: a pass over a large job's ranks holds
    one rank's at a time."""

    def __init__(self, values: list[Any]) -> None:
        self._values = values

    def __len__(self) -> int:
        return len(self._values)

    def __getitem__(self, index: int) -> Any:  # type: ignore[override]
        value = self._values[index]
        return value.read() if isinstance(value, Packed) else value


class Spill:
    """An unnamed temporary file for bytes read back on demand (a large job's packed tables, findings, work by name
    and collectives): the coordinator's memory does not hold them. Deleted when no `Spilled` refers to it."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()

    def put(self, data: bytes) -> Spilled:
        at = self._file.seek(0, 2)
        self._file.write(data)
        return Spilled(self._file, at, len(data))

    def keep(self, result: Any) -> Any:
        """A runner's result as the coordinator keeps it: a rank's packed tables, findings, work and collectives in
        this file."""
        if isinstance(result, RankResult):
            for holder in (result, result.findings, result.work, result.collectives):
                if isinstance(getattr(holder, "packed", None), bytes):
                    holder.packed = self.put(holder.packed)
        return result


@dataclass
class RankResult:
    """One rank (one trace file) of an input: its summary, small and picklable, and its trace while kept.

    A rank of a folder, summarized where it is read (a Dask task), carries what the job's cross-rank
    analysis and rules need, its trace dropped or not: its collective calls, its data-loading time and
    the findings of the per-trace rules (`rules.registry.trace_findings`), run there.
    """

    rank: int | None
    path: str
    metrics: dict[str, Any]
    tables: dict[str, list[dict[str, Any]]]
    meta: dict[str, Any]
    trace: Trace | None = field(default=None, repr=False)
    quantized: QuantizedWeights | None = field(default=None, repr=False)  # of the trace, for its rules: dropped with it
    collectives: Collectives | Packed | None = field(default=None, repr=False)  # packed in a large job
    input_us: float = 0.0  # host time in data loading (`stragglers.input_us`)
    step_input_us: float = 0.0  # that of its median step (`stragglers.median_step_input_us`)
    host_compute_us: float = 0.0  # host time in operators (`stragglers.host_compute_us`)
    work: Work | Packed = field(default_factory=dict, repr=False)  # `rank_work`, packed in a large job
    computation_kernels: KernelTimes = field(default_factory=lambda: ((), np.zeros(0)), repr=False)  # `stragglers`
    step_starts: dict[str, float] = field(default_factory=dict, repr=False)  # `rank_alignment.step_starts`
    first_us: float = 0.0  # the trace's first event (`timeline.trace_origin_us`)
    findings: RankFindings | None = field(default=None, repr=False)  # None: the rules run on its kept trace
    warnings: list[str] = field(default_factory=list)
    packed: bytes | Spilled | None = field(default=None, repr=False)  # tables set aside by `pack` (compressed JSON)
    detailed: bool = True  # its tables go into the report (a large job's report details a few ranks)

    def pack(self) -> None:
        """Set its tables aside as compressed JSON, in their order (a large job's coordinator unpacks a few ranks')."""
        self.packed = zlib.compress(msgspec.json.encode(self.tables), 1) if self.tables else None
        self.tables = {}

    def read_tables(self) -> dict[str, list[dict[str, Any]]]:
        """Its tables, those packed read back but not kept (a diff reads every rank's kernels and operators); a rank
        not detailed has its packed timelines on its own clock (the job aligns the tables it holds only)."""
        if self.packed is None:
            return self.tables
        return {**self.tables, **msgspec.json.decode(zlib.decompress(packed_bytes(self.packed)))}

    def unpack(self) -> None:
        self.tables, self.packed = self.read_tables(), None

    def to_json(self) -> dict[str, Any]:
        if not self.detailed:  # its job's meta has the devices, world size and backend; it has no timeline to align
            return {"rank": self.rank, "path": self.path, "metrics": self.metrics, "tables": {},
                    "meta": {k: v for k, v in self.meta.items() if k not in UNDETAILED_META_LEFT_OUT}}
        return {"rank": self.rank, "path": self.path, "meta": self.meta, "metrics": self.metrics, "tables": self.tables}


@dataclass
class AnalyzedInput:
    """One path the user named: a file, or a folder analyzed as one unit (the ranks of a job)."""

    path: str
    kind: str
    metrics: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    ranks: list[RankResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "kind": self.kind, "meta": self.meta, "metrics": self.metrics}
        if self.tables:
            out["tables"] = self.tables
        if len(self.ranks) > 1:
            out["ranks"] = [r.to_json() for r in self.ranks]
        out["warnings"] = self.warnings
        return out
