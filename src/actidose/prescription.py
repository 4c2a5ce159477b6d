"""Prescriptions: what each arm of a trial was asked to do, read from a TOML file.

::

    [arms.aerobic]
    weeks = 8                    # from each participant's start date (7-day blocks)
    sessions_per_week = 3
    min_session_min = 30
    intensity = { scheme = "hrr", low = 0.60, high = 0.80 }   # fractions, not percent
    # qualify = "duration_in_band"   (default with a band; "band_minutes" or "duration")
    # trimp_per_week = 180           (default: derived from the band, see below)

    [arms.stretching]
    weeks = 8
    sessions_per_week = 3
    min_session_min = 30
    qualify = "duration"         # the default without an intensity band

Band edges are fractions (0.60 for 60 %) of HR reserve (``scheme = "hrr"``) or of HRmax
(``scheme = "hrmax"``), with ``0 < low < high <= 1.2``; both edges are in the band. Percent
values (``low = 60``) are rejected with a hint, so a file means one thing only.

The prescribed minutes in the band per week are ``sessions_per_week * min_session_min`` (arms
with a band). Without ``trimp_per_week`` the prescribed weekly Banister TRIMP is
``sessions_per_week`` sessions of ``min_session_min`` minutes at the band's midpoint
(:func:`actidose.dose.adherence.prescribed_session_trimp`), with the participant's Banister
coefficients; only the ``hrr`` scheme defines one.

Parsing is pure: no database. Every problem is a :class:`~actidose.errors.UsageError` naming
the file, the key and, where it can be found, the line.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .dose.adherence import BAND_SCHEMES, QUALIFY_RULES, prescribed_session_trimp
from .errors import UsageError

__all__ = [
    "ARM_KEYS",
    "MAX_BAND_FRACTION",
    "Prescription",
    "parse_prescriptions",
    "read_prescriptions",
]

ARM_KEYS = (
    "weeks",
    "sessions_per_week",
    "min_session_min",
    "intensity",
    "qualify",
    "trimp_per_week",
)
"""Keys an ``[arms.NAME]`` table may hold."""

INTENSITY_KEYS = ("scheme", "low", "high")
MAX_BAND_FRACTION = 1.2
_ARM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\- ]*$")

_EXAMPLE = (
    "e.g. [arms.aerobic] with weeks = 8, sessions_per_week = 3, min_session_min = 30, "
    'intensity = { scheme = "hrr", low = 0.60, high = 0.80 }'
)

# Hints for keys people are likely to write.
_KEY_HINTS = {
    "band": 'write intensity = { scheme = "hrr", low = 0.60, high = 0.80 } (fractions)',
    "band_unit": "band edges are always fractions (0.60 for 60 %); there is no unit to set",
    "unit": "band edges are always fractions (0.60 for 60 %); there is no unit to set",
    "sessions": "the key is sessions_per_week",
    "duration": "the key is min_session_min (minutes)",
    "minutes": "the key is min_session_min (minutes)",
    "min_minutes": "the key is min_session_min (minutes)",
    "session_min": "the key is min_session_min (minutes)",
    "length_weeks": "the key is weeks",
    "duration_weeks": "the key is weeks",
    "trimp": "the key is trimp_per_week",
}


@dataclass(frozen=True)
class Prescription:
    """The prescribed dose of one arm.

    Attributes
    ----------
    arm : str
        Arm name, as in ``participants.arm``.
    weeks : int
        Length in weeks (>= 1), counted in 7-day blocks from each participant's start date.
    sessions_per_week : float
        Prescribed sessions per week (> 0).
    min_session_min : float
        Minimum minutes per session (>= 0).
    band_scheme : {'hrr', 'hrmax'} or None
        What the band edges are fractions of; None: no intensity band.
    band_low, band_high : float or None
        Band edges as fractions (0 < low < high <= 1.2), both included.
    qualify : {'duration_in_band', 'band_minutes', 'duration'}
        When a session counts (:data:`actidose.dose.adherence.QUALIFY_RULES`).
    trimp_per_week : float or None
        Prescribed weekly Banister TRIMP; None: derived from the band
        (:meth:`trimp_prescribed_per_week`).
    definition : dict
        The arm's table as written in the file.
    """

    arm: str
    weeks: int
    sessions_per_week: float
    min_session_min: float = 0.0
    band_scheme: str | None = None
    band_low: float | None = None
    band_high: float | None = None
    qualify: str = "duration"
    trimp_per_week: float | None = None
    definition: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def band_min_per_week(self) -> float | None:
        """Prescribed minutes in the band per week: ``sessions_per_week * min_session_min``
        (None without a band)."""
        if self.band_scheme is None:
            return None
        return self.sessions_per_week * self.min_session_min

    def trimp_prescribed_per_week(self, a: float | None, b: float | None) -> float | None:
        """Prescribed weekly Banister TRIMP for a participant with coefficients ``(a, b)``.

        ``trimp_per_week`` when given; else ``sessions_per_week *
        prescribed_session_trimp(min_session_min, band_low, band_high, a, b)`` for an ``hrr``
        band; None otherwise (no band, an ``hrmax`` band, or unknown coefficients).
        """
        if self.trimp_per_week is not None:
            return self.trimp_per_week
        if (
            self.band_scheme != "hrr"
            or self.band_low is None
            or self.band_high is None
            or a is None
            or b is None
        ):
            return None
        per = prescribed_session_trimp(self.min_session_min, self.band_low, self.band_high, a, b)
        return self.sessions_per_week * per

    def describe(self) -> str:
        """One line a person can read, e.g. ``3 x 30 min/week at 60-80 % HRR for 8 weeks``."""
        spw = f"{self.sessions_per_week:g}"
        text = f"{spw} x {self.min_session_min:g} min/week"
        if (
            self.band_scheme is not None
            and self.band_low is not None
            and self.band_high is not None
        ):
            lo, hi = round(self.band_low * 100, 4), round(self.band_high * 100, 4)
            text += f" at {lo:g}-{hi:g} % {'HRR' if self.band_scheme == 'hrr' else 'HRmax'}"
        return text + f" for {self.weeks} week{'s' if self.weeks != 1 else ''}"


class _Where:
    """Finds the line of a key in the TOML text (best effort, for messages)."""

    _HEADER = re.compile(r"^\s*\[\[?\s*([^\[\]]+?)\s*\]\]?\s*(#.*)?$")
    _ASSIGN = re.compile(r"^\s*([A-Za-z0-9_.\-\"' ]+?)\s*=")

    def __init__(self, text: str, origin: str) -> None:
        self.origin = origin
        self.paths: list[tuple[int, str, bool]] = []  # (line, dotted path, is assignment)
        section = ""
        for no, raw in enumerate(text.splitlines(), start=1):
            m = self._HEADER.match(raw)
            if m:
                section = self._norm(m.group(1))
                self.paths.append((no, section, False))
                continue
            a = self._ASSIGN.match(raw)
            if a:
                lhs = self._norm(a.group(1))
                self.paths.append((no, f"{section}.{lhs}" if section else lhs, True))

    @staticmethod
    def _norm(name: str) -> str:
        return ".".join(part.strip().strip("\"'") for part in name.split("."))

    def line(self, path: str) -> int | None:
        """The line defining ``path`` (a dotted key), else that of its nearest parent."""
        parts = path.split(".")
        while parts:
            target = ".".join(parts)
            for no, got, assign in self.paths:
                if got == target or got.startswith(target + "."):
                    return no
                if assign and target.startswith(got + "."):  # inside an inline table
                    return no
            parts.pop()
        return None

    def error(self, path: str, message: str, fix: str | None = None) -> UsageError:
        line = self.line(path)
        where = f"{self.origin}, line {line}" if line else self.origin
        return UsageError(f"{where}: {path}: {message}", fix=fix)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def _parse_arm(arm: str, table: Any, where: _Where) -> Prescription:
    if not isinstance(table, dict):
        raise where.error(f"arms.{arm}", "must be a table of keys", fix=_EXAMPLE)
    if not _ARM_NAME.match(arm):
        raise where.error(
            f"arms.{arm}", "arm names start with a letter or digit", fix="e.g. [arms.aerobic]"
        )
    for key in table:
        if key not in ARM_KEYS:
            raise where.error(
                f"arms.{arm}.{key}",
                "unknown key",
                fix=_KEY_HINTS.get(key, "known keys: " + ", ".join(ARM_KEYS)),
            )
    for key in ("weeks", "sessions_per_week"):
        if key not in table:
            raise where.error(f"arms.{arm}.{key}", "is required", fix=_EXAMPLE)

    weeks_raw = table["weeks"]
    if isinstance(weeks_raw, bool) or not isinstance(weeks_raw, int) or weeks_raw < 1:
        raise where.error(f"arms.{arm}.weeks", f"must be a whole number >= 1, not {weeks_raw!r}")
    spw = _number(table["sessions_per_week"])
    if spw is None or spw <= 0:
        raise where.error(
            f"arms.{arm}.sessions_per_week",
            f"must be a number > 0, not {table['sessions_per_week']!r}",
        )
    msm = 0.0
    if "min_session_min" in table:
        got = _number(table["min_session_min"])
        if got is None or got < 0:
            raise where.error(
                f"arms.{arm}.min_session_min",
                f"must be minutes >= 0, not {table['min_session_min']!r}",
            )
        msm = got

    scheme: str | None = None
    low: float | None = None
    high: float | None = None
    if "intensity" in table:
        scheme, low, high = _parse_intensity(arm, table["intensity"], where)

    qualify = "duration_in_band" if scheme is not None else "duration"
    if "qualify" in table:
        q = table["qualify"]
        if q not in QUALIFY_RULES:
            raise where.error(
                f"arms.{arm}.qualify",
                f"must be one of {', '.join(QUALIFY_RULES)}, not {q!r}",
                fix="duration_in_band: long enough with mean HR in the band; band_minutes: "
                "enough minutes in the band; duration: long enough at any intensity",
            )
        qualify = str(q)
    if qualify != "duration" and scheme is None:
        raise where.error(
            f"arms.{arm}.qualify",
            f"{qualify!r} needs an intensity band",
            fix='add intensity = { scheme = "hrr", low = 0.60, high = 0.80 } or use '
            'qualify = "duration"',
        )

    trimp: float | None = None
    if "trimp_per_week" in table:
        trimp = _number(table["trimp_per_week"])
        if trimp is None or trimp <= 0:
            raise where.error(
                f"arms.{arm}.trimp_per_week",
                f"must be a number > 0, not {table['trimp_per_week']!r}",
                fix="leave it out to derive it from the band",
            )

    return Prescription(
        arm=arm,
        weeks=int(weeks_raw),
        sessions_per_week=spw,
        min_session_min=msm,
        band_scheme=scheme,
        band_low=low,
        band_high=high,
        qualify=qualify,
        trimp_per_week=trimp,
        definition=dict(table),
    )


def _parse_intensity(arm: str, value: Any, where: _Where) -> tuple[str, float, float]:
    example = 'intensity = { scheme = "hrr", low = 0.60, high = 0.80 }'
    if not isinstance(value, dict):
        raise where.error(f"arms.{arm}.intensity", "must be a table", fix=example)
    for key in value:
        if key not in INTENSITY_KEYS:
            hint = _KEY_HINTS.get(key, "known keys: scheme, low, high")
            raise where.error(f"arms.{arm}.intensity.{key}", "unknown key", fix=hint)
    for key in INTENSITY_KEYS:
        if key not in value:
            raise where.error(f"arms.{arm}.intensity.{key}", "is required", fix=example)
    scheme = value["scheme"]
    if scheme not in BAND_SCHEMES:
        raise where.error(
            f"arms.{arm}.intensity.scheme",
            f"must be one of {', '.join(BAND_SCHEMES)}, not {scheme!r}",
            fix="hrr: fractions of HR reserve (Karvonen); hrmax: fractions of maximum HR",
        )
    edges: list[float] = []
    for key in ("low", "high"):
        got = _number(value[key])
        if got is None:
            raise where.error(
                f"arms.{arm}.intensity.{key}", f"must be a number, not {value[key]!r}"
            )
        if got >= 10 * MAX_BAND_FRACTION:
            raise where.error(
                f"arms.{arm}.intensity.{key}",
                f"{got:g} looks like a percent; band edges are fractions",
                fix=f"write {key} = {got / 100:g} for {got:g} %",
            )
        if got > MAX_BAND_FRACTION:
            raise where.error(
                f"arms.{arm}.intensity.{key}",
                f"{got:g} is above {MAX_BAND_FRACTION:g}; band edges are fractions",
                fix="e.g. 0.80 for 80 %",
            )
        edges.append(got)
    low, high = edges
    if not 0 < low < high:
        raise where.error(
            f"arms.{arm}.intensity",
            f"needs 0 < low < high, got low = {low:g}, high = {high:g}",
            fix=example,
        )
    return str(scheme), low, high


def parse_prescriptions(text: str, origin: str) -> list[Prescription]:
    """The prescriptions of every arm in a TOML text.

    Parameters
    ----------
    text : str
        TOML with one ``[arms.NAME]`` table per arm (see the module docstring).
    origin : str
        Where the text came from (a file name), for messages.

    Returns
    -------
    list of Prescription
        In the order of the file.

    Raises
    ------
    UsageError
        Invalid TOML, no arms, an unknown key or a bad value; the message names ``origin``,
        the key and the line where it can be found.
    """
    where = _Where(text, origin)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{origin}: not valid TOML: {exc}", fix=_EXAMPLE) from exc
    for key in data:
        if key != "arms":
            raise where.error(
                key,
                "unknown top-level key",
                fix="put each arm in its own [arms.NAME] table",
            )
    arms = data.get("arms")
    if not isinstance(arms, dict) or not arms:
        raise UsageError(f"{origin}: no [arms.NAME] tables", fix=_EXAMPLE)
    return [_parse_arm(str(name), table, where) for name, table in arms.items()]


def read_prescriptions(path: Path) -> list[Prescription]:
    """:func:`parse_prescriptions` of a file (UTF-8). A file that cannot be read is a
    :class:`~actidose.errors.UsageError` naming it."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read prescriptions: {exc}") from exc
    return parse_prescriptions(text, str(path))
