"""Write sample_traces/synthetic/kv_cache_growth.synthetic.snapshot.pickle.gz.

SYNTHETIC: no real snapshot here shows a cache grown with `torch.cat`, so this writes one in
the format of `torch.cuda.memory._dump_snapshot()` (torch 2.11 keys): greedy decoding of 4
layers for 96 tokens, each step allocating every layer's key/value cache one token larger and
freeing the old one, addresses handed out like the large pool does for requests that never fit
a freed block (always past the previous ones). Run: python tools/synthetic/kv_cache_growth_snapshot.py
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "sample_traces" / "synthetic" / "kv_cache_growth.synthetic.snapshot.pickle.gz"
LAYERS, PROMPT, NEW_TOKENS = 4, 32, 96
TOKEN_BYTES = 2 * 16 * 64 * 4 * 8  # keys and values, 16 heads x 64 dims, float32, a batch of 8
SEGMENT = 4 << 30
BASE = 0x7F00_0000_0000
FRAMES = [{"filename": "/home/user/serve/model.py", "line": 58, "name": "forward"},
          {"filename": "/venv/lib/python3.12/site-packages/torch/nn/modules/module.py", "line": 1790,
           "name": "_call_impl"},
          {"filename": "/home/user/serve/generate.py", "line": 21, "name": "decode"}]
FREE_FRAMES = [{"filename": "/home/user/serve/model.py", "line": 58, "name": "forward"}]


def rounded(size: int) -> int:
    return -(-size // 512) * 512


def main() -> None:
    trace = [{"action": "segment_alloc", "addr": BASE, "size": SEGMENT, "stream": 0, "time_us": 0, "frames": FRAMES}]
    live: dict[int, tuple[int, int]] = {}  # layer -> (address, size)
    cursor, time_us = BASE, 1
    for token in range(PROMPT, PROMPT + NEW_TOKENS):
        for layer in range(LAYERS):
            size = token * TOKEN_BYTES  # torch.cat((cache, new), dim=2): one token larger
            trace.append({"action": "alloc", "addr": cursor, "size": size, "stream": 0, "time_us": time_us,
                          "frames": FRAMES})
            old = live.get(layer)
            live[layer] = (cursor, size)
            cursor += rounded(size)
            if old:
                for action in ("free_requested", "free_completed"):
                    trace.append({"action": action, "addr": old[0], "size": old[1], "stream": 0,
                                  "time_us": time_us, "frames": FREE_FRAMES})
            time_us += 50
    blocks, offset = [], BASE
    for address, size in sorted(live.values()):
        if address > offset:
            blocks.append({"address": offset, "size": address - offset, "requested_size": 0, "state": "inactive",
                           "frames": []})
        blocks.append({"address": address, "size": rounded(size), "requested_size": size,
                       "state": "active_allocated", "frames": FRAMES})
        offset = address + rounded(size)
    blocks.append({"address": offset, "size": BASE + SEGMENT - offset, "requested_size": 0, "state": "inactive",
                   "frames": []})
    used = sum(rounded(s) for _, s in live.values())
    segment = {"device": 0, "address": BASE, "total_size": SEGMENT, "allocated_size": used, "active_size": used,
               "requested_size": sum(s for _, s in live.values()), "stream": 0, "segment_type": "large",
               "segment_pool_id": (0, 0), "is_expandable": False, "frames": FRAMES, "blocks": blocks}
    snapshot = {"segments": [segment], "device_traces": [trace],
                "allocator_settings": {"PYTORCH_CUDA_ALLOC_CONF": "", "expandable_segments": False,
                                       "max_split_size": -1, "garbage_collection_threshold": 0.0},
                "external_annotations": []}
    OUT.write_bytes(gzip.compress(pickle.dumps(snapshot, protocol=4), mtime=0))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(trace)} history events)")


if __name__ == "__main__":
    main()
