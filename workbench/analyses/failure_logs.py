"""Distributed failures that logs show without a hang to align: NCCL errors, lost connections, gloo
crashes, a stuck watchdog, ranks at different sequence numbers, and torchrun's failed workers.

Each function turns the ranks' logs into issues (`kind`: `gloo_crash`, `desync`, `network`,
`backend_error`, `child_failed`, `watchdog_stuck`, `blocking_wait`, `rendezvous`), with the ranks that printed them.
A lost connection beside a crash or a failed worker is that failure's symptom, not a cause of its own.
"""

from __future__ import annotations

from typing import Any

from workbench.analyses.hang import user_frame
from workbench.models.flight_recorder import Dump, RankLog

Issue = dict[str, Any]
NETWORK_NCCL_ERRORS = {"ncclRemoteError"}
SIGNALS = {-9: "SIGKILL", -6: "SIGABRT", -15: "SIGTERM", -11: "SIGSEGV", -7: "SIGBUS"}


def failure_issues(logs: list[RankLog]) -> list[Issue]:
    """Every failure of this module the logs show, each once, with the ranks that printed it."""
    issues = _gloo_crash(logs) + _child_failed(logs)
    network = _network(logs)
    for issue in network:
        issue["symptom"] = bool(issues)
    issues += network + _backend_error(logs) + _watchdog_stuck(logs) + _blocking_wait(logs) + _rendezvous(logs)
    return issues


def desync(timed_out: list[tuple[RankLog, list[dict[str, Any]]]]) -> Issue | None:
    """Ranks whose watchdogs timed out at different sequence numbers: who is behind, by how many."""
    lowest = {log.rank: min(w["seq"] for w in items if w["seq"] is not None)
              for log, items in timed_out if log.rank is not None and any(w["seq"] is not None for w in items)}
    if len(set(lowest.values())) < 2:
        return None
    behind_seq, ahead_seq = min(lowest.values()), max(lowest.values())
    behind = sorted(r for r, s in lowest.items() if s == behind_seq)
    ahead = sorted(r for r, s in lowest.items() if s == ahead_seq)
    first = next(w for log, items in timed_out for w in items if w["seq"] == behind_seq)
    return {"kind": "desync", "seq": behind_seq, "op": first["op"], "behind_ranks": behind, "ahead_ranks": ahead,
            "behind_by": ahead_seq - behind_seq, "seq_by_rank": dict(sorted(lowest.items())),
            "timeout_ms": first.get("timeout_ms"), "ran_for_ms": first.get("ran_for_ms"),
            "ranks": {log.rank: {"seqs": sorted({w["seq"] for w in items if w["seq"] is not None}),
                                 "op": items[0]["op"]} for log, items in timed_out if log.rank is not None}}


def join_gloo_crash(issues: list[Issue], dumps: list[Dump], logs: list[RankLog]) -> list[Issue]:
    """A rank that aborted in gloo writes no dump; its peers do. The crash joins their last collective:
    the dump's mismatch gains the crashed rank and its byte counts, or, when the dumps alone show no
    mismatch (one side dumped), the crash becomes an issue with the survivors' collective, sizes and dtypes."""
    crashes = _gloo_crash(logs)
    if not crashes or not dumps:
        return issues
    crash = crashes[0]
    survivors = {d.rank: d for d in dumps if d.rank != crash["crashed_rank"] and d.entries}
    last = {rank: max((e for e in d.entries if not e.is_p2p), key=lambda e: e.seq, default=None)
            for rank, d in survivors.items()}
    last = {rank: e for rank, e in last.items() if e is not None}
    joined = {k: crash[k] for k in ("crashed_rank", "enforce", "sent_bytes", "expected_bytes", "size_mismatch")}
    joined["crashed_rank_dumped"] = crash["crashed_rank"] in {d.rank for d in dumps}
    mismatch = next((i for i in issues if i["kind"] == "mismatch"), None)
    if mismatch is not None:
        mismatch.update(joined)
        return issues
    if not last:
        return issues
    seq = max(e.seq for e in last.values())
    entry = next(e for e in last.values() if e.seq == seq)
    crash.update(seq=seq, op=entry.op, input_sizes=entry.input_sizes, input_dtypes=entry.input_dtypes,
                 source="flight_recorder+log", crashed_rank_dumped=joined["crashed_rank_dumped"])
    for rank, e in last.items():
        crash["ranks"][rank] = {**crash["ranks"].get(rank, {}), "seq": e.seq, "op": e.op, "input_sizes": e.input_sizes,
                                "input_dtypes": e.input_dtypes,
                                "user_frame": str(f) if (f := user_frame(e.frames)) else None}
    return [crash, *issues]


def _ranks(logs: list[RankLog]) -> list[int]:
    return sorted({log.rank for log in logs if log.rank is not None})


