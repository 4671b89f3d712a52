"""Memory artifacts as inputs: allocator snapshots, OOM messages and memory timelines.

They form one grouped kind so that, in a folder, an OOM message joins the snapshot of the same
run (same name stem, or the only snapshot beside it): the message adds what a snapshot lacks
(the device's capacity, other processes). Messages with no snapshot are inputs of their own.
"""

from __future__ import annotations

from pathlib import Path

from workbench.analyses.memory_summary import summarize_oom_message, summarize_snapshot, summarize_timeline
from workbench.inputs.analyzed import AnalyzedInput
from workbench.inputs.registry import AnalyzeOptions, InputKind, read_head, register_kind
from workbench.loaders.memory_snapshot import is_snapshot, load_snapshot
from workbench.loaders.memory_timeline import is_memory_timeline, load_memory_timeline
from workbench.loaders.oom_message import holds_oom_text, is_oom_text, load_oom_messages
from workbench.models.memory import OomMessage

KIND = "memory"
KIND_SNAPSHOT = "memory_snapshot"
KIND_OOM = "oom_message"
KIND_TIMELINE = "memory_timeline"


def is_memory_artifact(path: Path, head: bytes) -> bool:
    return is_snapshot(path, head) or is_memory_timeline(path, head) or is_oom_text(path, head)


def reported_as(path: Path, head: bytes) -> str:
    """What a memory artifact is, from its first bytes: an allocator snapshot, a memory timeline or an OOM message."""
    return KIND_SNAPSHOT if is_snapshot(path, head) else KIND_TIMELINE if is_memory_timeline(path, head) else KIND_OOM


def analyze_memory_files(path: Path, files: list[Path], options: AnalyzeOptions) -> list[AnalyzedInput]:
    kinds = {f: reported_as(f, read_head(f)) for f in files}
    snapshots = [f for f in files if kinds[f] == KIND_SNAPSHOT]
    timelines = [f for f in files if kinds[f] == KIND_TIMELINE]
    messages = {f: load_oom_messages(f) for f in files if kinds[f] == KIND_OOM}
    paired = _pair(snapshots, list(messages))
    inputs = []
    for snapshot in snapshots:
        text = paired.get(snapshot)
        message = messages[text][0] if text else None
        inputs.append(_snapshot_input(snapshot, text, message, options))
    inputs += [i for f, found in messages.items() if f not in paired.values() for i in message_inputs(f, found)]
    inputs += [_timeline_input(f) for f in timelines]
    return inputs


def _stem(path: Path) -> str:
    return path.name.split(".")[0]


def _pair(snapshots: list[Path], messages: list[Path]) -> dict[Path, Path]:
    """Snapshot -> the OOM message of the same run: same folder and stem, else the only pair there."""
    pairs: dict[Path, Path] = {}
    for snapshot in snapshots:
        beside = [m for m in messages if m.parent == snapshot.parent and m not in pairs.values()]
        same = [m for m in beside if _stem(m) == _stem(snapshot)]
        alone = len([s for s in snapshots if s.parent == snapshot.parent]) == 1 and len(beside) == 1
        if same or alone:
            pairs[snapshot] = (same or beside)[0]
    return pairs


def _snapshot_input(path: Path, text: Path | None, message: OomMessage | None,
                    options: AnalyzeOptions) -> AnalyzedInput:
    summary = summarize_snapshot(load_snapshot(path), message, options.top)
    if text is not None:
        summary.meta["oom_message_path"] = str(text)
    warnings = []
    if summary.metrics.get("inconsistent_history_events"):
        warnings.append(f"{path}: {summary.metrics['inconsistent_history_events']} history event(s) contradict "
                        "the final segments; the state at the OOM may be approximate")
    if summary.meta.get("history_truncated"):
        warnings.append(f"{path}: the history ring buffer starts after the beginning of the run "
                        f"({summary.metrics['history_starts_with_bytes_in_use']} bytes were already in use); "
                        "blocks allocated before it have no allocation frames")
    if not summary.meta["has_history"]:
        warnings.append(f"{path}: no allocation history was recorded: only the state at the dump is known "
                        "(record it with torch.cuda.memory._record_memory_history(max_entries=100000))")
    return AnalyzedInput(path=str(path), kind=KIND_SNAPSHOT, metrics=summary.metrics, meta=summary.meta,
                         tables=summary.tables, warnings=warnings)


def message_inputs(path: Path, messages: list[OomMessage]) -> list[AnalyzedInput]:
    """One input per rank that ran out of memory (its first message: the later ones are retries or the
    same failure printed again), in the order the text shows them; the first is the root."""
    by_rank: dict[int | None, list[OomMessage]] = {}
    for message in messages:
        by_rank.setdefault(message.rank, []).append(message)
    several = len(by_rank) > 1
    inputs = []
    for rank, found in by_rank.items():
        label = f"{path} (rank {rank})" if several and rank is not None else str(path)
        summary = summarize_oom_message(found[0], len(found))
        warnings = [f"{label}: {len(found)} out-of-memory messages; the first is analyzed"] if len(found) > 1 else []
        inputs.append(AnalyzedInput(path=label, kind=KIND_OOM, metrics=summary.metrics, meta=summary.meta,
                                    warnings=warnings))
    return inputs


def _timeline_input(path: Path) -> AnalyzedInput:
    summary = summarize_timeline(load_memory_timeline(path))
    return AnalyzedInput(path=str(path), kind=KIND_TIMELINE, metrics=summary.metrics, meta=summary.meta,
                         tables=summary.tables)


register_kind(InputKind(KIND, is_memory_artifact, analyze_memory_files, grouped=True, sniff_named=holds_oom_text,
                        reported_as=reported_as))
