"""Cohort flags: participants a trial team should look at, each with a reason.

Every rule is a named field of :class:`FlagRules` with a default; the day the flags look from
is ``as_of`` (default: the last day in the study, :func:`actidose.report.data.default_as_of`).

``no_data``
    No data (no observed or partial day of ``daily_load``) for ``no_data_days`` days or more
    (default 7): the days from the last day with data to ``as_of``. Counting stops at the end of
    the participant's prescribed period (``adherence_summary.end_date``), so someone who
    finished the programme is not flagged, and starts at the start date for someone with no
    data at all. Participants whose start date is after ``as_of`` are not flagged; a
    participant with neither data nor a start date is flagged ("no data imported").
``low_adherence``
    Adherence below ``min_adherence_pct`` (default 50 %) over the last ``adherence_weeks``
    (default 2) prescribed weeks that ended on or before ``as_of``: ``100 * min(sessions done /
    sessions prescribed, 1)`` summed over those weeks (the reading of
    ``adherence_summary.adherence_pct``). Fewer complete weeks: those there are; none: no flag.
``contact``
    Recordings (any imported source with heart rate: live Bluetooth syncs, watch files) that
    started in the ``sync_window_days`` days up to ``as_of`` (default 28) where at least
    ``max_invalid_pct`` % (default 10 %) of the heart-rate samples were not stored as heart
    rates (``sources.n_invalid``: a Bluetooth sensor's "no skin contact" and values outside
    25-250 bpm, e.g. the 0 bpm watches write without contact), counted over recordings with
    at least ``min_hr_samples`` samples (default 60); or whose ``sources.warnings`` mention
    skin contact.
``battery``
    A live sync whose device reported a battery level below ``min_battery_pct`` (default 20 %)
    in the same window. Only where the database stores the level (a ``battery_pct`` column of
    ``ble_sync``); :func:`battery_stored` says whether it does.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from ..errors import UsageError

if TYPE_CHECKING:
    from ..api import Study

__all__ = ["FLAG_KINDS", "FlagRules", "battery_stored", "cohort_flags"]

FLAG_KINDS = ("no_data", "low_adherence", "contact", "battery")
"""The flags, in the order a report lists them."""

_SCHEMA: dict[str, Any] = {
    "participant_id": pl.String,
    "arm": pl.String,
    "flag": pl.String,
    "reason": pl.String,
    "value": pl.Float64,
    "threshold": pl.Float64,
}


@dataclass(frozen=True)
class FlagRules:
    """Thresholds of the cohort flags (see the module docstring for each rule).

    Attributes
    ----------
    as_of : datetime.date or None
        The day the flags look from; None: the last day with data in the study.
    no_data_days : int
        Days without data that raise ``no_data`` (>= 1).
    min_adherence_pct : float
        Adherence (percent) below which ``low_adherence`` is raised (0-100).
    adherence_weeks : int
        How many of the last complete prescribed weeks adherence is measured over (>= 1).
    max_invalid_pct : float
        Share (percent) of a recording's HR samples without skin contact or invalid from which
        ``contact`` is raised (0-100, exclusive of 0).
    min_hr_samples : int
        Recordings with fewer HR samples (valid + invalid) are not judged for contact.
    min_battery_pct : float
        Battery level (percent) below which ``battery`` is raised.
    sync_window_days : int
        Recordings and syncs that started in this many days up to ``as_of`` are looked at for
        contact and battery (>= 1).
    """

    as_of: dt.date | None = None
    no_data_days: int = 7
    min_adherence_pct: float = 50.0
    adherence_weeks: int = 2
    max_invalid_pct: float = 10.0
    min_hr_samples: int = 60
    min_battery_pct: float = 20.0
    sync_window_days: int = 28

    def validate(self) -> None:
        """Raise :class:`~actidose.errors.UsageError` for a threshold that cannot work."""
        if self.no_data_days < 1:
            raise UsageError(f"no-data days must be >= 1, not {self.no_data_days}")
        if not 0 <= self.min_adherence_pct <= 100:
            raise UsageError(
                f"minimum adherence must be a percent (0-100), not {self.min_adherence_pct:g}",
                fix="e.g. --min-adherence 50",
            )
        if self.adherence_weeks < 1:
            raise UsageError(f"adherence weeks must be >= 1, not {self.adherence_weeks}")
        if not 0 < self.max_invalid_pct <= 100:
            raise UsageError(
                f"invalid-sample share must be in (0, 100], not {self.max_invalid_pct}"
            )
        if self.min_hr_samples < 1:
            raise UsageError(f"minimum HR samples must be >= 1, not {self.min_hr_samples}")
        if not 0 <= self.min_battery_pct <= 100:
            raise UsageError(f"battery threshold must be 0-100, not {self.min_battery_pct:g}")
        if self.sync_window_days < 1:
            raise UsageError(f"sync window must be >= 1 day, not {self.sync_window_days}")


def battery_stored(study: Study) -> bool:
    """Whether this database stores the battery level of live syncs (``ble_sync.battery_pct``)."""
    row = study.con.execute(
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_name = 'ble_sync' AND column_name = 'battery_pct'"
    ).fetchone()
    return bool(row and row[0])


def _flag(
    pid: str, arm: str | None, kind: str, reason: str, value: float | None, threshold: float
) -> dict[str, Any]:
    return {
        "participant_id": pid,
        "arm": arm,
        "flag": kind,
        "reason": reason,
        "value": value,
        "threshold": threshold,
    }


def _no_data(study: Study, rules: FlagRules, as_of: dt.date) -> list[dict[str, Any]]:
    frame = study.sql(
        "SELECT p.participant_id, p.arm, coalesce(s.start_date, p.start_date) AS start_date, "
        "s.end_date, (SELECT max(day) FROM daily_load d WHERE d.participant_id = "
        "p.participant_id AND d.day <= $as_of AND d.day_status <> 'unobserved') AS last_day "
        "FROM participants p LEFT JOIN adherence_summary s USING (participant_id) "
        "ORDER BY p.participant_id",
        as_of=as_of,
    )
    out: list[dict[str, Any]] = []
    n = rules.no_data_days
    for row in frame.iter_rows(named=True):
        start, end, last = row["start_date"], row["end_date"], row["last_day"]
        if start is not None and start > as_of:
            continue  # not started yet
        until = min(as_of, end) if end is not None else as_of
        if last is None:
            if start is None:
                reason, gap = "no data imported", None
            else:
                gap = (until - start).days + 1
                if gap < n:
                    continue
                reason = f"no data since the start date {start} ({gap} days)"
        else:
            gap = (until - last).days
            if gap < n:
                continue
            reason = f"no data for {gap} days (last day with data {last})"
        out.append(
            _flag(
                row["participant_id"],
                row["arm"],
                "no_data",
                reason,
                None if gap is None else float(gap),
                n,
            )
        )
    return out


def _low_adherence(study: Study, rules: FlagRules, as_of: dt.date) -> list[dict[str, Any]]:
    frame = study.sql(
        "WITH done AS (SELECT *, row_number() OVER (PARTITION BY participant_id "
        "ORDER BY week DESC) AS back FROM adherence WHERE week_end <= $as_of) "
        "SELECT participant_id, any_value(arm) AS arm, min(week) AS first_week, "
        "max(week) AS last_week, count(*) AS weeks, sum(sessions_done) AS done, "
        "sum(sessions_prescribed) AS prescribed FROM done WHERE back <= $k "
        "GROUP BY participant_id ORDER BY participant_id",
        as_of=as_of,
        k=rules.adherence_weeks,
    )
    out: list[dict[str, Any]] = []
    for row in frame.iter_rows(named=True):
        if not row["prescribed"]:
            continue
        pct = 100.0 * min(float(row["done"]) / float(row["prescribed"]), 1.0)
        if pct >= rules.min_adherence_pct:
            continue
        weeks = (
            f"week {row['last_week']}"
            if row["weeks"] == 1
            else f"weeks {row['first_week']}-{row['last_week']}"
        )
        reason = (
            f"adherence {pct:.0f} % over prescribed {weeks} ({row['done']:g} of "
            f"{row['prescribed']:g} sessions; threshold {rules.min_adherence_pct:g} %)"
        )
        out.append(
            _flag(
                row["participant_id"],
                row["arm"],
                "low_adherence",
                reason,
                pct,
                rules.min_adherence_pct,
            )
        )
    return out


def _window(rules: FlagRules, as_of: dt.date) -> dt.date:
    return as_of - dt.timedelta(days=rules.sync_window_days - 1)


def _contact(study: Study, rules: FlagRules, as_of: dt.date) -> list[dict[str, Any]]:
    frame = study.sql(
        "SELECT s.participant_id, p.arm, s.source_id, s.format, s.device, s.n_samples, "
        "s.n_invalid, s.warnings, "
        "CAST(timezone(p.timezone, coalesce(s.first_ts, s.imported_at)) AS DATE) AS day "
        "FROM sources s JOIN participants p USING (participant_id) "
        "WHERE s.status <> 'quarantined' ORDER BY s.participant_id, day, s.source_id"
    )
    if not frame.height:
        return []
    total = pl.col("n_samples").fill_null(0) + pl.col("n_invalid").fill_null(0)
    frame = frame.filter(pl.col("day").is_between(_window(rules, as_of), as_of)).with_columns(
        total.alias("total"),
        pl.when(total > 0)
        .then(100.0 * pl.col("n_invalid").fill_null(0) / total)
        .otherwise(0.0)
        .alias("invalid_pct"),
        pl.col("warnings").fill_null("").str.to_lowercase().str.contains("contact").alias("warn"),
    )
    bad = frame.filter(
        (
            (pl.col("total") >= rules.min_hr_samples)
            & (pl.col("invalid_pct") >= rules.max_invalid_pct)
        )
        | pl.col("warn")
    )
    out: list[dict[str, Any]] = []
    for (pid,), group in bad.group_by(["participant_id"], maintain_order=True):
        worst = group.sort(["invalid_pct", "day"], descending=[True, True]).row(0, named=True)
        n = group.height
        what = (worst["format"] or "file") + (f", {worst['device']}" if worst["device"] else "")
        reason = (
            f"{n} recording(s) since {_window(rules, as_of)} with heart rate lost to skin "
            f"contact or invalid: worst {worst['invalid_pct']:.0f} % of "
            f"{worst['total']} samples ({what}, {worst['day']})"
        )
        if group["warn"].any():
            reason += "; warnings mention skin contact"
        out.append(
            _flag(
                str(pid),
                worst["arm"],
                "contact",
                reason,
                float(worst["invalid_pct"]),
                rules.max_invalid_pct,
            )
        )
    return out


def _battery(study: Study, rules: FlagRules, as_of: dt.date) -> list[dict[str, Any]]:
    if not battery_stored(study):
        return []
    frame = study.sql(
        "SELECT s.participant_id, p.arm, s.device, b.battery_pct, "
        "CAST(timezone(p.timezone, coalesce(s.first_ts, s.imported_at)) AS DATE) AS day "
        "FROM ble_sync b JOIN sources s USING (source_id) JOIN participants p "
        "USING (participant_id) WHERE b.battery_pct < $low ORDER BY s.participant_id, day",
        low=rules.min_battery_pct,
    ).filter(pl.col("day").is_between(_window(rules, as_of), as_of))
    out: list[dict[str, Any]] = []
    for (pid,), group in frame.group_by(["participant_id"], maintain_order=True):
        low = group.sort(["battery_pct", "day"], descending=[False, True]).row(0, named=True)
        dev = f" ({low['device']})" if low["device"] else ""
        reason = (
            f"battery {low['battery_pct']:g} % in a sync on {low['day']}{dev}; "
            f"{group.height} sync(s) below {rules.min_battery_pct:g} % since "
            f"{_window(rules, as_of)}"
        )
        out.append(
            _flag(
                str(pid),
                low["arm"],
                "battery",
                reason,
                float(low["battery_pct"]),
                rules.min_battery_pct,
            )
        )
    return out


def cohort_flags(
    study: Study, rules: FlagRules | None = None, *, as_of: dt.date | None = None
) -> pl.DataFrame:
    """The flagged participants of a study, one row per participant and flag.

    Parameters
    ----------
    study : Study
        An open study (``actidose.open(db)``).
    rules : FlagRules, optional
        Thresholds; the defaults of :class:`FlagRules` when not given.
    as_of : datetime.date, optional
        The day to look from; overrides ``rules.as_of``. Default: the last day with data in the
        study.

    Returns
    -------
    pl.DataFrame
        Columns ``participant_id``, ``arm``, ``flag`` (one of :data:`FLAG_KINDS`), ``reason``
        (a sentence), ``value`` (days without data, adherence percent, invalid-sample percent
        or battery percent; NULL for "no data imported") and ``threshold``; sorted by
        participant, then flag in the order of :data:`FLAG_KINDS`.

    Raises
    ------
    UsageError
        A threshold that cannot work.
    """
    from .data import default_as_of

    rules = rules or FlagRules()
    rules.validate()
    day = as_of or rules.as_of or default_as_of(study)
    rows = (
        _no_data(study, rules, day)
        + _low_adherence(study, rules, day)
        + _contact(study, rules, day)
        + _battery(study, rules, day)
    )
    frame = pl.DataFrame(rows, schema=_SCHEMA)
    order = {k: i for i, k in enumerate(FLAG_KINDS)}
    return (
        frame.with_columns(pl.col("flag").replace_strict(order, return_dtype=pl.Int32).alias("_o"))
        .sort(["participant_id", "_o"])
        .drop("_o")
    )