def _gloo_crash(logs: list[RankLog]) -> list[Issue]:
    """gloo::EnforceNotMet on a size check: the rank that aborted, and the byte counts of both sides."""
    crashed = [(log, e) for log in logs for e in log.gloo_enforce if "IBV_WC_SUCCESS" not in e["expression"]]
    if not crashed:
        return []
    log, enforce = crashed[0]
    sizes = "length" in enforce["expression"] or "nbytes" in enforce["expression"] or "size" in enforce["expression"]
    survivors = sorted({other.rank for other in logs if other.rank is not None and other.rank != log.rank
                        and (other.network_errors or other.connection_closed)})
    return [{"kind": "gloo_crash", "seq": None, "crashed_rank": log.rank, "enforce": enforce,
             "size_mismatch": sizes, "sent_bytes": enforce["left"] if sizes else None,
             "expected_bytes": enforce["right"] if sizes else None, "peers_lost_connection": survivors,
             "ranks": {r.rank: {"error": (r.network_errors or [None])[0]} for r in logs if r.rank is not None}}]


def _network(logs: list[RankLog]) -> list[Issue]:
    failed = [log for log in logs if log.network_errors or any(e["type"] in NETWORK_NCCL_ERRORS for e in log.nccl_errors)
              or (log.connection_closed and not log.transport_timeouts)]
    if not failed:
        return []
    errors = [e for log in failed for e in log.nccl_errors]
    lines = list(dict.fromkeys(x for log in failed for x in log.network_errors))
    last = [e["last_error"] for e in errors if e.get("last_error")]
    return [{"kind": "network", "seq": None, "reporting_ranks": _ranks(failed),
             "nccl_errors": errors, "network_errors": lines[:10], "last_error": (last or lines or [None])[0],
             "nccl_version": next((e["nccl_version"] for e in errors if e.get("nccl_version")), None),
             "gloo": any("gloo" in x or "pair.cc" in x for log in failed for x in [log.error]) or None,
             "ranks": {log.rank: {"error": (log.network_errors or [log.error or None])[0]} for log in failed
                       if log.rank is not None}}]


def _backend_error(logs: list[RankLog]) -> list[Issue]:
    failed = [log for log in logs if any(e["type"] not in NETWORK_NCCL_ERRORS for e in log.nccl_errors)
              and not log.network_errors]
    if not failed:
        return []
    errors = [e for log in failed for e in log.nccl_errors if e["type"] not in NETWORK_NCCL_ERRORS]
    seqs = sorted({s for log in failed for s in log.seqs_named})
    return [{"kind": "backend_error", "seq": seqs[0] if seqs else None, "reporting_ranks": _ranks(failed),
             "nccl_error": errors[0]["type"], "what": errors[0]["what"], "last_error": errors[0]["last_error"],
             "nccl_version": errors[0]["nccl_version"], "nccl_errors": errors,
             "ranks": {log.rank: {"error": log.error or None} for log in failed if log.rank is not None}}]


def _child_failed(logs: list[RankLog]) -> list[Issue]:
    rows = [row for log in logs for row in log.child_failures]
    if not rows:
        return []
    for row in rows:
        row["signal"] = row.get("signal") or SIGNALS.get(row.get("exitcode", 0))
    first = rows[0]
    return [{"kind": "child_failed", "seq": None, "failures": rows, "failed_rank": first.get("rank"),
             "failed_local_rank": first.get("local_rank"), "exitcode": first.get("exitcode"),
             "signal": first.get("signal"), "ranks": {}}]


def _watchdog_stuck(logs: list[RankLog]) -> list[Issue]:
    stuck = [log for log in logs if log.heartbeat_stuck_s is not None]
    if not stuck:
        return []
    seconds = max(log.heartbeat_stuck_s for log in stuck)
    return [{"kind": "watchdog_stuck", "seq": None, "stuck_s": seconds or None, "reporting_ranks": _ranks(stuck),
             "ranks": {log.rank: {"stuck_s": log.heartbeat_stuck_s or None} for log in stuck if log.rank is not None}}]


def _blocking_wait(logs: list[RankLog]) -> list[Issue]:
    waits = [(log, w) for log in logs for w in log.blocking_wait]
    if not waits:
        return []
    log, first = waits[0]
    return [{"kind": "blocking_wait", "seq": first["seq"], "op": first["op"], "reporting_ranks": _ranks([log]),
             "ranks": {log.rank: first} if log.rank is not None else {}}]


def _rendezvous(logs: list[RankLog]) -> list[Issue]:
    failed = [log for log in logs if log.rendezvous]
    if not failed:
        return []
    return [{"kind": "rendezvous", "seq": None, **failed[0].rendezvous, "reporting_ranks": _ranks(failed),
             "ranks": {log.rank: log.rendezvous for log in failed if log.rank is not None}}]
