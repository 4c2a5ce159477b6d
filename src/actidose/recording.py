"""``Recording``: what every importer hands to the pipeline.

Arrays only, no per-sample Python objects. Instants are UTC, as ``numpy.datetime64[us]`` arrays
(naive numpy values that *mean* UTC); heart rate is float64 with NaN where the source said "no
value". The sample rules of the design (plausible range, one value per timestamp) are applied
by the pipeline, not by importers, so every format is counted the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

TS_DTYPE = np.dtype("datetime64[us]")


@dataclass
class HRSeries:
    """Heart-rate samples as read: ``ts`` UTC instants (datetime64[us]), ``bpm`` float64 (NaN =
    the source's invalid marker). Not yet cleaned, possibly unsorted or repeated."""

    ts: npt.NDArray[np.datetime64]
    bpm: npt.NDArray[np.float64]

    def __post_init__(self) -> None:
        self.ts = np.asarray(self.ts, dtype=TS_DTYPE)
        self.bpm = np.asarray(self.bpm, dtype=np.float64)
        if self.ts.shape != self.bpm.shape or self.ts.ndim != 1:
            raise ValueError("HRSeries: ts and bpm must be 1-D arrays of equal length")

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    @classmethod
    def empty(cls) -> HRSeries:
        return cls(np.empty(0, TS_DTYPE), np.empty(0, np.float64))


@dataclass
class RRSeries:
    """Beat-to-beat (RR) intervals: ``ts`` is the UTC instant of the beat that ends each
    interval (datetime64[us]; where the source gives no per-beat time, the best reconstruction
    and a warning), ``rr_ms`` the interval in milliseconds (float64, exact as the source gave)."""

    ts: npt.NDArray[np.datetime64]
    rr_ms: npt.NDArray[np.float64]

    def __post_init__(self) -> None:
        self.ts = np.asarray(self.ts, dtype=TS_DTYPE)
        self.rr_ms = np.asarray(self.rr_ms, dtype=np.float64)
        if self.ts.shape != self.rr_ms.shape or self.ts.ndim != 1:
            raise ValueError("RRSeries: ts and rr_ms must be 1-D arrays of equal length")

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    @classmethod
    def empty(cls) -> RRSeries:
        return cls(np.empty(0, TS_DTYPE), np.empty(0, np.float64))


@dataclass
class VendorSeries:
    """What a vendor's own algorithms made of the day (steps, active/intensity/exercise minutes,
    resting HR, HRV, ...), kept apart from actidose's own minutes.

    ``kind`` is one of :data:`VENDOR_KINDS` (lower_snake_case); each value covers
    ``[start, start + duration_s)`` — per minute, per record or per local day (a day value starts
    at the participant's local midnight, in UTC, and lasts 23, 24 or 25 h)."""

    kind: str
    unit: str
    start: npt.NDArray[np.datetime64]
    duration_s: npt.NDArray[np.float64]
    value: npt.NDArray[np.float64]
    origin: str | None = None  # the app or device that computed it, e.g. "Apple Watch"

    def __post_init__(self) -> None:
        self.start = np.asarray(self.start, dtype=TS_DTYPE)
        self.duration_s = np.asarray(self.duration_s, dtype=np.float64)
        self.value = np.asarray(self.value, dtype=np.float64)
        if not (self.start.shape == self.duration_s.shape == self.value.shape):
            raise ValueError("VendorSeries: start, duration_s and value must have equal length")


#: Vendor series kinds actidose knows how to label. Importers use these names.
VENDOR_KINDS = (
    "steps",
    "active_minutes_light",  # Fitbit "lightly active", Garmin intensity light
    "active_minutes_moderate",  # Fitbit "fairly active", Garmin moderate intensity minutes
    "active_minutes_vigorous",  # Fitbit "very active", Garmin vigorous intensity minutes
    "exercise_minutes",  # Apple exercise minutes (AppleExerciseTime)
    "energy_active_kcal",
    "energy_total_kcal",  # active + basal (Fitbit "calories")
    "resting_hr_bpm",
    "hrv_sdnn_ms",
    "distance_m",
    "activity_counts_axis1",  # ActiGraph count epochs (no ENMO can be derived from counts)
    "activity_counts_axis2",
    "activity_counts_axis3",
    "activity_counts_vm",
)

#: HR sensor kinds, most trusted first: the default source priority when two sources cover the
#: same seconds (chest strap > watch optical > phone; see docs/decisions.md).
SENSOR_KINDS = ("chest_strap", "optical", "phone", "unknown")


@dataclass
class AccelChunk:
    """A run of raw accelerometer samples: ``ts_us`` UTC microseconds (int64, ascending),
    ``xyz`` shape (n, 3) float32 in g (the accelerometer axes only; a gyroscope is dropped)."""

    ts_us: npt.NDArray[np.int64]
    xyz: npt.NDArray[np.float32]


@dataclass
class AccelStream:
    """Raw accelerometer data of one file, read lazily so a week at 100 Hz (60 million samples
    per axis) never sits in memory at once.

    ``chunks()`` returns a fresh iterator each call (processing makes two passes: calibration,
    then epochs); chunk sizes are the reader's choice (about 1-10 million samples); samples are
    in time order across chunks. ``gaps`` are UTC ``(start_us, end_us)`` spans with no data
    (corrupt blocks skipped, never padded)."""

    sample_rate_hz: float
    chunks: Callable[[], Iterator[AccelChunk]]
    range_g: float | None = None  # the device's dynamic range (±g), for clipping counts
    n_samples: int | None = None
    gaps: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class AccelEpochs:
    """What processing made of an :class:`AccelStream` (see :mod:`actidose.dose.accel_process`):
    one row per epoch, ``start_us`` UTC, ENMO and MAD in mg, the non-wear flag, clipped and
    total sample counts; ``info`` says what was done (calibration, non-wear rule, ...)."""

    start_us: npt.NDArray[np.int64]
    epoch_s: float
    enmo_mg: npt.NDArray[np.float64]
    mad_mg: npt.NDArray[np.float64]
    nonwear: npt.NDArray[np.bool_]
    clipped: npt.NDArray[np.int64]
    n_samples: npt.NDArray[np.int64]
    info: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class ReadContext:
    """What an importer may need beyond the bytes.

    ``timezone``: IANA zone to place naive local times (the participant's, or ``--timezone``);
    formats that only have naive times raise an InputError when it is None, never guess.
    ``options``: format-specific settings, e.g. the generic CSV's column mapping.
    """

    timezone: str | None = None
    options: dict[str, str] = field(default_factory=dict)


@dataclass
class ActivityInfo:
    """One exercise session as the file describes it (a FIT ``session``, a TCX ``Activity``)."""

    start: np.datetime64  # UTC, datetime64[us]
    end: np.datetime64  # UTC, datetime64[us]; start + elapsed time
    sport: str | None = None
    sub_sport: str | None = None
    timer_s: float | None = None  # moving/timer time as the device measured it
    elapsed_s: float | None = None
    avg_hr: float | None = None  # as the device computed it (for comparison only)
    max_hr: float | None = None


@dataclass
class Recording:
    """Everything one source file yielded.

    ``kind`` is ``"activity"`` (a workout: HR belongs to sessions) or ``"allday"`` (monitoring /
    wellness: continuous wear, counts towards daily coverage). A file holding both (an Apple
    Health export) is ``"allday"`` with its workouts in ``activities``.
    """

    format: str
    kind: str
    hr: HRSeries = field(default_factory=HRSeries.empty)
    activities: list[ActivityInfo] = field(default_factory=list)
    rr: RRSeries = field(default_factory=RRSeries.empty)
    vendor: list[VendorSeries] = field(default_factory=list)
    sensor: str | None = None  # one of SENSOR_KINDS when the format or device tells
    accel: AccelStream | None = None  # raw accelerometer files (kind "allday")
    accel_epochs: AccelEpochs | None = None  # set by the pipeline from ``accel``
    device: str | None = None  # "garmin fenix5" etc.
    serial: str | None = None
    utc_offset_s: int | None = None  # local time - UTC, when the file says so plausibly
    salvaged: bool = False
    salvage_reason: str | None = None  # what damage salvage stopped at
    warnings: list[str] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)  # format-specific extras, e.g. product

    def time_span(self) -> tuple[np.datetime64, np.datetime64] | None:
        if len(self.hr) == 0:
            return None
        return self.hr.ts.min(), self.hr.ts.max()
