"""Pure functions of the multi-rank analyses, on small synthetic arrays."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.analyses.collective_waits import collective_waits, union_per_group
from workbench.analyses.collectives import Collectives, _call_kind, _elements, _kernel_kind, collective_table
from workbench.analyses.stragglers import robust_outliers
from workbench.models.trace import MISSING


def synthetic_calls(kinds, times, starts, nelems=None, steps=None) -> Collectives:
    n = len(kinds)
    return Collectives(
        event=np.arange(n), kind=np.array(kinds, dtype=object), process_group=np.full(n, "", dtype=object),
        nelems=np.array(nelems if nelems is not None else [MISSING] * n, dtype=np.int64),
        bytes=np.array([4.0 * e if e is not None and e >= 0 else np.nan for e in (nelems or [None] * n)]),
        start_us=np.array(starts, dtype=float), time_us=np.array(times, dtype=float),
        step=np.array(steps if steps is not None else [MISSING] * n, dtype=np.int64),
    )


def test_union_per_group_keeps_groups_apart():
    group = np.array([0, 0, 1, 1, 2])
    starts = np.array([0.0, 5.0, 0.0, 20.0, 3.0])
    ends = np.array([10.0, 12.0, 4.0, 21.0, 3.0])
    assert union_per_group(group, starts, ends, 4).tolist() == [12.0, 5.0, 0.0, 0.0]


def test_waits_blame_the_rank_with_the_shortest_collective():
    # synthetic: 3 ranks, two all_reduces; rank 2 arrives last in both (shortest kernel)
    ranks = [synthetic_calls(["all_reduce"] * 2, [10, 30], [0, 100], [8, 8]),
             synthetic_calls(["all_reduce"] * 2, [12, 20], [0, 100], [8, 8]),
             synthetic_calls(["all_reduce"] * 2, [2, 5], [8, 125], [8, 8])]
    waits = collective_waits(ranks)
    assert waits.matched == 2
    assert waits.waited_us.tolist() == [8 + 25, 10 + 15, 0]
    assert waits.late_count.tolist() == [0, 0, 2]
    assert waits.caused_us.tolist() == [0, 0, (33 + 25) / 2]


def test_waits_skip_collectives_missing_on_a_rank_and_sizes_that_differ():
    ranks = [synthetic_calls(["all_reduce", "broadcast"], [10, 5], [0, 50], [8, 4]),
             synthetic_calls(["all_reduce", "broadcast"], [4, 9], [0, 50], [16, 4])]
    waits = collective_waits(ranks)
    assert waits.matched == 1  # the all_reduces differ in size: not the same collective
    assert waits.waited_us.tolist() == [0, 4]


def test_robust_outliers():
    values = np.array([100.0, 101.0, 99.0, 100.5, 130.0, np.nan])
    assert robust_outliers(values, 5.0).tolist() == [False, False, False, False, True, False]
    # two ranks: no z-score, only the excess over the median counts
    assert robust_outliers(np.array([100.0, 120.0]), 5.0).tolist() == [False, True]
    assert robust_outliers(np.array([100.0, 104.0]), 5.0).tolist() == [False, False]


def test_collective_table_counts_time_and_bandwidth():
    calls = synthetic_calls(["all_reduce", "all_reduce", "all_to_all"], [1000.0, np.nan, 500.0], [0, 10, 20],
                            [250, 250, MISSING])
    rows = {r["kind"]: r for r in collective_table(calls)}
    assert rows["all_reduce"]["count"] == 2 and rows["all_reduce"]["total_ms"] == 1.0
    assert rows["all_reduce"]["mean_us"] == 1000.0 and rows["all_reduce"]["bytes_total"] == 2000
    assert rows["all_reduce"]["algbw_gbps"] == pytest.approx(1000 / 1000 / 1e3)
    assert rows["all_to_all"]["bytes_total"] is None and rows["all_to_all"]["algbw_gbps"] is None


def test_names_and_dims():
    assert _call_kind("nccl:_all_gather_base") == "all_gather"
    assert _call_kind("gloo:all_reduce") == "all_reduce"
    assert _kernel_kind("ncclDevKernel_AllReduce_Sum_f32_RING_LL(ncclDevKernelArgsStorage<4096ul>)") == "all_reduce"
    assert _kernel_kind("ncclKernel_SendRecv_RING_SIMPLE_Sum_int8_t(ncclWorkElem)") == "send_recv"
    assert _elements("[[65536, 384]]") == 65536 * 384
    assert _elements("[[], []]") == MISSING
