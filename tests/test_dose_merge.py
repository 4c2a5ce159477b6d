"""Source priority: each second counted once; activity linking."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from actidose.dose.merge import merge_by_priority, overlap_groups

S = 1_000_000


def test_strap_wins_overlap_and_watch_fills_the_rest() -> None:
    watch = np.arange(0, 3600) * S  # 1 Hz for an hour
    strap = (np.arange(0, 600) + 1200) * S  # 1 Hz for 10 min in the middle
    ts = np.concatenate([watch, strap])
    src = np.concatenate([np.full(watch.size, 1), np.full(strap.size, 2)])
    m = merge_by_priority(ts, src, {2: 0, 1: 1})
    kept = np.sort(ts[m.keep])
    assert kept.size == 3600 and np.array_equal(kept, watch)
    assert np.all(m.keep[watch.size :])  # every strap sample kept
    assert m.n_dropped == 600


def test_sparse_source_dropped_inside_dense_one() -> None:
    dense = np.arange(0, 1800) * S
    sparse = np.arange(0, 7200, 60) * S  # all-day HR once a minute
    ts = np.concatenate([dense, sparse])
    src = np.concatenate([np.full(dense.size, 5), np.full(sparse.size, 3)])
    m = merge_by_priority(ts, src, {5: 0, 3: 1})
    kept_sparse = sparse[m.keep[dense.size :]]
    assert kept_sparse.min() >= 1800 * S  # none inside the workout
    assert kept_sparse.size == (7200 - 1800) // 60


def test_overlap_groups() -> None:
    g = overlap_groups(np.array([0, 10, 100, 50, 200]), np.array([60, 20, 150, 70, 210]))
    assert g.tolist() == [0, 0, 1, 0, 2]


@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 3)), max_size=200))
def test_merged_instants_are_unique_per_source_priority(pairs: list[tuple[int, int]]) -> None:
    ts = np.array([p[0] for p in pairs], np.int64) * S
    src = np.array([p[1] for p in pairs], np.int64)
    order = np.lexsort((ts, src))
    ts, src = ts[order], src[order]
    m = merge_by_priority(ts, src, {0: 0, 1: 1, 2: 2, 3: 3})
    # The best-ranked source present keeps all its samples.
    if ts.size:
        best = src.min()
        assert np.all(m.keep[src == best])
    assert m.n_dropped == ts.size - m.keep.sum()
