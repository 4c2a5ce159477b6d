"""Pure-numpy dose kernels: heart-rate load, load over days, and acceleration.

Functions of arrays (units in each docstring), importable with only numpy and the
standard library. Each kernel returns its values together with what it did to the input
(samples clipped, NaN samples, gaps, dropped samples), and streaming kernels take their state
in and hand it back so that chunked processing equals processing the whole.

Modules
-------
hr
    Sample hold times, HR reserve, Banister / Edwards / Lucia TRIMP, session RPE, HR zones,
    ACSM intensity minutes, age-predicted HRmax.
load
    Daily sums, CTL/ATL/TSB (PMC), EWMA and rolling ACWR, Foster monotony and strain, ISO weeks.
accel
    ENMO and MAD per epoch, Hildebrand intensity levels, GGIR MVPA bouts.

Conventions and reference vectors: ``shared/reference/README.md`` and ``vectors.json``.
"""

from __future__ import annotations

from actidose.dose.accel import (
    LEVEL_NAMES,
    THRESHOLD_SETS,
    EpochResult,
    classify_levels,
    enmo,
    epoch_enmo_mad,
    ggir_bouts,
    vector_magnitude,
)
from actidose.dose.hr import (
    BANISTER_PRESETS,
    HRMAX_FORMULAS,
    INTENSITY_SCHEMES,
    Durations,
    TrimpResult,
    banister_coefficients,
    banister_trimp,
    banister_trimp_avg_hr,
    edwards_trimp,
    hrmax_fox,
    hrmax_tanaka,
    hrmax_zone_edges,
    hrr_fraction,
    hrr_zone_edges,
    intensity_class,
    intensity_minutes,
    lucia_trimp,
    sample_durations,
    session_rpe,
    time_in_zones,
)
from actidose.dose.load import (
    AcwrEwmaResult,
    AcwrState,
    FosterResult,
    PMCResult,
    PMCState,
    acwr_ewma,
    acwr_rolling,
    daily_sum,
    foster_rolling,
    foster_week,
    iso_week_start,
    pmc,
)

__all__ = [
    "BANISTER_PRESETS",
    "HRMAX_FORMULAS",
    "INTENSITY_SCHEMES",
    "LEVEL_NAMES",
    "THRESHOLD_SETS",
    "AcwrEwmaResult",
    "AcwrState",
    "Durations",
    "EpochResult",
    "FosterResult",
    "PMCResult",
    "PMCState",
    "TrimpResult",
    "acwr_ewma",
    "acwr_rolling",
    "banister_coefficients",
    "banister_trimp",
    "banister_trimp_avg_hr",
    "classify_levels",
    "daily_sum",
    "edwards_trimp",
    "enmo",
    "epoch_enmo_mad",
    "foster_rolling",
    "foster_week",
    "ggir_bouts",
    "hrmax_fox",
    "hrmax_tanaka",
    "hrmax_zone_edges",
    "hrr_fraction",
    "hrr_zone_edges",
    "intensity_class",
    "intensity_minutes",
    "iso_week_start",
    "lucia_trimp",
    "pmc",
    "sample_durations",
    "session_rpe",
    "time_in_zones",
    "vector_magnitude",
]
