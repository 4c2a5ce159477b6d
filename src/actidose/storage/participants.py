"""Participants: the anchors (sex, age, zone, HR rest/max) every dose computation depends on,
their start date (day 1 of their arm's prescription), and versioned HR anchors.

HR anchors have versions. The base version is the ``participants`` row (``hr_rest_bpm``, and
``hr_max_bpm`` when entered); each row of ``hr_anchors`` is a later version in force from its
``valid_from`` (a local date) until the next one. A field left empty in a version inherits the
value in force before it, so entering only a new resting HR keeps the maximum. Every change
marks the participant in ``pending_recompute``: what depends on the anchors is recomputed.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt

from ..errors import InputError, UsageError
from ..timeutil import zone
from .db import transaction

_UNSET: Any = object()


@dataclass
class Participant:
    participant_id: str
    timezone: str
    sex: str | None = None
    birth_year: int | None = None
    arm: str | None = None
    hr_rest_bpm: float | None = None
    hr_max_bpm: float | None = None  # entered value only; see hr_max_source in the table
    start_date: date | None = None  # local date, day 1 of the arm's prescription

    def validate(self) -> None:
        if not self.participant_id or not self.participant_id.strip():
            raise UsageError("participant id must not be empty")
        zone(self.timezone)
        if self.sex is not None and self.sex not in ("f", "m"):
            raise UsageError(f"sex must be 'f' or 'm', not {self.sex!r}")
        this_year = datetime.now(UTC).year
        if self.birth_year is not None and not 1900 <= self.birth_year <= this_year:
            raise UsageError(f"birth year {self.birth_year} is not plausible")
        if self.hr_rest_bpm is not None and not 25 <= self.hr_rest_bpm <= 150:
            raise UsageError(f"resting HR {self.hr_rest_bpm} bpm is outside 25-150")
        if self.hr_max_bpm is not None and not 80 <= self.hr_max_bpm <= 250:
            raise UsageError(f"maximum HR {self.hr_max_bpm} bpm is outside 80-250")
        if (
            self.hr_rest_bpm is not None
            and self.hr_max_bpm is not None
            and self.hr_max_bpm <= self.hr_rest_bpm
        ):
            raise UsageError("maximum HR must be above resting HR")
        if self.start_date is not None:
            if not isinstance(self.start_date, date) or isinstance(self.start_date, datetime):
                raise UsageError(
                    f"start date must be a date, not {self.start_date!r}", fix="e.g. 2026-03-02"
                )
            if not 1900 <= self.start_date.year <= 2100:
                raise UsageError(f"start date {self.start_date} is not plausible")


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_date(text: str, what: str = "date") -> date:
    """A ``YYYY-MM-DD`` date, or a :class:`~actidose.errors.UsageError` naming ``what``."""
    t = text.strip()
    try:
        if not _ISO_DATE.match(t):
            raise ValueError(t)
        return date.fromisoformat(t)
    except ValueError as exc:
        raise UsageError(f"{what} {text!r} is not a date", fix="write YYYY-MM-DD") from exc


def _age_based_hrmax(birth_year: int | None, formula: str) -> float | None:
    if birth_year is None:
        return None
    age = datetime.now(UTC).year - birth_year
    return 208.0 - 0.7 * age if formula == "tanaka" else 220.0 - age


def _row(p: Participant, hrmax_formula: str) -> dict[str, Any]:
    hr_max: float | None
    hr_max_src: str | None
    if p.hr_max_bpm is not None:
        hr_max, hr_max_src = p.hr_max_bpm, "entered"
    else:
        hr_max = _age_based_hrmax(p.birth_year, hrmax_formula)
        hr_max_src = hrmax_formula if hr_max is not None else None
    return {
        "participant_id": p.participant_id,
        "sex": p.sex,
        "birth_year": p.birth_year,
        "timezone": p.timezone,
        "arm": p.arm,
        "hr_rest_bpm": p.hr_rest_bpm,
        "hr_rest_source": "entered" if p.hr_rest_bpm is not None else None,
        "hr_max_bpm": hr_max,
        "hr_max_source": hr_max_src,
        "start_date": p.start_date,
    }


def get(con: duckdb.DuckDBPyConnection, participant_id: str) -> Participant | None:
    row = con.execute(
        "SELECT participant_id, timezone, sex, birth_year, arm, hr_rest_bpm, "
        "CASE WHEN hr_max_source = 'entered' THEN hr_max_bpm END, start_date "
        "FROM participants WHERE participant_id = ?",
        [participant_id],
    ).fetchone()
    return Participant(*row) if row else None


def require(con: duckdb.DuckDBPyConnection, participant_id: str) -> Participant:
    p = get(con, participant_id)
    if p is None:
        raise UsageError(
            f"unknown participant {participant_id!r}",
            fix=f"add it first: actidose participant add {participant_id} --sex f|m "
            "--birth-year YYYY --timezone Area/City",
        )
    return p


def _write(con: duckdb.DuckDBPyConnection, p: Participant, hrmax_formula: str) -> None:
    exists = con.execute(
        "SELECT count(*) FROM participants WHERE participant_id = ?", [p.participant_id]
    ).fetchone()
    row = _row(p, hrmax_formula)
    now = datetime.now(UTC)
    if exists and exists[0]:
        cols = [k for k in row if k != "participant_id"]
        con.execute(
            "UPDATE participants SET "
            + ", ".join(f"{c} = ?" for c in cols)
            + ", updated_at = ? WHERE participant_id = ?",
            [*(row[c] for c in cols), now, p.participant_id],
        )
    else:
        cols = list(row)
        con.execute(
            f"INSERT INTO participants ({', '.join(cols)}, created_at, updated_at) "
            f"VALUES ({', '.join('?' for _ in cols)}, ?, ?)",
            [*row.values(), now, now],
        )
    con.execute("INSERT OR IGNORE INTO pending_recompute VALUES (?)", [p.participant_id])


def add(con: duckdb.DuckDBPyConnection, p: Participant, *, hrmax_formula: str = "tanaka") -> None:
    p.validate()
    if get(con, p.participant_id) is not None:
        raise UsageError(
            f"participant {p.participant_id!r} exists already",
            fix=f"change it with: actidose participant update {p.participant_id} ...",
        )
    with transaction(con):
        _write(con, p, hrmax_formula)


ANCHORS = ("sex", "birth_year", "timezone", "hr_rest_bpm", "hr_max_bpm")
DERIVED_FROM = (*ANCHORS, "arm", "start_date")
"""Fields the derived tables depend on (``arm`` and ``start_date`` through adherence)."""


def update(
    con: duckdb.DuckDBPyConnection,
    participant_id: str,
    *,
    hrmax_formula: str = "tanaka",
    **changes: Any,
) -> bool:
    """Change the given fields (a value of ``None`` clears the field). ``hr_rest_bpm`` and
    ``hr_max_bpm`` are the base version of the anchors (see :func:`add_anchor` for later ones).
    Returns True when a field in :data:`DERIVED_FROM` changed, i.e. the participant's derived
    tables must be recomputed."""
    p = require(con, participant_id)
    names = {f.name for f in fields(Participant)} - {"participant_id"}
    unknown = set(changes) - names
    if unknown:
        raise UsageError(f"unknown participant field(s): {', '.join(sorted(unknown))}")
    before = asdict(p)
    for k, v in changes.items():
        setattr(p, k, v)
    p.validate()
    with transaction(con):
        _write(con, p, hrmax_formula)
        _check_versions(con, participant_id)
    return any(before[k] != getattr(p, k) for k in DERIVED_FROM)


ROSTER_COLUMNS = {
    "participant_id": "participant_id",
    "id": "participant_id",
    "sex": "sex",
    "birth_year": "birth_year",
    "timezone": "timezone",
    "tz": "timezone",
    "arm": "arm",
    "hr_rest_bpm": "hr_rest_bpm",
    "hr_rest": "hr_rest_bpm",
    "hr_max_bpm": "hr_max_bpm",
    "hr_max": "hr_max_bpm",
    "start_date": "start_date",
    "start": "start_date",
}


def _parse_roster(path: Path) -> tuple[list[Participant], set[str]]:
    """The roster's participants, and the fields it has columns for."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read roster: {exc}", path=str(path)) from exc
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames is None:
        raise InputError("empty roster", path=str(path))
    mapping: dict[str, str] = {}
    for name in reader.fieldnames:
        key = name.strip().lower()
        if key in ROSTER_COLUMNS:
            mapping[name] = ROSTER_COLUMNS[key]
    missing = {"participant_id", "timezone"} - set(mapping.values())
    if missing:
        raise InputError(
            f"roster needs columns {', '.join(sorted(missing))} "
            f"(has {', '.join(reader.fieldnames)})",
            path=str(path),
        )
    out: list[Participant] = []
    seen: set[str] = set()
    for line_no, raw in enumerate(reader, start=2):
        vals = {mapping[k]: (v or "").strip() for k, v in raw.items() if k in mapping}
        try:
            p = Participant(
                participant_id=vals["participant_id"],
                timezone=vals["timezone"],
                sex=vals.get("sex", "").lower() or None,
                birth_year=int(vals["birth_year"]) if vals.get("birth_year") else None,
                arm=vals.get("arm") or None,
                hr_rest_bpm=float(vals["hr_rest_bpm"]) if vals.get("hr_rest_bpm") else None,
                hr_max_bpm=float(vals["hr_max_bpm"]) if vals.get("hr_max_bpm") else None,
                start_date=(
                    parse_date(vals["start_date"], "start_date") if vals.get("start_date") else None
                ),
            )
            p.validate()
        except (ValueError, UsageError) as exc:
            raise InputError(f"line {line_no}: {exc}", path=str(path), offset=line_no) from exc
        if p.participant_id in seen:
            raise InputError(
                f"line {line_no}: participant {p.participant_id!r} appears twice",
                path=str(path),
                offset=line_no,
            )
        seen.add(p.participant_id)
        out.append(p)
    return out, set(mapping.values())


