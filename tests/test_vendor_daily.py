"""``vendor_daily``: one source per local day and kind, checked against a plain loop over the
rows (what the rule says, one row at a time; its sums associate the values in another way, so
the values agree to rounding)."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from actidose.storage.derive import _VENDOR_MEAN_KINDS, vendor_daily
from actidose.timeutil import local_days

DAY_US = 86_400_000_000
T0 = 1_700_000_000_000_000  # 2023-11-14


def by_loop(rows: list[tuple[Any, ...]], tz: str) -> list[tuple[Any, ...]]:
    """(day, kind, unit, value, aggregate, source_id, origin, n_sources) per day and kind."""
    start = np.array([r[0] for r in rows], np.int64)
    dur = np.array([r[1] for r in rows], np.float64)
    mid = start + np.where(dur >= 23 * 3600, (dur * 5e5).astype(np.int64), 0)
    days = local_days(mid, tz).tolist()
    groups: dict[tuple[Any, str, int], list[float]] = {}
    meta: dict[tuple[Any, str, int], tuple[Any, Any]] = {}
    sha = {int(r[5]): str(r[7]) for r in rows}
    for d, r in zip(days, rows, strict=True):
        key = (d, r[3], int(r[5]))
        groups.setdefault(key, []).append(float(r[2]))
        meta[key] = (r[4], r[6])
    best: dict[tuple[Any, str], tuple[int, int, float, int]] = {}
    for (d, kind, sid), vals in groups.items():
        agg = float(np.mean(vals)) if kind in _VENDOR_MEAN_KINDS else float(np.sum(vals))
        prev = best.get((d, kind))
        n = (prev[3] if prev else 0) + 1
        if (
            prev is None
            or len(vals) > prev[1]
            or (len(vals) == prev[1] and sha[sid] < sha[prev[0]])
        ):
            best[(d, kind)] = (sid, len(vals), agg, n)
        else:
            best[(d, kind)] = (*prev[:3], n)
    out = []
    for d, kind in sorted(best):
        sid, _, agg, n = best[(d, kind)]
        unit, origin = meta[(d, kind, sid)]
        mean = kind in _VENDOR_MEAN_KINDS
        out.append((d, kind, unit, agg, "mean" if mean else "sum", sid, origin, n))
    return out


def by_arrays(rows: list[tuple[Any, ...]], tz: str) -> list[tuple[Any, ...]]:
    cols = list(zip(*rows, strict=True))
    got = vendor_daily(
        np.array(cols[0], np.int64),
        np.array(cols[1], np.float64),
        np.array(cols[2], np.float64),
        np.array(cols[3], object),
        np.array(cols[4], object),
        np.array(cols[5], np.int64),
        np.array(cols[6], object),
        np.array(cols[7], object),
        tz,
    )
    names = ["day", "kind", "unit", "value", "aggregate", "source_id", "origin", "n_sources"]
    return list(zip(*(got[n].tolist() for n in names), strict=True))


KINDS = ["steps", "resting_hr_bpm", "hrv_sdnn_ms", "energy_active_kcal"]
ROW = st.tuples(
    st.integers(0, 6 * DAY_US),  # start, from T0
    st.sampled_from([0.0, 60.0, 3600.0, 86399.0, 86400.0, 90000.0]),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.sampled_from(KINDS),
    st.sampled_from(["count", "bpm", None]),
    st.integers(1, 4),  # source
    st.sampled_from(["Watch", "iPhone", None]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(ROW, min_size=1, max_size=60), st.sampled_from(["UTC", "America/New_York"]))
def test_vendor_daily_equals_the_loop(raw: list[tuple[Any, ...]], tz: str) -> None:
    # sha256 per source: source 3 and 4 sort before 1 and 2 (ties go to the smaller one)
    sha = {1: "c" * 64, 2: "d" * 64, 3: "a" * 64, 4: "b" * 64}
    rows = [(T0 + s, d, v, k, u, sid, o, sha[sid]) for s, d, v, k, u, sid, o in raw]
    got, want = by_arrays(rows, tz), by_loop(rows, tz)
    # the same values summed in the same order, but not always associated alike
    assert [r[:3] + r[4:] for r in got] == [r[:3] + r[4:] for r in want]
    np.testing.assert_allclose([r[3] for r in got], [r[3] for r in want], rtol=1e-12, atol=1e-6)


def test_ties_go_to_the_smaller_sha256_and_sources_are_counted() -> None:
    rows = [
        (T0, 60.0, 100.0, "steps", "count", 1, "iPhone", "f" * 64),
        (T0 + 60, 60.0, 50.0, "steps", "count", 2, "Watch", "0" * 64),
        (T0 + 120, 60.0, 70.0, "steps", "count", 1, "iPhone", "f" * 64),
        (T0 + 180, 60.0, 20.0, "steps", "count", 2, "Watch", "0" * 64),
        (T0, 60.0, 60.0, "resting_hr_bpm", "bpm", 1, "Watch", "f" * 64),
        (T0 + 1, 60.0, 62.0, "resting_hr_bpm", "bpm", 1, "Watch", "f" * 64),
    ]
    got = by_arrays(rows, "UTC")
    assert [(r[1], r[3], r[5], r[6], r[7]) for r in got] == [
        ("resting_hr_bpm", 61.0, 1, "Watch", 1),
        ("steps", 70.0, 2, "Watch", 2),  # 2 values each: the smaller sha256 ("0...")
    ]
