"""Garmin watches over USB: the known folder layouts, and idempotent import."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from actidose.errors import UsageError
from actidose.ingest.usb import find_fit_files
from actidose.storage.db import connect
from actidose.sync_cli import cli_for_tests

from .conftest import activity_file, add_p, utc


def _watch(root: Path, activity: str, monitor: str, garmin: str = "GARMIN") -> list[Path]:
    g = root / garmin
    (g / activity).mkdir(parents=True)
    (g / monitor).mkdir(parents=True)
    (g / "Settings").mkdir()
    (g / "Settings" / "settings.fit").write_bytes(b"not data")
    bpm = np.full(600, 130.0)
    files = [
        activity_file(g / activity / "2024-03-01-10-00-00.fit", utc(2024, 3, 1, 10), bpm),
        activity_file(g / activity / "2024-03-02-10-00-00.FIT", utc(2024, 3, 2, 10), bpm),
    ]
    (g / activity / "._2024-03-01-10-00-00.fit").write_bytes(b"\x00resource fork")
    (g / monitor / "notes.txt").write_text("x")
    return files


@pytest.mark.parametrize(
    ("activity", "monitor", "garmin"),
    [
        ("Activity", "Monitor", "GARMIN"),  # newer watches
        ("ACTIVITY", "MONITOR", "GARMIN"),  # old layout
        ("Activities", "Monitor", "Garmin"),  # Edge / older Forerunner
    ],
)
def test_layouts(tmp_path: Path, activity: str, monitor: str, garmin: str) -> None:
    files = _watch(tmp_path, activity, monitor, garmin)
    assert find_fit_files(tmp_path) == sorted(files)
    assert find_fit_files(tmp_path / garmin) == sorted(files)  # the GARMIN folder itself


def test_not_a_garmin(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no GARMIN folder"):
        find_fit_files(tmp_path)
    with pytest.raises(UsageError, match="not a folder"):
        find_fit_files(tmp_path / "missing")


def test_sync_usb_is_idempotent(tmp_path: Path, db_path: Path) -> None:
    with connect(db_path) as con:
        add_p(con)
    mount = tmp_path / "mnt"
    _watch(mount, "Activity", "Monitor")
    args = ["--db", str(db_path), "sync", "-P", "P001", "--usb", str(mount)]
    r1 = CliRunner().invoke(cli_for_tests(), args)
    assert r1.exit_code == 0, r1.output
    assert "imported" in r1.output
    r2 = CliRunner().invoke(cli_for_tests(), args)
    assert r2.exit_code == 0, r2.output
    assert "duplicate" in r2.output
    with connect(db_path) as con:
        assert con.execute("SELECT count(*) FROM sources").fetchone() == (2,)
        assert con.execute("SELECT count(*) FROM hr_samples").fetchone() == (1200,)
