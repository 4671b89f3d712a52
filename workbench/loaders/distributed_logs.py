"""Rank logs of a failed distributed job (NCCL/gloo watchdog and timeout messages) and py-spy dumps.

Recognized: `Watchdog caught collective operation timeout: WorkNCCL(SeqNum=..)` and the
"last enqueued / last completed" lines, the stack trace of the failed collective, `NCCL WARN`,
gloo's send/recv timeouts and closed connections, `TORCH_DISTRIBUTED_DEBUG=DETAIL` fingerprint
mismatches and monitoredBarrier failures, the Python traceback of the failure, and the main
thread of a `py-spy dump`. The rank comes from the file name, else from the log's `[rankN]:` prefix.
"""

from __future__ import annotations

import re
from pathlib import Path

from workbench.loaders.distributed_errors import MARKERS as ERROR_MARKERS
from workbench.loaders.distributed_errors import child_failures, parse_errors, split_by_rank
from workbench.loaders.error_text import clean_lines
from workbench.loaders.files import may_be_log, read_tail, read_text
from workbench.loaders.flight_recorder import rank_from_name
from workbench.models.flight_recorder import Frame, RankLog

MAX_LINE = 4096
_LOG_NAME = re.compile(r"\.(log|txt|out|err)$|stdout|stderr|pyspy|py-spy", re.IGNORECASE)

FAILURE = re.compile(
    rb"Watchdog caught collective operation timeout|NCCL WARN|Detected mismatch between collectives"
    rb"|failed to pass monitoredBarrier|Timed out waiting \d+ms for (?:send|recv) operation"
    rb"|Connection closed by peer|DistBackendError|DistNetworkError|\[E\d{4} [^\]\n]{0,160}ProcessGroup(?:NCCL|Gloo)\.cpp"
    rb"|^Thread \d+ \(\w+\): \"MainThread\"" + ERROR_MARKERS, re.MULTILINE)

_WATCHDOG = re.compile(r"Watchdog caught collective operation timeout:\s{1,4}(\w+)\(([^\n]{0,2000}?)\) ran for (\d{1,18}) milliseconds")
_FIELD = re.compile(r"(SeqNum|OpType|NumelIn|NumelOut|Timeout\(ms\))=(\w{1,40})")
_PG_STATUS = re.compile(r"(?:\[PG ID (\d{1,18}) PG GUID ([^\]\n]{0,200}?) Rank \d{1,18}\])?[ \t]{0,8}failure detected by watchdog "
                        r"at work sequence id: (\d{1,18}) PG status: last enqueued work: (-?\d{1,18}), "
                        r"last completed work: (-?\d{1,18})")
_STACK_LINE = re.compile(r"^#(\d{1,9}) (\S+) from (.+):(\d{1,9})$")
_TRANSPORT = re.compile(r"Timed out waiting (\d{1,18})ms for (send|recv) operation to complete")
_WARN = re.compile(r"NCCL WARN (.*)")
_PRINT = re.compile(r"Rank (\d{1,18}) is running collective: CollectiveFingerPrint\(SequenceNumber=(\d{1,18}), "
                    r"OpType=(\w+), TensorShape=\[([^\]\n]{0,2000})\], TensorDtypes=(\w{1,40})")
_ASPECTS = re.compile(r"Collectives differ in the following aspects:\s*(.*)")
_BARRIER = re.compile(r"Ranks? ([\d, ]{1,10000}) failed to pass monitoredBarrier in (\d{1,18}) ms")
_TB_FRAME = re.compile(r'^\s*File "(.+)", line (\d{1,9}), in (\S+)')
_ERROR = re.compile(r"(?:Error|Exception): (.+)")  # the dotted name before it is read backwards: linear
_LOG_RANK = re.compile(r"^\[rank(\d{1,9})\]:", re.MULTILINE)
_PYSPY_FRAME = re.compile(r"^\s+(.+?) \((.+):(\d{1,9})\)$")
_FR_SETTINGS = re.compile(r"TORCH_(?:FR|NCCL_TRACE)_BUFFER_SIZE|TORCH_FR_DUMP_TEMP_FILE|TORCH_NCCL_DEBUG_INFO_TEMP_FILE"
                          r"|dump the debug info|dump debug info")


def is_distributed_log(path: Path, head: bytes) -> bool:
    """A text file holding a distributed failure message (or a py-spy dump); OOM-only logs are not ours."""
    return may_be_log(path) and holds_distributed_failure(path, head)


def holds_distributed_failure(path: Path, head: bytes) -> bool:
    """Whatever its name: text holding a distributed failure message (or a py-spy dump)."""
    if b"\x00" in head:
        return False
    if FAILURE.search(head):
        return True
    if not _LOG_NAME.search(path.name) or path.stat().st_size <= len(head):
        return False
    return bool(FAILURE.search(read_tail(path)))  # a long log: its tail, where a crash's error is


def load_log(path: str | Path) -> RankLog:
    """Parse one rank's log or py-spy dump (the rank from the file name, else the first `[rankN]:` prefix)."""
    path = Path(path)
    text = read_text(path)
    rank = rank_from_name(path.name)
    if rank is None and (match := _LOG_RANK.search(text)):
        rank = int(match.group(1))
    log = _parse(path, rank, "\n".join(line.text for line in clean_lines(text)))
    log.child_failures = child_failures(clean_lines(text))
    return log


