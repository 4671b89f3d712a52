"""Where a hung job's ranks disagree: Flight Recorder dumps aligned per process group.

Per group, the ranks' collectives are aligned by `collective_seq_id` and the first
disagreement is the diagnosis: a rank that skipped a collective the others issued (its later
collectives match theirs one sequence id later), collectives that differ in op, sizes or
dtypes at the same id (`mismatch`), ranks that never reached an id the others reached
(`missing`), a collective all ranks issued that never completed (`stuck`, from entry states,
which gloo does not keep), and send/recv without a partner (`p2p_unpaired`).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from workbench.analyses.stacks import is_user_file
from workbench.loaders.flight_recorder import rank_from_name
from workbench.models.flight_recorder import Dump, Entry, Frame

Issue = dict[str, Any]


@dataclass
class Diagnosis:
    """The issues found, per rank and group positions, and what could not be analyzed."""

    issues: list[Issue] = field(default_factory=list)
    positions: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def user_frame(frames: list[Frame]) -> Frame | None:
    """The innermost frame outside torch and installed packages (frames innermost first)."""
    return next((f for f in frames if is_user_file(f.file)), frames[0] if frames else None)


def dump_sets(dumps: list[Dump]) -> dict[str, list[Dump]]:
    """Dumps taken at one moment: file names equal but for the rank (`fr_rank_0`, `fr_rank_0.midhang`)."""
    sets: dict[str, dict[int, Dump]] = {}
    for dump in dumps:
        name = dump.path.rsplit("/", 1)[-1]
        rank = rank_from_name(name)
        name = re.sub(r"\.(json|pkl|pickle)$", "", name)
        key = re.sub(rf"(?<!\d){rank}(?!\d)", "#", name, count=1) if rank is not None else name
        sets.setdefault(key, {}).setdefault(dump.rank, dump)
    return {key: [by_rank[r] for r in sorted(by_rank)] for key, by_rank in sorted(sets.items())}


def diagnose_dumps(dumps: list[Dump]) -> Diagnosis:
    """The first disagreement of every process group in every dump set."""
    out = Diagnosis()
    for set_name, members in dump_sets(dumps).items():
        for group in dict.fromkeys(e.group for d in members for e in d.entries):
            entries = {d.rank: [e for e in d.entries if e.group == group] for d in members}
            if _is_debug_wrapper(entries):
                out.notes.append(f"{set_name}: group {group} holds only TORCH_DISTRIBUTED_DEBUG=DETAIL "
                                 "fingerprint all_gathers; not analyzed")
                continue
            ranks = _group_ranks(group, members)
            found = _group_issues(entries, ranks, members)
            for issue in found:
                issue.update(dump_set=set_name, group=group, group_ranks=ranks, source="flight_recorder")
            out.issues += found
            out.positions += _positions(set_name, group, entries, members)
    return out


def _group_issues(entries: dict[int, list[Entry]], ranks: list[int], dumps: list[Dump]) -> list[Issue]:
    colls = {r: {e.seq: e for e in es if not e.is_p2p} for r, es in entries.items() if r in ranks or not ranks}
    issues = _p2p_issues(entries, ranks, dumps)
    present = [r for r in colls if colls[r]]
    if not present:
        return issues
    lo = max(min(colls[r]) for r in present)
    top = max(max(colls[r]) for r in present)
    last = {r: max(c) if c else None for r, c in colls.items()}
    for seq in range(lo, top + 1):
        have = {r: colls[r][seq] for r in colls if seq in colls[r]}
        if len(have) < len(colls):
            found = _missing(seq, have, colls)
            break
        if issue := _disagreement(seq, colls):
            found = [issue]
            break
    else:
        found = _stuck(top, colls, ranks, dumps)
    for issue in found:
        issue["last_seq"] = last
    return issues + found


def _disagreement(seq: int, colls: dict[int, dict[int, Entry]]) -> Issue | None:
    """Ranks whose collective `seq` differs: a skipped collective, else a mismatch (call sites alone may differ)."""
    frames = all(c[seq].frames for c in colls.values())
    keys = {r: _key(c[seq], frames) for r, c in colls.items()}
    if len(set(keys.values())) == 1:
        return None
    majority = Counter(keys.values()).most_common(1)[0][0]
    odd = [r for r in colls if keys[r] != majority]
    even = [r for r in colls if keys[r] == majority]
    for skippers, others in ((odd, even), (even, odd)):
        if _shifted(seq, skippers, others[0], colls):
            issue = _describe(seq, {r: colls[r][seq] for r in others}, kind="missing", skipped=True)
            issue.update(missing_ranks=skippers, waiting_ranks=others,
                         issued_instead={r: _entry_json(colls[r][seq]) for r in skippers})
            return issue
    if len({colls[r][seq].signature for r in colls}) == 1:
        return None
    a, b = colls[even[0]][seq], colls[odd[0]][seq]
    what = "op" if a.op != b.op else "sizes" if a.input_sizes != b.input_sizes else "dtypes"
    issue = _describe(seq, {r: colls[r][seq] for r in even + odd}, kind="mismatch")
    issue.update(mismatch=what, groups_of_ranks=[even, odd])
    return issue


def _shifted(seq: int, skippers: list[int], other: int, colls: dict[int, dict[int, Entry]]) -> bool:
    """Whether `skippers`' collectives from `seq` on are `other`'s from `seq + 1` on (at least one)."""
    compared = 0
    for rank in skippers:
        k = seq
        while k in colls[rank] and k + 1 in colls[other]:
            a, b = colls[rank][k], colls[other][k + 1]
            if _key(a, bool(a.frames and b.frames)) != _key(b, bool(a.frames and b.frames)):
                return False
            compared, k = compared + 1, k + 1
    return compared > 0


def _missing(seq: int, have: dict[int, Entry], colls: dict[int, dict[int, Entry]]) -> list[Issue]:
    """Ranks that never issued collective `seq` while the others did: they are stuck before it."""
    lacking = sorted(set(colls) - set(have))
    issue = _describe(seq, have, kind="missing", skipped=False)
    issue.update(missing_ranks=lacking, waiting_ranks=sorted(have),
                 last_issued={r: _entry_json(colls[r][max(colls[r])]) if colls[r] else None for r in lacking})
    stuck = _describe(seq, have, kind="stuck")
    stuck.update(waiting_ranks=sorted(have), waiting_for=lacking, symptom=True)
    return [issue, stuck]


def _stuck(top: int, colls: dict[int, dict[int, Entry]], ranks: list[int], dumps: list[Dump]) -> list[Issue]:
    """A collective every dumped rank issued but that did not complete (from entry states or pg_status)."""
    by_rank = {d.rank: d for d in dumps}
    stuck: dict[int, Entry] = {}
    for rank, coll in colls.items():
        dump = by_rank[rank]
        if dump.tracks_states:
            pending = [e for s, e in sorted(coll.items()) if e.state != "completed"]
            if pending:
                stuck[rank] = pending[0]
        elif len(colls) == 1 and not coll[top].retired and _status_behind(dump, coll[top]):
            stuck[rank] = coll[top]
    if not stuck:
        return []
    seq = min(e.seq for e in stuck.values())
    issue = _describe(seq, {r: colls[r][seq] for r in stuck if seq in colls[r]}, kind="stuck")
    issue.update(waiting_ranks=sorted(stuck), waiting_for=sorted(set(ranks) - set(by_rank)),
                 states_tracked=all(by_rank[r].tracks_states for r in stuck),
                 start_tracked=any(s.started >= 0 for r in stuck for s in by_rank[r].status.values()))
    return [issue]


def _status_behind(dump: Dump, entry: Entry) -> bool:
    status = dump.status.get(entry.pg_id)
    return status is not None and status.completed < status.enqueued


def _p2p_issues(entries: dict[int, list[Entry]], ranks: list[int], dumps: list[Dump]) -> list[Issue]:
    """Recorded sends/recvs still pending on one side whose peer has no pending counterpart."""
    by_rank = {d.rank: d for d in dumps}
    pending = {r: [e for e in es if e.is_p2p and e.peer and e.state != "completed"]
               for r, es in entries.items() if by_rank[r].tracks_states}
    issues = []
    for rank, ops in pending.items():
        for op in ops:
            peer_local = op.peer[1] if op.op == "send" else op.peer[0]
            peer = ranks[peer_local] if peer_local < len(ranks) else peer_local
            if peer not in entries or any(o.peer == op.peer and o.op != op.op for o in pending.get(peer, [])):
                continue
            issue = _describe(op.seq, {rank: op}, kind="p2p_unpaired")
            issue.update(p2p_rank=rank, peer=peer, peer_position=_entry_json(entries[peer][-1]) if entries[peer] else None)
            issues.append(issue)
            break
    return issues


def _describe(seq: int, entries: dict[int, Entry], kind: str, **extra: Any) -> Issue:
    """An issue about collective `seq` with each rank's entry (op, sizes, state, age, frames)."""
    first = next(iter(entries.values())) if entries else None
    issue: Issue = {"kind": kind, "seq": seq, **extra}
    if first is not None:
        issue.update(op=first.op, input_sizes=first.input_sizes, input_dtypes=first.input_dtypes,
                     numel=_numel(first.input_sizes), state=first.state, timeout_ms=first.timeout_ms,
                     never_started=None if first.backend == "gloo" else first.state == "scheduled",
                     created_utc=_utc(first.created_ns))
    issue["ranks"] = {r: _entry_json(e) for r, e in entries.items()}
    return issue


