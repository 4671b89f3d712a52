"""Hangs of distributed jobs: the first collective at which ranks disagree or stop, with its fix.

Each rule reads the issues that `inputs.distributed` diagnosed (`tables["hang_issues"]`). A hang
costs the whole run, so the root cause's gain is 100 % of it; symptoms (the ranks left waiting)
are warnings.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any, Iterator

from workbench.inputs.analyzed import AnalyzedInput
from workbench.rules import distributed_fixes as fixes
from workbench.rules.finding import Finding, Fix, failure_gain
from workbench.rules.registry import rule

KINDS = ("flight_recorder",)
CATEGORY = "communication"
SHORT_TIMEOUT_MS = 5 * 60 * 1000
_GAIN = failure_gain("a hang ends the run: fixing its root cause saves all of it", "the hang that ended the run")
_SYMPTOM_GAIN = failure_gain("the same hang as its root cause; shown for the ranks left waiting",
                             "the hang that ended the run (with its root cause)")


def _issues(input_: AnalyzedInput, kind: str) -> list[dict[str, Any]]:
    return [i for i in input_.tables.get("hang_issues", []) if i["kind"] == kind]


def _ranks(ranks: list[int]) -> str:
    return ("rank " if len(ranks) == 1 else "ranks ") + ", ".join(map(str, ranks))


def _upper(text: str) -> str:
    return text[:1].upper() + text[1:]


def _where(frame: str | None) -> str:
    """'body (/x/train.py:42)' as 'train.py:42'."""
    if not frame or "(" not in frame:
        return frame or "?"
    location = frame.rsplit("(", 1)[1].rstrip(")")
    path, _, line = location.rpartition(":")
    return f"{PurePath(path).name}:{line}"


def _collective(issue: dict[str, Any]) -> str:
    """'collective 11 (all_reduce of 1048576 Float elements)'."""
    seq = f"collective {issue['seq']}" if issue.get("seq") is not None else "a collective"
    parts = [issue.get("op") or "?"]
    if issue.get("numel") is not None:
        dtype = "/".join(dict.fromkeys(issue.get("input_dtypes") or [])) or "tensor"
        parts.append(f"of {issue['numel']} {dtype} elements")
    return f"{seq} ({' '.join(parts)})"


def _user_frame(issue: dict[str, Any]) -> str | None:
    """The first rank's user frame that the issue records."""
    return next((r.get("user_frame") for r in issue.get("ranks", {}).values() if r.get("user_frame")), None)


def _finding(id: str, title: str, issue: dict[str, Any], fix: Fix, symptom: bool = False) -> Finding:
    return Finding(id=id, title=title, severity="warning" if symptom else "critical", category=CATEGORY,
                   evidence=issue, estimated_gain=dict(_SYMPTOM_GAIN if symptom else _GAIN), fix=fix)


@rule("nccl-stuck-collective", CATEGORY, KINDS,
      "a collective scheduled or started that never completed, the ranks in it and the ranks it waits for")
def stuck_collective(input_: AnalyzedInput) -> Iterator[Finding]:
    for issue in _issues(input_, "stuck"):
        state = ("never started" if issue.get("never_started") else
                 "started, never completed" if issue.get("never_started") is False else "did not complete")
        waiting = f" waiting for {_ranks(issue['waiting_for'])}" if issue.get("waiting_for") else ""
        ran = f"; the watchdog gave up after {issue['ran_for_ms'] / 1000:.1f} s" if issue.get("ran_for_ms") else ""
        title = f"{_upper(_collective(issue))} {state} on {_ranks(issue['waiting_ranks'])}{waiting}{ran}"
        frame = _user_frame(issue)
        if frame:
            title += f" (called at {_where(frame)})"
        yield _finding("nccl-stuck-collective", title, issue, fixes.NOT_REACHED if waiting else fixes.STUCK,
                       symptom=bool(issue.get("symptom")))


@rule("nccl-rank-missing", CATEGORY, KINDS,
      "ranks that skipped or never reached a collective the other ranks issued")
def rank_missing(input_: AnalyzedInput) -> Iterator[Finding]:
    for issue in _issues(input_, "missing"):
        missing, others = _ranks(issue["missing_ranks"]), _ranks(issue.get("waiting_ranks") or [])
        frame = _user_frame(issue)
        at = f" at {_where(frame)}" if frame else ""
        if issue.get("skipped"):
            title = (f"{_upper(missing)} skipped {_collective(issue)}{at} that {others} issued: "
                     "a collective under a rank-dependent condition")
            fix = fixes.SKIPPED
        elif issue.get("seq") is None:
            title = f"{_upper(missing)} never arrived at the collective {others} waited in"
            fix = fixes.NOT_REACHED
        else:
            stuck_in = [log.get("py_spy_user_frame") for r, log in issue.get("logs", {}).items()
                        if r in issue["missing_ranks"] and log.get("py_spy_user_frame")]
            where = f"; py-spy shows it in {stuck_in[0]}" if stuck_in else ": stuck in compute or data loading before it"
            title = f"{_upper(missing)} never reached {_collective(issue)}{at} that {others} wait in{where}"
            fix = fixes.NOT_REACHED
        yield _finding("nccl-rank-missing", title, issue, fix)