def load_logs(path: str | Path) -> list[RankLog]:
    """The logs of every rank a file holds: one per `[rankN]:`/`[Rank N]` that prints lines (a pasted job
    log), else one for the rank its name gives. torchrun's failure summary goes to the first."""
    path = Path(path)
    lines = clean_lines(read_text(path))
    rank = rank_from_name(path.name)
    parts = split_by_rank(lines)
    if rank is not None and len([r for r in parts if r is not None]) <= 1:  # one rank's log, named for it
        parts = {rank: "\n".join(line.text for line in lines)}
    logs = [_parse(path, r, text) for r, text in parts.items()]
    logs[0].child_failures = child_failures(lines)
    return [log for log in logs if log.rank is not None or log.failed or len(logs) == 1]


def _parse(path: Path, rank: int | None, text: str) -> RankLog:
    log = RankLog(path=str(path), rank=rank, fr_enabled=bool(_FR_SETTINGS.search(text)))
    lines = [line[:MAX_LINE] for line in text.splitlines()]  # a frame is never longer: bounds the line regexes
    _parse_messages(log, text)
    _parse_traceback(log, lines)
    log.failed_stack = _failed_stack(lines)
    log.pyspy_stack = _pyspy_main_thread(lines)
    parse_errors(log, text)
    return log


def _parse_messages(log: RankLog, text: str) -> None:
    seen = set()
    for match in _WATCHDOG.finditer(text):
        fields = dict(_FIELD.findall(match.group(2)))
        item = {"work": match.group(1), "seq": _int(fields.get("SeqNum")), "op": fields.get("OpType", ""),
                "numel_in": _int(fields.get("NumelIn")), "numel_out": _int(fields.get("NumelOut")),
                "timeout_ms": _int(fields.get("Timeout(ms)")), "ran_for_ms": int(match.group(3))}
        if (item["seq"], item["op"]) not in seen:
            seen.add((item["seq"], item["op"]))
            log.watchdog.append(item)
    log.pg_status = [{"pg_id": _int(m.group(1)), "pg": m.group(2), "seq": int(m.group(3)),
                      "last_enqueued": int(m.group(4)), "last_completed": int(m.group(5))}
                     for m in _PG_STATUS.finditer(text)]
    timeouts = dict.fromkeys((m.group(2), int(m.group(1))) for m in _TRANSPORT.finditer(text))
    log.transport_timeouts = [{"op": op, "timeout_ms": ms} for op, ms in timeouts]
    log.connection_closed = "Connection closed by peer" in text
    log.nccl_warnings = list(dict.fromkeys(m.group(1).strip() for m in _WARN.finditer(text)))[:20]
    prints = {int(m.group(1)): {"seq": int(m.group(2)) + 1, "op": m.group(3), "shape": m.group(4),
                                "dtype": m.group(5)} for m in _PRINT.finditer(text)}
    if len(prints) >= 2:
        aspects = _ASPECTS.search(text)
        log.mismatch = {"ranks": prints, "differ": aspects.group(1).strip() if aspects else ""}
    if barrier := _BARRIER.search(text):
        log.barrier_missing = [int(r) for r in re.findall(r"\d+", barrier.group(1)) if len(r) <= 9]
    if error := _ERROR.search(text):
        log.error = f"{_error_name(text, error.start())}{error.group(0).strip()}"[:300]


def _error_name(text: str, end: int) -> str:
    """The dotted name (`torch.distributed.Dist`) right before an `Error:` at `end`, scanned backwards."""
    start = end
    while start > max(0, end - 200) and (text[start - 1].isalnum() or text[start - 1] in "_."):
        start -= 1
    return text[start:end].lstrip(".")


def _parse_traceback(log: RankLog, lines: list[str]) -> None:
    """The first Python traceback: its frames (outermost first) and each frame's source line."""
    start = next((i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")), None)
    if start is None:
        return
    for i in range(start + 1, len(lines)):
        match = _TB_FRAME.match(lines[i])
        if match:
            log.traceback.append(Frame(match.group(3), match.group(1), int(match.group(2))))
            source = lines[i + 1].strip() if i + 1 < len(lines) else ""
            log.source_lines.append("" if source.startswith(("File ", "^", "~")) else source)
        elif not lines[i].startswith(" "):
            break


def _failed_stack(lines: list[str]) -> list[Frame]:
    """NCCL's "Stack trace of the failed collective" (innermost first)."""
    start = next((i for i, line in enumerate(lines) if "Stack trace of the failed collective" in line), None)
    frames = []
    for line in lines[start + 1:] if start is not None else []:
        match = _STACK_LINE.match(line.strip())
        if not match:
            break
        frames.append(Frame(match.group(2), match.group(3), int(match.group(4))))
    return frames


def _pyspy_main_thread(lines: list[str]) -> list[Frame]:
    start = next((i for i, line in enumerate(lines) if re.match(r'^Thread \d+ \(\w+\): "MainThread"', line)), None)
    frames = []
    for line in lines[start + 1:] if start is not None else []:
        match = _PYSPY_FRAME.match(line)
        if not match:
            break
        frames.append(Frame(match.group(1), match.group(2), int(match.group(3))))
    return frames


def _int(value: str | None) -> int | None:
    digits = value.lstrip("-") if value is not None else ""
    return int(value) if digits.isdigit() and digits.isascii() and len(digits) <= 18 else None
