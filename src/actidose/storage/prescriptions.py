"""The ``prescriptions`` table: each arm's prescribed dose (see :mod:`actidose.prescription`).

Saving a prescription marks every participant of its arm in ``pending_recompute`` in the same
transaction, so their ``adherence`` rows are recomputed (now, or by the next writing command).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import duckdb

from ..errors import UsageError
from ..prescription import Prescription
from .db import transaction

__all__ = ["all_prescriptions", "get", "remove", "save"]

_COLUMNS = (
    "arm, weeks, sessions_per_week, min_session_min, band_scheme, band_low, band_high, "
    "qualify_rule, trimp_per_week, definition"
)


def _from_row(row: Sequence[Any]) -> Prescription:
    arm, weeks, spw, msm, scheme, low, high, qualify, trimp, definition = row
    raw = json.loads(definition) if isinstance(definition, str) else (definition or {})
    return Prescription(
        arm=arm,
        weeks=int(weeks),
        sessions_per_week=float(spw),
        min_session_min=float(msm) if msm is not None else 0.0,
        band_scheme=scheme,
        band_low=low,
        band_high=high,
        qualify=qualify,
        trimp_per_week=trimp,
        definition=raw,
    )


def _participants_of(con: duckdb.DuckDBPyConnection, arms: Sequence[str]) -> list[str]:
    if not arms:
        return []
    rows = con.execute(
        "SELECT participant_id FROM participants WHERE list_contains(?, arm) ORDER BY 1",
        [list(arms)],
    ).fetchall()
    return [r[0] for r in rows]


def save(
    con: duckdb.DuckDBPyConnection, prescriptions: Sequence[Prescription], origin: str
) -> list[str]:
    """Store the prescriptions (replacing those of the same arms; other arms stay), all in one
    transaction, and mark every participant of those arms for recompute.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
    prescriptions : sequence of Prescription
        From :func:`actidose.prescription.parse_prescriptions`.
    origin : str
        Where they came from (the file), stored in ``prescriptions.origin``.

    Returns
    -------
    list of str
        Ids of the participants whose arm was saved (sorted), to recompute.

    Raises
    ------
    UsageError
        The same arm twice.
    """
    arms = [p.arm for p in prescriptions]
    twice = sorted({a for a in arms if arms.count(a) > 1})
    if twice:
        raise UsageError(f"{origin}: arm(s) given twice: {', '.join(twice)}")
    now = datetime.now(UTC)
    with transaction(con):
        for p in prescriptions:
            con.execute(
                f"INSERT OR REPLACE INTO prescriptions ({_COLUMNS}, origin, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    p.arm,
                    p.weeks,
                    p.sessions_per_week,
                    p.min_session_min,
                    p.band_scheme,
                    p.band_low,
                    p.band_high,
                    p.qualify,
                    p.trimp_per_week,
                    json.dumps(dict(p.definition), sort_keys=True, default=str),
                    origin,
                    now,
                ],
            )
        ids = _participants_of(con, arms)
        for pid in ids:
            con.execute("INSERT OR IGNORE INTO pending_recompute VALUES (?)", [pid])
    return ids


def remove(con: duckdb.DuckDBPyConnection, arm: str) -> list[str]:
    """Delete an arm's prescription and mark its participants for recompute (their adherence
    rows go). Returns their ids.

    Raises
    ------
    UsageError
        No prescription for ``arm``.
    """
    with transaction(con):
        if get(con, arm) is None:
            known = [p.arm for p in all_prescriptions(con)]
            raise UsageError(
                f"no prescription for arm {arm!r}",
                fix="arms with one: " + (", ".join(known) if known else "none yet"),
            )
        con.execute("DELETE FROM prescriptions WHERE arm = ?", [arm])
        ids = _participants_of(con, [arm])
        for pid in ids:
            con.execute("INSERT OR IGNORE INTO pending_recompute VALUES (?)", [pid])
    return ids


def get(con: duckdb.DuckDBPyConnection, arm: str) -> Prescription | None:
    """The prescription of ``arm``, or None."""
    row = con.execute(f"SELECT {_COLUMNS} FROM prescriptions WHERE arm = ?", [arm]).fetchone()
    return _from_row(row) if row else None


def all_prescriptions(con: duckdb.DuckDBPyConnection) -> list[Prescription]:
    """Every stored prescription, by arm."""
    rows = con.execute(f"SELECT {_COLUMNS} FROM prescriptions ORDER BY arm").fetchall()
    return [_from_row(r) for r in rows]
