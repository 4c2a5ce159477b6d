"""The sample rules of the design, applied the same way to every format.

1. heart rates outside 25-250 bpm (0 = no skin contact, 255 = FIT's invalid value, NaN = the
   source's own "no value") are not stored, and are counted (``n_invalid``);
2. then, within one source, one value per timestamp: a repeated timestamp keeps the first
   remaining value in file order, and the others are counted (``n_duplicate_ts``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..recording import HRSeries

HR_MIN_BPM = 25
HR_MAX_BPM = 250


@dataclass(frozen=True)
class CleanHR:
    ts_us: npt.NDArray[np.int64]  # sorted, unique, UTC microseconds
    bpm: npt.NDArray[np.int16]
    n_invalid: int
    n_duplicate_ts: int


def clean_hr(hr: HRSeries) -> CleanHR:
    bpm = hr.bpm
    ok = np.isfinite(bpm) & (bpm >= HR_MIN_BPM) & (bpm <= HR_MAX_BPM)
    n_invalid = int(bpm.size - np.count_nonzero(ok))
    ts = hr.ts.astype(np.int64)[ok]
    vals = bpm[ok]
    order = np.argsort(ts, kind="stable")  # stable: file order decides among equal stamps
    ts, vals = ts[order], vals[order]
    keep = np.ones(ts.size, dtype=bool)
    keep[1:] = ts[1:] != ts[:-1]
    n_dup = int(ts.size - np.count_nonzero(keep))
    return CleanHR(ts[keep], np.rint(vals[keep]).astype(np.int16), n_invalid, n_dup)