def import_roster(
    con: duckdb.DuckDBPyConnection, path: Path, *, hrmax_formula: str = "tanaka"
) -> tuple[int, int]:
    """Add or update every participant in a roster CSV, all or nothing. Returns (added,
    updated).

    For a participant already stored, a field whose column the roster does not have keeps its
    stored value (a roster without ``start_date`` does not clear start dates); an empty cell
    clears the field.
    """
    people, columns = _parse_roster(path)
    added = updated = 0
    with transaction(con):
        for p in people:
            stored = get(con, p.participant_id)
            if stored is None:
                added += 1
            else:
                updated += 1
                for f in fields(Participant):
                    if f.name not in columns:
                        setattr(p, f.name, getattr(stored, f.name))
            _write(con, p, hrmax_formula)
            if stored is not None:
                _check_versions(con, p.participant_id)
    return added, updated


# --------------------------------------------------------------------------- anchor versions
@dataclass(frozen=True)
class AnchorVersion:
    """One version of a participant's entered HR anchors.

    Attributes
    ----------
    valid_from : datetime.date or None
        Local date from which the version is in force; None for the base version (the
        ``participants`` row), in force before every dated version.
    hr_rest_bpm, hr_max_bpm : float or None
        Values in force from ``valid_from``: entered in this version, or inherited from the
        version before it when this one left them empty. None: never entered.
    note : str or None
        Why the version was entered (e.g. "lab test, visit 2").
    hr_rest_inherited, hr_max_inherited : bool
        True where the value comes from an earlier version.
    """

    valid_from: date | None
    hr_rest_bpm: float | None
    hr_max_bpm: float | None
    note: str | None = None
    hr_rest_inherited: bool = False
    hr_max_inherited: bool = False


