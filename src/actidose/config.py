"""Dose parameters: every published-variant choice, named, with the reference defaults.

The active set is stored in the database (``meta.dose_config``); every derived row records the
``params_id`` (a hash) of the set that made it, and ``parameter_sets`` maps the id to the JSON.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace
from functools import cached_property
from typing import Any, ClassVar

from .errors import UsageError


@dataclass(frozen=True)
class DoseConfig:
    trimp_preset: str = "banister"  # Banister/Morton coefficients; "goldencheetah", "no_a"
    max_gap_s: float = 60.0  # a HR sample holds at most this long (reference README)
    coverage_gap_s: float = 300.0  # ... for counting a day's wear coverage (all-day HR is sparse)
    intensity_scheme: str = "hrr"  # ACSM: "hrr" 40/60 % of HR reserve, or "hrmax" 64/77 %
    hrmax_formula: str = "tanaka"  # when HRmax is not entered: "tanaka" or "fox"
    load_metric: str = "trimp_banister"  # daily load for CTL/ATL: or trimp_edwards, trimp_allday
    pmc_form: str = "exp"  # k = 1 - exp(-1/tau); "inverse": k = 1/tau
    tau_ctl: float = 42.0
    tau_atl: float = 7.0
    acwr_acute_days: int = 7
    acwr_chronic_days: int = 28
    foster_ddof: int = 0  # population SD, as Foster 2001 Table 5 requires
    observed_min_h: float = 10.0  # all-day coverage for a day to count as observed
    who_min_per_week: float = 150.0  # WHO 2020: moderate-equivalent minutes per week
    vigorous_weight: float = 2.0  # one vigorous minute counts as two moderate
    # Which source counts where several cover the same seconds: sensor kinds best first, then
    # (prefer_dense) the source with more samples per minute (1 Hz beats sparse all-day HR).
    source_priority: str = "chest_strap,optical,phone,unknown"
    # Accelerometers: ENMO threshold set (see actidose.dose.accel), wear needed for a valid day,
    # and GGIR's bout criterion (share of a bout's epochs at or above the MVPA threshold).
    accel_thresholds: str = "hildebrand_wrist_actigraph"  # or another set, or custom:L,M,V mg
    # Applied when a raw accelerometer file is imported (changing them needs a re-import):
    accel_epoch_s: float = 5.0
    nonwear_rule: str = "ggir2023"  # GGIR's default; or "ggir2013"
    autocalibrate: bool = True  # van Hees 2014 sphere fit, kept only when it helps
    valid_wear_h: float = 16.0
    bout_criterion: float = 0.8
    prefer_dense: bool = True
    # Days without data (day_status 'unobserved') in the load models: "zero" (a rest day, the
    # published recurrences), "decay" (load unknown: CTL/ATL decay and are flagged as imputed,
    # rolling ratios and monotony need observed windows), "exclude" (the models run over
    # observed days only; unobserved rows stay NULL).
    unobserved_load: str = "zero"
    # Exposure before each symptom rating: window length in days (0: the instrument's recall
    # window), and lags in days (comma list; lag L ends the window L days before the rating).
    exposure_window_days: float = 0.0
    exposure_lags: str = "0"
    # HR anchors: "entered" (entered values win, estimates from the data fill in), "estimated"
    # (estimates wherever there are some), "entered_only" (never estimate).
    anchor_source: str = "entered"
    hr_rest_window_min: float = 5.0  # resting HR: lowest rolling mean over this many minutes
    hr_rest_min_h: float = 10.0  # ... of a day with at least this much all-day HR
    hr_rest_smooth_days: int = 7  # ... smoothed by a centred rolling median over these days
    hr_peak_s: float = 10.0  # HRmax: highest HR sustained (rolling mean) over this long

    _CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        "trimp_preset": ("banister", "goldencheetah", "no_a"),
        "intensity_scheme": ("hrr", "hrmax"),
        "hrmax_formula": ("tanaka", "fox"),
        "load_metric": ("trimp_banister", "trimp_edwards", "trimp_allday"),
        "pmc_form": ("exp", "inverse"),
        "nonwear_rule": ("ggir2023", "ggir2013"),
        "unobserved_load": ("zero", "decay", "exclude"),
        "anchor_source": ("entered", "estimated", "entered_only"),
    }

    def validate(self) -> None:
        for name, allowed in self._CHOICES.items():
            if getattr(self, name) not in allowed:
                raise UsageError(
                    f"{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}"
                )
        for name in ("max_gap_s", "coverage_gap_s", "tau_ctl", "tau_atl", "observed_min_h"):
            if not getattr(self, name) > 0:
                raise UsageError(f"{name} must be positive")
        if not 0 < self.acwr_acute_days < self.acwr_chronic_days:
            raise UsageError("acwr_acute_days must be positive and below acwr_chronic_days")
        from .dose.accel import THRESHOLD_SETS

        known_sets = set(THRESHOLD_SETS)
        try:
            from .dose.accel_process import THRESHOLD_SETS_EXTRA

            known_sets |= set(THRESHOLD_SETS_EXTRA)
        except ImportError:  # pragma: no cover
            pass
        custom = self.accel_thresholds.startswith("custom:")
        if custom:
            try:
                vals = [float(v) for v in self.accel_thresholds.split(":", 1)[1].split(",")]
            except ValueError:
                vals = []
            if len(vals) != 3 or not 0 < vals[0] < vals[1] < vals[2]:
                raise UsageError(
                    f"accel_thresholds: {self.accel_thresholds!r} is not custom:L,M,V",
                    fix="three ascending ENMO thresholds in mg, e.g. custom:40,100,400",
                )
        elif self.accel_thresholds not in known_sets:
            raise UsageError(
                f"accel_thresholds: unknown set {self.accel_thresholds!r}",
                fix="known: " + ", ".join(sorted(known_sets)) + ", or custom:L,M,V (mg)",
            )
        kinds = [k.strip() for k in self.source_priority.split(",")]
        unknown = set(kinds) - {"chest_strap", "optical", "phone", "unknown"}
        if unknown:
            raise UsageError(
                f"source_priority: unknown sensor kind(s) {', '.join(sorted(unknown))}",
                fix="use chest_strap, optical, phone, unknown in the order you trust them",
            )
        if self.foster_ddof not in (0, 1):
            raise UsageError("foster_ddof must be 0 or 1")
        if self.exposure_window_days < 0:
            raise UsageError("exposure_window_days must be 0 (the instrument's) or positive")
        try:
            lags = self.lags()
        except ValueError:
            lags = []
        if not lags or any(v < 0 for v in lags):
            raise UsageError(
                f"exposure_lags: {self.exposure_lags!r} is not a list of days",
                fix="whole days >= 0, comma-separated, e.g. 0,1,7",
            )
        for name in ("hr_rest_window_min", "hr_rest_min_h", "hr_peak_s"):
            if not getattr(self, name) > 0:
                raise UsageError(f"{name} must be positive")
        if self.hr_rest_smooth_days < 1:
            raise UsageError("hr_rest_smooth_days must be at least 1")

    def lags(self) -> list[int]:
        """The exposure lags in days, sorted, without repeats."""
        return sorted({int(v) for v in self.exposure_lags.split(",") if v.strip()})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @cached_property
    def params_id(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    @classmethod
    def from_json(cls, text: str) -> DoseConfig:
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def with_settings(self, settings: dict[str, str]) -> DoseConfig:
        """A copy with ``name=value`` strings applied (typed by the field's default)."""
        known = {f.name: f for f in fields(self)}
        changes: dict[str, Any] = {}
        for key, raw in settings.items():
            if key not in known:
                raise UsageError(
                    f"unknown dose parameter {key!r}",
                    fix="known: " + ", ".join(sorted(known)),
                )
            default = getattr(DoseConfig(), key)
            try:
                if isinstance(default, bool):
                    if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                        raise ValueError(raw)
                    changes[key] = raw.lower() in ("true", "1", "yes")
                    continue
                changes[key] = type(default)(raw)
            except ValueError as exc:
                raise UsageError(f"{key}: {raw!r} is not a {type(default).__name__}") from exc
        new = replace(self, **changes)
        new.validate()
        return new
