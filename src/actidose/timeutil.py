"""UTC instants to local calendar days, vectorized over arrays of instants.

``zoneinfo`` answers one instant at a time. UTC offsets only change at transitions, and every
transition in the tz database falls on a quarter hour. For each zone and calendar year that
occurs in the data we find the year's transitions once (zoneinfo asked at every UTC midnight,
then a bisection to the quarter hour between two days whose offsets differ) and cache them for
the process; every instant is then placed with one ``searchsorted``. A year costs about 400
zoneinfo calls once, whatever the sample count. (The daily probe assumes no zone changes its
offset and back within one day, which no zone in the tz database does.)
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

from .errors import UsageError

_BUCKET_US = 15 * 60 * 1_000_000
US_PER_S = 1_000_000
US_PER_DAY = 86_400 * US_PER_S


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``, or a UsageError naming it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UsageError(
            f"unknown time zone {name!r}",
            fix="use an IANA name such as Europe/London or America/New_York",
        ) from exc


def _offset_at(z: ZoneInfo, bucket: int) -> int:
    when = datetime.fromtimestamp(bucket * (_BUCKET_US // US_PER_S), tz=UTC)
    off = when.astimezone(z).utcoffset()
    return int(off.total_seconds()) if off is not None else 0


_BUCKETS_PER_DAY = 96


@lru_cache(maxsize=4096)
def _year_table(tz: str, year: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The UTC offsets of zone ``tz`` over UTC calendar year ``year``, as (first 15-minute bucket
    of each constant stretch, its offset in seconds)."""
    z = zone(tz)
    first = int(np.datetime64(f"{year:04d}-01-01", "D").astype(np.int64))
    last = int(np.datetime64(f"{year + 1:04d}-01-01", "D").astype(np.int64))
    starts = [first * _BUCKETS_PER_DAY]
    offs = [_offset_at(z, starts[0])]
    for day in range(first + 1, last + 1):
        b = day * _BUCKETS_PER_DAY
        o = _offset_at(z, b)
        if o == offs[-1]:
            continue
        lo, hi = b - _BUCKETS_PER_DAY, b  # offset offs[-1] at lo, o at hi
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if _offset_at(z, mid) == offs[-1]:
                lo = mid
            else:
                hi = mid
        if hi < last * _BUCKETS_PER_DAY:
            starts.append(hi)
            offs.append(o)
    return np.asarray(starts, np.int64), np.asarray(offs, np.int64)


def utc_offsets_s(ts_us: npt.NDArray[np.int64], tz: str) -> npt.NDArray[np.int64]:
    """UTC offset in seconds (local - UTC) in zone ``tz`` at each instant ``ts_us``
    (microseconds since the Unix epoch, UTC)."""
    ts_us = np.asarray(ts_us, dtype=np.int64)
    if ts_us.size == 0:
        return np.empty(0, np.int64)
    zone(tz)  # a clear error for an unknown zone
    buckets = ts_us // _BUCKET_US
    lo, hi = int(buckets.min()), int(buckets.max())
    y0 = int(np.datetime64(lo * 15, "m").astype("datetime64[Y]").astype(np.int64)) + 1970
    y1 = int(np.datetime64(hi * 15, "m").astype("datetime64[Y]").astype(np.int64)) + 1970
    years = range(y0, y1 + 1)
    if len(years) > 60:
        # Instants over many decades (a few files far apart): tables for present years only
        # (each year's table is cached per zone, so a range of years costs nothing twice).
        present = np.unique(
            (np.unique(buckets) * 15).astype("datetime64[m]").astype("datetime64[Y]").astype(int)
        )
        years = [int(y) + 1970 for y in present]  # type: ignore[assignment]
    tables = [_year_table(tz, y) for y in years]
    starts = np.concatenate([t[0] for t in tables])
    offs = np.concatenate([t[1] for t in tables])
    i = np.searchsorted(starts, buckets, "right") - 1
    return offs[np.maximum(i, 0)]


