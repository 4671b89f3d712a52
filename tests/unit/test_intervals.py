import numpy as np
import pytest

from workbench.analyses.intervals import (clip, covered_in, layered_lengths, merge, overlap_length, starts_inside,
                                          union_length)


def arr(*values: float) -> np.ndarray:
    return np.array(values, dtype=float)


def test_merge_joins_overlapping_and_touching_intervals():
    s, e = merge(arr(5, 0, 2, 10), arr(6, 3, 4, 11))
    assert s.tolist() == [0, 5, 10]
    assert e.tolist() == [4, 6, 11]


def test_merge_of_nested_intervals_keeps_the_outer_end():
    s, e = merge(arr(0, 1, 2), arr(10, 2, 3))
    assert (s.tolist(), e.tolist()) == ([0], [10])


def test_union_length_of_nothing_is_zero():
    assert union_length(arr(), arr()) == 0.0


def test_clip_drops_intervals_outside_the_window():
    s, e = clip(arr(0, 5, 20), arr(3, 15, 30), 2, 10)
    assert s.tolist() == [2, 5]
    assert e.tolist() == [3, 10]


def test_overlap_length():
    assert overlap_length((arr(0), arr(10)), (arr(5, 8), arr(7, 20))) == pytest.approx(4.0)


def test_layered_lengths_partition_the_union():
    compute = (arr(0), arr(10))
    comm = (arr(5), arr(15))
    memory = (arr(14, 20), arr(16, 22))
    lengths = layered_lengths([compute, comm, memory])
    assert lengths == pytest.approx([10, 5, 3])
    everything = np.concatenate([compute[0], comm[0], memory[0]]), np.concatenate([compute[1], comm[1], memory[1]])
    assert sum(lengths) == pytest.approx(union_length(*everything))


def test_starts_inside_the_union_of_nested_intervals():
    inside = starts_inside(arr(0, 1, 20), arr(10, 2, 30), arr(-1, 0, 5, 10, 25, 30))
    assert inside.tolist() == [False, True, True, False, True, False]
    assert starts_inside(arr(), arr(), arr(1, 2)).tolist() == [False, False]


def test_covered_in_each_window_is_the_union_clipped_to_it():
    rng = np.random.default_rng(0)
    starts = rng.uniform(0, 100, 40)
    ends = starts + rng.uniform(0, 10, 40)
    lo = rng.uniform(-10, 110, 25)
    hi = lo + rng.uniform(0, 40, 25)
    expected = [union_length(*clip(starts, ends, a, b)) for a, b in zip(lo, hi)]
    assert covered_in(starts, ends, lo, hi) == pytest.approx(expected)
    assert covered_in(arr(), arr(), arr(0, 5), arr(1, 9)).tolist() == [0.0, 0.0]
