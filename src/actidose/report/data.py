"""What the reports show, gathered from an open :class:`~actidose.api.Study`: polars frames
straight from the study's tables and a few small dataclasses. No HTML and no matplotlib here.

One participant (:func:`participant_data`): the roster row, the arm's prescription with the
prescribed minutes in the band and TRIMP per week (:meth:`~actidose.prescription.Prescription.
band_min_per_week`, :meth:`~actidose.prescription.Prescription.trimp_prescribed_per_week` with
the participant's Banister coefficients), the parameter sets behind the derived rows, the entered
anchor versions, the anchors in force (runs of days of ``daily_load`` with the same anchor
sources) and every derived table a chart draws.

The cohort (:func:`cohort_data`): per-arm summaries, per-participant coverage and the flags of
:mod:`actidose.report.flags`.

Definitions used by the cohort summaries (also in docs):

* **study period** of a participant: the prescribed period (``adherence_summary.start_date`` to
  ``end_date``) when there is one, else the first to the last day of ``daily_load``; cut at the
  ``as_of`` day.
* **coverage**: observed days (``daily_load.day_status = 'observed'``) in the study period over
  the days of the period; an arm's coverage pools its participants' days.
* **weekly WHO-equivalent minutes**: ``weekly_dose.who_equiv_min`` of the participant-weeks
  entirely inside the participant's data range (``days = 7``), median and quartiles
  (linear interpolation, DuckDB's ``quantile_cont``).
* **adherence**: ``adherence_summary.adherence_pct`` of the arm's participants, mean and median.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from ..config import DoseConfig
from ..dose.hr import banister_coefficients
from ..errors import UsageError
from ..prescription import Prescription
from ..storage.prescriptions import all_prescriptions

if TYPE_CHECKING:
    from ..api import Study
    from .flags import FlagRules

__all__ = [
    "ArmPrescription",
    "CohortData",
    "ParameterSet",
    "ParticipantData",
    "ParticipantInfo",
    "anchors_in_force",
    "cohort_data",
    "default_as_of",
    "participant_data",
    "pending_participants",
    "write_readme_figure",
]


@dataclass(frozen=True)
class ParticipantInfo:
    """A participant's roster row (``participants``)."""

    participant_id: str
    timezone: str
    sex: str | None = None
    birth_year: int | None = None
    arm: str | None = None
    start_date: dt.date | None = None
    hr_rest_bpm: float | None = None
    hr_rest_source: str | None = None
    hr_max_bpm: float | None = None
    hr_max_source: str | None = None


@dataclass(frozen=True)
class ArmPrescription:
    """An arm's prescription as it applies to one participant.

    Attributes
    ----------
    prescription : Prescription
        As stored in ``prescriptions``.
    band_min_per_week : float or None
        :attr:`Prescription.band_min_per_week` (None: the arm has no intensity band).
    trimp_per_week : float or None
        :meth:`Prescription.trimp_prescribed_per_week` with the participant's Banister
        coefficients (None: not defined for this arm, or the participant's sex is unknown).
    trimp_source : {'prescribed', 'band_midpoint'} or None
        Where ``trimp_per_week`` comes from, as in ``adherence.trimp_prescribed_source``.
    """

    prescription: Prescription
    band_min_per_week: float | None
    trimp_per_week: float | None
    trimp_source: str | None

    @property
    def description(self) -> str:
        return self.prescription.describe()


@dataclass(frozen=True)
class ParameterSet:
    """A row of ``parameter_sets``: the dose parameters behind derived rows.

    ``changed`` names the parameters whose value differs from the defaults of
    :class:`~actidose.config.DoseConfig`.
    """

    params_id: str
    created_at: dt.datetime | None
    actidose_version: str | None
    params: dict[str, Any]
    changed: tuple[str, ...] = ()

    def config(self) -> DoseConfig:
        """The parameters as a :class:`~actidose.config.DoseConfig`."""
        return DoseConfig.from_json(json.dumps(self.params))


