"""Realistic Apple Health ``export.xml`` files for the tests and the benchmark.

What it writes follows real exports (``HealthKit Export Version: 14``, iOS 17): the XML
declaration, a long internal DTD, ``HealthData`` with ``ExportDate`` and ``Me``, then the
``Record`` elements grouped by type (as the Health app writes them), then ``Correlation``,
``Workout`` and ``ActivitySummary`` elements. Per day:

* heart rate from the watch about every 5 minutes all day, every 5 s during a workout (a
  chest strap paired through an app for a share of the workouts, ``strap_workouts``);
* one resting heart rate; a few HRV (SDNN) records, each with its
  ``HeartRateVariabilityMetadataList`` of ``InstantaneousBeatsPerMinute`` (one of them crosses
  local midnight every week);
* steps from the iPhone and the watch, walking/running distance from the iPhone, active energy
  and exercise minutes from the watch; basal energy, stand hours and sleep (types the importer
  skips);
* a workout on most days, with ``WorkoutEvent``, ``WorkoutStatistics`` (heart rate, energy),
  a ``WorkoutActivity`` and a ``WorkoutRoute``; a blood-pressure ``Correlation`` once a week
  (its records repeated at top level, as Apple does).

Every date carries the UTC offset in effect at its instant; ``tz_changes`` moves the offset
mid-export (travel). The output is deterministic for a given ``seed`` (each day draws from its
own ``numpy`` generator seeded with ``(seed, day)``, so per-type passes see the same day).
Text is made with bulk string formatting (dates through ``numpy.datetime_as_string``), about
90 MB/s here: the 1 GB benchmark file takes a dozen seconds.

:func:`write_export` returns an :class:`ExportTruth`: what was written (heart rate samples,
RR intervals, workouts, vendor totals), for tests to compare an importer against.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Final

import numpy as np
import numpy.typing as npt

__all__ = ["DTD_IOS16", "DTD_V14", "ExportTruth", "TruthWorkout", "write_export"]

HR: Final = "HKQuantityTypeIdentifierHeartRate"
RESTING: Final = "HKQuantityTypeIdentifierRestingHeartRate"
HRV: Final = "HKQuantityTypeIdentifierHeartRateVariabilitySDNN"
STEPS: Final = "HKQuantityTypeIdentifierStepCount"
DISTANCE: Final = "HKQuantityTypeIdentifierDistanceWalkingRunning"
ENERGY: Final = "HKQuantityTypeIdentifierActiveEnergyBurned"
BASAL: Final = "HKQuantityTypeIdentifierBasalEnergyBurned"
EXERCISE: Final = "HKQuantityTypeIdentifierAppleExerciseTime"
STAND: Final = "HKCategoryTypeIdentifierAppleStandHour"
SLEEP: Final = "HKCategoryTypeIdentifierSleepAnalysis"
BP_SYS: Final = "HKQuantityTypeIdentifierBloodPressureSystolic"
BP_DIA: Final = "HKQuantityTypeIdentifierBloodPressureDiastolic"

#: Record types in the order they are written (each type is one block, as in real exports).
RECORD_ORDER: Final = (
    HR,
    RESTING,
    HRV,
    STEPS,
    DISTANCE,
    ENERGY,
    BASAL,
    EXERCISE,
    BP_SYS,
    BP_DIA,
    STAND,
    SLEEP,
)

_SPORTS: Final = (
    ("Running", 0.3),
    ("Cycling", 0.2),
    ("Walking", 0.2),
    ("HighIntensityIntervalTraining", 0.1),
    ("TraditionalStrengthTraining", 0.1),
    ("Swimming", 0.1),
)

_DTD_HEAD: Final = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE HealthData [
<!-- HealthKit Export Version: {version} -->
<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary|ClinicalRecord|\
Audiogram|VisionPrescription)*)>
<!ATTLIST HealthData
  locale CDATA #REQUIRED
>
<!ELEMENT ExportDate EMPTY>
<!ATTLIST ExportDate
  value CDATA #REQUIRED
>
<!ELEMENT Me EMPTY>
<!ATTLIST Me
  HKCharacteristicTypeIdentifierDateOfBirth                   CDATA #REQUIRED
  HKCharacteristicTypeIdentifierBiologicalSex                 CDATA #REQUIRED
  HKCharacteristicTypeIdentifierBloodType                     CDATA #REQUIRED
  HKCharacteristicTypeIdentifierFitzpatrickSkinType           CDATA #REQUIRED
  HKCharacteristicTypeIdentifierCardioFitnessMedicationsUse   CDATA #REQUIRED
>
<!ELEMENT Record ((MetadataEntry|HeartRateVariabilityMetadataList)*)>
<!ATTLIST Record
  type          CDATA #REQUIRED
  unit          CDATA #IMPLIED
  value         CDATA #IMPLIED
  sourceName    CDATA #REQUIRED
  sourceVersion CDATA #IMPLIED
  device        CDATA #IMPLIED
  creationDate  CDATA #IMPLIED
  startDate     CDATA #REQUIRED
  endDate       CDATA #REQUIRED
>
<!-- Note: Any Records that appear as children of a correlation also appear as top-level \
records in this document. -->
<!ELEMENT Correlation ((MetadataEntry|Record)*)>
<!ATTLIST Correlation
  type          CDATA #REQUIRED
  sourceName    CDATA #REQUIRED
  sourceVersion CDATA #IMPLIED
  device        CDATA #IMPLIED
  creationDate  CDATA #IMPLIED
  startDate     CDATA #REQUIRED
  endDate       CDATA #REQUIRED
>
<!ELEMENT Workout ((MetadataEntry|WorkoutEvent|WorkoutRoute|WorkoutStatistics)*)>
<!ATTLIST Workout
  workoutActivityType   CDATA #REQUIRED
  duration              CDATA #IMPLIED
  durationUnit          CDATA #IMPLIED
  totalDistance         CDATA #IMPLIED
  totalDistanceUnit     CDATA #IMPLIED
  totalEnergyBurned     CDATA #IMPLIED
  totalEnergyBurnedUnit CDATA #IMPLIED
  sourceName            CDATA #REQUIRED
  sourceVersion         CDATA #IMPLIED
  device                CDATA #IMPLIED
  creationDate          CDATA #IMPLIED
  startDate             CDATA #REQUIRED
  endDate               CDATA #REQUIRED
>
<!ELEMENT WorkoutActivity ((MetadataEntry)*)>
<!ATTLIST WorkoutActivity
  uuid                 CDATA #REQUIRED
  startDate            CDATA #REQUIRED
  endDate              CDATA #IMPLIED
  duration             CDATA #IMPLIED
  durationUnit         CDATA #IMPLIED
>
<!ELEMENT WorkoutEvent ((MetadataEntry)*)>
<!ATTLIST WorkoutEvent
  type                 CDATA #REQUIRED
  date                 CDATA #REQUIRED
  duration             CDATA #IMPLIED
  durationUnit         CDATA #IMPLIED
>
<!ELEMENT WorkoutStatistics EMPTY>
<!ATTLIST WorkoutStatistics
  type                 CDATA #REQUIRED
  startDate            CDATA #REQUIRED
  endDate              CDATA #REQUIRED
  average              CDATA #IMPLIED
  minimum              CDATA #IMPLIED
  maximum              CDATA #IMPLIED
  sum                  CDATA #IMPLIED
  unit                 CDATA #IMPLIED
>
<!ELEMENT WorkoutRoute ((MetadataEntry|FileReference)*)>
<!ATTLIST WorkoutRoute
  sourceName    CDATA #REQUIRED
  sourceVersion CDATA #IMPLIED
  device        CDATA #IMPLIED
  creationDate  CDATA #IMPLIED
  startDate     CDATA #REQUIRED
  endDate       CDATA #REQUIRED
>
<!ELEMENT FileReference EMPTY>
<!ATTLIST FileReference
  path CDATA #REQUIRED
>
<!ELEMENT ActivitySummary EMPTY>
<!ATTLIST ActivitySummary
  dateComponents           CDATA #IMPLIED
  activeEnergyBurned       CDATA #IMPLIED
  activeEnergyBurnedGoal   CDATA #IMPLIED
  activeEnergyBurnedUnit   CDATA #IMPLIED
  appleMoveTime            CDATA #IMPLIED
  appleMoveTimeGoal        CDATA #IMPLIED
  appleExerciseTime        CDATA #IMPLIED
  appleExerciseTimeGoal    CDATA #IMPLIED
  appleStandHours          CDATA #IMPLIED
  appleStandHoursGoal      CDATA #IMPLIED
>
<!ELEMENT MetadataEntry EMPTY>
<!ATTLIST MetadataEntry
  key   CDATA #REQUIRED
  value CDATA #REQUIRED
>
<!-- Note: Heart Rate Variability records captured by Apple Watch may include an associated \
list of instantaneous beats-per-minute readings. -->
<!ELEMENT HeartRateVariabilityMetadataList (InstantaneousBeatsPerMinute*)>
<!ELEMENT InstantaneousBeatsPerMinute EMPTY>
<!ATTLIST InstantaneousBeatsPerMinute
  bpm  CDATA #REQUIRED
  time CDATA #REQUIRED
>
<!ELEMENT ClinicalRecord EMPTY>
<!ATTLIST ClinicalRecord
  type              CDATA #REQUIRED
  identifier        CDATA #REQUIRED
  sourceName        CDATA #REQUIRED
  sourceURL         CDATA #REQUIRED
  fhirVersion       CDATA #REQUIRED
  receivedDate      CDATA #REQUIRED
  resourceFilePath  CDATA #REQUIRED
>
<!ELEMENT Audiogram ((MetadataEntry|SensitivityPoint)*)>
<!ATTLIST Audiogram
  type          CDATA #REQUIRED
  sourceName    CDATA #REQUIRED
  sourceVersion CDATA #IMPLIED
  device        CDATA #IMPLIED
  creationDate  CDATA #IMPLIED
  startDate     CDATA #REQUIRED
  endDate       CDATA #REQUIRED
>
<!ELEMENT SensitivityPoint EMPTY>
<!ATTLIST SensitivityPoint
  frequencyValue   CDATA #REQUIRED
  frequencyUnit    CDATA #REQUIRED
  leftEarValue     CDATA #IMPLIED
  leftEarUnit      CDATA #IMPLIED
  rightEarValue    CDATA #IMPLIED
  rightEarUnit     CDATA #IMPLIED
>
<!ELEMENT VisionPrescription ((RightEye|LeftEye|Attachment|MetadataEntry)*)>
"""

