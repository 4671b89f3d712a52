"""One rank of a 2-process gloo job captured with workbench.capture; run by test_capture_ranks.py.

Usage: python capture_rank_worker.py OUT {ok|fail}   (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set)
"""

from __future__ import annotations

import sys

import torch
import torch.distributed as dist

import workbench


def main(out: str, scenario: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    model = torch.nn.Linear(16, 4)
    try:
        with workbench.capture(out=out, steps=2, stacks=False, memory=False) as cap:
            for x in cap.wrap(torch.randn(5, 8, 16)):
                model(x).sum().backward()
                for p in model.parameters():
                    dist.all_reduce(p.grad)
            if scenario == "fail":
                raise RuntimeError("simulated failure after the last step")
    except RuntimeError:
        pass
    finally:
        dist.destroy_process_group()
    print(cap.path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
