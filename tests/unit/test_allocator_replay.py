"""Replaying real snapshot histories back to the OOM, also when the ring buffer lost the start."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tests.conftest import OOM_CAPACITY, OOM_EXPANDABLE
from workbench.analyses.allocator_replay import allocated_curve, state_after
from workbench.analyses.memory_layout import layout_of, pool_rows
from workbench.loaders.memory_snapshot import load_snapshot
from workbench.models.memory import OOM, History

CAPACITY = OOM_CAPACITY / "oom_capacity.snapshot.pickle.gz"
EXPANDABLE = OOM_EXPANDABLE / "oom_frag2_expandable.snapshot.pickle.gz"


def oom_index(device) -> int:
    return int(np.flatnonzero(device.history.action == OOM)[0])


def truncated(device, keep_from: int):
    """The same device as if the ring buffer had kept only events from `keep_from` on."""
    h = device.history
    history = History(action=h.action[keep_from:], address=h.address[keep_from:], size=h.size[keep_from:],
                      stream=h.stream[keep_from:], time_us=h.time_us[keep_from:], frames=h.frames[keep_from:],
                      device_free={i - keep_from: v for i, v in h.device_free.items() if i >= keep_from})
    return replace(device, history=history)


def test_capacity_state_at_oom_matches_the_allocator_statistics():
    device = load_snapshot(CAPACITY).devices[0]
    state = state_after(device, oom_index(device))
    # allocated_bytes.all.peak of torch.cuda.memory_stats() after the run (oom_capacity.meta.json):
    # the OOM came at the peak, and block sizes (rounding, unsplit remainders) are rebuilt exactly.
    assert state.allocated_bytes == 78538743808
    assert state.inconsistencies == 0


def test_expandable_state_at_oom():
    device = load_snapshot(EXPANDABLE).devices[0]
    state = state_after(device, oom_index(device))
    assert state.allocated_bytes == 3581 * (6 << 20)  # 3581 live 6 MiB blocks
    assert state.reserved_bytes == 67591208960  # reserved_bytes.all.current in the meta file
    large = pool_rows(layout_of(state))[0]
    assert (large["largest_free_block_bytes"], large["free_blocks"]) == (14 << 20, 3581)


@pytest.mark.parametrize("path", [CAPACITY, EXPANDABLE], ids=["capacity", "expandable"])
@pytest.mark.parametrize("keep", [0.3, 0.7])
def test_a_truncated_history_gives_the_same_state_at_the_oom(path, keep):
    device = load_snapshot(path).devices[0]
    full = state_after(device, oom_index(device))
    start = int(oom_index(device) * keep)
    cut = truncated(device, start)
    partial = state_after(cut, oom_index(cut))
    assert partial.allocated_bytes == full.allocated_bytes
    assert partial.reserved_bytes == full.reserved_bytes
    assert pool_rows(layout_of(partial)) == pool_rows(layout_of(full))
    assert allocated_curve(cut)[0] > 0  # the window starts with memory in use
    # Blocks allocated before the window keep no allocation frames; the others keep theirs.
    before = {b.address for b in full.blocks if not b.frames_from_alloc}
    assert {b.address for b in partial.blocks if b.frames_from_alloc} <= {b.address for b in full.blocks} - before


def test_final_state_without_history():
    snapshot = load_snapshot(CAPACITY)
    device = replace(snapshot.devices[0], history=truncated(snapshot.devices[0], len(snapshot.devices[0].history)).history)
    state = state_after(device, -1)
    assert state.allocated_bytes == 68157440  # allocated_bytes.all.current after the run
    assert state.reserved_bytes == 80882958336  # reserved_bytes.all.current
