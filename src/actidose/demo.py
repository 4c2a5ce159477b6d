"""An example study: participants in two arms with weeks of FIT files, written by our own FIT
writer with plausible heart-rate curves. Deterministic for a given seed."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .ingest.fit_writer import write_activity_fit, write_monitoring_fit
from .timeutil import zone

START = date(2024, 3, 4)  # a Monday; the weeks after cross the 2024 DST changes in UK and US


@dataclass
class Study:
    roster: Path
    participants: dict[str, Path] = field(default_factory=dict)
    n_files: int = 0
    ratings: Path | None = None  # long CSV: PHQ-9 at visits, a daily mood rating
    prescriptions: Path | None = None  # TOML: each arm's prescribed dose


#: The roster CSV's columns (``actidose participant import``).
ROSTER_COLUMNS = (
    "participant_id",
    "sex",
    "birth_year",
    "timezone",
    "arm",
    "hr_rest_bpm",
    "hr_max_bpm",
    "start_date",
)

PRESCRIPTIONS = """\
# The demo trial's prescriptions (see docs/study.md)
[arms.aerobic]
weeks = {weeks}
sessions_per_week = 3
min_session_min = 30
intensity = {{ scheme = "hrr", low = 0.60, high = 0.80 }}

[arms.stretching]
weeks = {weeks}
sessions_per_week = 3
min_session_min = 25
qualify = "duration"
"""


def _session_hr(
    rng: np.random.Generator, minutes: float, rest: float, hrmax: float, lo: float, hi: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Seconds from start and HR: warm-up ramp, a working phase between ``lo`` and ``hi``
    fractions of HR reserve with drift and noise, cool-down. Irregular 1-5 s spacing, as watches
    using 'smart recording' write."""
    total = minutes * 60.0
    steps = rng.integers(1, 6, size=int(total) + 10).astype(np.float64)
    t = np.concatenate([[0.0], np.cumsum(steps)])
    t = t[t <= total]
    frac_target = rng.uniform(lo, hi)
    warm, cool = 300.0, 240.0
    profile = np.clip(np.minimum(t / warm, (total - t) / cool), 0.0, 1.0)
    drift = 0.04 * (t / total)  # cardiac drift over the session
    noise = np.convolve(rng.normal(0, 0.03, t.size), np.ones(8) / 8, mode="same")
    frac = 0.15 + (frac_target - 0.15 + drift + noise) * profile
    return t, rest + frac * (hrmax - rest) + rng.normal(0, 1.5, t.size)


def _utc(day: date, local: time, tz: str) -> datetime:
    return datetime.combine(day, local, tzinfo=zone(tz)).astimezone(UTC)