@dataclass
class ParticipantData:
    """Everything the participant report shows. Frames are what the :class:`Study` methods
    return for this participant (empty when there is nothing)."""

    info: ParticipantInfo
    prescription: ArmPrescription | None
    params: list[ParameterSet]
    load_series: pl.DataFrame
    sessions: pl.DataFrame
    daily_load: pl.DataFrame
    weekly_dose: pl.DataFrame
    symptom_scores: pl.DataFrame
    adherence: pl.DataFrame
    adherence_summary: pl.DataFrame
    anchors_entered: pl.DataFrame
    anchors_in_force: pl.DataFrame
    hr_estimates: pl.DataFrame
    pending: bool = False  # derived rows out of date (listed in pending_recompute)

    @property
    def first_day(self) -> dt.date | None:
        """First local day of ``daily_load`` (None: no data)."""
        return _date_or_none(self.daily_load["day"].min()) if self.daily_load.height else None

    @property
    def last_day(self) -> dt.date | None:
        """Last local day of ``daily_load`` (None: no data)."""
        return _date_or_none(self.daily_load["day"].max()) if self.daily_load.height else None

    @property
    def xlim(self) -> tuple[dt.date, dt.date] | None:
        """The day range shared by the load, symptom and weekly charts: from the first to the
        last day with load or a symptom score."""
        days: list[dt.date] = []
        for frame in (self.load_series, self.symptom_scores):
            if frame.height:
                lo, hi = _date_or_none(frame["day"].min()), _date_or_none(frame["day"].max())
                days.extend(d for d in (lo, hi) if d is not None)
        if not days:
            return None
        lo, hi = min(days), max(days)
        if hi == lo:
            hi = lo + dt.timedelta(days=1)
        return lo, hi

    @property
    def config(self) -> DoseConfig:
        """The parameters of the newest parameter set in use (the defaults when none)."""
        return self.params[-1].config() if self.params else DoseConfig()


@dataclass
class CohortData:
    """Everything the cohort report shows."""

    as_of: dt.date
    participants: pl.DataFrame
    prescriptions: dict[str, Prescription]
    adherence: pl.DataFrame
    adherence_summary: pl.DataFrame
    daily_load: pl.DataFrame
    arms: pl.DataFrame
    per_participant: pl.DataFrame
    flags: pl.DataFrame
    rules: FlagRules
    params: list[ParameterSet] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)


def _date_or_none(value: object) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    raise TypeError(f"not a date: {value!r}")


def _scalar(study: Study, query: str, **params: object) -> Any:
    row = study.con.execute(query, params or None).fetchone()
    return row[0] if row else None


def pending_participants(study: Study) -> list[str]:
    """Participants whose derived rows are out of date (``pending_recompute``)."""
    rows = study.con.execute("SELECT participant_id FROM pending_recompute ORDER BY 1").fetchall()
    return [str(r[0]) for r in rows]


def _info(study: Study, participant_id: str) -> ParticipantInfo:
    frame = study.sql("SELECT * FROM participants WHERE participant_id = $pid", pid=participant_id)
    if not frame.height:
        known = study.sql("SELECT participant_id FROM participants ORDER BY 1 LIMIT 10")
        ids = ", ".join(known["participant_id"].to_list())
        raise UsageError(
            f"no participant {participant_id!r}",
            fix=f"participants: {ids}" if ids else "add participants first (actidose participant)",
        )
    row = frame.row(0, named=True)
    return ParticipantInfo(
        participant_id=row["participant_id"],
        timezone=row["timezone"],
        sex=row.get("sex"),
        birth_year=row.get("birth_year"),
        arm=row.get("arm"),
        start_date=row.get("start_date"),
        hr_rest_bpm=row.get("hr_rest_bpm"),
        hr_rest_source=row.get("hr_rest_source"),
        hr_max_bpm=row.get("hr_max_bpm"),
        hr_max_source=row.get("hr_max_source"),
    )


def _parameter_sets(study: Study, ids: list[str]) -> list[ParameterSet]:
    """The parameter sets ``ids`` (oldest first by ``created_at``)."""
    if not ids:
        return []
    frame = study.sql(
        "SELECT params_id, created_at, actidose_version, params FROM parameter_sets "
        "WHERE params_id IN (SELECT unnest($ids)) ORDER BY created_at, params_id",
        ids=ids,
    )
    defaults = DoseConfig().to_dict()
    out: list[ParameterSet] = []
    for row in frame.iter_rows(named=True):
        raw = row["params"]
        params = json.loads(raw) if isinstance(raw, str) else dict(raw or {})
        changed = tuple(k for k in sorted(params) if k in defaults and params[k] != defaults[k])
        out.append(
            ParameterSet(
                params_id=row["params_id"],
                created_at=row["created_at"],
                actidose_version=row["actidose_version"],
                params=params,
                changed=changed,
            )
        )
    return out


