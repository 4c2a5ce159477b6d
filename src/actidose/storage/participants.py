"""Participants: the anchors (sex, age, zone, HR rest/max) every dose computation depends on."""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

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


def _age_based_hrmax(birth_year: int | None, formula: str) -> float | None:
    if birth_year is None:
        return None
    age = datetime.now(UTC).year - birth_year
    return 208.0 - 0.7 * age if formula == "tanaka" else 220.0 - age


def _row(p: Participant, hrmax_formula: str) -> list[Any]:
    hr_max: float | None
    hr_max_src: str | None
    if p.hr_max_bpm is not None:
        hr_max, hr_max_src = p.hr_max_bpm, "entered"
    else:
        hr_max = _age_based_hrmax(p.birth_year, hrmax_formula)
        hr_max_src = hrmax_formula if hr_max is not None else None
    now = datetime.now(UTC)
    return [
        p.participant_id,
        p.sex,
        p.birth_year,
        p.timezone,
        p.arm,
        p.hr_rest_bpm,
        "entered" if p.hr_rest_bpm is not None else None,
        hr_max,
        hr_max_src,
        now,
        now,
    ]


def get(con: duckdb.DuckDBPyConnection, participant_id: str) -> Participant | None:
    row = con.execute(
        "SELECT participant_id, timezone, sex, birth_year, arm, hr_rest_bpm, "
        "CASE WHEN hr_max_source = 'entered' THEN hr_max_bpm END "
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
    created = con.execute(
        "SELECT created_at FROM participants WHERE participant_id = ?", [p.participant_id]
    ).fetchone()
    row = _row(p, hrmax_formula)
    if created:
        row[-2] = created[0]
        con.execute(
            "UPDATE participants SET sex=?, birth_year=?, timezone=?, arm=?, hr_rest_bpm=?, "
            "hr_rest_source=?, hr_max_bpm=?, hr_max_source=?, updated_at=? "
            "WHERE participant_id=?",
            [*row[1:9], row[10], p.participant_id],
        )
    else:
        con.execute(
            "INSERT INTO participants (participant_id, sex, birth_year, timezone, arm, "
            "hr_rest_bpm, hr_rest_source, hr_max_bpm, hr_max_source, created_at, updated_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            row,
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


def update(
    con: duckdb.DuckDBPyConnection,
    participant_id: str,
    *,
    hrmax_formula: str = "tanaka",
    **changes: Any,
) -> bool:
    """Change the given fields (a value of ``None`` clears the field). Returns True when an
    anchor changed, i.e. the participant's derived tables must be recomputed."""
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
    return any(before[k] != getattr(p, k) for k in ANCHORS)


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
}


def _parse_roster(path: Path) -> list[Participant]:
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
    return out


def import_roster(
    con: duckdb.DuckDBPyConnection, path: Path, *, hrmax_formula: str = "tanaka"
) -> tuple[int, int]:
    """Add or update every participant in a roster CSV, all or nothing. Returns (added,
    updated)."""
    people = _parse_roster(path)
    added = updated = 0
    with transaction(con):
        for p in people:
            if get(con, p.participant_id) is None:
                added += 1
            else:
                updated += 1
            _write(con, p, hrmax_formula)
    return added, updated
