"""Distributed failures read from logs and pasted text: a stuck watchdog, lost connections, NCCL
errors, ranks at different sequence numbers, gloo size mismatches and torchrun's failed workers.

Each rule reads the issues of `analyses.failure_logs` in `tables["hang_issues"]`; every finding
carries every SeqNum and rank the text names (`seqs`, `ranks_named`).
"""

from __future__ import annotations

from typing import Any, Iterator

from workbench.inputs.analyzed import AnalyzedInput
from workbench.rules import distributed_fixes as fixes
from workbench.rules.distributed import CATEGORY, KINDS, _finding, _issues, _ranks, _upper, _where
from workbench.rules.finding import Finding, Fix
from workbench.rules.registry import rule

NCCL_ENV_DOCS = "https://docs.nvidia.com/deeplearning/nccl/user-guide/docs/env.html"
TORCHRUN_DOCS = "https://docs.pytorch.org/docs/stable/elastic/errors.html"
_SIGNAL_MEANING = {
    "SIGKILL": ("was killed by SIGKILL: most likely the host's out-of-memory killer (host RAM, not GPU memory)",
                "Check `dmesg -T | grep -i oom` (or the pod's OOMKilled status) on that host; lower host memory: "
                "fewer DataLoader workers, no whole dataset in RAM per rank, load checkpoints with mmap=True."),
    "SIGABRT": ("aborted (SIGABRT): a C++ exception or a NCCL/gloo abort ended it",
                "Read that rank's own log above the summary: the first error there (a NCCL error, a watchdog "
                "timeout, an EnforceNotMet) is the cause; the others were stopped because of it."),
    "SIGSEGV": ("crashed with a segmentation fault", "Run that rank under `faulthandler` (python -X faulthandler) "
                "or gdb to get the native stack; check for mismatched CUDA/NCCL builds."),
    "SIGTERM": ("was stopped by SIGTERM: the launcher or the scheduler ended it",
                "Look for the worker that failed first (torchrun stops the others) or a scheduler time limit."),
}


def _named(issue: dict[str, Any]) -> str:
    seqs = issue.get("seqs") or []
    return f" (SeqNum {', '.join(map(str, seqs))})" if seqs else ""


@rule("nccl-watchdog-stuck", CATEGORY, KINDS,
      "ProcessGroupNCCL's heartbeat monitor found its watchdog thread stuck: a CUDA or NCCL call hung in the process")
def watchdog_stuck(input_: AnalyzedInput) -> Iterator[Finding]:
    for issue in _issues(input_, "watchdog_stuck"):
        ranks = issue["reporting_ranks"] or issue.get("ranks_named") or []
        took = f" for {issue['stuck_s']} s" if issue.get("stuck_s") else ""
        on = f" on {_ranks(ranks)}" if ranks else ""
        title = (f"ProcessGroupNCCL's watchdog got stuck{took}{on} (heartbeat monitor): a CUDA or NCCL call hung "
                 "inside the process, or another thread held the GIL in one; not a collective that timed out"
                 + _named(issue))
        yield _finding("nccl-watchdog-stuck", title, issue, _WATCHDOG_FIX, symptom=bool(issue.get("symptom")))


@rule("nccl-network-error", CATEGORY, KINDS,
      "NCCL or gloo lost the connection between ranks: a peer process exited or the network failed")
def network_error(input_: AnalyzedInput) -> Iterator[Finding]:
    for issue in _issues(input_, "network"):
        ranks = issue.get("reporting_ranks") or []
        seen = f" seen by {_ranks(ranks)}" if ranks else ""
        last = f": {issue['last_error'][:160]}" if issue.get("last_error") else ""
        title = (f"Connection between ranks lost{seen}{last}; a peer process that exited first (look for its own "
                 "error) or the network (socket, InfiniBand, EFA) failed" + _named(issue))
        yield _finding("nccl-network-error", title, issue, _NETWORK_FIX, symptom=bool(issue.get("symptom")))


@rule("nccl-backend-error", CATEGORY, KINDS,
      "a NCCL error that is not a timeout or a lost connection (ncclInternalError, ncclSystemError, invalid usage)")
def backend_error(input_: AnalyzedInput) -> Iterator[Finding]:
    for issue in _issues(input_, "backend_error"):
        name = issue.get("nccl_error") or "NCCL error"
        what = f" ({issue['what']})" if issue.get("what") else ""
        last = f"; last error: {issue['last_error'][:160]}" if issue.get("last_error") else \
            "; the text has no `Last error:` detail (rerun with NCCL_DEBUG=WARN)"
        version = f", NCCL {issue['nccl_version']}" if issue.get("nccl_version") else ""
        ranks = issue.get("reporting_ranks") or []
        on = f" on {_ranks(ranks)}" if ranks else ""
        yield _finding("nccl-backend-error", f"{name}{what}{on}{version}{last}" + _named(issue), issue, _BACKEND_FIX)


@rule("nccl-desync", CATEGORY, KINDS,
      "ranks whose watchdogs timed out at different sequence numbers: one rank issued more collectives than another")
