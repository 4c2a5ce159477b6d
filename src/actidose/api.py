"""The Python API: the study database as polars DataFrames.

>>> import actidose
>>> with actidose.open("actidose.duckdb") as study:          # doctest: +SKIP
...     weekly = study.table("weekly_dose", participant_id="P001")
...     rated = study.sql("select * from load_series where ctl > $x", x=20)
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
