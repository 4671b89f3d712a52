"""One rank of a gloo job that hangs in a planted way; run by test_gloo_hangs.py.

Usage: python gloo_hang_worker.py SCENARIO RANK WORLD PORT OUTDIR TIMEOUT_S

Each rank writes its Flight Recorder record to OUTDIR/fr_rank_<rank> when a collective fails or
at the end, and prints the failure with its traceback to stderr (the test saves it as rank<r>.log).
"""

from __future__ import annotations

import datetime
import os
import sys
import threading
import time
import traceback

import torch
import torch.distributed as dist


def dump(outdir: str, rank: int) -> None:
    """Write the record atomically: a half-written dump must not be mistaken for a rank's state."""
    data = torch._C._distributed_c10d._dump_fr_trace()
    path = os.path.join(outdir, f"fr_rank_{rank}")
    with open(path + ".tmp", "wb") as out:
        out.write(data)
    os.replace(path + ".tmp", path)


def stuck(rank: int, world: int, x: torch.Tensor, outdir: str, timeout: float) -> None:
    """The last rank stalls before the third all_reduce (a data loader that hangs); it dumps mid-stall."""
    for step in range(3):
        if step == 2 and rank == world - 1:
            dumped = threading.Event()
            threading.Timer(timeout / 2, lambda: (dump(outdir, rank), dumped.set())).start()  # dump during the stall
            time.sleep(timeout * 2)  # load_batch() stalls
            dumped.wait(60)
            os._exit(0)
        dist.all_reduce(x)


def missing(rank: int, world: int, x: torch.Tensor, outdir: str, timeout: float) -> None:
    """A metrics all_reduce under `if rank != last`: the last rank skips it."""
    for step in range(4):
        dist.all_reduce(x)  # gradients, every rank
        if step == 1 and rank != world - 1:
            dist.all_reduce(x)  # metrics, all ranks but the last


def order(rank: int, world: int, x: torch.Tensor, outdir: str, timeout: float) -> None:
    """Two collectives in a different order on rank 0 and rank 1."""
    dist.all_reduce(x)
    dist.all_reduce(x)
    if rank == 0:
        dist.all_reduce(x)
        dist.broadcast(x, src=0)
    else:
        dist.broadcast(x, src=0)
        dist.all_reduce(x)


def p2p(rank: int, world: int, x: torch.Tensor, outdir: str, timeout: float) -> None:
    """Rank 0 sends to rank 1, which calls all_reduce instead of the matching recv."""
    dist.all_reduce(x)
    if rank == 0:
        dist.send(x, dst=1)
    else:
        dist.all_reduce(x)


def sizes(rank: int, world: int, x: torch.Tensor, outdir: str, timeout: float) -> None:
    """The last rank all_reduces a larger tensor (an uneven last batch): gloo aborts a rank in C++."""
    dist.all_reduce(x)
    dist.all_reduce(torch.ones(4 * len(x)) if rank == world - 1 else x)


def main() -> None:
    scenario, rank, world, port, outdir, timeout = sys.argv[1:7]
    rank, world, timeout = int(rank), int(world), float(timeout)
    store = dist.TCPStore("127.0.0.1", int(port), world, rank == 0, timeout=datetime.timedelta(seconds=300))
    dist.init_process_group("gloo", store=store, rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=timeout))
    try:
        globals()[scenario](rank, world, torch.ones(16), outdir, timeout)
        print(f"rank {rank}: finished all collectives", file=sys.stderr)
    except RuntimeError as exc:
        print(f"rank {rank}: RuntimeError: {exc}", file=sys.stderr)
        traceback.print_exc()
    dump(outdir, rank)
    sys.stderr.flush()
    os._exit(0)  # no destroy_process_group: the peers may be gone


if __name__ == "__main__":
    main()