def desync(input_: AnalyzedInput) -> Iterator[Finding]:
    for issue in _issues(input_, "desync"):
        by_rank = issue["seq_by_rank"]
        sides = ", ".join(f"rank {r} at SeqNum {s}" for r, s in by_rank.items())
        title = (f"Ranks are at different collectives: {sides}; {_ranks(issue['behind_ranks'])} "
                 f"{'is' if len(issue['behind_ranks']) == 1 else 'are'} {issue['behind_by']} collective(s) behind "
                 f"{_ranks(issue['ahead_ranks'])}: a rank-dependent code path skipped or added collectives"
                 f" (every SeqNum named: {', '.join(map(str, issue.get('seqs') or []))}; compare within one process group)")
        yield _finding("nccl-desync", title, issue, fixes.SKIPPED)


@rule("gloo-size-mismatch", CATEGORY, KINDS,
      "a gloo rank aborted (EnforceNotMet) because a peer sent more or other bytes than its buffer holds")
def gloo_size_mismatch(input_: AnalyzedInput) -> Iterator[Finding]:
    for issue in _issues(input_, "gloo_crash"):
        who = f"Rank {issue['crashed_rank']}" if issue.get("crashed_rank") is not None else "A rank"
        if issue.get("size_mismatch"):
            sent, expected = issue["sent_bytes"], issue["expected_bytes"]
            what = (f"a peer sent {sent} bytes into a {expected}-byte buffer ({abs(sent - expected)} bytes "
                    f"{'more' if sent > expected else 'fewer'}): the ranks passed tensors of different sizes or "
                    "dtypes to the same collective")
        else:
            what = f"the check `{issue['enforce']['expression']}` failed ({issue['enforce']['left']} vs {issue['enforce']['right']})"
        lost = issue.get("peers_lost_connection") or []
        after = f"; {_ranks(lost)} then lost the connection to it" if lost else ""
        at = f" at collective {issue['seq']} ({issue.get('op')})" if issue.get("seq") is not None else ""
        dumped = [f"rank {r} has {e['input_sizes']} {'/'.join(e.get('input_dtypes') or [])} "
                  f"({_where(e.get('user_frame'))})" for r, e in issue.get("ranks", {}).items() if e.get("input_sizes")]
        sides = f"; the dump of {', '.join(dumped)}, the crashed rank wrote none" if dumped else ""
        yield _finding("gloo-size-mismatch", f"{who} aborted in gloo{at}: {what}{after}{sides}", issue, fixes.SIZES)


@rule("torchrun-child-failed", CATEGORY, KINDS,
      "torchrun's ChildFailedError summary: which worker failed first, how, and where its own error is")
def child_failed(input_: AnalyzedInput) -> Iterator[Finding]:
    for issue in _issues(input_, "child_failed"):
        rank = issue.get("failed_rank")
        who = f"rank {rank}" if rank is not None else f"local rank {issue.get('failed_local_rank')}"
        if rank is not None and issue.get("failed_local_rank") is not None:
            who += f" (local rank {issue['failed_local_rank']})"
        signal = issue.get("signal")
        meaning, advice = _SIGNAL_MEANING.get(signal, (
            f"exited with code {issue.get('exitcode')}: a Python exception in the worker",
            "Its traceback is in that rank's own output (or the error_file torchrun names, with "
            "@torch.distributed.elastic.multiprocessing.errors.record on main): read it, not the summary."))
        others = len(issue["failures"]) - 1
        more = f"; {others} other worker(s) failed too" if others > 0 else ""
        title = f"torchrun: {who} {meaning} (exit code {issue.get('exitcode')}){more}"
        fix = Fix(summary=advice + " The ChildFailedError table only reports the failure; the cause is in "
                  "the failed worker's own log.", code=_TORCHRUN_CODE, docs=[TORCHRUN_DOCS])
        yield _finding("torchrun-child-failed", _upper(title), issue, fix)


@rule("nccl-blocking-wait-timeout", CATEGORY, KINDS,
      "a collective that timed out in blocking wait (TORCH_NCCL_BLOCKING_WAIT=1): one rank's view of a hang")
def blocking_wait(input_: AnalyzedInput) -> Iterator[Finding]:
    for issue in _issues(input_, "blocking_wait"):
        ranks = issue.get("reporting_ranks") or []
        on = f" on {_ranks(ranks)}" if ranks else ""
        title = (f"Collective {issue['seq']} ({issue['op']}) timed out in blocking wait{on}: known is that this rank "
                 "waited its whole timeout; not known is which rank never arrived or why (each rank only sees itself) "
                 "- the other ranks' logs or Flight Recorder dumps say")
        yield _finding("nccl-blocking-wait-timeout", title, issue, fixes.ENABLE_FR)


@rule("dist-rendezvous-failed", CATEGORY, KINDS,
      "init_process_group's rendezvous (TCPStore) failed: ranks that never joined, or a port already taken")
