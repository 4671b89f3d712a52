"""Rank logs joined with a hang diagnosis, and what logs alone tell when there are no dumps.

Logs add what the dumps lack: how long the watchdog saw a collective run, the Python traceback
of the failing call (gloo records no `send`, so a rank whose traceback ends in `send` while the
dumps show it never reached the others' collective left a send without a partner), where a rank
stuck outside any collective is (py-spy), and `TORCH_DISTRIBUTED_DEBUG=DETAIL` verdicts.
"""

from __future__ import annotations

import re
from dataclasses import fields
from typing import Any

from workbench.analyses.failure_logs import desync, failure_issues
from workbench.analyses.hang import Diagnosis, Issue, user_frame
from workbench.models.flight_recorder import P2P_OPS, Frame, RankLog

_PEER_ARG = re.compile(r"\b(?:dst|src|peer|group_dst|group_src)\s*=\s*(\d{1,9})(?!\d)")
_DIST_API = re.compile(r"/torch/distributed/")
# c10d OpType names as the torch.distributed functions (and Flight Recorder entries) call them
_OP_NAMES = {"ALLREDUCE": "all_reduce", "ALLGATHER": "all_gather", "_ALLGATHER_BASE": "_allgather_base",
             "REDUCE_SCATTER": "reduce_scatter", "_REDUCE_SCATTER_BASE": "_reduce_scatter_base",
             "ALLTOALL": "all_to_all", "ALLTOALL_BASE": "all_to_all_single", "ALLREDUCE_COALESCED": "allreduce_coalesced",
             "BROADCAST": "broadcast", "REDUCE": "reduce", "GATHER": "gather", "SCATTER": "scatter",
             "BARRIER": "barrier", "SEND": "send", "RECV": "recv", "RECVANYSOURCE": "recv", "COALESCED": "coalesced"}


def join_logs(diagnosis: Diagnosis, logs: list[RankLog]) -> None:
    """Attach each involved rank's log to the issues; turn a rank missing because it sits in a send into `p2p_unpaired`."""
    by_rank = logs_by_rank(logs)
    for issue in diagnosis.issues:
        involved = set(issue.get("ranks", {})) | set(issue.get("missing_ranks", [])) | set(issue.get("waiting_for", []))
        issue["logs"] = {r: log_summary(by_rank[r]) for r in sorted(involved) if r in by_rank}
        watchdog = [w for r in involved if r in by_rank for w in by_rank[r].watchdog if w["seq"] == issue.get("seq")]
        if watchdog:
            issue["ran_for_ms"] = max(w["ran_for_ms"] for w in watchdog)
        if issue["kind"] == "missing" and not issue.get("skipped"):
            _p2p_from_logs(issue, by_rank)


def logs_by_rank(logs: list[RankLog]) -> dict[int, RankLog]:
    """One log per rank: a rank's several files (its log, its py-spy dump) merged."""
    merged: dict[int, RankLog] = {}
    for log in logs:
        if log.rank is None:
            continue
        if log.rank not in merged:
            merged[log.rank] = RankLog(path=log.path, rank=log.rank)
        into = merged[log.rank]
        for f in fields(RankLog):
            mine, theirs = getattr(into, f.name), getattr(log, f.name)
            if f.name == "path" and theirs != mine:
                into.path = f"{mine}, {theirs}"
            elif isinstance(mine, list) and not (f.name in ("traceback", "source_lines", "failed_stack", "pyspy_stack")
                                                 and mine):
                mine.extend(theirs)
            elif isinstance(mine, bool):
                setattr(into, f.name, mine or theirs)
            elif not mine:
                setattr(into, f.name, theirs)
    return merged


def log_summary(log: RankLog) -> dict[str, Any]:
    """What one rank's log says: the error, the call it failed in, and where its main thread was."""
    api, frame, source = failing_call(log)
    return {"path": log.path, "error": log.error or None, "failed_in": api, "user_frame": str(frame) if frame else None,
            "source_line": source or None, "watchdog": log.watchdog, "pg_status": log.pg_status,
            "transport_timeouts": log.transport_timeouts, "connection_closed": log.connection_closed,
            "nccl_warnings": log.nccl_warnings, "py_spy": [str(f) for f in log.pyspy_stack],
            "py_spy_user_frame": str(f) if (f := user_frame(log.pyspy_stack)) else None}


def failing_call(log: RankLog) -> tuple[str | None, Frame | None, str]:
    """From the traceback: the torch.distributed function that failed, the user's frame and its source line."""
    frames = log.traceback
    api = next((f.name for f in reversed(frames) if _DIST_API.search(f.file) and f.name not in ("wrapper",)), None)
    inner_first = list(reversed(frames))
    frame = user_frame(inner_first)
    source = log.source_lines[frames.index(frame)] if frame in frames else ""
    return api, frame, source


def _p2p_from_logs(issue: Issue, by_rank: dict[int, RankLog]) -> None:
    for rank in issue["missing_ranks"]:
        log = by_rank.get(rank)
        api, frame, source = failing_call(log) if log else (None, None, "")
        if api not in P2P_OPS:
            continue
        peer = _PEER_ARG.search(source)
        issue.update(kind="p2p_unpaired", p2p_rank=rank, p2p_op=api, p2p_frame=str(frame) if frame else None,
                     peer=int(peer.group(1)) if peer else None, peer_position=_peer_position(issue, peer))
        return