def _params_in_use(study: Study, participant_id: str | None) -> list[ParameterSet]:
    """The parameter sets of the derived rows (of one participant, or of everyone)."""
    where = "" if participant_id is None else " WHERE participant_id = $pid"
    args: dict[str, object] = {} if participant_id is None else {"pid": participant_id}
    ids = study.sql(
        f"SELECT DISTINCT params_id FROM daily_load{where} "
        f"UNION SELECT DISTINCT params_id FROM sessions{where} "
        f"UNION SELECT DISTINCT params_id FROM adherence_summary{where}",
        **args,
    )
    return _parameter_sets(study, sorted(ids["params_id"].to_list()))


def _arm_prescription(
    study: Study, info: ParticipantInfo, cfg: DoseConfig
) -> ArmPrescription | None:
    if not info.arm:
        return None
    presc = {p.arm: p for p in all_prescriptions(study.con)}.get(info.arm)
    if presc is None:
        return None
    ab = banister_coefficients(info.sex, cfg.trimp_preset) if info.sex else None
    trimp = presc.trimp_prescribed_per_week(*(ab if ab is not None else (None, None)))
    source = (
        "prescribed"
        if presc.trimp_per_week is not None
        else "band_midpoint"
        if trimp is not None
        else None
    )
    return ArmPrescription(presc, presc.band_min_per_week, trimp, source)


def _anchors_entered(study: Study, info: ParticipantInfo) -> pl.DataFrame:
    """The base version (the roster row) and the dated versions of ``hr_anchors``."""
    base = pl.DataFrame(
        {
            "valid_from": [None],
            "hr_rest_bpm": [info.hr_rest_bpm],
            "hr_rest_source": [info.hr_rest_source],
            "hr_max_bpm": [info.hr_max_bpm],
            "hr_max_source": [info.hr_max_source],
            "note": ["base (participants row)"],
        },
        schema={
            "valid_from": pl.Date,
            "hr_rest_bpm": pl.Float64,
            "hr_rest_source": pl.String,
            "hr_max_bpm": pl.Float64,
            "hr_max_source": pl.String,
            "note": pl.String,
        },
    )
    versions = study.hr_anchors(info.participant_id)
    if not versions.height:
        return base
    dated = versions.select(
        pl.col("valid_from").cast(pl.Date),
        pl.col("hr_rest_bpm").cast(pl.Float64),
        pl.when(pl.col("hr_rest_bpm").is_not_null())
        .then(pl.lit("entered"))
        .otherwise(None)
        .alias("hr_rest_source"),
        pl.col("hr_max_bpm").cast(pl.Float64),
        pl.when(pl.col("hr_max_bpm").is_not_null())
        .then(pl.lit("entered"))
        .otherwise(None)
        .alias("hr_max_source"),
        pl.col("note").cast(pl.String),
    )
    return pl.concat([base, dated])


_RUN_KEYS = ("hr_rest_source", "hr_max_source", "anchor_valid_from")


def anchors_in_force(daily_load: pl.DataFrame) -> pl.DataFrame:
    """Runs of consecutive days of one participant's ``daily_load`` with the same anchor
    sources and entered version: first and last day, days, and the range of resting and
    maximal HR used (they vary from day to day when estimated from the data).

    Parameters
    ----------
    daily_load : pl.DataFrame
        One participant's ``daily_load`` rows (sorted by day).

    Returns
    -------
    pl.DataFrame
        Columns ``first_day``, ``last_day``, ``days``, ``hr_rest_source``, ``hr_rest_min``,
        ``hr_rest_max``, ``hr_max_source``, ``hr_max_min``, ``hr_max_max``,
        ``anchor_valid_from``; one row per run, in day order.
    """
    schema = {
        "first_day": pl.Date,
        "last_day": pl.Date,
        "days": pl.UInt32,
        "hr_rest_source": pl.String,
        "hr_rest_min": pl.Float64,
        "hr_rest_max": pl.Float64,
        "hr_max_source": pl.String,
        "hr_max_min": pl.Float64,
        "hr_max_max": pl.Float64,
        "anchor_valid_from": pl.Date,
    }
    if not daily_load.height:
        return pl.DataFrame(schema=schema)
    frame = daily_load.sort("day")
    for key in _RUN_KEYS:
        if key not in frame.columns:
            frame = frame.with_columns(pl.lit(None).alias(key))
    keys = [pl.col(k).cast(pl.String).fill_null("\x00") for k in _RUN_KEYS]
    changed = pl.any_horizontal([k != k.shift(1) for k in keys]).fill_null(True)
    runs = (
        frame.with_columns(changed.cum_sum().alias("_run"))
        .group_by("_run", maintain_order=True)
        .agg(
            pl.col("day").min().alias("first_day"),
            pl.col("day").max().alias("last_day"),
            pl.len().alias("days"),
            pl.col("hr_rest_source").first(),
            pl.col("hr_rest_bpm").min().alias("hr_rest_min"),
            pl.col("hr_rest_bpm").max().alias("hr_rest_max"),
            pl.col("hr_max_source").first(),
            pl.col("hr_max_bpm").min().alias("hr_max_min"),
            pl.col("hr_max_bpm").max().alias("hr_max_max"),
            pl.col("anchor_valid_from").first(),
        )
        .drop("_run")
    )
    return runs.select([pl.col(k).cast(t) for k, t in schema.items()])