def _resolve(versions: Sequence[AnchorVersion]) -> list[AnchorVersion]:
    """Sorted (base first), with empty fields filled from the version before."""
    base = [v for v in versions if v.valid_from is None]
    dated = sorted(
        (v for v in versions if v.valid_from is not None),
        key=lambda v: v.valid_from or date.min,
    )
    out: list[AnchorVersion] = []
    rest: float | None = None
    mx: float | None = None
    for v in base[:1] + dated:
        rest_inh = v.hr_rest_bpm is None and rest is not None
        max_inh = v.hr_max_bpm is None and mx is not None
        rest = v.hr_rest_bpm if v.hr_rest_bpm is not None else rest
        mx = v.hr_max_bpm if v.hr_max_bpm is not None else mx
        out.append(
            AnchorVersion(
                v.valid_from,
                rest,
                mx,
                v.note,
                v.hr_rest_inherited or rest_inh,
                v.hr_max_inherited or max_inh,
            )
        )
    return out


def anchor_versions(con: duckdb.DuckDBPyConnection, participant_id: str) -> list[AnchorVersion]:
    """Every version of a participant's entered HR anchors, the base version first, then by
    ``valid_from``; a field a version left empty holds the value inherited from the version
    before it (see :class:`AnchorVersion`).

    Raises
    ------
    UsageError
        Unknown participant.
    """
    p = require(con, participant_id)
    rows = con.execute(
        "SELECT valid_from, hr_rest_bpm, hr_max_bpm, note FROM hr_anchors "
        "WHERE participant_id = ? ORDER BY valid_from",
        [participant_id],
    ).fetchall()
    base = AnchorVersion(None, p.hr_rest_bpm, p.hr_max_bpm)
    return _resolve([base, *(AnchorVersion(*r) for r in rows)])