def _entry_json(entry: Entry) -> dict[str, Any]:
    frame = user_frame(entry.frames)
    return {"seq": entry.seq, "p2p_seq": entry.p2p_seq, "op": entry.op, "input_sizes": entry.input_sizes,
            "input_dtypes": entry.input_dtypes, "state": entry.state, "retired": entry.retired,
            "created_utc": _utc(entry.created_ns), "user_frame": str(frame) if frame else None,
            "frames": [f.to_json() for f in entry.frames]}


def _positions(set_name: str, group: str, entries: dict[int, list[Entry]], dumps: list[Dump]) -> list[dict[str, Any]]:
    """Where each rank stands in a group: its last collective and pg_status counters."""
    rows = []
    for dump in dumps:
        colls = [e for e in entries.get(dump.rank, []) if not e.is_p2p]
        last = colls[-1] if colls else None
        status = dump.status.get(last.pg_id) if last else None
        frame = user_frame(last.frames) if last else None
        rows.append({"dump_set": set_name, "group": group, "rank": dump.rank, "entries": len(entries.get(dump.rank, [])),
                     "last_seq": max((e.seq for e in colls), default=None), "last_op": last.op if last else None,
                     "last_state": last.state if last else None, "last_enqueued": status.enqueued if status else None,
                     "last_completed": status.completed if status else None,
                     "user_frame": str(frame) if frame else None})
    return rows


