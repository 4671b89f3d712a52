"""Capture the small CPU run folder shipped in sample_traces/cpu/capture_mlp (workbench.capture).

Usage: python tools/capture/cpu_capture_run.py OUT   (OUT gets a new suffix if it exists)

An MLP trains for 6 steps with AdamW on one thread; the default schedule records steps 3-5.
"""

from __future__ import annotations

import sys

import torch

import workbench


def main(out: str) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    optimizer = torch.optim.AdamW(model.parameters())
    with workbench.capture(out=out, stacks=False) as cap:
        for x in cap.wrap(torch.randn(6, 32, 64)):
            loss = torch.nn.functional.cross_entropy(model(x), torch.zeros(32, dtype=torch.long))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    print(cap.path)


if __name__ == "__main__":
    main(sys.argv[1])