def anchors_on_days(
    versions: Sequence[AnchorVersion], days: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.datetime64]]:
    """The entered anchors in force on each day.

    Parameters
    ----------
    versions : sequence of AnchorVersion
        From :func:`anchor_versions` (any order; empty fields inherit as there).
    days : array_like of datetime64[D], shape (n,)
        Local dates.

    Returns
    -------
    hr_rest, hr_max : ndarray of float64, shape (n,)
        Values in force (NaN where none was entered, and for NaT days).
    valid_from : ndarray of datetime64[D], shape (n,)
        ``valid_from`` of the version in force; NaT for the base version (and NaT days).
    """
    d = np.asarray(days, dtype="datetime64[D]").reshape(-1)
    resolved = _resolve(versions)
    nan = float("nan")
    if not resolved or resolved[0].valid_from is not None:
        resolved.insert(0, AnchorVersion(None, None, None))
    dated = resolved[1:]
    starts = np.array([v.valid_from for v in dated], dtype="datetime64[D]")
    rest_tab = np.array([nan if v.hr_rest_bpm is None else v.hr_rest_bpm for v in resolved])
    max_tab = np.array([nan if v.hr_max_bpm is None else v.hr_max_bpm for v in resolved])
    from_tab = np.concatenate([np.array(["NaT"], dtype="datetime64[D]"), starts])
    k = np.searchsorted(starts, d, side="right")  # versions starting on or before each day
    nat = np.isnat(d)
    k[nat] = 0
    rest = rest_tab[k]
    mx = max_tab[k]
    rest[nat] = nan
    mx[nat] = nan
    return rest, mx, from_tab[k]


def _check_bpm(hr_rest_bpm: float | None, hr_max_bpm: float | None) -> None:
    if hr_rest_bpm is not None and not 25 <= hr_rest_bpm <= 150:
        raise UsageError(f"resting HR {hr_rest_bpm:g} bpm is outside 25-150")
    if hr_max_bpm is not None and not 80 <= hr_max_bpm <= 250:
        raise UsageError(f"maximum HR {hr_max_bpm:g} bpm is outside 80-250")


def _check_versions(con: duckdb.DuckDBPyConnection, participant_id: str) -> None:
    """Every version's maximum above its resting HR, with inherited values."""
    for v in anchor_versions(con, participant_id):
        if v.hr_rest_bpm is not None and v.hr_max_bpm is not None and v.hr_max_bpm <= v.hr_rest_bpm:
            which = "the base anchors" if v.valid_from is None else f"from {v.valid_from}"
            raise UsageError(
                f"{participant_id}: maximum HR {v.hr_max_bpm:g} must be above resting HR "
                f"{v.hr_rest_bpm:g} ({which}, counting values inherited from earlier "
                "versions)",
                fix=f"see the versions with: actidose participant anchors {participant_id}",
            )


