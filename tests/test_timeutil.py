"""Local days and naive local times across DST changes."""

from __future__ import annotations

import numpy as np
import pytest

from actidose.timeutil import (
    LOCAL_AMBIGUOUS,
    LOCAL_NONEXISTENT,
    LOCAL_OK,
    day_start_utc_us,
    local_days,
    local_to_utc,
    utc_offsets_s,
)


def us(s: str) -> np.int64:
    return np.datetime64(s, "us").astype(np.int64)


def test_local_days_london() -> None:
    ts = np.array([us("2024-03-31T00:30"), us("2024-03-31T23:30"), us("2024-06-01T23:30")])
    assert local_days(ts, "Europe/London").astype(str).tolist() == [
        "2024-03-31",
        "2024-04-01",
        "2024-06-02",
    ]


def test_day_lengths_at_dst() -> None:
    d = np.array(["2024-03-31", "2024-04-01", "2024-10-27", "2024-10-28"], "datetime64[D]")
    starts = day_start_utc_us(d, "Europe/London")
    assert (starts[1] - starts[0]) / 3.6e9 == 23
    assert (starts[3] - starts[2]) / 3.6e9 == 25


def test_spring_forward_gap_is_nonexistent() -> None:
    local = np.array([us("2024-03-31T00:59"), us("2024-03-31T01:30"), us("2024-03-31T02:00")])
    utc, status = local_to_utc(local, "Europe/London")
    assert status.tolist() == [LOCAL_OK, LOCAL_NONEXISTENT, LOCAL_OK]
    assert utc[0] == us("2024-03-31T00:59") and utc[2] == us("2024-03-31T01:00")


def test_fall_back_hour_resolved_by_order() -> None:
    # 01:00-01:59 local happens twice on 2024-10-27 in London (BST then GMT).
    wall = ["00:30", "01:15", "01:45", "01:05", "01:50", "02:10"]
    local = np.array([us(f"2024-10-27T{w}") for w in wall])
    utc, status = local_to_utc(local, "Europe/London")
    assert status.tolist() == [
        0,
        LOCAL_AMBIGUOUS,
        LOCAL_AMBIGUOUS,
        LOCAL_AMBIGUOUS,
        LOCAL_AMBIGUOUS,
        0,
    ]
    got = utc.astype("datetime64[us]").astype(str).tolist()
    assert [g[11:16] for g in got] == ["23:30", "00:15", "00:45", "01:05", "01:50", "02:10"]
    assert np.all(np.diff(utc) > 0)


@pytest.mark.parametrize("tz", ["UTC", "Asia/Kathmandu", "America/St_Johns", "Australia/Lord_Howe"])
def test_round_trip_away_from_changes(tz: str) -> None:
    utc = np.arange(us("2024-01-01"), us("2025-01-01"), 3_600_000_000 * 7 + 13)
    from actidose.timeutil import utc_offsets_s

    local = utc + utc_offsets_s(utc, tz) * 1_000_000
    back, status = local_to_utc(local, tz)
    fine = status == LOCAL_OK
    assert fine.mean() > 0.99
    assert np.array_equal(back[fine], utc[fine])


@pytest.mark.parametrize(
    "tz", ["Europe/London", "Australia/Lord_Howe", "Africa/Casablanca", "America/Sao_Paulo"]
)
@pytest.mark.parametrize("year", [1969, 2011, 2026])
def test_offsets_match_zoneinfo_every_quarter_hour_edge(tz: str, year: int) -> None:
    """The per-year transition tables give zoneinfo's answer at every quarter hour of a year
    and a microsecond either side of it (half-hour DST, Ramadan suspensions, pre-1970)."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    a = int(np.datetime64(f"{year}-01-01T00:00", "s").astype(np.int64))
    grid = np.arange(a, a + 366 * 86_400, 900, dtype=np.int64) * 1_000_000
    ts = np.concatenate([grid - 1, grid, grid + 1])
    z = ZoneInfo(tz)
    want = [
        int(datetime.fromtimestamp(t / 1e6, tz=UTC).astimezone(z).utcoffset().total_seconds())  # type: ignore[union-attr]
        for t in ts.tolist()
    ]
    assert utc_offsets_s(ts, tz).tolist() == want