_EYE_ATTRS: Final = """\
  sphere           CDATA #IMPLIED
  sphereUnit       CDATA #IMPLIED
  cylinder         CDATA #IMPLIED
  cylinderUnit     CDATA #IMPLIED
  axis             CDATA #IMPLIED
  axisUnit         CDATA #IMPLIED
  add              CDATA #IMPLIED
  addUnit          CDATA #IMPLIED
  vertex           CDATA #IMPLIED
  vertexUnit       CDATA #IMPLIED
  prismAmount      CDATA #IMPLIED
  prismAmountUnit  CDATA #IMPLIED
  prismAngle       CDATA #IMPLIED
  prismAngleUnit   CDATA #IMPLIED
  farPD            CDATA #IMPLIED
  farPDUnit        CDATA #IMPLIED
  nearPD           CDATA #IMPLIED
  nearPDUnit       CDATA #IMPLIED
  baseCurve        CDATA #IMPLIED
  baseCurveUnit    CDATA #IMPLIED
  diameter         CDATA #IMPLIED
  diameterUnit     CDATA #IMPLIED
"""

_VISION_ATTRS: Final = """\
<!ATTLIST VisionPrescription
  type             CDATA #REQUIRED
  dateIssued       CDATA #REQUIRED
  expirationDate   CDATA #IMPLIED
  brand            CDATA #IMPLIED
"""

