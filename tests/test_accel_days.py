"""Accelerometer epochs into daily and weekly dose, and HR + accelerometer minutes combined
without counting a minute twice."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest

from actidose.ingest.samples import clean_hr
from actidose.pipeline import import_paths
from actidose.recording import AccelEpochs, Recording
from actidose.storage.db import transaction
from actidose.storage.derive import recompute
from actidose.storage.write import store_recording

from .conftest import activity_file, add_p, utc

EPOCH = 5.0


def store_epochs(
    con: duckdb.DuckDBPyConnection,
    start: np.datetime64,
    enmo_mg: np.ndarray,
    nonwear: np.ndarray | None = None,
    sha: str = "acc",
) -> None:
    n = enmo_mg.size
    starts = start.astype("datetime64[us]").astype(np.int64) + np.arange(n) * int(EPOCH * 1e6)
    ep = AccelEpochs(
        start_us=starts,
        epoch_s=EPOCH,
        enmo_mg=enmo_mg.astype(float),
        mad_mg=np.zeros(n),
        nonwear=np.zeros(n, bool) if nonwear is None else nonwear,
        clipped=np.zeros(n, np.int64),
        n_samples=np.full(n, 500, np.int64),
        info={"sample_rate_hz": 100.0, "nonwear_rule": "ggir2023", "calibration_accepted": True},
    )
    rec = Recording(format="test", kind="allday", accel_epochs=ep)
    with transaction(con):
        store_recording(
            con,
            sha256=sha,
            path=f"/{sha}.cwa",
            size=1,
            participant_id="P001",
            rec=rec,
            hr=clean_hr(rec.hr),
            replace_id=None,
        )


def per_min(minutes: float) -> int:
    return int(minutes * 60 / EPOCH)


def test_accel_day(con: duckdb.DuckDBPyConnection) -> None:
    add_p(con, tz="UTC")
    day = np.full(per_min(24 * 60), 20.0)  # inactive
    day[per_min(600) : per_min(630)] = 200.0  # 30 min moderate (Hildebrand wrist: >= 100.6)
    day[per_min(630) : per_min(640)] = 500.0  # 10 min vigorous (>= 428.8)
    day[per_min(700) : per_min(760)] = 60.0  # an hour light
    nonwear = np.zeros(day.size, bool)
    nonwear[: per_min(240)] = True  # 4 h off the wrist
    store_epochs(con, np.datetime64("2024-05-06T00:00"), day, nonwear)
    recompute(con)
    row = con.execute(
        "SELECT wear_min, acc_light_min, acc_mod_min, acc_vig_min, acc_mvpa_min, "
        "acc_mvpa_bout10_min, acc_mvpa_bout1_min, mod_min, vig_min, valid_wear_day, day_status, "
        "hr_mod_min FROM daily_load"
    ).fetchone()
    assert row is not None
    wear, light, mod, vig, mvpa, b10, b1, cmod, cvig, valid, status, hr_mod = row
    assert wear == pytest.approx(20 * 60)
    assert light == pytest.approx(60) and mod == pytest.approx(30) and vig == pytest.approx(10)
    assert mvpa == pytest.approx(40) and b10 == pytest.approx(40) and b1 == pytest.approx(40)
    assert (cmod, cvig) == (pytest.approx(30), pytest.approx(10))  # no HR: the accel minutes
    assert valid is True and status == "observed"
    assert hr_mod is None or np.isnan(hr_mod)
    wk = con.execute(
        "SELECT mod_min, vig_min, who_equiv_min, valid_wear_days, "
        "acc_mvpa_bout10_min FROM weekly_dose"
    ).fetchone()
    assert wk == (pytest.approx(30), pytest.approx(10), pytest.approx(50), 1, pytest.approx(40))


def test_short_wear_is_not_a_valid_day(con: duckdb.DuckDBPyConnection) -> None:
    add_p(con, tz="UTC")
    day = np.full(per_min(24 * 60), 20.0)
    nonwear = np.ones(day.size, bool)
    nonwear[: per_min(8 * 60)] = False  # 8 h worn
    store_epochs(con, np.datetime64("2024-05-06T00:00"), day, nonwear)
    recompute(con)
    assert con.execute("SELECT valid_wear_day, day_status FROM daily_load").fetchone() == (
        False,
        "partial",
    )


def test_hr_and_accel_same_minutes_count_once(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """An hour of vigorous HR (150 bpm: 69 % of HR reserve) while the wrist reads moderate,
    then 20 accelerometer-only moderate minutes: 60 vigorous + 20 moderate, not 140."""
    add_p(con, tz="UTC")
    activity_file(tmp_path / "run.fit", utc(2024, 5, 6, 10), np.full(3600, 150.0))
    import_paths(con, [tmp_path / "run.fit"], "P001", recompute_after=False)
    day = np.full(per_min(24 * 60), 20.0)
    day[per_min(600) : per_min(680)] = 200.0  # 10:00-11:20 moderate by ENMO
    store_epochs(con, np.datetime64("2024-05-06T00:00"), day)
    recompute(con)
    row = con.execute(
        "SELECT hr_vig_min, acc_mod_min, mod_min, vig_min, mvpa_min FROM daily_load"
    ).fetchone()
    assert row is not None
    hr_vig, acc_mod, mod, vig, mvpa = row
    assert hr_vig == pytest.approx(60) and acc_mod == pytest.approx(80)
    assert vig == pytest.approx(60) and mod == pytest.approx(20) and mvpa == pytest.approx(80)
    wk = con.execute("SELECT who_equiv_min FROM weekly_dose").fetchone()
    assert wk == (pytest.approx(20 + 2 * 60),)


def test_custom_thresholds_are_a_named_parameter(con: duckdb.DuckDBPyConnection) -> None:
    from actidose.config import DoseConfig
    from actidose.errors import UsageError

    add_p(con, tz="UTC")
    day = np.full(per_min(24 * 60), 20.0)
    day[per_min(600) : per_min(630)] = 150.0
    store_epochs(con, np.datetime64("2024-05-06T00:00"), day)
    recompute(con, ["P001"], cfg=DoseConfig(accel_thresholds="custom:40,200,400"))
    assert con.execute("SELECT acc_light_min, acc_mod_min FROM daily_load").fetchone() == (
        pytest.approx(30),
        pytest.approx(0),
    )
    recompute(con, ["P001"], cfg=DoseConfig(accel_thresholds="ggir_default"))
    assert con.execute("SELECT acc_mod_min FROM daily_load").fetchone() == (pytest.approx(30),)
    for bad in ("custom:100,40,400", "custom:x", "mielke_2030"):
        with pytest.raises(UsageError):
            DoseConfig(accel_thresholds=bad).validate()
