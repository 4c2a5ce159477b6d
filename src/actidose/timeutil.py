"""UTC instants to local calendar days, vectorized over arrays of instants.

``zoneinfo`` answers one instant at a time. UTC offsets only change at transitions, and every
transition in the tz database falls on a quarter hour, so we ask zoneinfo once per distinct
15-minute bucket that occurs in the data and broadcast the answer back. A week of 1 Hz data has
672 buckets: the Python part stays tiny whatever the sample count.
"""

from __future__ import annotations

from datetime import UTC, datetime
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


def utc_offsets_s(ts_us: npt.NDArray[np.int64], tz: str) -> npt.NDArray[np.int64]:
    """UTC offset in seconds (local - UTC) in zone ``tz`` at each instant ``ts_us``
    (microseconds since the Unix epoch, UTC)."""
    ts_us = np.asarray(ts_us, dtype=np.int64)
    if ts_us.size == 0:
        return np.empty(0, np.int64)
    z = zone(tz)
    buckets, inverse = np.unique(ts_us // _BUCKET_US, return_inverse=True)
    offs = np.empty(buckets.size, np.int64)
    for i, b in enumerate(buckets.tolist()):
        off = datetime.fromtimestamp(b * (_BUCKET_US // US_PER_S), tz=UTC).astimezone(z).utcoffset()
        offs[i] = int(off.total_seconds()) if off is not None else 0
    return offs[inverse.reshape(-1)]


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
