"""The arguments of a trace's communication events, gathered while its batches are loaded.

Only events whose name looks like communication (NCCL/gloo kernels and annotations,
`c10d::` ops, `record_param_comms`) are read, so the cost is one `np.isin` per batch
plus a Python pass over those few events.
"""

from __future__ import annotations

import re
from itertools import islice

import msgspec
import numpy as np

from workbench.loaders.kineto_schema import EventArgs
from workbench.models.comm_args import COMMUNICATION, CommArgs

COMM_EVENT = re.compile(rf"{COMMUNICATION.pattern}|^record_param_comms$", re.IGNORECASE)
_TYPES = msgspec.json.Decoder(list[str])


class CommArgsBuilder:
    """Accumulates `CommArgs` rows batch by batch; event indexes count the kept events."""

    def __init__(self, name_codes: dict[str, int]) -> None:
        self.name_codes = name_codes  # the loader's interner: insertion-ordered name -> code
        self.checked = 0
        self.matching: list[int] = []
        self.offset = 0
        self.rows: list[tuple[int, EventArgs]] = []

    def add(self, args: list[EventArgs], names: np.ndarray, valid: np.ndarray) -> None:
        """One batch: its args, name codes and mask of the events kept."""
        new = islice(self.name_codes.items(), self.checked, None)
        self.matching += [code for name, code in new if COMM_EVENT.search(name)]
        self.checked = len(self.name_codes)
        kept = np.flatnonzero(valid)
        hits = kept[np.isin(names[kept], self.matching)]
        position = np.searchsorted(kept, hits) + self.offset
        self.rows += [(int(p), args[i]) for p, i in zip(position.tolist(), hits.tolist())]
        self.offset += len(kept)

    def build(self) -> CommArgs:
        args = [a for _, a in self.rows]
        return CommArgs(
            index=np.array([p for p, _ in self.rows], dtype=np.int64),
            collective=[a.collective for a in args],
            in_nelems=np.array([a.in_nelems for a in args], dtype=np.int64),
            out_nelems=np.array([a.out_nelems for a in args], dtype=np.int64),
            group_size=np.array([a.group_size for a in args], dtype=np.int64),
            dtype=[a.dtype for a in args],
            process_group=[a.process_group for a in args],
            input_type=[_first_type(a.input_type) for a in args],
        )


def _first_type(raw: msgspec.Raw) -> str:
    """The first entry of an `Input type` list ('' when absent or not a list of strings)."""
    if not raw:
        return ""
    try:
        types = _TYPES.decode(raw)
    except msgspec.DecodeError:
        return ""
    return types[0] if types else ""
