"""A realistic trial cohort on disk, for the cohort benchmark and its test.

    python benchmarks/cohort_gen.py OUT [--participants 250] [--weeks 26] [--seed 7] [--workers N]

What it writes (deterministic for a given seed; each participant draws from its own generator
seeded with ``(seed, index)``, so the files do not depend on how many workers wrote them):

* ``roster.csv``: participant_id, sex, birth_year, timezone (IANA: London, Berlin, New York,
  Chicago, Los Angeles, Sydney, so clocks change on different dates and in both directions),
  arm (aerobic / stretching, alternating), hr_rest_bpm (entered for about 70 %), hr_max_bpm
  (entered for about half: a lab test), start_date (enrolment spread over a year).
* Per participant, ``weeks`` weeks from the start date (fewer for the ~8 % who drop out):

  - Garmin wearers (most): about three activity FIT files a week in ``GARMIN/Activity``
    (:func:`actidose.ingest.fit_writer.write_activity_fit`; warm-up, work at the arm's
    intensity with cardiac drift, cool-down, some interval sessions; half the watches record
    every second (even index), half use "smart recording" at 1-5 s (odd index); every fourth
    device (index 0, 4, 8, ...) writes compressed timestamp headers; some files start with a
    few samples without skin contact),
    and one monitoring FIT file per local day in ``GARMIN/Monitor``
    (:func:`~actidose.ingest.fit_writer.write_monitoring_fit`: HR every 60 or 120 s while the
    watch is worn, lower at night, raised during the sessions; days off the wrist and
    charging gaps);
  - every fifth participant (index 0, 5, 10, ...) records every second session (the second,
    fourth, ...) with a phone app instead of the watch and exports it into ``exports/``,
    alternately as TCX (Garmin Connect style, TrainingCenterDatabase v2) and, when outdoors,
    GPX 1.1 with Garmin's TrackPointExtension (Strava style, every other one with whitespace
    before ``<?xml``); an indoor session due as GPX is written as TCX;
  - every 25th participant (index 2, 27, ...) wears an Apple Watch: one ``export.zip`` holding
    ``apple_health_export/export.xml`` (:mod:`actidose.ingest.apple_health_writer`, the
    device's UTC offset following the participant's zone).

* ``ratings.csv`` (long layout, as ``actidose symptoms import`` reads): PHQ-9 at baseline and
  every two weeks at 10:00 local with the offset written (a visit missed now and then, an item
  left blank rarely), a 0-10 ``mood`` rating most evenings at 20:00 local without offset.
* ``instruments.toml``: the definition of the ``mood`` rating (PHQ-9 is built in).
* ``arms.toml``: the two arms' prescriptions (8 weeks, or fewer when the cohort is shorter).

:func:`generate` returns a :class:`Cohort` with what was written, including the HR samples the
importer should store (valid values, 25-250 bpm, one per timestamp within a file).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
import zipfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from actidose.demo import PRESCRIPTIONS as DEMO_PRESCRIPTIONS
from actidose.demo import ROSTER_COLUMNS as DEMO_ROSTER_COLUMNS
from actidose.ingest.apple_health_writer import write_export
from actidose.ingest.fit_writer import write_activity_fit, write_monitoring_fit
from actidose.timeutil import US_PER_DAY, US_PER_S, day_start_utc_us, local_to_utc, utc_offsets_s

__all__ = [
    "FILE_KINDS",
    "Cohort",
    "ParticipantData",
    "generate",
    "gpx_text",
    "main",
    "session_hr",
    "tcx_text",
]

#: First possible start date (a Monday); enrolment runs over the following year.
BASE_START: Final = date(2024, 1, 8)
#: Kinds of generated files, in the order they are reported.
FILE_KINDS: Final = ("fit_activity", "fit_monitoring", "tcx", "gpx", "apple_health")
#: Zones and their shares: European and US clocks change on different dates, Sydney's the
#: other way round.
ZONES: Final = (
    ("Europe/London", 0.35, (51.51, -0.13)),
    ("Europe/Berlin", 0.15, (52.52, 13.40)),
    ("America/New_York", 0.2, (40.71, -74.01)),
    ("America/Chicago", 0.1, (41.88, -87.63)),
    ("America/Los_Angeles", 0.1, (34.05, -118.24)),
    ("Australia/Sydney", 0.1, (-33.87, 151.21)),
)
#: Garmin watches (product id, name): what the FIT file_id and the TCX Creator say.
WATCHES: Final = ((2697, "fenix 5"), (3113, "Forerunner 945"), (3076, "Forerunner 245"))
PRESCRIPTIONS: Final = DEMO_PRESCRIPTIONS  # the demo's arms, for ``weeks`` weeks
INSTRUMENTS: Final = """\
# The cohort's own instruments (PHQ-9 is built in; see docs/study.md)
[instruments.mood]             # a daily 0-10 rating, evenings
items = 1
min = 0
max = 10
recall_days = 1
scoring = "sum"
description = "Mood today, 0 (worst) to 10 (best)"
"""
ROSTER_COLUMNS: Final = DEMO_ROSTER_COLUMNS

_TCX_NS: Final = (
    'xsi:schemaLocation="http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2 '
    'http://www.garmin.com/xmlschemas/TrainingCenterDatabasev2.xsd" '
    'xmlns:ns5="http://www.garmin.com/xmlschemas/ActivityGoals/v1" '
    'xmlns:ns3="http://www.garmin.com/xmlschemas/ActivityExtension/v2" '
    'xmlns:ns2="http://www.garmin.com/xmlschemas/UserProfile/v2" '
    'xmlns="http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xmlns:ns4="http://www.garmin.com/xmlschemas/ProfileExtension/v1"'
)
_GPX_NS: Final = (
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xsi:schemaLocation="http://www.topografix.com/GPX/1/1 '
    "http://www.topografix.com/GPX/1/1/gpx.xsd "
    "http://www.garmin.com/xmlschemas/GpxExtensions/v3 "
    "http://www.garmin.com/xmlschemas/GpxExtensionsv3.xsd "
    "http://www.garmin.com/xmlschemas/TrackPointExtension/v1 "
    'http://www.garmin.com/xmlschemas/TrackPointExtensionv1.xsd" '
    'version="1.1" xmlns="http://www.topografix.com/GPX/1/1" '
    'xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v1" '
    'xmlns:gpxx="http://www.garmin.com/xmlschemas/GpxExtensions/v3"'
)
#: Sessions: (FIT sport, FIT sub_sport, TCX Sport, outdoor, speed m/s).
_Sport = tuple[str, str | int, str, bool, float]
_AEROBIC_SPORTS: Final[tuple[tuple[_Sport, float], ...]] = (
    (("running", "generic", "Running", True, 2.8), 0.5),
    (("cycling", "road", "Biking", True, 6.5), 0.25),
    (("cycling", "indoor_cycling", "Biking", False, 0.0), 0.1),
    (("rowing", "indoor_rowing", "Other", False, 0.0), 0.05),
    (("walking", "generic", "Other", True, 1.6), 0.1),
)
#: FIT sport training, sub_sport 19 (flexibility_training).
_STRETCH_SPORT: Final[_Sport] = ("training", 19, "Other", False, 0.0)


@dataclass
class ParticipantData:
    """What was written for one participant."""

    participant_id: str
    folder: Path
    timezone: str
    arm: str
    device: str  # "garmin", "garmin+exports" or "apple"
    files: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FILE_KINDS, 0))
    n_bytes: int = 0
    hr_written: int = 0  # HR values written, valid or not
    hr_valid: int = 0  # HR samples the importer should store
    sessions: int = 0
    phq9_ratings: int = 0
    mood_ratings: int = 0
    rating_values: int = 0

    @property
    def n_files(self) -> int:
        return sum(self.files.values())


@dataclass
class Cohort:
    """A generated cohort: where its files are and what they hold."""

    folder: Path
    roster: Path
    ratings: Path
    instruments: Path
    prescriptions: Path
    weeks: int
    seed: int
    participants: list[ParticipantData] = field(default_factory=list)
    seconds: float = 0.0  # time it took to write

    @property
    def n_files(self) -> int:
        """Data files (roster, ratings and prescriptions not counted)."""
        return sum(p.n_files for p in self.participants)

    @property
    def n_bytes(self) -> int:
        return sum(p.n_bytes for p in self.participants)

    @property
    def hr_written(self) -> int:
        return sum(p.hr_written for p in self.participants)

    @property
    def hr_valid(self) -> int:
        return sum(p.hr_valid for p in self.participants)

    @property
    def rating_values(self) -> int:
        return sum(p.rating_values for p in self.participants)

    def files_by_kind(self) -> dict[str, int]:
        return {k: sum(p.files[k] for p in self.participants) for k in FILE_KINDS}

    def describe(self) -> str:
        """One paragraph: the volume written."""
        kinds = self.files_by_kind()
        labels = {
            "fit_activity": "FIT activity",
            "fit_monitoring": "FIT monitoring",
            "tcx": "TCX",
            "gpx": "GPX",
            "apple_health": "Apple Health export.zip",
        }
        by_kind = ", ".join(f"{labels[k]} {kinds[k]:,}" for k in FILE_KINDS)
        return (
            f"cohort: {len(self.participants)} participants x {self.weeks} weeks (seed {self.seed})"
            f" written in {self.seconds:.1f} s under {self.folder}\n"
            f"  {self.n_files:,} files ({by_kind}), {self.n_bytes / 1e6:,.1f} MB\n"
            f"  {self.hr_written:,} HR values written, {self.hr_valid:,} valid samples to store; "
            f"{sum(p.sessions for p in self.participants):,} sessions; "
            f"{self.rating_values:,} rating values "
            f"({sum(p.phq9_ratings for p in self.participants):,} PHQ-9, "
            f"{sum(p.mood_ratings for p in self.participants):,} mood)"
        )


# --------------------------------------------------------------------------------------------
# heart-rate models


def session_hr(
    rng: np.random.Generator,
    minutes: float,
    rest: float,
    hrmax: float,
    lo: float,
    hi: float,
    *,
    smart: bool,
    intervals: bool = False,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Seconds from the start and HR of one session (the model of ``actidose.demo``): warm-up
    ramp, a working phase between ``lo`` and ``hi`` fractions of HR reserve with cardiac drift
    and smoothed noise, cool-down. ``smart``: 1-5 s between samples ("smart recording"), else
    every second. ``intervals``: 2 minutes hard, 2 easy (a first-order HR response)."""
    total = minutes * 60.0
    if smart:
        steps = rng.integers(1, 6, size=int(total) + 10).astype(np.float64)
        t = np.concatenate([[0.0], np.cumsum(steps)])
        t = t[t <= total]
    else:
        t = np.arange(0.0, np.floor(total) + 1.0)
    frac_target = rng.uniform(lo, hi)
    warm, cool = 300.0, 240.0
    profile = np.clip(np.minimum(t / warm, (total - t) / cool), 0.0, 1.0)
    drift = 0.04 * (t / total)
    noise = np.convolve(rng.normal(0, 0.03, t.size), np.ones(8) / 8, mode="same")
    work = frac_target - 0.15 + drift + noise
    if intervals:
        # HR follows the effort with a ~30 s time constant: an exponential filter over a
        # 1 s grid, read back at the sample times.
        grid = np.arange(0.0, total + 1.0)
        sq = np.where((grid // 120) % 2 == 0, 0.12, -0.12)
        kernel = np.exp(-np.arange(150) / 30.0)
        resp = np.convolve(sq, kernel / kernel.sum())[: grid.size]
        work = work + np.interp(t, grid, resp)
    frac = 0.15 + work * profile
    return t, rest + frac * (hrmax - rest) + rng.normal(0, 1.5, t.size)


def _smooth(rng: np.random.Generator, n: int, sd: float, width: int) -> npt.NDArray[np.float64]:
    return np.convolve(rng.normal(0, sd, n), np.ones(width) / np.sqrt(width), mode="same")


def _valid_count(bpm: npt.NDArray[np.float64]) -> int:
    r = np.rint(bpm)
    return int(np.count_nonzero(np.isfinite(r) & (r >= 25) & (r <= 250)))


# --------------------------------------------------------------------------------------------
# TCX and GPX text


def _iso_z(us: npt.NDArray[np.int64], ms: bool) -> list[str]:
    text = np.datetime_as_string(us.astype("M8[us]"), unit="ms" if ms else "s")
    return [s + "Z" for s in text.tolist()]


def _track(
    rng: np.random.Generator, t: npt.NDArray[np.float64], home: tuple[float, float], speed: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Latitude, longitude and distance (m) of a wandering route from ``home``."""
    dt = np.diff(t, prepend=t[0])
    v = speed * (1 + _smooth(rng, t.size, 0.03, 20))
    step = np.clip(v, 0, None) * dt
    heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.05, t.size))
    north, east = np.cumsum(step * np.cos(heading)), np.cumsum(step * np.sin(heading))
    lat = home[0] + north / 111_320.0
    lon = home[1] + east / (111_320.0 * np.cos(np.radians(home[0])))
    return lat, lon, np.cumsum(step)


def tcx_text(
    start_us: int,
    t: npt.NDArray[np.float64],
    bpm: npt.NDArray[np.float64],
    *,
    sport: str,
    device: tuple[int, str],
    serial: int,
    track: tuple[npt.NDArray[np.float64], ...] | None,
) -> str:
    """A Garmin Connect TCX export of one session (TrainingCenterDatabase v2). Samples without
    a valid HR have no ``HeartRateBpm`` (as Garmin writes them)."""
    us = start_us + np.rint(t * US_PER_S).astype(np.int64)
    times = _iso_z(us, ms=True)
    r = np.rint(bpm)
    ok = np.isfinite(r) & (r >= 25) & (r <= 250)
    hr_el = np.where(ok, r, 0).astype(np.int64).tolist()
    okl = ok.tolist()
    if track is not None:
        lat, lon, dist = (a.tolist() for a in track)
        points = [
            f"<Trackpoint><Time>{ti}</Time><Position><LatitudeDegrees>{la:.7f}</LatitudeDegrees>"
            f"<LongitudeDegrees>{lo:.7f}</LongitudeDegrees></Position>"
            f"<DistanceMeters>{d:.1f}</DistanceMeters>"
            + (f"<HeartRateBpm><Value>{h}</Value></HeartRateBpm>" if k else "")
            + "</Trackpoint>\n"
            for ti, la, lo, d, h, k in zip(times, lat, lon, dist, hr_el, okl, strict=True)
        ]
        distance = f"<DistanceMeters>{track[2][-1]:.1f}</DistanceMeters>"
    else:
        points = [
            f"<Trackpoint><Time>{ti}</Time>"
            + (f"<HeartRateBpm><Value>{h}</Value></HeartRateBpm>" if k else "")
            + "</Trackpoint>\n"
            for ti, h, k in zip(times, hr_el, okl, strict=True)
        ]
        distance = "<DistanceMeters>0.0</DistanceMeters>"
    valid = r[ok]
    stats = ""
    if valid.size:
        stats = (
            f"<AverageHeartRateBpm><Value>{round(float(valid.mean()))}</Value>"
            f"</AverageHeartRateBpm><MaximumHeartRateBpm><Value>{int(valid.max())}</Value>"
            "</MaximumHeartRateBpm>"
        )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<TrainingCenterDatabase {_TCX_NS}>\n'
        f'<Activities>\n<Activity Sport="{sport}">\n<Id>{times[0]}</Id>\n'
        f'<Lap StartTime="{times[0]}"><TotalTimeSeconds>{float(t[-1]):.1f}</TotalTimeSeconds>'
        f"{distance}{stats}<Intensity>Active</Intensity><TriggerMethod>Manual</TriggerMethod>\n"
        "<Track>\n" + "".join(points) + "</Track>\n</Lap>\n"
        f'<Creator xsi:type="Device_t"><Name>{device[1]}</Name><UnitId>{serial}</UnitId>'
        f"<ProductID>{device[0]}</ProductID></Creator>\n</Activity>\n</Activities>\n"
        '<Author xsi:type="Application_t"><Name>Connect Api</Name><Build><Version>'
        "<VersionMajor>0</VersionMajor><VersionMinor>0</VersionMinor></Version></Build>"
        "<LangID>en</LangID><PartNumber>006-D2449-00</PartNumber></Author>\n"
        "</TrainingCenterDatabase>\n"
    )


def gpx_text(
    start_us: int,
    t: npt.NDArray[np.float64],
    bpm: npt.NDArray[np.float64],
    *,
    kind: str,
    track: tuple[npt.NDArray[np.float64], ...],
    leading_space: bool,
) -> str:
    """A Strava GPX export of one outdoor session (GPX 1.1, HR in Garmin's
    TrackPointExtension v1; samples without a valid HR have no extension)."""
    us = start_us + np.rint(t * US_PER_S).astype(np.int64)
    times = _iso_z(us, ms=False)
    r = np.rint(bpm)
    ok = np.isfinite(r) & (r >= 25) & (r <= 250)
    hr_el = np.where(ok, r, 0).astype(np.int64).tolist()
    lat, lon = track[0].tolist(), track[1].tolist()
    ele = (20 + 5 * np.sin(track[2] / 400.0)).tolist()
    points = [
        f'   <trkpt lat="{la:.7f}" lon="{lo:.7f}">\n    <ele>{e:.1f}</ele>\n    <time>{ti}</time>\n'
        + (
            "    <extensions>\n     <gpxtpx:TrackPointExtension>\n"
            f"      <gpxtpx:hr>{h}</gpxtpx:hr>\n     </gpxtpx:TrackPointExtension>\n"
            "    </extensions>\n"
            if k
            else ""
        )
        + "   </trkpt>\n"
        for ti, la, lo, e, h, k in zip(times, lat, lon, ele, hr_el, ok.tolist(), strict=True)
    ]
    return (
        ("\n  " if leading_space else "")
        + '<?xml version="1.0" encoding="UTF-8"?>\n'
        + f'<gpx creator="StravaGPX" {_GPX_NS}>\n <metadata>\n  <time>{times[0]}</time>\n'
        + f" </metadata>\n <trk>\n  <name>{kind.title()}</name>\n  <type>{kind}</type>\n"
        + "  <trkseg>\n"
        + "".join(points)
        + "  </trkseg>\n </trk>\n</gpx>\n"
    )


# --------------------------------------------------------------------------------------------
# one participant


@dataclass(frozen=True)
class _Job:
    index: int
    n_participants: int
    weeks: int
    seed: int
    folder: Path


@dataclass
class _Result:
    data: ParticipantData
    roster_row: list[str]
    ratings: list[list[object]]


@dataclass
class _Session:
    start_us: int
    t: npt.NDArray[np.float64]
    bpm: npt.NDArray[np.float64]
    sport: _Sport


def _local_us(
    days: npt.NDArray[np.datetime64], hour_s: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    return np.asarray(days, "M8[D]").astype(np.int64) * US_PER_DAY + hour_s * US_PER_S


def _participant(job: _Job) -> _Result:
    """Write one participant's files; return what was written, the roster row and ratings."""
    i = job.index
    rng = np.random.default_rng([job.seed, i])
    pid = f"P{i + 1:03d}" if job.n_participants < 1000 else f"P{i + 1:05d}"
    arm = "aerobic" if i % 2 == 0 else "stretching"
    names = [z[0] for z in ZONES]
    zi = int(rng.choice(len(ZONES), p=[z[1] for z in ZONES]))
    tz, home = names[zi], ZONES[zi][2]
    sex = "" if rng.random() < 0.03 else ("f" if rng.random() < 0.6 else "m")
    birth_year = int(rng.integers(1960, 2006))
    start = BASE_START + timedelta(days=(i * 364) // max(job.n_participants, 1))
    age = start.year - birth_year
    rest = float(rng.uniform(52, 76))
    hrmax = float(208 - 0.7 * age + rng.normal(0, 6))
    rest_entered = f"{rest + rng.normal(0, 3):.0f}" if rng.random() < 0.7 else ""
    hrmax_entered = f"{hrmax + rng.normal(0, 2):.0f}" if rng.random() < 0.5 else ""
    device = "apple" if i % 25 == 2 else ("garmin+exports" if i % 5 == 0 else "garmin")
    days_total = 7 * job.weeks
    if rng.random() < 0.08 and job.weeks >= 3:  # drops out
        days_total = 7 * int(rng.integers(job.weeks // 3, job.weeks))
    adherence = float(rng.uniform(0.65, 1.0))

    pdir = job.folder / pid
    pdir.mkdir(parents=True, exist_ok=True)
    data = ParticipantData(pid, pdir, tz, arm, device)
    row = [
        pid,
        sex,
        str(birth_year),
        tz,
        arm,
        rest_entered,
        hrmax_entered,
        start.isoformat(),
    ]
    ratings = _ratings(rng, pid, tz, start, days_total, arm, adherence, data)

    if device == "apple":
        _apple(rng, tz, start, days_total, pdir, data)
        return _Result(data, row, ratings)

    sessions = _sessions(rng, arm, tz, start, days_total, rest, hrmax, adherence, i)
    data.sessions = len(sessions)
    serial = 3_900_000_000 + i
    product = WATCHES[i % len(WATCHES)]
    compressed = i % 4 == 0
    act_dir = pdir / "GARMIN" / "Activity"
    act_dir.mkdir(parents=True, exist_ok=True)
    exp_dir = pdir / "exports"
    for k, s in enumerate(sessions):
        offset = int(utc_offsets_s(np.array([s.start_us]), tz)[0])
        local = np.datetime64(s.start_us + offset * US_PER_S, "us")
        stamp = str(np.datetime_as_string(local, unit="s")).replace(":", "-").replace("T", "-")
        data.hr_written += s.t.size
        data.hr_valid += _valid_count(s.bpm)
        if device == "garmin+exports" and k % 2 == 1:
            exp_dir.mkdir(exist_ok=True)
            outdoor, speed = s.sport[3], s.sport[4]
            track = _track(rng, s.t, home, speed) if outdoor else None
            if track is not None and (data.files["gpx"] + data.files["tcx"]) % 2 == 1:
                text = gpx_text(
                    s.start_us,
                    s.t,
                    s.bpm,
                    kind=s.sport[0],
                    track=track,
                    leading_space=data.files["gpx"] % 2 == 1,
                )
                path, kind = exp_dir / f"{stamp}.gpx", "gpx"
            else:
                text = tcx_text(
                    s.start_us,
                    s.t,
                    s.bpm,
                    sport=s.sport[2],
                    device=product,
                    serial=serial,
                    track=track,
                )
                path, kind = exp_dir / f"{stamp}.tcx", "tcx"
            path.write_text(text, encoding="utf-8")
        else:
            ts = (s.start_us + np.rint(s.t * US_PER_S).astype(np.int64)).astype("M8[us]")
            path, kind = act_dir / f"{stamp}.fit", "fit_activity"
            write_activity_fit(
                path,
                ts,
                np.rint(s.bpm),
                sport=s.sport[0],
                sub_sport=s.sport[1],
                utc_offset_s=offset,
                serial=serial,
                product=product[0],
                compressed_timestamps=compressed,
            )
        data.files[kind] += 1
        data.n_bytes += path.stat().st_size
    _monitoring(rng, tz, start, days_total, rest, sessions, serial, product[0], pdir, data)
    return _Result(data, row, ratings)


def _sessions(
    rng: np.random.Generator,
    arm: str,
    tz: str,
    start: date,
    n_days: int,
    rest: float,
    hrmax: float,
    adherence: float,
    index: int,
) -> list[_Session]:
    """About three sessions a week on distinct days (each done with probability
    ``adherence``, now and then an extra one), mornings, lunchtimes or evenings."""
    day_offsets: list[int] = []
    for w in range(n_days // 7):
        planned = rng.choice(7, size=3, replace=False)
        done = planned[rng.random(3) < adherence]
        if rng.random() < 0.25:
            done = np.append(done, rng.integers(0, 7))
        day_offsets.extend(sorted({7 * w + int(d) for d in done}))
    if not day_offsets:
        return []
    n = len(day_offsets)
    days = np.datetime64(start, "D") + np.array(day_offsets)
    hours = rng.choice([6, 7, 8, 12, 17, 18, 19], size=n)
    local = _local_us(days, hours * 3600 + rng.integers(0, 60, n) * 60 + rng.integers(0, 60, n))
    starts, _ = local_to_utc(local, tz)  # 06:00-19:59 is never in a DST gap
    smart = index % 2 == 1
    out: list[_Session] = []
    sports = [s for s, _ in _AEROBIC_SPORTS]
    weights = [w for _, w in _AEROBIC_SPORTS]
    for k in range(n):
        if arm == "aerobic":
            sport = sports[int(rng.choice(len(sports), p=weights))]
            minutes = float(rng.uniform(30, 50))
            t, bpm = session_hr(
                rng, minutes, rest, hrmax, 0.58, 0.80, smart=smart, intervals=rng.random() < 0.2
            )
        else:
            sport = _STRETCH_SPORT
            minutes = float(rng.uniform(25, 40))
            t, bpm = session_hr(rng, minutes, rest, hrmax, 0.15, 0.35, smart=smart)
        if rng.random() < 0.3:  # the sensor finds the skin: a few values without contact
            m = int(rng.integers(1, 8))
            bpm[:m] = np.nan if rng.random() < 0.5 else 0.0
        out.append(_Session(int(starts[k]), t, bpm, sport))
    return out


def _monitoring(
    rng: np.random.Generator,
    tz: str,
    start: date,
    n_days: int,
    rest: float,
    sessions: list[_Session],
    serial: int,
    product: int,
    pdir: Path,
    data: ParticipantData,
) -> None:
    """One monitoring FIT file per local day the watch was worn."""
    if n_days <= 0:
        return
    step = 60 if rng.random() < 0.6 else 120
    d0 = np.datetime64(start, "D")
    t0, t1 = day_start_utc_us(np.array([d0, d0 + n_days]), tz).tolist()
    ts = np.arange(t0, t1, step * US_PER_S, dtype=np.int64)
    n = ts.size
    offs = utc_offsets_s(ts, tz)
    local = ts + offs * US_PER_S
    day = (local // US_PER_DAY - d0.astype(np.int64)).astype(np.int64)
    hod = (local % US_PER_DAY) / (3600 * US_PER_S)
    bed = rng.uniform(22.3, 23.8) + rng.normal(0, 0.4, n_days)
    wake = rng.uniform(6.0, 7.5) + rng.normal(0, 0.4, n_days)
    asleep = (hod >= bed[day]) | (hod < wake[day])
    awake_hr = (
        rest + 12 + 4 * _smooth(rng, n, 1.0, 15) + 18 * np.clip(_smooth(rng, n, 0.5, 20), 0, None)
    )
    sleep_hr = rest - 4 + 2 * _smooth(rng, n, 1.0, 10)
    bpm = np.where(asleep, sleep_hr, awake_hr) + rng.normal(0, 1.5, n)
    worn = rng.random(n_days)[day] > 0.08  # whole days off the wrist
    charge_day = rng.random(n_days) < 0.5  # a 1-2 h charge at some time of the day
    charge_at = rng.uniform(7, 21, n_days)
    charge_len = rng.uniform(1, 2, n_days)
    worn &= ~(charge_day[day] & (hod >= charge_at[day]) & (hod < charge_at[day] + charge_len[day]))
    for s in sessions:  # the watch records HR all day, sessions included
        end = s.start_us + int(s.t[-1] * US_PER_S)
        a, b = np.searchsorted(ts, [s.start_us, end])
        if b > a:
            sess_us = s.start_us + s.t * US_PER_S
            ok = np.isfinite(s.bpm) & (s.bpm > 0)
            if ok.any():
                bpm[a:b] = np.interp(ts[a:b], sess_us[ok], s.bpm[ok])
            worn[a:b] = True
    keep = np.flatnonzero(worn)
    ts, bpm, day, offs = ts[keep], np.rint(bpm[keep]), day[keep], offs[keep]
    data.hr_written += ts.size
    data.hr_valid += _valid_count(bpm)
    mon = pdir / "GARMIN" / "Monitor"
    mon.mkdir(parents=True, exist_ok=True)
    bounds = np.flatnonzero(np.diff(day)) + 1
    starts = np.concatenate([[0], bounds]).tolist()
    ends = np.concatenate([bounds, [ts.size]]).tolist()
    for a, b in zip(starts, ends, strict=True):
        if b <= a:
            continue
        path = mon / f"{(d0 + int(day[a])).astype(object):%Y-%m-%d}.fit"
        write_monitoring_fit(
            path,
            ts[a:b].astype("M8[us]"),
            bpm[a:b],
            utc_offset_s=int(offs[a]),
            serial=serial,
            product=product,
        )
        data.files["fit_monitoring"] += 1
        data.n_bytes += path.stat().st_size


def _apple(
    rng: np.random.Generator,
    tz: str,
    start: date,
    n_days: int,
    pdir: Path,
    data: ParticipantData,
) -> None:
    """An Apple Health export.zip; the watch's UTC offset follows the participant's zone."""
    if n_days <= 0:
        return
    d0 = np.datetime64(start, "D")
    noon = (d0 + np.arange(n_days)).astype(np.int64) * US_PER_DAY + 12 * 3600 * US_PER_S
    offs = utc_offsets_s(noon, tz)
    change = np.flatnonzero(np.diff(offs)) + 1
    tz_changes = [(start, int(offs[0]))] + [
        (start + timedelta(days=int(k)), int(offs[k])) for k in change.tolist()
    ]
    path = pdir / "export.zip"
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf,
        zf.open("apple_health_export/export.xml", "w", force_zip64=True) as out,
    ):
        truth = write_export(
            out,
            days=n_days,
            start=start,
            seed=int(rng.integers(0, 2**31)),
            tz_changes=tz_changes,
            owner=data.participant_id,
            strap_workouts=0.2,
        )
    valid = np.isfinite(truth.hr_bpm) & (np.rint(truth.hr_bpm) >= 25) & (truth.hr_bpm <= 250)
    data.hr_written += int(truth.hr_bpm.size)
    data.hr_valid += int(np.unique(truth.hr_ts[valid]).size)
    data.sessions = len(truth.workouts)
    data.files["apple_health"] += 1
    data.n_bytes += path.stat().st_size


def _ratings(
    rng: np.random.Generator,
    pid: str,
    tz: str,
    start: date,
    n_days: int,
    arm: str,
    adherence: float,
    data: ParticipantData,
) -> list[list[object]]:
    """PHQ-9 at baseline and every two weeks (10:00 local, offset written; a visit missed now
    and then, an item rarely left blank), a 0-10 mood rating most evenings (20:00 local, no
    offset: read in the participant's zone). Symptoms ease faster with more aerobic exercise."""
    out: list[list[object]] = []
    severity = rng.uniform(1.2, 2.0)
    ease = 0.04 + (0.05 * adherence if arm == "aerobic" else 0.0)
    visits = np.arange(0, n_days + 1, 14)
    visits = visits[(visits == 0) | (rng.random(visits.size) > 0.07)]
    d0 = np.datetime64(start, "D")
    local = _local_us(d0 + visits, np.full(visits.size, 10 * 3600))
    utc, _ = local_to_utc(local, tz)
    offs = utc_offsets_s(utc, tz)
    for v, off in zip(visits.tolist(), offs.tolist(), strict=True):
        sign = "-" if off < 0 else "+"
        hh, mm = divmod(abs(off) // 60, 60)
        when = f"{d0 + v}T10:00{sign}{hh:02d}:{mm:02d}"
        mean = max(severity - ease * v / 7 * 2, 0.2)
        items = np.clip(np.rint(rng.normal(mean, 0.7, 9)), 0, 3).astype(int)
        answered = rng.random(9) > 0.02
        out.extend([pid, when, "phq9", k + 1, int(items[k])] for k in range(9) if answered[k])
        data.phq9_ratings += 1
        data.rating_values += int(answered.sum())
    for d in range(n_days):
        if rng.random() < 0.2:
            continue
        mood = np.clip(np.rint(rng.normal(4 + 0.05 * d * (1 + adherence), 1.5)), 0, 10)
        out.append([pid, f"{d0 + d} 20:00", "mood", 1, int(mood)])
        data.mood_ratings += 1
        data.rating_values += 1
    return out


# --------------------------------------------------------------------------------------------
# the cohort


def generate(
    folder: str | os.PathLike[str],
    *,
    participants: int = 250,
    weeks: int = 26,
    seed: int = 7,
    workers: int | None = None,
) -> Cohort:
    """Write a cohort under ``folder`` (created; files already there are overwritten).

    Parameters
    ----------
    folder : path
        Where to write: ``roster.csv``, ``ratings.csv``, ``instruments.toml``,
        ``arms.toml`` and one folder per participant.
    participants : int
        Number of participants (at least 1).
    weeks : int
        Weeks of data per participant from their start date (at least 1).
    seed : int
        The same seed writes the same files, whatever ``workers`` is.
    workers : int, optional
        Processes writing participants in parallel (default: the CPU count; 1 writes in this
        process).

    Returns
    -------
    Cohort
        The paths written and what they hold.
    """
    if participants < 1 or weeks < 1:
        raise ValueError("participants and weeks must be at least 1")
    root = Path(folder).resolve()
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    jobs = [_Job(i, participants, weeks, seed, root) for i in range(participants)]
    n_workers = min(workers or os.cpu_count() or 1, participants)
    if n_workers <= 1:
        results = [_participant(j) for j in jobs]
    else:
        with ProcessPoolExecutor(n_workers, mp_context=get_context("spawn")) as pool:
            results = list(pool.map(_participant, jobs, chunksize=1))
    cohort = Cohort(
        root,
        root / "roster.csv",
        root / "ratings.csv",
        root / "instruments.toml",
        root / "arms.toml",
        weeks,
        seed,
    )
    with cohort.roster.open("w", newline="") as fp:
        w = csv.writer(fp)
        w.writerow(ROSTER_COLUMNS)
        w.writerows(r.roster_row for r in results)
    with cohort.ratings.open("w", newline="") as fp:
        w = csv.writer(fp)
        w.writerow(["participant_id", "timestamp", "instrument", "item", "value"])
        for r in results:
            w.writerows(r.ratings)
    cohort.instruments.write_text(INSTRUMENTS)
    cohort.prescriptions.write_text(PRESCRIPTIONS.format(weeks=min(weeks, 8)))
    cohort.participants = [r.data for r in results]
    cohort.seconds = time.perf_counter() - t0
    return cohort


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: write a cohort and print its volume."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="folder to write the cohort into")
    ap.add_argument("--participants", type=int, default=250)
    ap.add_argument("--weeks", type=int, default=26)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workers", type=int, default=None, help="default: the CPU count")
    args = ap.parse_args(argv)
    cohort = generate(
        args.out,
        participants=args.participants,
        weeks=args.weeks,
        seed=args.seed,
        workers=args.workers,
    )
    print(cohort.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
