"""``Recording``: what every importer hands to the pipeline.

Arrays only, no per-sample Python objects. Instants are UTC, as ``numpy.datetime64[us]`` arrays
(naive numpy values that *mean* UTC); heart rate is float64 with NaN where the source said "no
value". The sample rules of the design (plausible range, one value per timestamp) are applied
by the pipeline, not by importers, so every format is counted the same way.
"""

from __future__ import annotations

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
    wellness: continuous wear, counts towards daily coverage).
    """

    format: str
    kind: str
    hr: HRSeries = field(default_factory=HRSeries.empty)
    activities: list[ActivityInfo] = field(default_factory=list)
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
