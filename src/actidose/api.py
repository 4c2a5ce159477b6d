"""The Python API: the study database as polars DataFrames.

>>> import actidose
>>> with actidose.open("actidose.duckdb") as study:          # doctest: +SKIP
...     weekly = study.weekly_dose(participant_id="P001")
...     phq = study.symptom_exposure(instrument="phq9")
...     rated = study.sql("select * from load_series where ctl > $x", x=20)

Every table method takes ``participant_id`` (one id or a list) and returns the rows sorted by
participant and time; :attr:`Study.con` is the DuckDB connection for anything else.
"""

from __future__ import annotations

import os
from types import TracebackType

import duckdb
import polars as pl

from .errors import UsageError
from .storage.db import connect, fetch_arrow


class Study:
    """An open actidose database. Read-only by default, so it can sit beside a running CLI
    query; pass ``read_only=False`` to write through :attr:`con`."""

    def __init__(self, db: str | os.PathLike[str] | None = None, *, read_only: bool = True):
        self.con: duckdb.DuckDBPyConnection = connect(db, read_only=read_only)

    def sql(self, query: str, **params: object) -> pl.DataFrame:
        """Run SQL with ``$name`` parameters bound from keyword arguments."""
        frame = pl.from_arrow(fetch_arrow(self.con.execute(query, params or None)))
        assert isinstance(frame, pl.DataFrame)
        return frame

    def tables(self) -> list[str]:
        rows = self.con.execute(
            "SELECT table_name FROM information_schema.tables ORDER BY 1"
        ).fetchall()
        return [r[0] for r in rows]

    def table(self, name: str, *, participant_id: str | None = None) -> pl.DataFrame:
        """A whole table, or one participant's rows of it."""
        if name not in self.tables():
            raise UsageError(f"no table {name!r}", fix="tables: " + ", ".join(self.tables()))
        if participant_id is None:
            return self.sql(f'SELECT * FROM "{name}"')
        return self.sql(f'SELECT * FROM "{name}" WHERE participant_id = $pid', pid=participant_id)

    def _rows(
        self,
        name: str,
        order: str,
        participant_id: str | list[str] | None,
        **where: object,
    ) -> pl.DataFrame:
        clauses: list[str] = []
        params: dict[str, object] = {}
        if participant_id is not None:
            ids = [participant_id] if isinstance(participant_id, str) else list(participant_id)
            clauses.append("participant_id IN (SELECT unnest($ids))")
            params["ids"] = ids
        for col, value in where.items():
            if value is not None:
                clauses.append(f"{col} = ${col}")
                params[col] = value
        cond = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        return self.sql(f'SELECT * FROM "{name}"{cond} ORDER BY {order}', **params)

    def participants(self) -> pl.DataFrame:
        """The roster: sex, birth year, zone, arm, start date and the entered anchors."""
        return self._rows("participants", "participant_id", None)

    def sessions(self, participant_id: str | list[str] | None = None) -> pl.DataFrame:
        """Every recorded exercise; ``counted`` marks the one of each linked group that counts."""
        return self._rows("sessions", "participant_id, start_ts, session_id", participant_id)

    def daily_load(self, participant_id: str | list[str] | None = None) -> pl.DataFrame:
        """Per participant and local day: TRIMP, minutes by intensity, wear, ``day_status``."""
        return self._rows("daily_load", "participant_id, day", participant_id)

    def load_series(self, participant_id: str | list[str] | None = None) -> pl.DataFrame:
        """CTL/ATL/TSB, ACWR, monotony and strain per day, with how unobserved days were
        treated."""
        return self._rows("load_series", "participant_id, day", participant_id)

    def weekly_dose(self, participant_id: str | list[str] | None = None) -> pl.DataFrame:
        """Per ISO week: sessions, TRIMP, moderate/vigorous and WHO-equivalent minutes."""
        return self._rows("weekly_dose", "participant_id, week_start", participant_id)

    def symptoms(
        self, participant_id: str | list[str] | None = None, *, instrument: str | None = None
    ) -> pl.DataFrame:
        """Item values as imported (one row per item of a rating)."""
        return self._rows(
            "symptoms",
            "participant_id, instrument, ts, item",
            participant_id,
            instrument=instrument,
        )

    def symptom_scores(
        self, participant_id: str | list[str] | None = None, *, instrument: str | None = None
    ) -> pl.DataFrame:
        """One row per rating: the instrument's score, band and completeness."""
        return self._rows(
            "symptom_scores",
            "participant_id, instrument, ts",
            participant_id,
            instrument=instrument,
        )

    def symptom_exposure(
        self,
        participant_id: str | list[str] | None = None,
        *,
        instrument: str | None = None,
        lag_days: int | None = None,
    ) -> pl.DataFrame:
        """One row per rating and lag: the dose in ``[window_start, window_end)`` before it,
        the load model the day before, and the window's data coverage."""
        return self._rows(
            "symptom_exposure",
            "participant_id, instrument, ts, lag_days",
            participant_id,
            instrument=instrument,
            lag_days=lag_days,
        )

    def symptom_days(
        self, participant_id: str | list[str] | None = None, *, instrument: str | None = None
    ) -> pl.DataFrame:
        """One row per participant, instrument and day (days without a rating or without data
        present and marked): the panel for daily-rating models."""
        return self._rows(
            "symptom_days", "participant_id, instrument, day", participant_id, instrument=instrument
        )

    def adherence(self, participant_id: str | list[str] | None = None) -> pl.DataFrame:
        """Per participant and prescribed week: sessions done against prescribed, minutes in
        the target band, TRIMP delivered against prescribed, percent adherence."""
        return self._rows("adherence", "participant_id, week", participant_id)

    def adherence_summary(self, participant_id: str | list[str] | None = None) -> pl.DataFrame:
        """Per participant over the whole prescription."""
        return self._rows("adherence_summary", "participant_id", participant_id)

    def hr_anchors(self, participant_id: str | list[str] | None = None) -> pl.DataFrame:
        """Entered anchor versions (valid from a local date)."""
        return self._rows("hr_anchors", "participant_id, valid_from", participant_id)

    def hr_estimates(self, participant_id: str | list[str] | None = None) -> pl.DataFrame:
        """Resting and maximal HR estimated from the data, per day."""
        return self._rows("hr_estimates", "participant_id, day", participant_id)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Study:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_study(db: str | os.PathLike[str] | None = None, *, read_only: bool = True) -> Study:
    """Open the database (``db``, else ``$ACTIDOSE_DB``, else ``./actidose.duckdb``)."""
    return Study(db, read_only=read_only)
