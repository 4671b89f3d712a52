"""Profile a few training steps of a small model on the CPU, for a CI job to analyze and gate.

    python examples/ci_profile.py --steps 4 --out traces/new

Writes one Kineto trace (`<host>_<pid>.<time>.pt.trace.json.gz`) into --out, with a
`ProfilerStep#N` per recorded step. Replace `build_model` and `batches` with your own; keep the
step loop's `prof.step()`. See docs/ci.md.
"""

from __future__ import annotations

import argparse

import torch

HIDDEN = 256  # the model's width; a pull request that changes the model changes what the steps cost
LAYERS = 4
BATCH = 64


def build_model() -> torch.nn.Module:
    layers = [m for _ in range(LAYERS) for m in (torch.nn.Linear(HIDDEN, HIDDEN), torch.nn.ReLU())]
    return torch.nn.Sequential(*layers, torch.nn.Linear(HIDDEN, 10))


def batches(count: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    return [(torch.randn(BATCH, HIDDEN, generator=generator), torch.randint(0, 10, (BATCH,), generator=generator))
            for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="steps recorded, after 1 skipped and 1 warm-up")
    parser.add_argument("--out", default="traces", help="folder the trace is written to")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = build_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    with torch.profiler.profile(
        activities=[torch.profiler.ProfilerActivity.CPU],
        schedule=torch.profiler.schedule(wait=1, warmup=1, active=args.steps),
        on_trace_ready=torch.profiler.tensorboard_trace_handler(args.out, use_gzip=True),
        record_shapes=True,
    ) as prof:
        for inputs, targets in batches(args.steps + 2):
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(inputs), targets).backward()
            optimizer.step()
            prof.step()


if __name__ == "__main__":
    main()