def _group_ranks(group: str, dumps: list[Dump]) -> list[int]:
    """A group's global ranks from `pg_config`; gloo keys its only config ''; else the dumped ranks."""
    for dump in dumps:
        if dump.groups.get(group):
            return dump.groups[group]
    for dump in dumps:
        if list(dump.groups) == [""] and dump.groups[""] and group in ("0", "default_pg"):
            return dump.groups[""]
    return sorted(d.rank for d in dumps)


def _is_debug_wrapper(entries: dict[int, list[Entry]]) -> bool:
    """TORCH_DISTRIBUTED_DEBUG=DETAIL's group: Long all_gathers recorded under the user's collective."""
    flat = [e for es in entries.values() for e in es]
    return bool(flat) and all(e.op == "all_gather" and e.input_dtypes == ["Long"] and e.frames
                              and e.frames[0].name != "all_gather" for e in flat)


def _key(entry: Entry, frames: bool) -> tuple[Any, ...]:
    """What ranks compare: op, sizes, dtypes, and the call site when every side recorded frames."""
    return entry.signature + ((entry.call_site,) if frames else ())


def _numel(sizes: list[Any]) -> int:
    total = 0
    for shape in sizes:
        n = 1
        for dim in shape if isinstance(shape, list) else [shape]:
            n *= int(dim)
        total += n
    return total


def _utc(ns: int | None) -> str | None:
    return datetime.fromtimestamp(ns / 1e9, timezone.utc).isoformat(timespec="milliseconds") if ns else None