def _peer_position(issue: Issue, peer: re.Match[str] | None) -> dict[str, Any] | None:
    ranks = issue.get("ranks", {})
    target = int(peer.group(1)) if peer else None
    return ranks.get(target) or (next(iter(ranks.values())) if ranks else None)


def diagnose_logs(logs: list[RankLog]) -> list[Issue]:
    """Issues from logs alone: DETAIL mismatches, monitoredBarrier failures, watchdog and transport timeouts."""
    unranked = [log for log in logs if log.rank is None]
    failed = [log for log in [*logs_by_rank(logs).values(), *unranked] if log.failed]
    issues = _detail_mismatch(failed) or _barrier(failed) or _watchdog(failed) or _transport(failed)
    issues += failure_issues(failed)
    for issue in issues:
        issue.setdefault("source", "log")
        involved = set(issue.get("ranks", {})) | set(issue.get("missing_ranks", []))
        issue["logs"] = {log.rank: log_summary(log) for log in failed if log.rank in involved}
    return issues


def op_name(op_type: str) -> str:
    """`ALLREDUCE` as `all_reduce`."""
    return _OP_NAMES.get(op_type.upper(), op_type.lower())


def _detail_mismatch(logs: list[RankLog]) -> list[Issue]:
    log = next((log for log in logs if log.mismatch), None)
    if log is None:
        return []
    prints = log.mismatch["ranks"]
    by_rank = {other.rank: other for other in logs}
    ranks = {r: {"op": op_name(p["op"]), "input_sizes": [p["shape"]], "input_dtypes": [p["dtype"]], "seq": p["seq"],
                 "user_frame": _user_frame_of(by_rank.get(r)), "frames": _frames_of(by_rank.get(r))}
             for r, p in sorted(prints.items())}
    first = ranks[min(ranks)]
    ops = {r["op"] for r in ranks.values()}
    what = "op" if len(ops) > 1 else "sizes" if len({str(r["input_sizes"]) for r in ranks.values()}) > 1 else "dtypes"
    return [{"kind": "mismatch", "seq": first["seq"], "op": first["op"], "input_sizes": first["input_sizes"],
             "input_dtypes": first["input_dtypes"], "mismatch": what, "ranks": ranks,
             "groups_of_ranks": [[r] for r in ranks], "differ": log.mismatch["differ"],
             "detail": "TORCH_DISTRIBUTED_DEBUG=DETAIL fingerprint check (its SequenceNumber counts from 0)"}]


def _barrier(logs: list[RankLog]) -> list[Issue]:
    reporters = [log for log in logs if log.barrier_missing]
    if not reporters:
        return []
    missing = sorted({r for log in reporters for r in log.barrier_missing})
    return [{"kind": "missing", "seq": None, "skipped": None, "missing_ranks": missing,
             "waiting_ranks": sorted(log.rank for log in reporters if log.rank is not None),
             "ranks": {log.rank: _log_position(log) for log in reporters if log.rank is not None},
             "detail": "monitoredBarrier (TORCH_DISTRIBUTED_DEBUG=DETAIL) names the ranks that never arrived"}]


def _watchdog(logs: list[RankLog]) -> list[Issue]:
    timed_out = [(log, log.watchdog[0]) for log in logs if log.watchdog]
    if not timed_out:
        return []
    if split := desync([(log, log.watchdog) for log in logs if log.watchdog]):
        return [split]
    seq = min(w["seq"] or 0 for _, w in timed_out)
    first = next(w for _, w in timed_out if (w["seq"] or 0) == seq)
    behind = [log.rank for log, w in timed_out if (w["seq"] or 0) == seq]
    behind += [log.rank for log in logs if not log.watchdog and any(p["seq"] == seq for p in log.pg_status)]
    return [{"kind": "stuck", "seq": seq, "op": op_name(first["op"]), "numel": first["numel_in"],
             "input_sizes": [[first["numel_in"]]] if first["numel_in"] is not None else [], "input_dtypes": [],
             "timeout_ms": first["timeout_ms"], "ran_for_ms": first["ran_for_ms"], "never_started": None,
             "waiting_ranks": sorted(r for r in behind if r is not None), "waiting_for": [],
             "ranks": {log.rank: {**_log_position(log), "seq": w["seq"], "op": op_name(w["op"])} for log, w in timed_out
                       if log.rank is not None}}]


def _transport(logs: list[RankLog]) -> list[Issue]:
    timed_out = [log for log in logs if log.transport_timeouts]
    if not timed_out:
        return []
    closed = sorted(log.rank for log in logs if log.connection_closed and not log.transport_timeouts and log.rank is not None)
    first = failing_call(timed_out[0])[0]
    return [{"kind": "stuck", "seq": None, "op": first, "timeout_ms": timed_out[0].transport_timeouts[0]["timeout_ms"],
             "never_started": None, "waiting_ranks": sorted(log.rank for log in timed_out if log.rank is not None),
             "waiting_for": closed, "ranks": {log.rank: _log_position(log) for log in timed_out}}]


def _log_position(log: RankLog) -> dict[str, Any]:
    api = failing_call(log)[0]
    return {"op": api, "user_frame": _user_frame_of(log), "frames": _frames_of(log)}


def _user_frame_of(log: RankLog | None) -> str | None:
    frame = failing_call(log)[1] if log else None
    return str(frame) if frame else None


def _frames_of(log: RankLog | None) -> list[dict[str, Any]]:
    """A log's frames innermost first, like Flight Recorder's: the traceback, else the failed collective's stack."""
    if log is None:
        return []
    return [f.to_json() for f in reversed(log.traceback)] or [f.to_json() for f in log.failed_stack]
