"""Distributed failures beyond collective timeouts, in logs and pasted text, and the ranks that print them.

Read: the ProcessGroupNCCL heartbeat monitor (`watchdog got stuck for N seconds`), NCCL errors
(`ncclRemoteError` / `ncclInternalError` / `ncclSystemError` / ... with their `Last error:`
line), network failures (`NCCL WARN` socket and `NET/IB` / `NET/OFI` completion errors, gloo's
`Connection reset/closed by peer`), `gloo::EnforceNotMet` (a size mismatch names both byte
counts), blocking-wait timeouts, every `WorkNCCL(SeqNum=..)` and torchrun's `ChildFailedError`
summaries. `split_by_rank` cuts a text holding several ranks' lines into one text per rank.
All patterns are linear; lines are bounded by `error_text.clean_lines`; a number is read only when it has
at most 18 digits (a longer one is ignored, never cut).
"""

from __future__ import annotations

import re

from workbench.loaders.error_text import Line
from workbench.models.flight_recorder import RankLog

MARKERS = (rb"|Heartbeat monitor timed out|watchdog got stuck for|nccl(?:Remote|Internal|System|InvalidUsage"
           rb"|UnhandledCuda|InvalidArgument)Error|NCCL error in:|NCCL error: |third_party/gloo/gloo/"
           rb"|gloo::EnforceNotMet|ChildFailedError|multiprocessing[./]api(?:\.py:\d+\])?:? ?failed \(exitcode"
           rb"|WorkNCCL\(SeqNum=|NET/OFI [^\n]{0,200}error|NET/IB : Got completion|DistStoreError"
           rb"|(?:clients|workers) joined|failed to listen on any local network address")

_LINE_RANK = re.compile(r"\[(?:PG [^\]\n]{0,120}? )?Rank (\d{1,6})\]")
_HEARTBEAT_STUCK = re.compile(r"watchdog got stuck for (\d{1,18}) seconds")
_HEARTBEAT = re.compile(r"Heartbeat monitor timed out|detected no heartbeat of its watchdog")
_NCCL_ERROR = re.compile(r"\b(nccl(?:Remote|Internal|System|InvalidUsage|UnhandledCuda|InvalidArgument)Error)\b")
_NCCL_WHAT = re.compile(r"NCCL error(?: in: ([^,\n]{1,300}))?[,:] ([^,\n]{1,200}?)(?:,|\.|$)(?: NCCL version ([\w.+]+))?")
_LAST_ERROR = re.compile(r"Last error:[ \t]*([^\n]{0,400})")
_NETWORK = re.compile(
    r"(Call to (?:recv|send|connect)[^\n]{0,200}? failed ?: ?[^\n]{1,80}|Connection (?:reset|closed) by (?:remote )?peer"
    r"[^\n]{0,120}|Broken pipe|NET/IB : Got completion from peer[^\n]{0,200}|NET/OFI [^\n]{0,200}?error[^\n]{0,120}"
    r"|socketStartConnect: Connect to [^\n]{1,200}|Software caused connection abort|transport retry counter exceeded"
    r"|Read error \[[^\]\n]{1,80}\]:\d+: [^\n]{1,80})")
_GLOO_ENFORCE = re.compile(r"enforce fail at ([^\]\n]{1,300})\] ([^\n]{1,200}?)\. (-?\d{1,18}) vs (-?\d{1,18})(?!\d)")
_STORE_WAIT = re.compile(r"(?:Timed out after (\d{1,18}) seconds waiting for (?:clients|workers)\. )?"
                         r"(?<!\d)(\d{1,18})/(\d{1,18}) (?:clients|workers) joined")
_LISTEN = re.compile(r"failed to listen on any local network address")
_LISTEN_PORT = re.compile(r"port: (\d{1,9})(?!\d)|:(\d{1,9}) \(errno")
_IN_USE = re.compile(r"[Aa]ddress already in use|EADDRINUSE")
_STORE_ERROR = re.compile(r"\b(?:torch\.distributed\.)?(DistStoreError|DistNetworkError): ([^\n]{1,300})")
_SEQ = re.compile(r"WorkNCCL\(SeqNum=(\d{1,18})(?!\d)")
_BLOCKING = re.compile(r"WorkNCCL\(SeqNum=(\d{1,18}), OpType=(\w+)[^)\n]{0,200}\)[^\n]{0,40}timed out in blocking wait")
# torchrun: the one-line "failed (exitcode: -9) local_rank: 5 (pid: 2630)" and the ChildFailedError table
_CHILD_LINE = re.compile(r"failed \(exitcode: (-?\d{1,18})\) local_rank: (\d{1,18}) \(pid: (\d{1,18})\)")
_TABLE_RANK = re.compile(r"\brank\s{0,20}:?\s{0,20}(\d{1,18}) \(local[_ ]rank: ?(\d{1,18})\)")
_TABLE_EXIT = re.compile(r"exitcode\s{0,20}:\s{0,20}(-?\d{1,18}) \(pid: (\d{1,18})\)")
_TABLE_HOST = re.compile(r"^\s*host\s*: (\S+)")
_TABLE_SIGNAL = re.compile(r"[Ss]ignal (\d{1,9}) \((SIG\w+)\)")
_TABLE_ERROR_FILE = re.compile(r"error[_ ]file\s{0,20}:\s{0,20}(\S+)")


