"""Shared fixtures: a fresh database, FIT files made on the fly, the shared corpus."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pytest

from actidose.ingest.fit_writer import write_activity_fit
from actidose.storage import participants
from actidose.storage.db import connect

SHARED = Path(__file__).resolve().parents[2] / "shared"
CORPUS = SHARED / "corpus"
VECTORS = SHARED / "reference" / "vectors.json"


def demo_study(tmp: Path, *args: str) -> Path:
    """A demo study made by ``actidose demo`` (files under ``tmp/files``; ``args``: its
    options), and the path of its database."""
    from click.testing import CliRunner

    from actidose.cli import main

    db = tmp / "demo.duckdb"
    r = CliRunner().invoke(main, ["--db", str(db), "demo", "--dir", str(tmp / "files"), *args])
    assert r.exit_code == 0, r.output
    return db


def need_corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS}")
    return CORPUS


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "study.duckdb"


@pytest.fixture
def con(db_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    c = connect(db_path)
    yield c
    c.close()


def add_p(
    con: duckdb.DuckDBPyConnection,
    pid: str = "P001",
    *,
    tz: str = "Europe/London",
    sex: str | None = "f",
    birth_year: int | None = 1990,
    hr_rest: float | None = 60.0,
    hr_max: float | None = 190.0,
) -> None:
    participants.add(
        con, participants.Participant(pid, tz, sex, birth_year, "aerobic", hr_rest, hr_max)
    )


def utc(*args: int) -> np.datetime64:
    return np.datetime64(datetime(*args, tzinfo=UTC).replace(tzinfo=None), "us")  # type: ignore[misc]


def activity_file(
    path: Path,
    start: np.datetime64,
    bpm: np.ndarray,
    *,
    step_s: int = 1,
    sport: str = "running",
    utc_offset_s: int = 0,
    serial: int = 12345,
) -> Path:
    """A FIT activity: one record every ``step_s`` seconds with the given HR values."""
    ts = start + (np.arange(bpm.size) * step_s * 1_000_000).astype("timedelta64[us]")
    write_activity_fit(
        path, ts, np.asarray(bpm, float), sport=sport, utc_offset_s=utc_offset_s, serial=serial
    )
    return path


def banister_f(minutes: float, hr: float, rest: float = 60.0, hmax: float = 190.0) -> float:
    """Banister TRIMP of ``minutes`` at constant ``hr`` for a woman (Banister/Morton 0.86/1.67),
    written out independently of the kernels."""
    import math

    x = (hr - rest) / (hmax - rest)
    return minutes * x * 0.86 * math.exp(1.67 * x)