def _valid_from(value: Any) -> date:
    if not isinstance(value, date) or isinstance(value, datetime):
        raise UsageError(f"valid-from must be a date, not {value!r}", fix="e.g. 2026-03-01")
    return value


def add_anchor(
    con: duckdb.DuckDBPyConnection,
    participant_id: str,
    valid_from: date,
    *,
    hr_rest_bpm: float | None = None,
    hr_max_bpm: float | None = None,
    note: str | None = None,
) -> None:
    """Enter a version of a participant's HR anchors, in force from ``valid_from`` (a local
    date) until the next version.

    A version already entered for that date is updated: the values given replace its values,
    those not given (None) stay. A field a version never had inherits the value in force
    before it. The participant is marked for recompute in the same transaction.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
    participant_id : str
    valid_from : datetime.date
        First local day of the version.
    hr_rest_bpm, hr_max_bpm : float, optional
        Entered values, bpm (25-150 and 80-250). A new version needs at least one.
    note : str, optional
        Why (e.g. "lab test, visit 2").

    Raises
    ------
    UsageError
        Unknown participant, values out of range, nothing to enter, or a maximum HR not above
        the resting HR in force (in this version or any later one that inherits from it).
    """
    require(con, participant_id)
    day = _valid_from(valid_from)
    _check_bpm(hr_rest_bpm, hr_max_bpm)
    with transaction(con):
        old = con.execute(
            "SELECT hr_rest_bpm, hr_max_bpm, note FROM hr_anchors "
            "WHERE participant_id = ? AND valid_from = ?",
            [participant_id, day],
        ).fetchone()
        if old is None and hr_rest_bpm is None and hr_max_bpm is None:
            raise UsageError(
                "a new anchor version needs a resting or a maximum HR",
                fix="give --hr-rest BPM and/or --hr-max BPM",
            )
        if hr_rest_bpm is None and hr_max_bpm is None and note is None:
            raise UsageError(
                "nothing to change", fix="give --hr-rest BPM, --hr-max BPM or --note TEXT"
            )
        rest = hr_rest_bpm if hr_rest_bpm is not None else (old[0] if old else None)
        mx = hr_max_bpm if hr_max_bpm is not None else (old[1] if old else None)
        text = note if note is not None else (old[2] if old else None)
        con.execute(
            "INSERT OR REPLACE INTO hr_anchors "
            "(participant_id, valid_from, hr_rest_bpm, hr_max_bpm, note, entered_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [participant_id, day, rest, mx, text, datetime.now(UTC)],
        )
        _check_versions(con, participant_id)
        con.execute("INSERT OR IGNORE INTO pending_recompute VALUES (?)", [participant_id])


def remove_anchor(con: duckdb.DuckDBPyConnection, participant_id: str, valid_from: date) -> None:
    """Remove the anchor version in force from ``valid_from``; the version before it then
    holds until the next one. The participant is marked for recompute.

    Raises
    ------
    UsageError
        Unknown participant, no version from that date, or a later version that would then
        inherit a maximum HR not above its resting HR.
    """
    require(con, participant_id)
    day = _valid_from(valid_from)
    with transaction(con):
        found = con.execute(
            "SELECT count(*) FROM hr_anchors WHERE participant_id = ? AND valid_from = ?",
            [participant_id, day],
        ).fetchone()
        if not found or not found[0]:
            raise UsageError(
                f"{participant_id} has no anchor version from {day}",
                fix=f"list them with: actidose participant anchors {participant_id}",
            )
        con.execute(
            "DELETE FROM hr_anchors WHERE participant_id = ? AND valid_from = ?",
            [participant_id, day],
        )
        _check_versions(con, participant_id)
        con.execute("INSERT OR IGNORE INTO pending_recompute VALUES (?)", [participant_id])
