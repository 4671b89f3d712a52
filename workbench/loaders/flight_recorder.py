"""Flight Recorder dumps (pickle or JSON, format versions 1.x and 2.x) to `models.flight_recorder.Dump`.

The pickle is what `TORCH_FR_DUMP_TEMP_FILE` / `TORCH_NCCL_DEBUG_INFO_TEMP_FILE` (prefix + rank)
and `torch._C._distributed_c10d._dump_fr_trace()` write; the JSON variant comes from
`_dump_fr_trace_json()`. Pickles go through the restricted unpickler only. Older versions
name the sequence id `seq_id`, lack dtypes, frames, `pg_config` or `pg_status`; those fields
default to empty.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from workbench.errors import InputError
from workbench.loaders import safe_pickle
from workbench.loaders.files import HEAD_BYTES, open_input, rank_in_name
from workbench.models.flight_recorder import Dump, Entry, Frame, GroupStatus

SUPPORTED_MAJOR_VERSIONS = (1, 2)
_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")
_INTS = re.compile(r"-?(?<!\d)\d{1,18}(?!\d)")  # a longer number is no rank
_DUMP_NAME = re.compile(r"(fr|nccl)_?(trace|rank|dump)|flight", re.IGNORECASE)


def is_flight_recorder_dump(path: Path, head: bytes) -> bool:
    """A pickle (any protocol) or JSON object whose first bytes hold the dump's keys (or a pickle named like a dump)."""
    if safe_pickle.looks_like_pickle(head):
        keys = b"entries" in head and (b"pg_config" in head or b"profiling_name" in head)
        return keys or bool(_DUMP_NAME.search(path.name))
    text = head.lstrip()
    return text.startswith(b"{") and b'"entries"' in text and (b'"pg_config"' in text or b'"profiling_name"' in text)


def rank_from_name(name: str) -> int | None:
    """The rank a file name carries: `..rank_3..`, else its last number (the dump prefix + rank)."""
    rank = rank_in_name(name)
    if rank is None and (match := _LAST_NUMBER.search(name)):
        rank = int(match.group(1))
    return rank


def load_dump(path: str | Path) -> Dump:
    """Read one rank's dump, or raise `InputError` saying what is wrong with it."""
    path = Path(path)
    raw = _read(path)
    if not isinstance(raw, dict) or not isinstance(raw.get("entries"), list):
        raise InputError(path, "not a Flight Recorder dump: no 'entries' list")
    version = str(raw.get("version", ""))
    major = _major(version)
    if major not in SUPPORTED_MAJOR_VERSIONS:
        raise InputError(path, f"unsupported Flight Recorder format version {version!r} (workbench reads 1.x and 2.x)")
    rank = rank_from_name(path.name)
    if rank is None:
        rank = raw.get("rank") if isinstance(raw.get("rank"), int) else None
    if rank is None:
        raise InputError(path, "cannot tell the rank of this dump: name it <prefix><rank> as torch does")
    try:
        entries = [_entry(e) for e in raw["entries"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(path, f"malformed Flight Recorder entry ({type(exc).__name__}: {exc})") from None
    return Dump(
        path=str(path), rank=rank, version=version,
        comm_lib_version=str(raw.get("comm_lib_version") or raw.get("nccl_version") or ""),
        groups={str(k): _ranks(v) for k, v in (raw.get("pg_config") or {}).items()},
        status=_status(raw.get("pg_status") or {}), entries=entries,
    )


def _read(path: Path) -> Any:
    with open_input(path) as handle:
        head = handle.stream.read(HEAD_BYTES)
    if safe_pickle.looks_like_pickle(head):
        return safe_pickle.load_file(path)
    with open_input(path) as handle:
        data = handle.read_all()
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(path, f"neither a pickle nor JSON ({exc})") from None


def _major(version: str) -> int | None:
    match = re.match(r"(\d{1,9})\.\d{1,9}$", version)
    return int(match.group(1)) if match else None


def _entry(raw: dict[str, Any]) -> Entry:
    backend, _, name = str(raw["profiling_name"]).partition(":")
    if not name:
        backend, name = "", backend
    op, _, meta = name.partition(" ")
    pg_name = raw.get("process_group") or ("", "")
    pg_id = int(raw.get("pg_id", 0))
    seq = raw.get("collective_seq_id", raw.get("seq_id", 0))
    return Entry(
        record_id=int(raw.get("record_id", -1)), group=str(pg_name[0]) or str(pg_id), pg_id=pg_id,
        seq=int(seq), p2p_seq=int(raw.get("p2p_seq_id", 0)), op=op, backend=backend,
        is_p2p=bool(raw.get("is_p2p", op in ("send", "recv"))), peer=_peer(op, meta),
        input_sizes=list(raw.get("input_sizes") or []), input_dtypes=list(raw.get("input_dtypes") or []),
        output_sizes=list(raw.get("output_sizes") or []), state=str(raw.get("state", "")),
        retired=bool(raw.get("retired", False)), created_ns=_time(raw.get("time_created_ns")),
        started_ns=_time(raw.get("time_discovered_started_ns")),
        completed_ns=_time(raw.get("time_discovered_completed_ns")),
        timeout_ms=int(raw["timeout_ms"]) if raw.get("timeout_ms") is not None else None,
        frames=[Frame(str(f.get("name", "")), str(f.get("filename", "")), int(f.get("line", 0)))
                for f in raw.get("frames") or []],
    )


def _peer(op: str, meta: str) -> tuple[int, int] | None:
    """(src, dst) of `send 1->2` or `recv 3<-0`."""
    if op == "send" and "->" in meta:
        src, dst = meta.split("->")
        return int(src), int(dst)
    if op == "recv" and "<-" in meta:
        dst, src = meta.split("<-")
        return int(src), int(dst)
    return None


def _time(value: Any) -> int | None:
    """A timestamp in ns; None and 0 (the JSON variant's "not recorded") mean unknown."""
    return int(value) if value else None


def _ranks(config: Any) -> list[int]:
    """The global ranks of a `pg_config` entry ('[0, 1]' or a list); [] when unknown."""
    ranks = config.get("ranks") if isinstance(config, dict) else None
    if isinstance(ranks, (list, tuple)):
        return [int(r) for r in ranks]
    return [int(r) for r in _INTS.findall(ranks)] if isinstance(ranks, str) else []


def _status(raw: dict[Any, Any]) -> dict[int, GroupStatus]:
    out = {}
    for key, value in raw.items():
        if isinstance(value, dict) and str(key).lstrip("-").isdigit():
            out[int(key)] = GroupStatus(*(int(value.get(f"last_{k}_collective", -1))
                                          for k in ("enqueued", "started", "completed")))
    return out
