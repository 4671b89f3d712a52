"""Time `workbench analyze` on an allocator snapshot with a long history.

No real snapshot with 200,000 history entries is small enough to ship, so this writes a
synthetic one (a training loop: parameters that stay, activations allocated and freed each
step, 12 Python frames per event like real ones) and times loading, replay to the OOM and the
whole analysis. Run: python benchmarks/memory_speed.py [--events 200000]
"""

from __future__ import annotations

import argparse
import pickle
import tempfile
import time
from pathlib import Path

SEGMENT = 64 << 20
ACTIVATIONS_PER_STEP = 64


def frames(step: int, i: int) -> list[dict]:
    return [{"filename": f"/home/user/project/model.py", "line": 100 + i % 17, "name": "forward"}] + [
        {"filename": "/venv/lib/python3.12/site-packages/torch/nn/modules/module.py", "line": 1700 + k,
         "name": "_call_impl"} for k in range(10)] + [{"filename": "/home/user/project/train.py", "line": 40,
                                                       "name": "main"}]


def synthetic_snapshot(events: int) -> dict:
    """A consistent snapshot: segments reserved up front, activations churned, an OOM at the end."""
    trace, base, segments = [], 1 << 40, 256
    for s in range(segments):
        trace.append({"action": "segment_alloc", "addr": base + s * SEGMENT, "size": SEGMENT, "stream": 0,
                      "time_us": 0, "frames": frames(0, 0)})
    params = [(base + s * SEGMENT, 16 << 20) for s in range(segments // 2)]
    for address, size in params:
        trace.append({"action": "alloc", "addr": address, "size": size, "stream": 0, "time_us": 1,
                      "frames": frames(0, 1)})
    step = 0
    while len(trace) < events:
        step += 1
        live = [(base + (segments // 2 + i) * SEGMENT + (i % 4) * (8 << 20), (2 + i % 6) << 20)
                for i in range(ACTIVATIONS_PER_STEP)]
        for i, (address, size) in enumerate(live):
            trace.append({"action": "alloc", "addr": address, "size": size, "stream": 0, "time_us": step * 1000 + i,
                          "frames": frames(step, i)})
        for address, size in live:
            for action in ("free_requested", "free_completed"):
                trace.append({"action": action, "addr": address, "size": size, "stream": 0,
                              "time_us": step * 1000 + 500, "frames": frames(step, 99)})
    trace.append({"action": "oom", "addr": 0, "size": 40 << 30, "stream": 0, "time_us": step * 1000 + 999,
                  "device_free": 1 << 30, "frames": frames(step, 7)})
    blocks_of = {address: size for address, size in params}
    segment_list = []
    for s in range(segments):
        address = base + s * SEGMENT
        used = blocks_of.get(address)
        blocks = ([{"address": address, "size": used, "requested_size": used, "state": "active_allocated",
                    "frames": frames(0, 1)}] if used else [])
        blocks.append({"address": address + (used or 0), "size": SEGMENT - (used or 0), "requested_size": 0,
                       "state": "inactive", "frames": []})
        segment_list.append({"device": 0, "address": address, "total_size": SEGMENT, "allocated_size": used or 0,
                             "active_size": used or 0, "requested_size": used or 0, "stream": 0,
                             "segment_type": "large", "segment_pool_id": (0, 0), "is_expandable": False,
                             "frames": [], "blocks": blocks})
    return {"segments": segment_list, "device_traces": [trace], "allocator_settings": {"expandable_segments": False}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    from workbench.analyses.memory_summary import summarize_snapshot
    from workbench.inputs import AnalyzeOptions, analyze_path
    from workbench.loaders.memory_snapshot import load_snapshot
    from workbench.rules import run_rules

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "long_history.synthetic.snapshot.pickle"
        path.write_bytes(pickle.dumps(synthetic_snapshot(args.events), protocol=4))
        size = path.stat().st_size
        start = time.perf_counter()
        snapshot = load_snapshot(path)
        loaded = time.perf_counter()
        summarize_snapshot(snapshot, None, 50)
        summarized = time.perf_counter()
        inputs = analyze_path(path, AnalyzeOptions())
        findings = run_rules(inputs)
        total = time.perf_counter() - summarized
    events = len(snapshot.devices[0].history)
    print(f"snapshot: {events} history events, {size / 2**20:.1f} MiB pickle")
    print(f"load (restricted unpickler + columns): {loaded - start:.2f} s")
    print(f"replay, layout, sites at dump, peak and OOM: {summarized - loaded:.2f} s")
    print(f"workbench analyze end to end (load, analysis, rules): {total:.2f} s; findings: "
          f"{[f.id for f in findings]}")


if __name__ == "__main__":
    main()