def line_ranks(lines: list[Line]) -> list[int | None]:
    """Each line's rank: its `[rankN]:` prefix, else a `[Rank N]` / `[PG .. Rank N]` it names, else the
    rank of the line before (a message wrapped onto the next line), else None."""
    out: list[int | None] = []
    previous: int | None = None
    for line in lines:
        rank = line.rank
        if rank is None and (match := _LINE_RANK.search(line.text)):
            rank = int(match.group(1))
        if rank is None and line.text.strip():
            rank = previous
        out.append(rank)
        previous = rank if line.text.strip() else None
    return out


def split_by_rank(lines: list[Line]) -> dict[int | None, str]:
    """The text of each rank that prints lines (None: lines no rank claims), in order of appearance."""
    parts: dict[int | None, list[str]] = {}
    for line, rank in zip(lines, line_ranks(lines)):
        parts.setdefault(rank, []).append(line.text)
    return {rank: "\n".join(texts) for rank, texts in parts.items()}


def parse_errors(log: RankLog, text: str) -> None:
    """The failures of this module in one rank's text, into its `RankLog`."""
    if stuck := _HEARTBEAT_STUCK.search(text):
        log.heartbeat_stuck_s = int(stuck.group(1))
    elif _HEARTBEAT.search(text):
        log.heartbeat_stuck_s = 0
    for match in _NCCL_ERROR.finditer(text):
        after = text[match.end():match.end() + 2000]
        last = _LAST_ERROR.search(after[:600])
        last_text = last.group(1).strip() if last else ""
        if last and not last_text:  # "Last error:" then the message on the next line
            last_text = after[last.end():].lstrip("\n").split("\n", 1)[0].strip()
        before = text[max(0, match.start() - 600):match.start()]
        what = list(_NCCL_WHAT.finditer(before))
        item = {"type": match.group(1), "last_error": last_text[:400] or None,
                "what": what[-1].group(2).strip() if what else None,
                "nccl_version": what[-1].group(3) if what else None}
        if item not in log.nccl_errors:
            log.nccl_errors.append(item)
    if not log.nccl_errors and (what := _NCCL_WHAT.search(text)) and "NCCL error" in text:
        log.nccl_errors.append({"type": None, "last_error": None, "what": what.group(2).strip(),
                                "nccl_version": what.group(3)})
    log.network_errors = list(dict.fromkeys(m.group(1).strip() for m in _NETWORK.finditer(text)))[:20]
    for match in _GLOO_ENFORCE.finditer(text):
        item = {"where": match.group(1), "expression": match.group(2), "left": int(match.group(3)),
                "right": int(match.group(4))}
        if item not in log.gloo_enforce:
            log.gloo_enforce.append(item)
    log.blocking_wait = [{"seq": int(m.group(1)), "op": m.group(2)} for m in _BLOCKING.finditer(text)]
    log.seqs_named = sorted({int(m.group(1)) for m in _SEQ.finditer(text)})
    if wait := _STORE_WAIT.search(text):
        log.rendezvous = {"problem": "clients", "timeout_s": _int_or_none(wait.group(1)), "joined": int(wait.group(2)),
                          "expected": int(wait.group(3))}
    elif listen := _LISTEN.search(text):
        port = _LISTEN_PORT.search(text, listen.end(), listen.end() + 400)
        log.rendezvous = {"problem": "listen", "port": int(port.group(1) or port.group(2)) if port else None,
                          "reason": "address already in use" if _IN_USE.search(text, listen.end(), listen.end() + 400)
                          else "no address could be bound"}
    elif (store := _STORE_ERROR.search(text)) and not log.network_errors:
        log.rendezvous = {"problem": "store", "error": f"{store.group(1)}: {store.group(2).strip()}"}


def child_failures(lines: list[Line]) -> list[dict]:
    """torchrun's failed workers: rank, local rank, exit code, signal, pid and host, from its log line or table."""
    rows: list[dict] = []
    current: dict | None = None
    for line in lines:
        text = line.text
        if match := _CHILD_LINE.search(text):
            rows.append({"rank": None, "local_rank": int(match.group(2)), "exitcode": int(match.group(1)),
                         "pid": int(match.group(3))})
            continue
        if match := _TABLE_RANK.search(text):
            current = {"rank": int(match.group(1)), "local_rank": int(match.group(2))}
            rows.append(current)
        if current is None:
            continue
        if match := _TABLE_EXIT.search(text):
            current.update(exitcode=int(match.group(1)), pid=int(match.group(2)))
        if match := _TABLE_HOST.search(text):
            current["host"] = match.group(1)
        if match := _TABLE_SIGNAL.search(text):
            current["signal"] = match.group(2)
        if match := _TABLE_ERROR_FILE.search(text):
            current["error_file"] = None if match.group(1) == "<N/A>" else match.group(1)
    return _merge_child_rows(rows)


def _merge_child_rows(rows: list[dict]) -> list[dict]:
    """One row per failed worker (the log line and the table both name it, by pid)."""
    by_pid: dict[object, dict] = {}
    for row in rows:
        key = row.get("pid", id(row))
        merged = by_pid.setdefault(key, {})
        merged.update({k: v for k, v in row.items() if v is not None or k not in merged})
    return list(by_pid.values())


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value is not None else None