def rendezvous(input_: AnalyzedInput) -> Iterator[Finding]:
    for issue in _issues(input_, "rendezvous"):
        if issue["problem"] == "clients":
            after = f" after {issue['timeout_s']} s" if issue.get("timeout_s") else ""
            title = (f"Rendezvous timed out{after} with {issue['joined']} of {issue['expected']} "
                     "processes joined: the others never started, crashed before init_process_group, or cannot reach "
                     "MASTER_ADDR:MASTER_PORT")
        elif issue["problem"] == "listen":
            port = f" on port {issue['port']}" if issue.get("port") else ""
            title = (f"The rendezvous store could not listen{port} ({issue['reason']}): another job or a stale "
                     "process holds MASTER_PORT")
        else:
            title = f"The rendezvous store failed: {issue['error'][:200]}"
        yield _finding("dist-rendezvous-failed", title, issue, _RENDEZVOUS_FIX)


_RENDEZVOUS_FIX = Fix(
    summary=("Every rank must reach the same MASTER_ADDR:MASTER_PORT before the store timeout: check that all "
             "processes were launched (the scheduler's job state, each node's log), that MASTER_ADDR resolves to the "
             "rank-0 host from every node and the port is open (a firewall, another job on the port: `ss -ltnp`), "
             "and use a free port per job (torchrun --rdzv-endpoint host:0 or a port chosen per job id)."),
    code='''import os
import socket

with socket.socket() as sock:  # a free port on this host, for MASTER_PORT
    sock.bind(("", 0))
    port = sock.getsockname()[1]
os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
os.environ.setdefault("MASTER_PORT", str(port))
print(os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"])
''', docs=[fixes.DOCS_DIST])


_WATCHDOG_FIX = Fix(
    summary=("Find the call the process is stuck in: `py-spy dump --native --pid <pid>` on the stuck rank while it "
             "hangs (a thread in a CUDA/NCCL call holding the GIL), and enable the Flight Recorder so the next hang "
             "leaves dumps. Only if the watchdog is legitimately slow (a huge first compile), raise "
             "TORCH_NCCL_HEARTBEAT_TIMEOUT_SEC; disabling the monitor (TORCH_NCCL_ENABLE_MONITORING=0) hides the hang."),
    code='''import os

# Before init_process_group: dumps on a hang, and a heartbeat timeout that still catches one.
os.environ.setdefault("TORCH_NCCL_TRACE_BUFFER_SIZE", "2000")
os.environ.setdefault("TORCH_NCCL_DUMP_ON_TIMEOUT", "1")
os.environ.setdefault("TORCH_FR_DUMP_TEMP_FILE", "/tmp/nccl_trace_rank_")
os.environ.setdefault("TORCH_NCCL_HEARTBEAT_TIMEOUT_SEC", "1200")
print({k: v for k, v in os.environ.items() if k.startswith("TORCH_NCCL") or k.startswith("TORCH_FR")})
''', docs=[fixes.DOCS_FR, fixes.DOCS_DEBUG])

_NETWORK_FIX = Fix(
    summary=("First look for a rank that exited before the others (an OOM, an exception, a SIGKILL): its peers then "
             "report `Connection reset/closed by peer`. If every rank was alive, it is the network: rerun with "
             "NCCL_DEBUG=INFO NCCL_DEBUG_SUBSYS=INIT,NET to see the interface and transport NCCL chose, pin the "
             "interface with NCCL_SOCKET_IFNAME (GLOO_SOCKET_IFNAME for gloo), check the IB ports (ibstat, "
             "NCCL_IB_HCA) or the EFA provider (fi_info -p efa), and test the links with nccl-tests."),
    code='''import os

# Set on every rank before init_process_group.
os.environ.setdefault("NCCL_DEBUG", "INFO")
os.environ.setdefault("NCCL_DEBUG_SUBSYS", "INIT,NET")
os.environ.setdefault("NCCL_SOCKET_IFNAME", "eth0")  # the interface the ranks reach each other on
os.environ.setdefault("GLOO_SOCKET_IFNAME", "eth0")
print({k: os.environ[k] for k in ("NCCL_DEBUG", "NCCL_DEBUG_SUBSYS", "NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME")})
''', docs=[NCCL_ENV_DOCS, fixes.DOCS_DEBUG])

_BACKEND_FIX = Fix(
    summary=("Rerun with NCCL_DEBUG=WARN (then INFO) and read the first `NCCL WARN` line: it names the failing "
             "system call, topology query or CUDA call. Common causes: a container without enough shared memory "
             "(--shm-size / --ipc=host), a NIC or GPU the topology detection cannot resolve (set NCCL_SOCKET_IFNAME, "
             "NCCL_P2P_DISABLE=1 to test), and a NCCL version different from the one torch was built with."),
    code='''import os

os.environ.setdefault("NCCL_DEBUG", "WARN")  # the first NCCL WARN line names what failed
try:
    import torch

    print("torch", torch.__version__, "NCCL", torch.cuda.nccl.version() if torch.cuda.is_available() else "n/a")
except ImportError:
    pass
''', docs=[NCCL_ENV_DOCS, fixes.DOCS_DEBUG])

_TORCHRUN_CODE = '''
from torch.distributed.elastic.multiprocessing.errors import record


@record  # torchrun then writes the worker's own traceback into the ChildFailedError summary (error_file)
def main() -> None:
    pass  # ... the training entry point ...


if __name__ == "__main__":
    main()
'''