#: The well-formed DTD of ``HealthKit Export Version: 14`` (iOS 17).
DTD_V14: Final = (
    _DTD_HEAD.format(version=14)
    + _VISION_ATTRS
    + ">\n<!ELEMENT RightEye EMPTY>\n<!ATTLIST RightEye\n"
    + _EYE_ATTRS
    + ">\n<!ELEMENT LeftEye EMPTY>\n<!ATTLIST LeftEye\n"
    + _EYE_ATTRS
    + ">\n<!ELEMENT Attachment EMPTY>\n<!ATTLIST Attachment\n  identifier       CDATA #IMPLIED\n"
    + ">\n]>\n"
)

#: The malformed DTD of ``HealthKit Export Version: 12`` (iOS 16.0-16.x): the ``ATTLIST``
#: declarations of ``VisionPrescription`` and ``RightEye`` are never closed, so the next
#: declaration starts inside them (expat: "syntax error: line 156, column 0"; libxml2:
#: "ATTLIST: no name for Attribute"), and the declarations of one element are repeated
#: (legal but unusual; libxml2 warns). Reported e.g. in fedecalendino/apple-health#1,
#: markwk/qs_ledger#23, jameno/Simple-Apple-Health-XML-to-CSV#3.
DTD_IOS16: Final = (
    _DTD_HEAD.format(version=12)
    + _VISION_ATTRS
    + "<!ELEMENT RightEye EMPTY>\n<!ATTLIST RightEye\n"
    + _EYE_ATTRS
    + "<!ELEMENT LeftEye EMPTY>\n<!ATTLIST LeftEye\n"
    + _EYE_ATTRS
    + ">\n<!ATTLIST MetadataEntry\n  key   CDATA #REQUIRED\n  value CDATA #REQUIRED\n>\n"
    + "<!ELEMENT Attachment EMPTY>\n<!ATTLIST Attachment\n  identifier       CDATA #IMPLIED\n"
    + ">\n]>\n"
)


@dataclass
class TruthWorkout:
    """One workout as written: UTC instants (datetime64[us]) and ``activity_type``, the
    ``HKWorkoutActivityType`` suffix (``"Running"``)."""

    start: np.datetime64
    end: np.datetime64
    activity_type: str
    duration_s: float
    avg_hr: float
    max_hr: float


@dataclass
class ExportTruth:
    """What :func:`write_export` wrote. Instants are UTC datetime64[us], in file order."""

    bytes_written: int = 0
    days: int = 0
    n_records: dict[str, int] = field(default_factory=dict)  # top-level Records by type
    n_elements: int = 0  # every element in the file (for the benchmark's rates)
    hr_ts: npt.NDArray[np.datetime64] = field(default_factory=lambda: np.empty(0, "M8[us]"))
    hr_bpm: npt.NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    hr_sources: dict[str, int] = field(default_factory=dict)
    rr_ts: npt.NDArray[np.datetime64] = field(default_factory=lambda: np.empty(0, "M8[us]"))
    rr_ms: npt.NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    workouts: list[TruthWorkout] = field(default_factory=list)
    #: vendor kind -> (number of records, sum of values in the importer's unit)
    vendor: dict[str, tuple[int, float]] = field(default_factory=dict)
    utc_offsets_s: list[int] = field(default_factory=list)  # distinct offsets, sorted


@dataclass
class _Day:
    """One day of data; instants are int64 UTC seconds (float for sub-second beats)."""

    index: int
    records: dict[str, list[str]]
    workout: str | None = None
    summary: str = ""
    correlation: str | None = None


@dataclass(frozen=True)
class _Config:
    start: date
    seed: int
    owner: str
    changes_s: npt.NDArray[np.int64]  # UTC seconds at which an offset starts
    offsets_s: npt.NDArray[np.int64]
    strap_workouts: float
    beat_time_style: str
    distance_unit: str
    energy_unit: str
    keep_truth: bool


