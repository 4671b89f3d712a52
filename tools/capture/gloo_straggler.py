"""Capture real per-rank Kineto traces of a small DDP job on CPU (gloo) with one slow rank.

Usage: python tools/capture/gloo_straggler.py OUT_DIR [--ranks 4] [--slow-rank 2] [--delay-ms 40]
                                              [--case slow-loading | extra-compute | long-sequences | balanced]
                                              [--extra-layers 3] [--seq-len 4] [--long-seq-len 16]

Each rank trains the same MLP under DistributedDataParallel for 6 steps and profiles steps
3-5 (`torch.profiler.schedule(wait=1, warmup=1, active=3, repeat=1)`). With `slow-loading` (the
default), the dataset's `__getitem__` sleeps on `--slow-rank`, so its data loading makes every
other rank wait in the gradient all-reduce. With `extra-compute`, `--slow-rank` also runs an
auxiliary head of `--extra-layers` Linear(1024, 1024) layers (its own parameters, outside DDP)
inside `record_function("aux_head")`, forward and backward: more work rather than a slower
input. With `long-sequences`, each sample is a sequence of `--seq-len` vectors (the MLP runs on each
position) and `--slow-rank`'s are `--long-seq-len` long: the same calls, each doing more work.
With `balanced`, no rank differs: the baseline a job diff compares the others against.
Writes `rank-<r>.pt.trace.json.gz` per rank.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

STEPS = 6
BATCH = 32


class Samples(Dataset):
    def __init__(self, delay_s: float, seq_len: int = 0) -> None:
        self.delay_s = delay_s
        self.shape = (seq_len,) if seq_len else ()  # a sequence of vectors, or one vector

    def __len__(self) -> int:
        return STEPS * BATCH

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.delay_s:
            time.sleep(self.delay_s / BATCH)
        g = torch.Generator().manual_seed(i)
        return torch.randn(*self.shape, 256, generator=g), torch.randn(*self.shape, 16, generator=g)


def run_rank(rank: int, world: int, out: str, slow_rank: int, delay_ms: float, extra_layers: int,
             seq_lens: tuple[int, int]) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = DistributedDataParallel(torch.nn.Sequential(
        torch.nn.Linear(256, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 1024), torch.nn.ReLU(),
        torch.nn.Linear(1024, 16)), bucket_cap_mb=2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loader = DataLoader(Samples(delay_ms / 1000 if rank == slow_rank else 0.0, seq_lens[rank == slow_rank]),
                        batch_size=BATCH)
    aux_head = torch.nn.Sequential(torch.nn.Linear(256, 1024), *(torch.nn.Linear(1024, 1024) for _ in range(extra_layers)))
    path = Path(out) / f"rank-{rank}.pt.trace.json.gz"
    with torch.profiler.profile(
        activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True,
        schedule=torch.profiler.schedule(wait=1, warmup=1, active=3, repeat=1),
        on_trace_ready=lambda p: p.export_chrome_trace(str(path)),
    ) as prof:
        for x, y in loader:
            loss = torch.nn.functional.mse_loss(model(x), y)
            if rank == slow_rank and extra_layers:
                with torch.profiler.record_function("aux_head"):
                    loss = loss + 1e-6 * aux_head(x).square().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            prof.step()
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--ranks", type=int, default=4)
    parser.add_argument("--slow-rank", type=int, default=2)
    parser.add_argument("--delay-ms", type=float, default=None, help="default: 40 (slow-loading), else 0")
    parser.add_argument("--case", choices=("slow-loading", "extra-compute", "long-sequences", "balanced"), default="slow-loading")
    parser.add_argument("--extra-layers", type=int, default=3)
    parser.add_argument("--seq-len", type=int, default=4, help="long-sequences: the other ranks' sequence length")
    parser.add_argument("--long-seq-len", type=int, default=16, help="long-sequences: --slow-rank's")
    args = parser.parse_args()
    delay_ms = args.delay_ms if args.delay_ms is not None else (40.0 if args.case == "slow-loading" else 0.0)
    extra_layers = args.extra_layers if args.case == "extra-compute" else 0
    seq_lens = (args.seq_len, args.long_seq_len) if args.case == "long-sequences" else (0, 0)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29531")
    mp.spawn(run_rank, args=(args.ranks, args.out, args.slow_rank, delay_ms, extra_layers, seq_lens), nprocs=args.ranks)


if __name__ == "__main__":
    main()