def local_days(ts_us: npt.NDArray[np.int64], tz: str) -> npt.NDArray[np.datetime64]:
    """Local calendar date (datetime64[D]) in zone ``tz`` of each UTC instant."""
    ts_us = np.asarray(ts_us, dtype=np.int64)
    local_us = ts_us + utc_offsets_s(ts_us, tz) * US_PER_S
    return (local_us // US_PER_DAY).astype("datetime64[D]")


def day_start_utc_us(days: npt.NDArray[np.datetime64], tz: str) -> npt.NDArray[np.int64]:
    """UTC instant (us) of local midnight starting each date in ``days`` (23/25-hour days at DST
    come out right: the next midnight minus this one)."""
    days = np.asarray(days, dtype="datetime64[D]")
    guess = days.astype(np.int64) * US_PER_DAY  # local midnight read as if it were UTC
    # Offset at the guessed instant, then once more at the corrected instant (settles at DST).
    off1 = utc_offsets_s(guess, tz) * US_PER_S
    off2 = utc_offsets_s(guess - off1, tz) * US_PER_S
    return guess - off2


def to_epoch_us(ts: npt.NDArray[np.datetime64]) -> npt.NDArray[np.int64]:
    return np.asarray(ts, dtype="datetime64[us]").astype(np.int64)


LOCAL_OK = 0
LOCAL_AMBIGUOUS = 1  # in a repeated hour (DST ends): resolved by file order, see below
LOCAL_NONEXISTENT = 2  # in a skipped hour (DST starts): no such local time


def local_to_utc(
    local_us: npt.NDArray[np.int64], tz: str
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int8]]:
    """UTC instants (us) of naive local wall times ``local_us`` (microseconds since
    1970-01-01T00:00 *local*) in zone ``tz``, and a status per value.

    A wall time in the hour repeated when DST ends is ambiguous. Samples arrive in time order,
    so the first pass through the hour is the earlier instant and a value that comes after a
    later wall time already seen (the clock went back) is the second pass. Wall times in the
    hour skipped when DST starts do not exist: their status is ``LOCAL_NONEXISTENT`` and their
    instant is computed with the offset in force before the change (callers count and drop
    them, or keep them, as their format requires).
    """
    local_us = np.asarray(local_us, dtype=np.int64)
    if local_us.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int8)
    half_day = 12 * 3600 * US_PER_S
    off_before = utc_offsets_s(local_us - half_day, tz) * US_PER_S
    off_after = utc_offsets_s(local_us + half_day, tz) * US_PER_S
    u_before = local_us - off_before
    u_after = local_us - off_after
    ok_before = utc_offsets_s(u_before, tz) * US_PER_S == off_before
    ok_after = utc_offsets_s(u_after, tz) * US_PER_S == off_after
    status = np.zeros(local_us.size, np.int8)
    ambiguous = ok_before & ok_after & (u_before != u_after)
    status[ambiguous] = LOCAL_AMBIGUOUS
    status[~ok_before & ~ok_after] = LOCAL_NONEXISTENT
    # Second pass through a repeated hour: from the first value (in order) whose wall time is
    # earlier than one already seen, until the hour is over. Hours are told apart by local date
    # (a zone changes clock at most once a day).
    seen_max = np.maximum.accumulate(local_us)
    went_back = np.zeros(local_us.size, bool)
    went_back[1:] = seen_max[:-1] > local_us[1:]
    back_events = np.cumsum(went_back & ambiguous)
    second_pass = np.zeros(local_us.size, bool)
    if ambiguous.any():
        idx = np.flatnonzero(ambiguous)
        day = local_us[idx] // US_PER_DAY
        _, first_idx, inverse = np.unique(day, return_index=True, return_inverse=True)
        start = idx[first_idx][inverse.reshape(-1)]
        before = np.where(start > 0, back_events[np.maximum(start - 1, 0)], 0)
        second_pass[idx] = back_events[idx] > before
    first = np.minimum(u_before, u_after)
    second = np.maximum(u_before, u_after)
    utc = np.where(ok_before, u_before, u_after)
    utc = np.where(ambiguous, np.where(second_pass, second, first), utc)
    utc = np.where(status == LOCAL_NONEXISTENT, u_before, utc)
    return utc, status


def shift_local_days(
    ts_us: npt.NDArray[np.int64], tz: str, days: npt.ArrayLike
) -> npt.NDArray[np.int64]:
    """The instants ``days`` local calendar days before ``ts_us`` (``days < 0``: after).

    Whole days move the local wall-clock date and keep the wall-clock time, across DST
    changes: 14 days before 10:00 BST on 8 April is 10:00 GMT on 25 March (14 x 24 h less
    1 h, the day the clocks went forward being 23 h long). The fractional part of ``days``
    (with the sign of ``days``) is then taken off as elapsed time (``days = 1.5``: one
    calendar day back, then 12 hours more).

    A shifted wall time that does not exist (in the hour skipped when DST starts) moves
    forward by the gap (01:30 on the day London skips 01:00-02:00 becomes 02:30 BST); one that
    occurs twice (the repeated hour when DST ends) takes the first, earlier instant.

    Parameters
    ----------
    ts_us : ndarray of int64
        UTC instants, microseconds since the Unix epoch.
    tz : str
        IANA zone whose calendar the days are counted in.
    days : float or array_like of float
        Days to go back, broadcast against ``ts_us``; finite.

    Returns
    -------
    ndarray of int64
        UTC instants, microseconds since the Unix epoch, shape of ``ts_us`` and ``days``
        broadcast together.

    Raises
    ------
    UsageError
        If ``tz`` is unknown or ``days`` is not finite.
    """
    ts = np.asarray(ts_us, dtype=np.int64)
    d = np.asarray(days, dtype=np.float64)
    if not np.all(np.isfinite(d)):
        raise UsageError(f"days must be finite, got {days!r}")
    ts, d = np.broadcast_arrays(ts, d)
    shape = ts.shape
    ts, d = ts.reshape(-1), d.reshape(-1)
    if ts.size == 0:
        return np.empty(shape, np.int64)
    whole = np.trunc(d)
    frac_us = np.round((d - whole) * US_PER_DAY).astype(np.int64)
    local = ts + utc_offsets_s(ts, tz) * US_PER_S - whole.astype(np.int64) * US_PER_DAY
    # As in local_to_utc: the offsets in force half a day either side of the wall time are the
    # candidates (no zone changes its clock twice within 12 hours).
    half_day = 12 * 3600 * US_PER_S
    off_before = utc_offsets_s(local - half_day, tz) * US_PER_S
    off_after = utc_offsets_s(local + half_day, tz) * US_PER_S
    u_before = local - off_before
    u_after = local - off_after
    ok_before = utc_offsets_s(u_before, tz) * US_PER_S == off_before
    ok_after = utc_offsets_s(u_after, tz) * US_PER_S == off_after
    # Both valid: ambiguous (or equal), take the earlier. Neither valid: a wall time in a gap;
    # read with the offset in force before the change it lands the gap's length later.
    utc = np.where(
        ok_before & ok_after,
        np.minimum(u_before, u_after),
        np.where(ok_after & ~ok_before, u_after, u_before),
    )
    return (utc - frac_us).reshape(shape)