def write_export(
    dest: str | os.PathLike[str] | BinaryIO,
    *,
    days: int = 7,
    start: date = date(2024, 1, 1),
    seed: int = 0,
    tz_changes: Sequence[tuple[date, int]] | None = None,
    target_bytes: int | None = None,
    owner: str = "Alex",
    strap_workouts: float = 0.0,
    beat_time_style: str = "12h",
    distance_unit: str = "km",
    energy_unit: str = "kcal",
    dtd: str = "v14",
    keep_truth: bool = True,
) -> ExportTruth:
    """Write an Apple Health ``export.xml`` to ``dest`` (a path or a binary file object).

    ``days`` days from ``start``; with ``target_bytes`` the number of days is chosen so the file
    is about that size (from the size of a 60-day sample: within a few percent for large files,
    looser below a few MB). ``tz_changes`` is a list of ``(date, offset_s)``:
    from 12:00 UTC of that date the device's UTC offset is ``offset_s`` (local - UTC). The
    default starts at +01:00, flies to -05:00 a third of the way in and back two thirds in.
    ``strap_workouts`` is the share of workouts whose heart rate comes from a Polar H10 (app
    "Polar Beat"). ``beat_time_style`` is how ``InstantaneousBeatsPerMinute/@time`` is written:
    ``"12h"`` (``7:43:12.34 PM``), ``"12h_nnbsp"`` (U+202F before ``PM``, iOS 17) or
    ``"24h_comma"`` (``19:43:12,34``). ``distance_unit`` is ``km`` or ``mi``, ``energy_unit``
    ``kcal`` or ``kJ``. ``dtd`` is ``"v14"``, ``"ios16"`` (the malformed DTD iOS 16 wrote) or
    ``"none"``. With ``keep_truth=False`` the returned truth holds counts only.
    """
    if beat_time_style not in ("12h", "12h_nnbsp", "24h_comma"):
        raise ValueError(f"beat_time_style {beat_time_style!r}")
    if distance_unit not in ("km", "mi") or energy_unit not in ("kcal", "kJ"):
        raise ValueError("distance_unit must be km or mi, energy_unit kcal or kJ")

    def config(n_days: int) -> _Config:
        changes = list(tz_changes) if tz_changes is not None else _travel(start, n_days)
        changes.sort()
        if not changes or changes[0][0] > start:
            changes.insert(0, (start, changes[0][1] if changes else 0))
        noon = [_utc_s(d) + 12 * 3600 for d, _ in changes]
        noon[0] = -(2**62)  # the first offset holds from the start
        return _Config(
            start=start,
            seed=seed,
            owner=owner,
            changes_s=np.array(noon, np.int64),
            offsets_s=np.array([o for _, o in changes], np.int64),
            strap_workouts=strap_workouts,
            beat_time_style=beat_time_style,
            distance_unit=distance_unit,
            energy_unit=energy_unit,
            keep_truth=keep_truth,
        )

    if target_bytes is not None:  # size a month, scale (days differ: workouts, HRV lists)
        probe = _Writer(config(_PROBE_DAYS), io.BytesIO(), _PROBE_DAYS, dtd)
        probe.run()
        per_day = (probe.truth.bytes_written - probe.header_bytes) / _PROBE_DAYS
        days = max(1, round((target_bytes - probe.header_bytes) / per_day))
    cfg = config(days)
    if isinstance(dest, str | os.PathLike):
        with Path(dest).open("wb") as fp:
            w = _Writer(cfg, fp, days, dtd)
            w.run()
    else:
        w = _Writer(cfg, dest, days, dtd)
        w.run()
    return w.truth


_PROBE_DAYS: Final = 60