def make_study(folder: Path, *, n_participants: int = 6, weeks: int = 6, seed: int = 2024) -> Study:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    study = Study(folder / "roster.csv")
    rows = []
    ratings: list[list[object]] = []
    for i in range(n_participants):
        pid = f"P{i + 1:03d}"
        arm = "aerobic" if i % 2 == 0 else "stretching"
        sex = "f" if i % 3 != 1 else "m"
        tz = "America/New_York" if i % 5 == 4 else "Europe/London"
        birth_year = int(rng.integers(1968, 2002))
        rest = float(rng.integers(54, 72))
        hrmax_true = 208 - 0.7 * (2024 - birth_year) + rng.normal(0, 4)
        hr_max_entered = round(hrmax_true) if i % 2 == 0 else None
        rows.append([pid, sex, birth_year, tz, arm, rest, hr_max_entered or "", START.isoformat()])
        pdir = folder / pid
        pdir.mkdir(exist_ok=True)
        study.participants[pid] = pdir
        serial = 3_900_000_000 + i
        adherence = rng.uniform(0.6, 1.0)
        ratings.extend(_ratings(rng, pid, tz, weeks, arm, adherence))
        for w in range(weeks):
            days = sorted(rng.choice(7, size=3, replace=False).tolist())
            for d in days:
                if rng.random() > adherence:
                    continue
                day = START + timedelta(days=7 * w + d)
                start = _utc(day, time(int(rng.integers(7, 19)), int(rng.integers(0, 60))), tz)
                if arm == "aerobic":
                    minutes = float(rng.uniform(30, 50))
                    sport: tuple[str, str | int] = (
                        ("running", "generic") if rng.random() < 0.6 else ("cycling", "road")
                    )
                    t, hr = _session_hr(rng, minutes, rest, hrmax_true, 0.58, 0.80)
                else:
                    minutes = float(rng.uniform(25, 40))
                    sport = ("training", 19)  # FIT sub_sport 19: flexibility_training
                    t, hr = _session_hr(rng, minutes, rest, hrmax_true, 0.15, 0.35)
                ts = np.datetime64(start.replace(tzinfo=None), "us") + (t * 1e6).astype(
                    "timedelta64[us]"
                )
                offset = int(start.astimezone(zone(tz)).utcoffset().total_seconds())  # type: ignore[union-attr]
                name = pdir / f"{start:%Y-%m-%d-%H%M%S}-activity.fit"
                write_activity_fit(
                    name,
                    ts,
                    np.rint(hr),
                    sport=sport[0],
                    sub_sport=sport[1],
                    utc_offset_s=offset,
                    serial=serial,
                )
                study.n_files += 1
        if i == 0:
            # One participant also wears the watch day and night: daily monitoring files.
            for dday in range(7 * weeks):
                day = START + timedelta(days=dday)
                if rng.random() < 0.1:
                    continue  # watch left on the charger
                t0 = _utc(day, time(0, 0), tz)
                t1 = _utc(day + timedelta(days=1), time(0, 0), tz)
                n = int((t1 - t0).total_seconds() // 60)
                worn = int(n * rng.uniform(0.55, 1.0))
                mins = np.arange(worn)
                hod = (mins / 60.0 + 0) % 24
                asleep = (hod < 6.5) | (hod > 23)
                base = np.where(asleep, rest - 4, rest + 14)
                hr = base + rng.normal(0, 3, worn)
                ts = np.datetime64(t0.replace(tzinfo=None), "us") + (mins * 60_000_000).astype(
                    "timedelta64[us]"
                )
                write_monitoring_fit(
                    pdir / f"{day:%Y-%m-%d}-monitor.fit", ts, np.rint(hr), serial=serial
                )
                study.n_files += 1
    with study.roster.open("w", newline="") as fp:
        out = csv.writer(fp)
        out.writerow(ROSTER_COLUMNS)
        out.writerows(rows)
    study.ratings = folder / "ratings.csv"
    with study.ratings.open("w", newline="") as fp:
        out = csv.writer(fp)
        out.writerow(["participant_id", "timestamp", "instrument", "item", "value"])
        out.writerows(ratings)
    study.prescriptions = folder / "arms.toml"
    study.prescriptions.write_text(PRESCRIPTIONS.format(weeks=weeks))
    return study


def _ratings(
    rng: np.random.Generator, pid: str, tz: str, weeks: int, arm: str, adherence: float
) -> list[list[object]]:
    """PHQ-9 at the baseline visit and every two weeks (10:00 local, with the zone's offset
    written), and a 0-10 mood rating most evenings (20:00 local, written without an offset:
    read in the participant's zone). Symptoms ease a little faster with more aerobic exercise."""
    out: list[list[object]] = []
    severity = rng.uniform(1.2, 2.0)  # mean item score at baseline
    ease = 0.04 + (0.05 * adherence if arm == "aerobic" else 0.0)
    for visit in range(0, 7 * weeks + 1, 14):
        day = START + timedelta(days=visit)
        when = datetime.combine(day, time(10, 0), tzinfo=zone(tz))
        mean = max(severity - ease * visit / 7 * 2, 0.2)
        items = np.clip(np.rint(rng.normal(mean, 0.7, 9)), 0, 3).astype(int)
        out.extend(
            [pid, when.isoformat(timespec="minutes"), "phq9", k + 1, int(v)]
            for k, v in enumerate(items)
        )
    for d in range(7 * weeks):
        if rng.random() < 0.2:
            continue  # no rating that evening
        day = START + timedelta(days=d)
        mood = np.clip(np.rint(rng.normal(4 + 0.05 * d * (1 + adherence), 1.5)), 0, 10)
        out.append([pid, f"{day.isoformat()} 20:00", "mood", 1, int(mood)])
    return out
