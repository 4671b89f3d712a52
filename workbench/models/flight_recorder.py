"""Flight Recorder dumps and distributed failure logs as typed records.

A Flight Recorder dump is one rank's ring buffer of recent collectives and point-to-point
operations (a few hundred to a few thousand entries), so plain records suffice here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

P2P_OPS = frozenset({"send", "recv", "isend", "irecv", "batch_isend_irecv"})


@dataclass(frozen=True)
class Frame:
    """One Python frame: function name, file and line."""

    name: str
    file: str
    line: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "file": self.file, "line": self.line}

    def __str__(self) -> str:
        return f"{self.name} ({self.file}:{self.line})"


@dataclass
class Entry:
    """One recorded operation of a process group on one rank."""

    record_id: int
    group: str                    # process group key: its name, else its pg_id
    pg_id: int
    seq: int                      # collective_seq_id (p2p entries keep the last collective's)
    p2p_seq: int
    op: str                       # "all_reduce", "send", ... (backend prefix removed)
    backend: str                  # "nccl", "gloo", ...
    is_p2p: bool
    peer: tuple[int, int] | None  # (src, dst) group ranks of a send/recv
    input_sizes: list[Any]
    input_dtypes: list[str]
    output_sizes: list[Any]
    state: str                    # "scheduled", "started", "completed"
    retired: bool
    created_ns: int | None
    started_ns: int | None
    completed_ns: int | None
    timeout_ms: int | None
    frames: list[Frame] = field(default_factory=list)

    @property
    def signature(self) -> tuple[str, str, str]:
        """What must agree across ranks for a collective to match: op, input sizes and dtypes."""
        return self.op, repr(self.input_sizes), repr(self.input_dtypes)

    @property
    def call_site(self) -> tuple[tuple[str, str, int], ...]:
        return tuple((f.name, f.file, f.line) for f in self.frames)


@dataclass
class GroupStatus:
    """`pg_status` of a group: the last enqueued, started and completed collective sequence ids."""

    enqueued: int
    started: int
    completed: int


@dataclass
class Dump:
    """One rank's Flight Recorder dump."""

    path: str
    rank: int
    version: str
    comm_lib_version: str
    groups: dict[str, list[int]]          # pg_config: group key -> global ranks ([] when unknown)
    status: dict[int, GroupStatus]        # pg_status by pg_id
    entries: list[Entry]

    @property
    def backend(self) -> str:
        return self.entries[-1].backend if self.entries else ""

    @property
    def tracks_states(self) -> bool:
        """Whether entry states mean anything: gloo leaves every entry `scheduled`."""
        return self.backend not in ("", "gloo")


@dataclass
class RankLog:
    """What a rank's log (or a py-spy dump) says about a distributed failure."""

    path: str
    rank: int | None
    watchdog: list[dict[str, Any]] = field(default_factory=list)   # WorkNCCL timeouts
    pg_status: list[dict[str, Any]] = field(default_factory=list)  # "last enqueued / completed"
    transport_timeouts: list[dict[str, Any]] = field(default_factory=list)  # gloo send/recv timeouts
    connection_closed: bool = False
    nccl_warnings: list[str] = field(default_factory=list)
    mismatch: dict[str, Any] | None = None            # TORCH_DISTRIBUTED_DEBUG=DETAIL fingerprints
    barrier_missing: list[int] = field(default_factory=list)  # monitoredBarrier: ranks that never arrived
    error: str = ""                                   # the first error line
    traceback: list[Frame] = field(default_factory=list)      # Python traceback, outermost first
    source_lines: list[str] = field(default_factory=list)     # the traceback's source text per frame
    failed_stack: list[Frame] = field(default_factory=list)   # "Stack trace of the failed collective"
    pyspy_stack: list[Frame] = field(default_factory=list)    # py-spy: main thread, innermost first
    fr_enabled: bool = False                          # the log mentions Flight Recorder settings
    heartbeat_stuck_s: int | None = None              # "watchdog got stuck for N seconds" (0: heartbeat timed out)
    nccl_errors: list[dict[str, Any]] = field(default_factory=list)  # ncclRemoteError etc. with `Last error:`
    network_errors: list[str] = field(default_factory=list)  # socket resets, IB/OFI completion errors, gloo pairs
    gloo_enforce: list[dict[str, Any]] = field(default_factory=list)  # gloo::EnforceNotMet: expression, both sides
    child_failures: list[dict[str, Any]] = field(default_factory=list)  # torchrun's ChildFailedError rows
    blocking_wait: list[dict[str, Any]] = field(default_factory=list)  # "timed out in blocking wait"
    seqs_named: list[int] = field(default_factory=list)  # every WorkNCCL SeqNum the text names
    rendezvous: dict[str, Any] | None = None          # the TCPStore rendezvous that failed (clients, listen, store)

    @property
    def failed(self) -> bool:
        return bool(self.watchdog or self.transport_timeouts or self.connection_closed or self.mismatch
                    or self.barrier_missing or self.error or self.heartbeat_stuck_s is not None or self.nccl_errors
                    or self.network_errors or self.gloo_enforce or self.child_failures or self.blocking_wait
                    or self.rendezvous)