def _travel(start: date, days: int) -> list[tuple[date, int]]:
    """The default offsets: +01:00, -05:00 from a third of the way in, +01:00 from two thirds."""
    out = [(start, 3600)]
    if days >= 3:
        out += [(start + timedelta(days // 3), -5 * 3600), (start + timedelta(2 * days // 3), 3600)]
    return out


class _Writer:
    def __init__(self, cfg: _Config, fp: BinaryIO, days: int, dtd: str) -> None:
        self.cfg = cfg
        self.fp = fp
        self.days = days
        self.dtd = dtd
        self.truth = ExportTruth(days=days)
        self.header_bytes = 0
        self._hr_ts: list[npt.NDArray[np.float64]] = []
        self._hr_bpm: list[npt.NDArray[np.float64]] = []
        self._rr_ts: list[npt.NDArray[np.float64]] = []
        self._rr_ms: list[npt.NDArray[np.float64]] = []
        self._offsets: set[int] = set()
        self._vendor: dict[str, list[float]] = {}
        watch = f"{cfg.owner}\u2019s Apple Watch"
        self.watch = watch
        self.phone = f"{cfg.owner}\u2019s iPhone"

    # -- output ------------------------------------------------------------------------------
    def emit(self, text: str) -> None:
        data = text.encode("utf-8")
        self.fp.write(data)
        self.truth.bytes_written += len(data)

    def run(self) -> None:
        cfg = self.cfg
        header = {"v14": DTD_V14, "ios16": DTD_IOS16, "none": ""}[self.dtd]
        if not header:
            header = '<?xml version="1.0" encoding="UTF-8"?>\n'
        end_day = cfg.start + timedelta(self.days)
        export = _fmt_dates(
            np.array([_utc_s(end_day) + 8 * 3600]), self._offsets_at(np.array([_utc_s(end_day)]))
        )[0]
        self.emit(
            header
            + '<HealthData locale="en_GB">\n'
            + f' <ExportDate value="{export}"/>\n'
            + ' <Me HKCharacteristicTypeIdentifierDateOfBirth="1990-05-20" '
            'HKCharacteristicTypeIdentifierBiologicalSex="HKBiologicalSexFemale" '
            'HKCharacteristicTypeIdentifierBloodType="HKBloodTypeNotSet" '
            'HKCharacteristicTypeIdentifierFitzpatrickSkinType="HKFitzpatrickSkinTypeNotSet" '
            'HKCharacteristicTypeIdentifierCardioFitnessMedicationsUse="None"/>\n'
        )
        self.header_bytes = self.truth.bytes_written
        self.truth.n_elements = 3
        for rtype in RECORD_ORDER:
            for day in range(self.days):
                lines = self.day(day, rtype).records.get(rtype)
                if lines:
                    self.emit("".join(lines))
        for part in ("correlation", "workout", "summary"):
            for day in range(self.days):
                d = self.day(day, part)
                text = getattr(d, part)
                if text:
                    self.emit(text)
        self.emit("</HealthData>\n")
        t = self.truth
        if self.cfg.keep_truth:
            t.hr_ts = _to_us(self._hr_ts)
            t.hr_bpm = np.concatenate(self._hr_bpm) if self._hr_bpm else np.empty(0)
            t.rr_ts = _to_us(self._rr_ts)
            t.rr_ms = np.concatenate(self._rr_ms) if self._rr_ms else np.empty(0)
        t.vendor = {k: (int(v[0]), float(v[1])) for k, v in self._vendor.items()}
        t.utc_offsets_s = sorted(self._offsets)

    def _offsets_at(self, utc_s: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        i = np.searchsorted(self.cfg.changes_s, utc_s, side="right") - 1
        return self.cfg.offsets_s[i]

    def _count(self, kind: str, values: npt.NDArray[np.float64]) -> None:
        acc = self._vendor.setdefault(kind, [0.0, 0.0])
        acc[0] += values.size
        acc[1] += float(values.sum())

    # -- one day, one part --------------------------------------------------------------------
    def day(self, index: int, part: str) -> _Day:
        """The text of one type (or workout/summary/correlation) for day ``index``."""
        cfg = self.cfg
        rng = np.random.default_rng([cfg.seed, index])
        d = cfg.start + timedelta(index)
        # local midnight under the offset in effect at that day's 00:00 UTC
        utc0 = _utc_s(d)
        day0 = int(utc0 - self._offsets_at(np.array([utc0]))[0])
        plan = _plan(rng, index, day0, cfg.strap_workouts)
        out = _Day(index, {})
        emit: dict[str, Callable[[], None]] = {
            HR: lambda: self._hr(out, plan),
            RESTING: lambda: self._resting(out, plan, rng),
            HRV: lambda: self._hrv(out, plan, rng, index),
            STEPS: lambda: self._steps(out, plan),
            DISTANCE: lambda: self._distance(out, plan),
            ENERGY: lambda: self._energy(out, plan),
            BASAL: lambda: self._basal(out, plan),
            EXERCISE: lambda: self._exercise(out, plan),
            BP_SYS: lambda: self._bp(out, plan, index, nested=False, part=BP_SYS),
            BP_DIA: lambda: self._bp(out, plan, index, nested=False, part=BP_DIA),
            STAND: lambda: self._stand(out, plan),
            SLEEP: lambda: self._sleep(out, plan),
            "correlation": lambda: self._bp(out, plan, index, nested=True, part=""),
            "workout": lambda: self._workout(out, plan),
            "summary": lambda: self._summary(out, plan, d),
        }
        emit[part]()
        return out

    def _dates(self, utc_s: npt.NDArray[np.int64]) -> list[str]:
        off = self._offsets_at(utc_s)
        self._offsets.update(int(o) for o in np.unique(off))
        return _fmt_dates(utc_s, off)

    def _records(
        self,
        out: _Day,
        rtype: str,
        source: str,
        device: str | None,
        unit: str | None,
        start: npt.NDArray[np.int64],
        end: npt.NDArray[np.int64],
        values: Sequence[str],
        inner: Sequence[str] | None = None,
        version: str = "10.2",
    ) -> None:
        sd = self._dates(start)
        ed = self._dates(end)
        cd = self._dates(end + 5)
        head = f' <Record type="{rtype}" sourceName="{source}" sourceVersion="{version}" '
        if device:
            head += f'device="{device}" '
        if unit:
            head += f'unit="{unit}" '
        lines = []
        if inner is None:
            for s, e, c, v in zip(sd, ed, cd, values, strict=True):
                lines.append(
                    f'{head}creationDate="{c}" startDate="{s}" endDate="{e}" value="{v}"/>\n'
                )
        else:
            for s, e, c, v, body in zip(sd, ed, cd, values, inner, strict=True):
                lines.append(
                    f'{head}creationDate="{c}" startDate="{s}" endDate="{e}" value="{v}">\n'
                    f"{body} </Record>\n"
                )
        out.records[rtype] = out.records.get(rtype, []) + lines
        self.truth.n_records[rtype] = self.truth.n_records.get(rtype, 0) + len(lines)
        n_inner = 0 if inner is None else sum(b.count("<") - b.count("</") for b in inner)
        self.truth.n_elements += len(lines) + n_inner

    def _hr(self, out: _Day, p: _Plan) -> None:
        motion = [
            '  <MetadataEntry key="HKMetadataKeyHeartRateMotionContext" value="0"/>\n',
            '  <MetadataEntry key="HKMetadataKeyHeartRateMotionContext" value="1"/>\n',
            '  <MetadataEntry key="HKMetadataKeyHeartRateMotionContext" value="2"/>\n',
        ]
        groups = [(p.bg_t, p.bg_bpm, self.watch, _watch_device(p.index), p.bg_motion)]
        if p.wk is not None:
            if p.wk.strap:
                source, device = "Polar Beat", _strap_device(p.index)
            else:
                source, device = self.watch, _watch_device(p.index + 1)
            groups.append((p.wk.hr_t, p.wk.hr_bpm, source, device, np.full(p.wk.hr_t.size, 2)))
        for t, bpm, source, device, ctx in groups:
            inner = [motion[i] for i in ctx.tolist()]
            values = [str(int(b)) for b in bpm.tolist()]
            self._records(out, HR, source, device, "count/min", t, t, values, inner)
            if self.cfg.keep_truth:
                self._hr_ts.append(t.astype(np.float64))
                self._hr_bpm.append(bpm.astype(np.float64))
            self.truth.hr_sources[source] = self.truth.hr_sources.get(source, 0) + t.size

    def _resting(self, out: _Day, p: _Plan, rng: np.random.Generator) -> None:
        v = int(rng.integers(48, 62))
        t0 = np.array([p.day0 + 8 * 3600 + 1800], np.int64)
        self._records(
            out, RESTING, self.watch, None, "count/min", t0, t0 + 13 * 3600, [str(v)], None
        )
        self._count("resting_hr_bpm", np.array([float(v)]))

    def _hrv(self, out: _Day, p: _Plan, rng: np.random.Generator, index: int) -> None:
        n = int(rng.integers(3, 7))
        starts = np.sort(rng.integers(0, 86400 - 120, n)) + p.day0
        if index % 7 == 3:  # one list per week runs across local midnight
            starts[-1] = p.day0 + 86400 - 40
        sdnn, bodies, ends = [], [], []
        for s in starts.tolist():
            k = int(rng.integers(40, 80))
            rr = rng.normal(60000 / rng.uniform(55, 75), 40, k).clip(400, 1500)
            beat_s = s + 1 + np.cumsum(rr) / 1000.0
            bpm = np.rint(60000.0 / rr).astype(np.int64)
            sdnn.append(f"{float(np.std(rr)):.4f}")
            ends.append(int(np.ceil(beat_s[-1])))
            times = _fmt_beat_times(
                beat_s, self._offsets_at(np.array([s]))[0], self.cfg.beat_time_style
            )
            bodies.append(
                "  <HeartRateVariabilityMetadataList>\n"
                + "".join(
                    f'   <InstantaneousBeatsPerMinute bpm="{b}" time="{tm}"/>\n'
                    for b, tm in zip(bpm.tolist(), times, strict=True)
                )
                + "  </HeartRateVariabilityMetadataList>\n"
            )
            if self.cfg.keep_truth:
                # what an importer can know: the instant to 1/100 s, RR from the integer bpm
                self._rr_ts.append(np.round(beat_s, 2))
                self._rr_ms.append(60000.0 / bpm)
        self._records(
            out,
            HRV,
            self.watch,
            _watch_device(p.index),
            "ms",
            starts,
            np.array(ends, np.int64),
            sdnn,
            bodies,
        )
        self._count("hrv_sdnn_ms", np.array([float(v) for v in sdnn]))

    def _steps(self, out: _Day, p: _Plan) -> None:
        for source, device, t, n, dur in (
            (self.phone, _phone_device(), p.step_t, p.step_n, p.step_dur),
            (self.watch, _watch_device(p.index), p.step_t + 30, p.step_n_watch, p.step_dur),
        ):
            self._records(
                out,
                STEPS,
                source,
                device,
                "count",
                t,
                t + dur,
                [str(v) for v in n.tolist()],
                None,
                "17.2",
            )
            self._count("steps", n.astype(np.float64))

    def _distance(self, out: _Day, p: _Plan) -> None:
        km = np.round(p.step_n * 0.00075, 5)
        if self.cfg.distance_unit == "mi":
            vals = np.round(km / 1.609344, 6)
            metres = vals * 1609.344
        else:
            vals = km
            metres = km * 1000.0
        self._records(
            out,
            DISTANCE,
            self.phone,
            _phone_device(),
            self.cfg.distance_unit,
            p.step_t,
            p.step_t + p.step_dur,
            [repr(v) for v in vals.tolist()],
            None,
            "17.2",
        )
        self._count("distance_m", metres)

    def _energy(self, out: _Day, p: _Plan) -> None:
        kcal = p.energy
        if self.cfg.energy_unit == "kJ":
            vals = np.round(kcal * 4.184, 3)
            kcal = vals / 4.184
        else:
            vals = kcal
        self._records(
            out,
            ENERGY,
            self.watch,
            _watch_device(p.index),
            self.cfg.energy_unit,
            p.energy_t,
            p.energy_t + 60,
            [repr(v) for v in vals.tolist()],
        )
        self._count("energy_active_kcal", kcal)

    def _basal(self, out: _Day, p: _Plan) -> None:
        t = p.day0 + np.arange(0, 86400, 900, dtype=np.int64)
        vals = [repr(v) for v in np.round(np.full(t.size, 15.2) + (t % 7) * 0.1, 3).tolist()]
        self._records(out, BASAL, self.watch, _watch_device(p.index), "kcal", t, t + 900, vals)

    def _exercise(self, out: _Day, p: _Plan) -> None:
        if p.wk is None:
            return
        t = np.arange(p.wk.start, p.wk.end - 59, 60, dtype=np.int64)
        self._records(
            out, EXERCISE, self.watch, _watch_device(p.index), "min", t, t + 60, ["1"] * t.size
        )
        self._count("exercise_minutes", np.ones(t.size))

    def _stand(self, out: _Day, p: _Plan) -> None:
        t = p.day0 + np.arange(8, 22, dtype=np.int64) * 3600
        self._records(
            out,
            STAND,
            self.watch,
            None,
            None,
            t,
            t + 3600,
            ["HKCategoryValueAppleStandHourStood"] * t.size,
        )

    def _sleep(self, out: _Day, p: _Plan) -> None:
        t = p.day0 + np.array([0, 5400, 11000, 18000], np.int64)
        stages = [
            "HKCategoryValueSleepAnalysis" + s
            for s in ("AsleepCore", "AsleepDeep", "AsleepREM", "Awake")
        ]
        inner = ['  <MetadataEntry key="HKTimeZone" value="Europe/London"/>\n'] * 4
        self._records(out, SLEEP, self.watch, None, None, t, t + 5000, stages, inner)

    def _bp(self, out: _Day, p: _Plan, index: int, *, nested: bool, part: str) -> None:
        if index % 7 != 0:
            return
        t = np.array([p.day0 + 7 * 3600 + 600], np.int64)
        if not nested:  # the top-level copies of the correlation's records
            value = "121" if part == BP_SYS else "79"
            self._records(out, part, "Withings", None, "mmHg", t, t, [value])
            return
        (d,) = self._dates(t)
        rec = (
            f'  <Record type="{{}}" sourceName="Withings" sourceVersion="6.1" unit="mmHg" '
            f'creationDate="{d}" startDate="{d}" endDate="{d}" value="{{}}"/>\n'
        )
        out.correlation = (
            f' <Correlation type="HKCorrelationTypeIdentifierBloodPressure" sourceName="Withings"'
            f' sourceVersion="6.1" creationDate="{d}" startDate="{d}" endDate="{d}">\n'
            '  <MetadataEntry key="HKWasUserEntered" value="0"/>\n'
            + rec.format(BP_SYS, 121)
            + rec.format(BP_DIA, 79)
            + " </Correlation>\n"
        )
        self.truth.n_elements += 4

    def _workout(self, out: _Day, p: _Plan) -> None:
        wk = p.wk
        if wk is None:
            return
        s, e = self._dates(np.array([wk.start, wk.end], np.int64))
        (ev,) = self._dates(np.array([wk.start + 600], np.int64))
        avg = float(np.mean(wk.hr_bpm))
        mx = float(np.max(wk.hr_bpm))
        mn = float(np.min(wk.hr_bpm))
        dur_min = (wk.end - wk.start - wk.pause_s) / 60.0
        kcal = float(np.sum(p.energy[(p.energy_t >= wk.start) & (p.energy_t < wk.end)]))
        source = self.watch
        device = _watch_device(p.index)
        out.workout = (
            f' <Workout workoutActivityType="HKWorkoutActivityType{wk.sport}" '
            f'duration="{dur_min!r}" durationUnit="min" sourceName="{source}" sourceVersion="10.2"'
            f' device="{device}" creationDate="{e}" startDate="{s}" endDate="{e}">\n'
            '  <MetadataEntry key="HKIndoorWorkout" value="0"/>\n'
            f'  <WorkoutEvent type="HKWorkoutEventTypePause" date="{ev}"/>\n'
            f'  <WorkoutEvent type="HKWorkoutEventTypeResume" date="{ev}"/>\n'
            f'  <WorkoutActivity uuid="{_uuid(p.index)}" startDate="{s}" endDate="{e}" '
            f'duration="{dur_min!r}" durationUnit="min">\n'
            '   <MetadataEntry key="HKIndoorWorkout" value="0"/>\n'
            "  </WorkoutActivity>\n"
            f'  <WorkoutStatistics type="{ENERGY}" startDate="{s}" endDate="{e}" '
            f'sum="{kcal:.3f}" unit="kcal"/>\n'
            f'  <WorkoutStatistics type="{HR}" startDate="{s}" endDate="{e}" '
            f'average="{avg!r}" minimum="{mn:g}" maximum="{mx:g}" unit="count/min"/>\n'
            f'  <WorkoutRoute sourceName="{source}" sourceVersion="10.2" creationDate="{e}" '
            f'startDate="{s}" endDate="{e}">\n'
            f'   <FileReference path="/workout-routes/route_{p.index}.gpx"/>\n'
            "  </WorkoutRoute>\n"
            " </Workout>\n"
        )
        self.truth.n_elements += 10
        self.truth.workouts.append(
            TruthWorkout(
                start=np.datetime64(wk.start, "s").astype("M8[us]"),
                end=np.datetime64(wk.end, "s").astype("M8[us]"),
                activity_type=wk.sport,
                duration_s=dur_min * 60.0,
                avg_hr=avg,
                max_hr=mx,
            )
        )

    def _summary(self, out: _Day, p: _Plan, d: date) -> None:
        ex = 0 if p.wk is None else (p.wk.end - p.wk.start) // 60
        out.summary = (
            f' <ActivitySummary dateComponents="{d.isoformat()}" '
            f'activeEnergyBurned="{float(p.energy.sum()):.3f}" activeEnergyBurnedGoal="500" '
            f'activeEnergyBurnedUnit="kcal" appleMoveTime="0" appleMoveTimeGoal="0" '
            f'appleExerciseTime="{ex}" appleExerciseTimeGoal="30" appleStandHours="14" '
            'appleStandHoursGoal="12"/>\n'
        )
        self.truth.n_elements += 1


@dataclass
class _Workout:
    start: int
    end: int
    pause_s: int
    sport: str
    strap: bool
    hr_t: npt.NDArray[np.int64]
    hr_bpm: npt.NDArray[np.int64]


@dataclass
class _Plan:
    index: int
    day0: int
    wk: _Workout | None
    bg_t: npt.NDArray[np.int64]
    bg_bpm: npt.NDArray[np.int64]
    bg_motion: npt.NDArray[np.int64]
    step_t: npt.NDArray[np.int64]
    step_dur: npt.NDArray[np.int64]
    step_n: npt.NDArray[np.int64]
    step_n_watch: npt.NDArray[np.int64]
    energy_t: npt.NDArray[np.int64]
    energy: npt.NDArray[np.float64]


def _plan(rng: np.random.Generator, index: int, day0: int, strap_share: float) -> _Plan:
    """The day's events, drawn in a fixed order so every per-type pass sees the same day."""
    wk: _Workout | None = None
    has_workout = rng.random() < 0.65
    ws = day0 + int(rng.integers(int(7.5 * 3600), 19 * 3600))
    dur = int(rng.integers(20, 76)) * 60
    sport = _SPORTS[int(rng.choice(len(_SPORTS), p=[w for _, w in _SPORTS]))][0]
    strap = bool(rng.random() < strap_share)
    if has_workout:
        hr_t = np.arange(ws, ws + dur, 5, dtype=np.int64)
        ramp = np.minimum(1.0, (hr_t - ws) / 300.0)
        hr_bpm = np.rint(95 + 55 * ramp + rng.normal(0, 4, hr_t.size)).astype(np.int64)
        wk = _Workout(ws, ws + dur, int(rng.integers(0, 4)) * 30, sport, strap, hr_t, hr_bpm)
    steps = np.cumsum(rng.uniform(240, 360, 300)).astype(np.int64)
    bg_t = day0 + steps[steps < 86400]
    if wk is not None:
        bg_t = bg_t[(bg_t < wk.start) | (bg_t >= wk.end)]
    hour = (bg_t - day0) / 3600.0
    asleep = (hour < 7) | (hour >= 23)
    bg_bpm = np.rint(np.where(asleep, 55, 70) + rng.normal(0, 5, bg_t.size)).astype(np.int64)
    bg_motion = np.where(asleep, 0, 1).astype(np.int64)
    bouts = np.cumsum(rng.uniform(600, 1500, 80)).astype(np.int64) + 7 * 3600
    bouts = bouts[bouts < 22 * 3600]
    step_t = day0 + bouts
    step_dur = rng.integers(120, 540, bouts.size).astype(np.int64)
    step_n = rng.integers(10, 900, bouts.size).astype(np.int64)
    step_n_watch = (step_n * rng.uniform(0.9, 1.1, bouts.size)).astype(np.int64)
    et = day0 + np.arange(7 * 3600, 23 * 3600, 180, dtype=np.int64)
    et = et + rng.integers(0, 30, et.size)
    energy = np.round(rng.uniform(0.5, 6.0, et.size), 3)
    if wk is not None:
        wt = np.arange(wk.start, wk.end, 60, dtype=np.int64)
        keep = (et < wk.start) | (et >= wk.end)
        et = np.concatenate([et[keep], wt])
        energy = np.concatenate([energy[keep], np.round(rng.uniform(8, 14, wt.size), 3)])
        order = np.argsort(et, kind="stable")
        et, energy = et[order], energy[order]
    return _Plan(
        index, day0, wk, bg_t, bg_bpm, bg_motion, step_t, step_dur, step_n, step_n_watch, et, energy
    )


def _utc_s(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())


def _to_us(parts: list[npt.NDArray[np.float64]]) -> npt.NDArray[np.datetime64]:
    if not parts:
        return np.empty(0, "M8[us]")
    s = np.concatenate(parts)
    return np.rint(s * 1e6).astype(np.int64).astype("M8[us]")


def _offset_text(off: int) -> str:
    sign = "-" if off < 0 else "+"
    h, m = divmod(abs(int(off)) // 60, 60)
    return f"{sign}{h:02d}{m:02d}"


def _fmt_dates(utc_s: npt.NDArray[np.int64], off_s: npt.NDArray[np.int64]) -> list[str]:
    """``YYYY-MM-DD HH:MM:SS +HHMM`` for each instant in its offset (Apple's date format)."""
    local = np.datetime_as_string((utc_s + off_s).astype("M8[s]"))
    uniq, inv = np.unique(off_s, return_inverse=True)
    texts = [_offset_text(int(o)) for o in uniq]
    return [
        f"{a[:10]} {a[11:]} {texts[i]}" for a, i in zip(local.tolist(), inv.tolist(), strict=True)
    ]


def _fmt_beat_times(beat_s: npt.NDArray[np.float64], off: int, style: str) -> list[str]:
    """Local wall-clock time of day with 1/100 s, as the export's locale writes it."""
    cs = np.rint((beat_s + off) * 100).astype(np.int64) % (86400 * 100)
    out = []
    for c in cs.tolist():
        sec, frac = divmod(c, 100)
        h, rem = divmod(sec, 3600)
        m, s = divmod(rem, 60)
        if style == "24h_comma":
            out.append(f"{h:02d}:{m:02d}:{s:02d},{frac:02d}")
        else:
            h12 = h % 12 or 12
            sep = "\u202f" if style == "12h_nnbsp" else " "
            out.append(f"{h12}:{m:02d}:{s:02d}.{frac:02d}{sep}{'PM' if h >= 12 else 'AM'}")
    return out


def _watch_device(i: int) -> str:
    return (
        f"&lt;&lt;HKDevice: 0x30{(i * 7919) % 0xFFFFFFF:07x}&gt;, name:Apple Watch, "
        "manufacturer:Apple Inc., model:Watch, hardware:Watch6,7, software:10.2&gt;"
    )


def _phone_device() -> str:
    return (
        "&lt;&lt;HKDevice: 0x3011a2c60&gt;, name:iPhone, manufacturer:Apple Inc., "
        "model:iPhone, hardware:iPhone15,2, software:17.2.1&gt;"
    )


def _strap_device(i: int) -> str:
    return (
        f"&lt;&lt;HKDevice: 0x28{(i * 104729) % 0xFFFFFFF:07x}&gt;, name:Polar H10 8A1B2C3D, "
        "manufacturer:Polar Electro Oy, model:H10, firmware:3.1.1&gt;"
    )


def _uuid(i: int) -> str:
    return f"{i:08X}-0000-4000-8000-{(i * 2654435761) % (1 << 48):012X}"
