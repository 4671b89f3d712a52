"""What `workbench.capture` costs beyond plain `torch.profiler` with the same settings, on a CPU loop.

Both sides profile the same MLP training loop with the same schedule (skip 1, warm up 1, record 3),
activities, `record_shapes`, `profile_memory`, `with_stack` and gzip trace handler; the capture adds
its run folder, step timing and manifest. Runs alternate (plain, capture, plain, ...) in one
process and the medians are compared; an unprofiled loop is timed too, for scale.
Run: python benchmarks/capture_overhead.py [--steps 10] [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

import workbench
from workbench.capture import Schedule

SCHEDULE = Schedule()


def training_loop(steps: int, step_done) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(512, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 1024),
                                torch.nn.ReLU(), torch.nn.Linear(1024, 10))
    optimizer = torch.optim.AdamW(model.parameters())
    for x in torch.randn(steps, 64, 512):
        loss = torch.nn.functional.cross_entropy(model(x), torch.zeros(64, dtype=torch.long))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step_done()


def unprofiled(out: Path, steps: int) -> None:
    training_loop(steps, lambda: None)


def plain_profiler(out: Path, steps: int) -> None:
    with torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU], schedule=SCHEDULE.to_torch(),
            on_trace_ready=torch.profiler.tensorboard_trace_handler(str(out / "plain"), use_gzip=True),
            record_shapes=True, profile_memory=True, with_stack=True) as prof:
        training_loop(steps, prof.step)


def workbench_capture(out: Path, steps: int) -> None:
    with workbench.capture(out=out / "capture", steps=SCHEDULE) as cap:
        training_loop(steps, cap.step)


def timed(run, out: Path, steps: int) -> float:
    started = time.perf_counter()
    run(out, steps)
    return time.perf_counter() - started


def main(steps: int, repeat: int) -> None:
    torch.set_num_threads(1)  # one core: less noise from other work on the machine
    runs = {"unprofiled": unprofiled, "torch.profiler": plain_profiler, "workbench.capture": workbench_capture}
    times: dict[str, list[float]] = {name: [] for name in runs}
    with tempfile.TemporaryDirectory() as tmp:
        for name, run in runs.items():  # warm-up: imports, kernels, the profiler's first start
            timed(run, Path(tmp) / f"warm-{name}", steps)
        for i in range(repeat):
            for name, run in runs.items():
                times[name].append(timed(run, Path(tmp) / str(i), steps))
    median = {name: statistics.median(t) for name, t in times.items()}
    for name, value in median.items():
        spread = f"min {min(times[name]):.3f} s, max {max(times[name]):.3f} s"
        print(f"{name:18} median {value:.3f} s over {repeat} runs of {steps} steps ({spread})")
    overhead = (median["workbench.capture"] / median["torch.profiler"] - 1) * 100
    print(f"workbench.capture beyond torch.profiler: {overhead:+.1f} %")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="training steps per run (default 10)")
    parser.add_argument("--repeat", type=int, default=7, help="runs of each kind (default 7)")
    args = parser.parse_args()
    main(args.steps, args.repeat)