@rule("nccl-mismatch", CATEGORY, KINDS,
      "ranks that issued different collectives, sizes or dtypes at the same sequence number")
def mismatch(input_: AnalyzedInput) -> Iterator[Finding]:
    for issue in _issues(input_, "mismatch"):
        sides = []
        for ranks in issue.get("groups_of_ranks", []):
            entry = issue["ranks"][ranks[0]]
            value = {"op": entry.get("op"), "sizes": entry.get("input_sizes"), "dtypes": entry.get("input_dtypes")}
            sides.append(f"{value[issue['mismatch']]} ({_ranks(ranks)}, {_where(entry.get('user_frame'))})")
        what = {"op": "collectives issued in a different order (or different collectives) on different ranks",
                "sizes": "different input sizes (an uneven last batch? drop_last)", "dtypes": "different dtypes"}
        title = f"Collective {issue['seq']} differs across ranks: {' vs '.join(sides)}: {what[issue['mismatch']]}"
        if issue.get("crashed_rank") is not None:  # a gloo rank that aborted on it (analyses.failure_logs)
            title += (f"; rank {issue['crashed_rank']} aborted in gloo on it ({issue['enforce']['left']} bytes "
                      f"received where {issue['enforce']['right']} were expected)")
        fix = fixes.ORDER if issue["mismatch"] == "op" else fixes.SIZES
        yield _finding("nccl-mismatch", title, issue, fix)


@rule("nccl-p2p-unpaired", CATEGORY, KINDS, "a send or recv whose peer never posts the matching recv or send")
def p2p_unpaired(input_: AnalyzedInput) -> Iterator[Finding]:
    for issue in _issues(input_, "p2p_unpaired"):
        op = issue.get("p2p_op") or issue.get("op")
        peer = issue.get("peer")
        position = issue.get("peer_position") or {}
        doing = (f": rank {peer} is in {position.get('op')} (collective {position.get('seq')}, "
                 f"{_where(position.get('user_frame'))}) instead" if peer is not None and position else "")
        frame = issue.get("p2p_frame") or (issue.get("ranks", {}).get(issue.get("p2p_rank")) or {}).get("user_frame")
        title = (f"Rank {issue['p2p_rank']}'s {op} at {_where(frame)} has no matching "
                 f"{'recv' if op in ('send', 'isend') else 'send'}{f' on rank {peer}' if peer is not None else ''}{doing}")
        yield _finding("nccl-p2p-unpaired", title, issue, fixes.P2P)


@rule("nccl-timeout-too-low", CATEGORY, KINDS,
      "a collective every rank issued timed out behind other work under a timeout shorter than 5 minutes")
def timeout_too_low(input_: AnalyzedInput) -> Iterator[Finding]:
    for issue in _issues(input_, "stuck"):
        timeout = issue.get("timeout_ms")
        if issue.get("waiting_for") or issue.get("symptom") or not issue.get("never_started"):
            continue
        if timeout and timeout < SHORT_TIMEOUT_MS:
            title = (f"Process-group timeout of {timeout / 1000:.0f} s: {_collective(issue)} was queued behind "
                     "other work on every rank and never started; a legitimately long kernel or step needs a longer timeout")
            yield Finding(id="nccl-timeout-too-low", title=title, severity="warning", category=CATEGORY,
                          evidence={"timeout_ms": timeout, "ran_for_ms": issue.get("ran_for_ms"), "seq": issue["seq"],
                                    "op": issue.get("op"), "waiting_ranks": issue["waiting_ranks"]},
                          estimated_gain=failure_gain("the run was ended by the timeout; if the wait was "
                                                      "legitimate, a longer timeout saves all of it",
                                                      "the timeout that ended the run"),
                          fix=fixes.TIMEOUT)


@rule("nccl-enable-flight-recorder", CATEGORY, KINDS,
      "a distributed failure seen in logs only: enable (or pass) the Flight Recorder dumps")
def enable_flight_recorder(input_: AnalyzedInput) -> Iterator[Finding]:
    if input_.meta.get("dumps") or not input_.tables.get("hang_issues"):
        return
    if input_.meta.get("flight_recorder_in_logs"):
        title = ("The logs show a distributed failure and the Flight Recorder was on, but no dump was given: "
                 "add the <TORCH_FR_DUMP_TEMP_FILE><rank> files to the input")
    else:
        title = "The logs show a distributed failure but there is no Flight Recorder dump: enable it for the next run"
    yield Finding(id="nccl-enable-flight-recorder", title=title, severity="info", category=CATEGORY,
                  evidence={"logs": input_.meta.get("logs", []),
                            "log_diagnosis": [i["kind"] for i in input_.tables["hang_issues"]]},
                  estimated_gain=failure_gain("the dumps name the rank and collective at fault in the run that "
                                              "failed; without them the next failure is diagnosed from logs alone",
                                              "the next failure diagnosed from logs alone"),
                  fix=fixes.ENABLE_FR)
