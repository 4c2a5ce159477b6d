"""The Python API returns polars frames of the same tables the CLI shows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

import actidose
from actidose.errors import UsageError
from actidose.pipeline import import_paths
from actidose.storage.db import connect

from .conftest import activity_file, add_p, utc


def test_open_returns_polars(tmp_path: Path) -> None:
    db = tmp_path / "a.duckdb"
    con = connect(db)
    add_p(con)
    add_p(con, "P002")
    activity_file(tmp_path / "a.fit", utc(2024, 5, 6, 9), np.full(900, 150.0))
    import_paths(con, [tmp_path / "a.fit"], "P001")
    con.close()
    with actidose.open(db) as study:
        weekly = study.table("weekly_dose", participant_id="P001")
        assert isinstance(weekly, pl.DataFrame) and weekly.height == 1
        assert weekly["sessions"].to_list() == [1]
        p = study.sql(
            "select participant_id from participants where arm = $arm order by 1", arm="aerobic"
        )
        assert p["participant_id"].to_list() == ["P001", "P002"]
        with pytest.raises(UsageError):
            study.table("nope")