def participant_data(study: Study, participant_id: str) -> ParticipantData:
    """Gather what the participant report shows.

    Parameters
    ----------
    study : Study
        An open study (``actidose.open(db)``).
    participant_id : str
        The participant.

    Returns
    -------
    ParticipantData

    Raises
    ------
    UsageError
        No such participant.
    """
    info = _info(study, participant_id)
    params = _params_in_use(study, participant_id)
    cfg = params[-1].config() if params else DoseConfig()
    daily = study.daily_load(participant_id)
    estimates = study.hr_estimates(participant_id)
    return ParticipantData(
        info=info,
        prescription=_arm_prescription(study, info, cfg),
        params=params,
        load_series=study.load_series(participant_id),
        sessions=study.sessions(participant_id),
        daily_load=daily,
        weekly_dose=study.weekly_dose(participant_id),
        symptom_scores=study.symptom_scores(participant_id),
        adherence=study.adherence(participant_id),
        adherence_summary=study.adherence_summary(participant_id),
        anchors_entered=_anchors_entered(study, info),
        anchors_in_force=anchors_in_force(daily),
        hr_estimates=estimates,
        pending=participant_id in pending_participants(study),
    )


def default_as_of(study: Study) -> dt.date:
    """The last day in the study: the latest local day with data (observed or partial) of any
    participant; today when nothing has data yet."""
    got = _scalar(study, "SELECT max(day) FROM daily_load WHERE day_status <> 'unobserved'")
    return _date_or_none(got) or dt.date.today()


_PERIODS = """
WITH per AS (
    SELECT p.participant_id, p.arm, p.start_date AS roster_start,
           s.start_date AS presc_start, s.end_date AS presc_end,
           s.adherence_pct, s.weeks, s.weeks_met, s.sessions_done, s.sessions_prescribed,
           (SELECT min(day) FROM daily_load d WHERE d.participant_id = p.participant_id)
               AS first_day,
           (SELECT max(day) FROM daily_load d WHERE d.participant_id = p.participant_id
               AND d.day <= $as_of AND d.day_status <> 'unobserved') AS last_data_day
    FROM participants p LEFT JOIN adherence_summary s USING (participant_id)
), bounds AS (
    SELECT *,
           coalesce(presc_start, first_day) AS period_start,
           least(coalesce(presc_end,
                          (SELECT max(day) FROM daily_load d
                           WHERE d.participant_id = per.participant_id)), $as_of) AS period_end
    FROM per
)
SELECT b.*,
       CASE WHEN period_start IS NULL OR period_end < period_start THEN 0
            ELSE date_diff('day', period_start, period_end) + 1 END AS period_days,
       (SELECT count(*) FROM daily_load d WHERE d.participant_id = b.participant_id
            AND d.day BETWEEN b.period_start AND b.period_end
            AND d.day_status = 'observed') AS days_observed,
       (SELECT count(*) FROM daily_load d WHERE d.participant_id = b.participant_id
            AND d.day BETWEEN b.period_start AND b.period_end
            AND d.day_status = 'partial') AS days_partial
FROM bounds b
"""

