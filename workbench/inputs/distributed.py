"""Flight Recorder dumps and rank logs of a distributed job as one input (`flight_recorder`).

A folder of per-rank dumps (`fr_rank_<r>`, `<TORCH_FR_DUMP_TEMP_FILE prefix><r>`, pickle or
JSON), rank logs with watchdog/timeout messages and py-spy dumps is analyzed as one unit: the
dumps are aligned per process group (`analyses.hang`), the logs joined in (`analyses.hang_logs`).
Each file is read on `options.runner` (a Dask task for a large folder: `read_hang_file`); a file that
cannot be read is a warning and left out, unless most of them fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from workbench.analyses.hang import Diagnosis, diagnose_dumps, dump_sets
from workbench.analyses.failure_logs import join_gloo_crash
from workbench.analyses.hang_logs import diagnose_logs, join_logs
from workbench.errors import WorkbenchError
from workbench.inputs.analyzed import AnalyzedInput
from workbench.inputs.rank_runner import RankFailure
from workbench.inputs.registry import AnalyzeOptions, InputKind, read_head, register_kind
from workbench.loaders.distributed_logs import holds_distributed_failure, is_distributed_log, load_logs
from workbench.loaders.files import Progress
from workbench.loaders.flight_recorder import is_flight_recorder_dump, load_dump
from workbench.loaders.oom_message import OomMessage, holds_oom_text, load_oom_messages
from workbench.models.flight_recorder import Dump, RankLog

KIND = "flight_recorder"
_PRIORITY = {"mismatch": 0, "gloo_crash": 0, "missing": 1, "p2p_unpaired": 2, "desync": 3, "network": 4,
             "backend_error": 4, "child_failed": 5, "watchdog_stuck": 6, "blocking_wait": 7, "stuck": 7, "rendezvous": 8}


def is_hang_artifact(path: Path, head: bytes) -> bool:
    return is_flight_recorder_dump(path, head) or is_distributed_log(path, head)


@dataclass
class HangFile:
    """What one file of the folder holds: a rank's dump, or the rank logs of a log and its OOM messages."""

    dump: Dump | None = None
    logs: list[RankLog] = field(default_factory=list)
    oom: list[OomMessage] = field(default_factory=list)


def read_hang_file(path: Path, progress: Progress) -> HangFile:
    """One file read where the runner runs it (a Dask task returns it: a dump's entries, a log's findings)."""
    head = read_head(path)
    if is_flight_recorder_dump(path, head):
        return HangFile(dump=load_dump(path))
    return HangFile(logs=load_logs(path), oom=load_oom_messages(path) if holds_oom_text(path, head) else [])


def analyze_hang(path: Path, files: list[Path], options: AnalyzeOptions) -> list[AnalyzedInput]:
    """Diagnose the dumps and logs among `files` as one job."""
    results = options.runner.map(read_hang_file, files, options.progress)
    failed = [r for r in results if isinstance(r, RankFailure)]
    if len(failed) * 2 > len(results):  # most of the files, or the only one
        raise WorkbenchError(failed[0].message + (f" ({len(failed)} of {len(results)} files in {path} failed)"
                                                  if len(results) > 1 else ""))
    read = [(f, r) for f, r in zip(files, results) if isinstance(r, HangFile)]
    dumps = [r.dump for _, r in read if r.dump is not None]
    logs = [log for _, r in read for log in r.logs]
    diagnosis = diagnose_dumps(dumps)
    join_logs(diagnosis, logs)
    diagnosis.issues = join_gloo_crash(diagnosis.issues, dumps, logs)
    if not diagnosis.issues:
        diagnosis.issues = diagnose_logs(logs)
    issues = _root_causes(diagnosis)
    named = named_in_logs(logs)
    for issue in issues:
        issue.update(named)
    ranks = sorted({d.rank for d in dumps} | {log.rank for log in logs if log.rank is not None})
    backends = sorted({d.backend for d in dumps if d.backend})
    meta = {"ranks": ranks, "world_size": max((len(r) for d in dumps for r in d.groups.values()), default=None),
            "backend": backends[0] if len(backends) == 1 else backends or None,
            "flight_recorder_versions": sorted({d.version for d in dumps}),
            "comm_lib_version": next((d.comm_lib_version for d in dumps if d.comm_lib_version), None),
            "dump_sets": list(dump_sets(dumps)), "dumps": [d.path for d in dumps], "logs": [log.path for log in logs],
            "flight_recorder_in_logs": any(log.fr_enabled for log in logs)}
    metrics = {"rank_count": len(ranks), "dump_count": len(dumps), "log_count": len(logs),
               "fr_entry_count": sum(len(d.entries) for d in dumps),
               "process_group_count": len({e.group for d in dumps for e in d.entries}),
               "hang_issue_count": len(issues)}
    if failed:
        meta["unread_files"] = [f.path for f in failed]
    hang = AnalyzedInput(path=str(path), kind=KIND, metrics=metrics, meta=meta,
                         tables={"hang_issues": issues, "rank_positions": diagnosis.positions},
                         warnings=diagnosis.notes + [f"{f.message} (left out)" for f in failed])
    return _oom_inputs(read) + [hang]


def _oom_inputs(read: list[tuple[Path, HangFile]]) -> list[AnalyzedInput]:
    """The OOM messages in the logs, as inputs of their own placed first: an OOM on one rank is the root
    of the timeouts and lost connections the others report after it."""
    from workbench.inputs.memory import message_inputs  # not at import: the kinds' order is builtin's

    return [i for f, r in read if r.oom for i in message_inputs(f, r.oom)]


def named_in_logs(logs: list) -> dict[str, list[int]]:
    """Every SeqNum and rank the logs name (torchrun's local rank where it names no rank), carried into each issue."""
    seqs = {s for log in logs for s in log.seqs_named} | {w["seq"] for log in logs for w in log.watchdog if w["seq"] is not None}
    ranks = {log.rank for log in logs if log.rank is not None}
    ranks |= {row["rank"] if row.get("rank") is not None else row["local_rank"] for log in logs
              for row in log.child_failures if (row.get("rank") if row.get("rank") is not None else row.get("local_rank")) is not None}
    return {"seqs": sorted(seqs), "ranks_named": sorted(ranks)}


def _root_causes(diagnosis: Diagnosis) -> list[dict]:
    """Issues most telling first; a group's plain `stuck` issue from another dump set is dropped
    when that group already has a sharper diagnosis (the midhang dump beats the post-mortem one)."""
    sharper = {i["group"] for i in diagnosis.issues if i["kind"] != "stuck" and "group" in i}
    kept = [i for i in diagnosis.issues if i["kind"] != "stuck" or i.get("symptom") or i.get("group") not in sharper]
    return sorted(kept, key=lambda i: (_PRIORITY[i["kind"]], bool(i.get("symptom"))))


register_kind(InputKind(KIND, is_hang_artifact, analyze_hang, grouped=True, sniff_named=holds_distributed_failure))
