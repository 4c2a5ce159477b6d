"""Counting each second once when several sources recorded it.

A workout often arrives twice (the watch's FIT and Strava's GPX of the same run) and two devices
often record at once (a chest strap and a watch). :func:`merge_by_priority` keeps, for every
instant, the samples of the most trusted source that covers it; :func:`overlap_groups` links the
activities that describe one exercise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]


def _merge_intervals(starts: I64, ends: I64) -> tuple[I64, I64]:
    """Union of half-open intervals, as sorted disjoint (starts, ends)."""
    if starts.size == 0:
        return starts, ends
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    run_end = np.maximum.accumulate(e)
    new = np.ones(s.size, bool)
    new[1:] = s[1:] > run_end[:-1]
    group = np.cumsum(new) - 1
    out_s = s[new]
    out_e = np.zeros(out_s.size, np.int64)
    np.maximum.at(out_e, group, e)
    return out_s, out_e


def _inside(t: I64, starts: I64, ends: I64) -> npt.NDArray[np.bool_]:
    if starts.size == 0:
        return np.zeros(t.size, bool)
    i = np.searchsorted(starts, t, "right") - 1
    ok = i >= 0
    res = np.zeros(t.size, bool)
    res[ok] = t[ok] < ends[i[ok]]
    return res


@dataclass(frozen=True)
class Merged:
    """``keep`` selects the samples (in the input order) that make the merged series."""

    keep: npt.NDArray[np.bool_]
    n_dropped: int  # samples of lower-priority sources at instants a better source covered


def merge_by_priority(
    ts_us: I64,
    source: I64,
    rank: dict[int, int],
    *,
    max_gap_s: float = 60.0,
) -> Merged:
    """Keep each sample unless a source of better (lower) ``rank`` covers its instant.

    A source covers ``[t, t + min(gap to its next sample, max_gap_s))`` around each of its
    samples (the step function of the reference conventions). Sources are taken best first;
    samples of a source at instants an earlier source already covers are dropped, the rest kept
    and their coverage added. Ties in ``rank`` are broken by source id. Within a source,
    ``ts_us`` must be sorted.
    """
    ts_us = np.asarray(ts_us, np.int64)
    source = np.asarray(source, np.int64)
    keep = np.zeros(ts_us.size, bool)
    cov_s = np.empty(0, np.int64)
    cov_e = np.empty(0, np.int64)
    cap = int(max_gap_s * 1e6)
    for sid in sorted(np.unique(source).tolist(), key=lambda s: (rank.get(s, 1 << 30), s)):
        idx = np.flatnonzero(source == sid)
        t = ts_us[idx]
        k = ~_inside(t, cov_s, cov_e)
        keep[idx[k]] = True
        tk = t[k]
        if tk.size:
            hold = np.empty(tk.size, np.int64)
            hold[:-1] = np.minimum(np.diff(tk), cap)
            hold[-1] = min(int(np.median(np.diff(tk))) if tk.size > 1 else 1_000_000, cap)
            hold = np.maximum(hold, 1)
            cov_s, cov_e = _merge_intervals(
                np.concatenate([cov_s, tk]), np.concatenate([cov_e, tk + hold])
            )
    return Merged(keep, int(ts_us.size - np.count_nonzero(keep)))


def overlap_groups(start_us: I64, end_us: I64) -> npt.NDArray[np.int64]:
    """Group id per activity: activities whose time ranges overlap (directly or through a
    chain) share a group. Ids are 0.. in order of the groups' starts."""
    start_us = np.asarray(start_us, np.int64)
    end_us = np.asarray(end_us, np.int64)
    if start_us.size == 0:
        return np.empty(0, np.int64)
    order = np.argsort(start_us, kind="stable")
    s, e = start_us[order], end_us[order]
    run_end = np.maximum.accumulate(e)
    new = np.ones(s.size, bool)
    new[1:] = s[1:] >= run_end[:-1]
    groups = np.empty(s.size, np.int64)
    groups[order] = np.cumsum(new) - 1
    return groups