_ARMS = """
WITH p AS (SELECT participant_id, arm FROM participants),
n AS (SELECT arm, count(*) AS participants FROM p GROUP BY arm),
a AS (SELECT arm, count(*) AS with_prescription, avg(adherence_pct) AS adherence_mean,
             median(adherence_pct) AS adherence_median,
             CAST(sum(weeks_met) AS BIGINT) AS weeks_met, CAST(sum(weeks) AS BIGINT) AS weeks,
             CAST(sum(sessions_done) AS BIGINT) AS sessions_done,
             sum(sessions_prescribed) AS sessions_prescribed
      FROM adherence_summary GROUP BY arm),
w AS (SELECT p.arm, count(*) AS full_weeks,
             quantile_cont(w.who_equiv_min, 0.25) AS who_q1,
             quantile_cont(w.who_equiv_min, 0.5) AS who_median,
             quantile_cont(w.who_equiv_min, 0.75) AS who_q3,
             avg(CASE WHEN w.meets_who THEN 1.0 ELSE 0.0 END) * 100 AS weeks_meeting_who_pct
      FROM weekly_dose w JOIN p USING (participant_id)
      WHERE w.days = 7 AND w.who_equiv_min IS NOT NULL GROUP BY p.arm),
c AS (SELECT arm, CAST(sum(days_observed) AS BIGINT) AS days_observed,
             CAST(sum(period_days) AS BIGINT) AS period_days
      FROM ({periods}) GROUP BY arm)
SELECT n.arm, n.participants, coalesce(a.with_prescription, 0) AS with_prescription,
       a.adherence_mean, a.adherence_median, a.weeks_met, a.weeks, a.sessions_done,
       a.sessions_prescribed, coalesce(w.full_weeks, 0) AS full_weeks, w.who_median, w.who_q1,
       w.who_q3, w.weeks_meeting_who_pct,
       CASE WHEN c.period_days > 0 THEN 100.0 * c.days_observed / c.period_days END
           AS coverage_pct
FROM n LEFT JOIN a ON a.arm IS NOT DISTINCT FROM n.arm
       LEFT JOIN w ON w.arm IS NOT DISTINCT FROM n.arm
       LEFT JOIN c ON c.arm IS NOT DISTINCT FROM n.arm
ORDER BY n.arm NULLS LAST
""".replace("{periods}", _PERIODS)


def cohort_data(
    study: Study, rules: FlagRules | None = None, *, as_of: dt.date | None = None
) -> CohortData:
    """Gather what the cohort report shows.

    Parameters
    ----------
    study : Study
        An open study.
    rules : FlagRules, optional
        Flag thresholds (default :class:`~actidose.report.flags.FlagRules`).
    as_of : datetime.date, optional
        The day the report looks from (default: :func:`default_as_of`); overrides
        ``rules.as_of``.

    Returns
    -------
    CohortData
    """
    from .flags import FlagRules, cohort_flags

    rules = rules or FlagRules()
    day = as_of or rules.as_of or default_as_of(study)
    per = study.sql(_PERIODS + " ORDER BY participant_id", as_of=day).with_columns(
        pl.when(pl.col("period_days") > 0)
        .then(100.0 * pl.col("days_observed") / pl.col("period_days"))
        .otherwise(None)
        .alias("coverage_pct")
    )
    arms = study.sql(_ARMS, as_of=day)
    return CohortData(
        as_of=day,
        participants=study.participants(),
        prescriptions={p.arm: p for p in all_prescriptions(study.con)},
        adherence=study.adherence(),
        adherence_summary=study.adherence_summary(),
        daily_load=study.daily_load(),
        arms=arms,
        per_participant=per,
        flags=cohort_flags(study, rules, as_of=day),
        rules=rules,
        params=_params_in_use(study, None),
        pending=pending_participants(study),
    )


def write_readme_figure(db: str | os.PathLike[str] | None, path: str | os.PathLike[str]) -> Path:
    """The fitness/fatigue/form chart of the study's first participant (by id), with their
    sessions, saved to ``path`` (format from the suffix: png, svg or pdf).

    Made for the README: ``actidose demo`` then this on its database.

    Parameters
    ----------
    db : path-like or None
        The database (None: ``$ACTIDOSE_DB``, else ``./actidose.duckdb``).
    path : path-like
        Where to write the figure.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    UsageError
        No participants, or matplotlib is not installed.
    """
    from .. import open as open_study
    from .. import plots

    plots.require_matplotlib()
    with open_study(db) as study:
        first = study.sql("SELECT participant_id, arm FROM participants ORDER BY 1 LIMIT 1")
        if not first.height:
            raise UsageError("no participants in the database", fix="run actidose demo first")
        pid, arm = first.row(0)
        title = f"{pid} ({arm})" if arm else str(pid)
        fig = plots.pmc(
            study.load_series(pid),
            study.sessions(pid),
            title=f"Fitness, fatigue and form: {title}",
        )
    return plots.save(fig, Path(path))
