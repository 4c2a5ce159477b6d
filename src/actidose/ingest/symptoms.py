"""Symptom rating CSV files: long (one item value per row) or wide (one column per item).

Layouts
-------
**long**: columns ``participant_id``, ``timestamp``, ``instrument``, ``item``, ``value``
(aliases: ``participant``/``pid``/``subject``/``id``; ``ts``/``time``/``datetime``/``date``;
``questionnaire``/``scale``; ``question``; ``response``/``answer``). Items are numbers from 1
or names ending in the number: ``3``, ``q3``, ``item3``, ``item_3``, ``phq9_3``.

**wide**: ``participant_id``, ``timestamp``, then one column per item, named ``1``, ``q1``,
``item1``, ``item_1``, ``<instrument>_1`` or ``<instrument>1`` (case, spaces and hyphens do
not matter). The instrument is not in the file: the caller names it. Other columns are ignored
and listed in ``warnings``. An empty cell is an unanswered item, not an error.

The layout is read from the header: a file with instrument, item and value columns is long.
Where several columns could give the same thing (``id`` and ``participant_id``, ``date`` and
``timestamp``), the more specific name wins and the other is ignored; separate ``date`` and
``time`` columns (and no other time column) are joined into one timestamp. The delimiter (``,``,
``;`` or tab) is sniffed from the header line; with ``;`` or tab a decimal comma is accepted.

Times
-----
ISO 8601 date-times. With ``Z`` or an offset (``+01:00``, ``+0100``, ``+01``) they are that
instant, and the offset is kept. Without one they are wall times in the participant's zone
(from the participants table, or the ``timezone`` override for every row). A date alone
(``2024-05-01``) means local midnight at the start of that day. Wall times that do not exist
(the hour skipped when DST starts) or happen twice (the hour repeated when it ends) are
rejected with a reason: the importer never guesses an instant; writing the offset resolves
them.

Rejections
----------
A row (in a wide file: a cell, named by its column) is rejected, with ``line N: reason``, for:
an unknown or missing participant, a missing or unreadable time, a time in a DST gap or
overlap, an unusable instrument name, an item outside 1..n_items of its instrument, a value
that is not a number or is outside the instrument's range, and the same participant,
instrument, instant and item given twice with different values (every line involved is
rejected: the file does not say which is right; the same value twice is kept once). Everything
else in the file is kept. Line numbers are physical lines (1 = the header), so a quoted field
spanning lines does not shift them.

A file that is not text (a NUL byte, bytes that are not UTF-8), larger than
:data:`MAX_BYTES`, or without a usable header is refused as a whole (:class:`InputError`
naming the file and the byte offset or line).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from ..dose.instruments import Instrument, canonical_name
from ..errors import InputError, UsageError
from ..timeutil import (
    LOCAL_AMBIGUOUS,
    LOCAL_NONEXISTENT,
    US_PER_S,
    local_to_utc,
    utc_offsets_s,
    zone,
)
from .csv_hr import civil_to_us, parse_iso, parse_numbers

__all__ = [
    "MAX_BYTES",
    "SymptomRows",
    "item_number",
    "parse_symptoms",
    "read_symptom_file",
]

#: Largest symptom file read (symptom files are small; this bounds memory).
MAX_BYTES: Final = 200 * 1024 * 1024

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Obj = npt.NDArray[np.object_]

_ROLES: Final[dict[str, tuple[str, ...]]] = {
    "participant_id": (
        "participant_id",
        "participant",
        "participantid",
        "pid",
        "subject",
        "subject_id",
        "id",
    ),
    "timestamp": ("timestamp", "datetime", "date_time", "time_stamp", "ts", "time", "date"),
    "instrument": ("instrument", "questionnaire", "scale", "measure"),
    "item": ("item", "question", "item_id", "question_id", "item_no"),
    "value": ("value", "response", "answer", "score"),
}
_ALIAS: Final = {alias: role for role, names in _ROLES.items() for alias in names}
_DATE_ONLY: Final = r"^\s*([0-9]{4})-([0-9]{2})-([0-9]{2})\s*$"
_ITEM_SUFFIX: Final = re.compile(r"^(?:q|item|question)?_?0*([0-9]{1,6})(?:\.0+)?$")
_TIME_HELP: Final = "ISO 8601, e.g. 2024-05-01T08:30, 2024-05-01T08:30+01:00 or 2024-05-01"


@dataclass
class SymptomRows:
    """What a symptom file holds: the good item values as columns (one entry per value), the
    rejected lines with their reasons, and warnings about the file as a whole."""

    path: str
    layout: str  # 'long' or 'wide'
    file_instrument: str | None  # of a wide file
    n_lines: int  # data lines read (blank lines not counted)
    participant_id: Obj
    ts_us: I64  # UTC, microseconds since the epoch
    utc_offset_s: I64  # as written, or the zone's offset at ts for wall times
    instrument: Obj
    item: I64
    value: F64
    line: I64
    rejected: list[tuple[int, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.item.size)

    def take(self, keep: npt.NDArray[np.bool_]) -> SymptomRows:
        """A copy with only the values where ``keep`` is true."""
        return SymptomRows(
            self.path,
            self.layout,
            self.file_instrument,
            self.n_lines,
            self.participant_id[keep],
            self.ts_us[keep],
            self.utc_offset_s[keep],
            self.instrument[keep],
            self.item[keep],
            self.value[keep],
            self.line[keep],
            list(self.rejected),
            list(self.warnings),
        )


def item_number(name: str, instrument: str | None = None) -> int | None:
    """The item number a column or item name stands for: ``"3"``, ``"q3"``, ``"Item 3"``,
    ``"item_03"``, ``"phq9_3"``, ``"PHQ-9 3"`` (with ``instrument="phq9"``) -> 3; ``None``
    when the name is not an item name."""
    c = re.sub(r"[\s\-]+", "", name.strip().lower())
    if instrument:
        for sep in ("_", ""):
            if c.startswith(instrument + sep) and len(c) > len(instrument + sep):
                rest = c[len(instrument + sep) :]
                m = _ITEM_SUFFIX.match(rest)
                if m:
                    return int(m.group(1))
    m = _ITEM_SUFFIX.match(c)
    return int(m.group(1)) if m else None


# ------------------------------------------------------------------------------ bytes -> text
def read_symptom_file(path: Path) -> bytes:
    """The bytes of ``path``, refusing files over :data:`MAX_BYTES`.

    Raises
    ------
    InputError
        When the file cannot be read or is too large.
    """
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=str(path)) from None
    if len(data) > MAX_BYTES:
        raise InputError(
            f"larger than {MAX_BYTES // (1024 * 1024)} MB: not a symptom file",
            path=str(path),
            offset=MAX_BYTES,
        )
    return data


def _text(data: bytes, path: str) -> str:
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise InputError(
            f"not a text file: NUL byte at offset {nul} (line {line})", path=path, offset=nul
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        start = exc.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        line = data.count(b"\n", 0, start) + 1
        raise InputError(
            f"not UTF-8 text: undecodable byte at offset {start} (line {line}); "
            "save the file as UTF-8 CSV",
            path=path,
            offset=start,
        ) from None


def _delimiter(text: str) -> str:
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    counts = {d: first.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


# ------------------------------------------------------------------------------ header
@dataclass
class _Header:
    line: int
    names: list[str]
    roles: dict[str, int]  # role -> column index
    tod_col: int | None  # a time-of-day column joined to the date column


def _header(names: list[str], line: int, path: str) -> _Header:
    """Which column plays which role. Where several columns could (``id`` and
    ``participant_id``, ``timestamp`` and ``date``), the alias listed first in ``_ROLES``
    wins and the others are ignored; separate ``date`` and ``time`` columns are joined. The
    same alias twice is an error."""
    found: dict[str, list[tuple[int, int]]] = {}  # role -> [(rank, column)]
    for i, raw in enumerate(names):
        key = re.sub(r"[\s\-]+", "_", raw.strip().lower())
        role = _ALIAS.get(key)
        if role is not None:
            found.setdefault(role, []).append((_ROLES[role].index(key), i))
    roles: dict[str, int] = {}
    for role, cands in found.items():
        cands.sort()
        if len(cands) > 1 and cands[0][0] == cands[1][0]:
            a, b = names[cands[0][1]], names[cands[1][1]]
            raise InputError(
                f"line {line}: columns {a!r} and {b!r} both give the {role}", path=path
            )
        roles[role] = cands[0][1]
    tod_col = None
    ts = found.get("timestamp", [])
    ranks = {_ROLES["timestamp"][r]: i for r, i in ts}
    if "date" in ranks and "time" in ranks and roles.get("timestamp") in ranks.values():
        best = _ROLES["timestamp"][min(r for r, _ in ts)]
        if best in ("date", "time"):
            roles["timestamp"] = ranks["date"]
            tod_col = ranks["time"]
    for role in ("participant_id", "timestamp"):
        if role not in roles:
            raise InputError(
                f"line {line}: no {role} column (the header has: {', '.join(names)})",
                path=path,
            )
    return _Header(line, names, roles, tod_col)


# ------------------------------------------------------------------------------ rows
@dataclass
class _Raw:
    """Cells of the non-blank data rows, as read."""

    lines: list[int] = field(default_factory=list)
    cells: list[list[str]] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)


def _rows(reader: Any, header: _Header, path: str) -> _Raw:
    raw = _Raw()
    width = len(header.names)
    prev = header.line
    try:
        for row in reader:
            start = prev + 1
            prev = reader.line_num
            if not any(c.strip() for c in row):
                continue
            if len(row) > width and any(c.strip() for c in row[width:]):
                raw.rejected.append((start, f"has {len(row)} fields, the header has {width}"))
                continue
            raw.lines.append(start)
            raw.cells.append(row[:width] + [""] * (width - len(row)))
    except csv.Error as exc:
        raise InputError(f"line {prev + 1}: not readable as CSV: {exc}", path=path) from None
    return raw


def _none(reason: Obj) -> npt.NDArray[np.bool_]:
    """Where no reason to reject was found."""
    return np.array([r is None for r in reason.tolist()], bool)


def _column(raw: _Raw, idx: int) -> list[str]:
    return [r[idx].strip() for r in raw.cells]


# ------------------------------------------------------------------------------ times
@dataclass
class _Times:
    ts_us: I64
    offset_s: I64
    reason: Obj  # None where fine


def _times(
    texts: list[str],
    pids: list[str],
    zones: Mapping[str, str],
    timezone: str | None,
    known: npt.NDArray[np.bool_],
) -> _Times:
    """Instants of the time texts; wall times placed in each participant's zone (or
    ``timezone``). Rows where ``known`` is false (unknown participant) are not placed."""
    n = len(texts)
    reason = np.full(n, None, object)
    parsed = parse_iso(texts)
    us = parsed.us.copy()
    offset = parsed.offset_s.copy()
    has_zone = parsed.has_zone.copy()
    ok = parsed.ok.copy()
    if (~ok).any():  # date only: local midnight
        import polars as pl  # (loaded only here: every command imports this module)

        g = pl.Series("t", texts, dtype=pl.String).str.extract_groups(_DATE_ONLY).struct.unnest()
        cols = [
            g.get_column(c).cast(pl.Int64, strict=False).fill_null(0).to_numpy() for c in g.columns
        ]
        matched = g.get_column(g.columns[0]).is_not_null().to_numpy()
        zero = np.zeros(n, np.int64)
        day_us, day_ok = civil_to_us(cols[0], cols[1], cols[2], zero, zero, zero)
        use = ~ok & matched & day_ok
        us[use] = day_us[use]
        ok |= use
    empty = np.array([t == "" for t in texts], bool)
    reason[empty] = "missing timestamp"
    for i in np.flatnonzero(~ok & ~empty).tolist():
        reason[i] = f"time {texts[i]!r} is not a date-time ({_TIME_HELP})"
    naive = ok & ~has_zone & known
    wall = us.copy()
    tz_of = np.array(
        [timezone or zones.get(p, "") if naive[i] else "" for i, p in enumerate(pids)], object
    )
    for tz in sorted({str(t) for t in tz_of[naive].tolist()}):
        rows = np.flatnonzero(naive & (tz_of == tz))
        utc, status = local_to_utc(us[rows], tz)
        us[rows] = utc
        offset[rows] = utc_offsets_s(utc, tz)
        day = 86_400 * US_PER_S
        for j in np.flatnonzero(status != 0).tolist():
            i = int(rows[j])
            local = int(wall[i])
            before = int(utc_offsets_s(np.array([local - day // 2]), tz)[0])
            after = int(utc_offsets_s(np.array([local + day // 2]), tz)[0])
            if status[j] == LOCAL_NONEXISTENT:
                reason[i] = (
                    f"time {texts[i]!r} does not exist in {tz} (the clocks skip that hour "
                    "when daylight saving time starts); write its UTC offset"
                )
            elif status[j] == LOCAL_AMBIGUOUS:
                reason[i] = (
                    f"time {texts[i]!r} happens twice in {tz} (the hour repeated when daylight "
                    f"saving time ends); write its UTC offset ({_offset(before)} for the "
                    f"first, {_offset(after)} for the second)"
                )
    return _Times(us.astype(np.int64), offset.astype(np.int64), reason)


def _offset(seconds: int) -> str:
    sign = "-" if seconds < 0 else "+"
    h, m = divmod(abs(seconds) // 60, 60)
    return f"{sign}{h:02d}:{m:02d}"


def _iso(ts_us: int, offset_s: int) -> str:
    local = np.datetime64(ts_us + offset_s * US_PER_S, "us").astype("datetime64[s]")
    return f"{local}{_offset(offset_s)}"


# ------------------------------------------------------------------------------ parse
def parse_symptoms(
    data: bytes,
    *,
    path: str,
    zones: Mapping[str, str],
    instruments: Mapping[str, Instrument],
    instrument: str | None = None,
    timezone: str | None = None,
) -> SymptomRows:
    """Read a symptom CSV (see the module docstring for layouts, times and rejections).

    Parameters
    ----------
    data
        The file's bytes.
    path
        Its name, for messages.
    zones
        IANA zone of every known participant (participant_id -> zone); a participant not in
        it is unknown and their rows are rejected.
    instruments
        Definitions by canonical name; a name not in it is scored and checked as
        :meth:`Instrument.default`.
    instrument
        The instrument of a wide file (required for one; ignored, with a warning, for a long
        file).
    timezone
        IANA zone for every wall time in the file, instead of the participants' zones.

    Returns
    -------
    SymptomRows
        The good values, the rejected lines and the warnings.

    Raises
    ------
    InputError
        When the file is not text, has no header, or the header lacks participant or time
        columns.
    UsageError
        When a wide file comes without ``instrument``, or ``instrument``/``timezone`` are not
        usable names.
    """
    if timezone:
        zone(timezone)
    text = _text(data, path)
    delim = _delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
    header_line = 0
    names: list[str] | None = None
    try:
        for row in reader:
            if any(c.strip() for c in row):
                names = row
                header_line = reader.line_num
                break
    except csv.Error as exc:
        raise InputError(f"line 1: not readable as CSV: {exc}", path=path) from None
    if names is None:
        raise InputError("empty file: no header line", path=path)
    header = _header(names, header_line, path)
    long = all(r in header.roles for r in ("instrument", "item", "value"))
    raw = _rows(reader, header, path)
    decimal_comma = delim != ","
    warnings: list[str] = []
    if long:
        if instrument:
            warnings.append(f"--instrument {instrument} ignored: the file names its instruments")
        used = set(header.roles.values()) | ({header.tod_col} - {None})
        extra = [n for i, n in enumerate(names) if i not in used]
        if extra:
            warnings.append("columns ignored: " + ", ".join(extra))
        out = _parse_long(raw, header, path, zones, instruments, timezone, decimal_comma)
    else:
        if not instrument:
            raise UsageError(
                f"{path}: a wide file (one column per item, no instrument/item/value "
                "columns): say which instrument it holds",
                fix="add --instrument NAME, e.g. --instrument phq9",
            )
        name = canonical_name(instrument)
        out = _parse_wide(
            raw, header, path, zones, instruments, name, timezone, decimal_comma, warnings
        )
    seen = {str(v) for v in out.instrument.tolist()} | ({out.file_instrument} - {None})
    undefined = sorted(str(v) for v in seen if v not in instruments)
    if undefined:
        warnings.append(
            "no definition for "
            + ", ".join(undefined)
            + ": any item number and value accepted, scored as a plain sum"
        )
    out.warnings = warnings + out.warnings
    return _dedupe(out)


def _row_checks(
    raw: _Raw,
    header: _Header,
    zones: Mapping[str, str],
    timezone: str | None,
) -> tuple[list[str], _Times, Obj]:
    """Participant and time of every row, with the first reason a row is unusable."""
    pids = _column(raw, header.roles["participant_id"])
    ts_text = _column(raw, header.roles["timestamp"])
    if header.tod_col is not None:
        tod = _column(raw, header.tod_col)
        ts_text = [f"{d}T{t}" if d and t else d for d, t in zip(ts_text, tod, strict=True)]
    n = len(pids)
    known = np.array([p in zones for p in pids], bool)
    reason = np.full(n, None, object)
    for i, p in enumerate(pids):
        if not p:
            reason[i] = "missing participant_id"
        elif not known[i]:
            reason[i] = f"unknown participant {p!r}"
    times = _times(ts_text, pids, zones, timezone, known)
    todo = _none(reason)
    reason[todo] = times.reason[todo]
    return pids, times, reason


def _parse_long(
    raw: _Raw,
    header: _Header,
    path: str,
    zones: Mapping[str, str],
    instruments: Mapping[str, Instrument],
    timezone: str | None,
    decimal_comma: bool,
) -> SymptomRows:
    pids, times, reason = _row_checks(raw, header, zones, timezone)
    n = len(pids)
    inst_text = _column(raw, header.roles["instrument"])
    item_text = _column(raw, header.roles["item"])
    value_text = _column(raw, header.roles["value"])
    names: dict[str, str | Exception] = {}
    for t in set(inst_text):
        try:
            names[t] = canonical_name(t) if t else UsageError("missing instrument")
        except UsageError as exc:
            names[t] = exc
    inst = np.array(
        [v if isinstance(v, str) else "" for v in (names[t] for t in inst_text)], object
    )
    for i, t in enumerate(inst_text):
        got = names[t]
        if reason[i] is None and not isinstance(got, str):
            reason[i] = str(got)
    items = np.zeros(n, np.int64)
    cache: dict[tuple[str, str], int | None] = {}
    for i in range(n):
        key = (item_text[i], str(inst[i]))
        if key not in cache:
            cache[key] = item_number(key[0], key[1] or None) if key[0] else None
        k = cache[key]
        if k is None:
            if reason[i] is None:
                reason[i] = (
                    "missing item"
                    if not item_text[i]
                    else f"item {item_text[i]!r} is not an item number (1, q1, item1, ...)"
                )
        else:
            items[i] = k
    values, parsed, empty = parse_numbers(value_text, decimal_comma=decimal_comma)
    parsed &= np.isfinite(values)
    for i in range(n):
        if reason[i] is None and empty[i]:
            reason[i] = "missing value"
        elif reason[i] is None and not parsed[i]:
            reason[i] = f"value {value_text[i]!r} is not a number"
    for name in sorted({str(v) for v in inst.tolist() if v}):
        instr = instruments.get(name) or Instrument.default(name)
        rows = (inst == name) & _none(reason)
        bad_item = rows & ~instr.item_ok(items)
        for i in np.flatnonzero(bad_item).tolist():
            reason[i] = f"item {items[i]} is outside 1..{instr.n_items} of {name}"
        bad_val = rows & ~bad_item & ~instr.value_ok(values)
        for i in np.flatnonzero(bad_val).tolist():
            reason[i] = f"value {_fmt(values[i])} is outside {instr.range_text()} of {name}"
    good = _none(reason)
    lines = np.asarray(raw.lines, np.int64)
    rejected = raw.rejected + [(int(lines[i]), str(reason[i])) for i in np.flatnonzero(~good)]
    return SymptomRows(
        path=path,
        layout="long",
        file_instrument=None,
        n_lines=len(raw.lines) + len(raw.rejected),
        participant_id=np.array(pids, object)[good] if n else np.empty(0, object),
        ts_us=times.ts_us[good],
        utc_offset_s=times.offset_s[good],
        instrument=inst[good] if n else np.empty(0, object),
        item=items[good],
        value=values[good],
        line=lines[good] if n else np.empty(0, np.int64),
        rejected=rejected,
    )


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def _parse_wide(
    raw: _Raw,
    header: _Header,
    path: str,
    zones: Mapping[str, str],
    instruments: Mapping[str, Instrument],
    name: str,
    timezone: str | None,
    decimal_comma: bool,
    warnings: list[str],
) -> SymptomRows:
    instr = instruments.get(name) or Instrument.default(name)
    used = set(header.roles.values()) | ({header.tod_col} - {None})
    item_cols: list[tuple[int, int]] = []  # (column index, item number)
    by_item: dict[int, str] = {}
    ignored: list[str] = []
    for i, colname in enumerate(header.names):
        if i in used:
            continue
        k = item_number(colname, name)
        if k is None:
            ignored.append(colname)
            continue
        if k in by_item:
            raise InputError(
                f"line {header.line}: columns {by_item[k]!r} and {colname!r} both give item {k}",
                path=path,
            )
        by_item[k] = colname
        item_cols.append((i, k))
    if not item_cols:
        raise InputError(
            f"line {header.line}: no item columns for {name} (name them 1, q1, item1 or "
            f"{name}_1; the header has: {', '.join(header.names)})",
            path=path,
        )
    if ignored:
        warnings.append("columns ignored: " + ", ".join(ignored))
    pids, times, row_reason = _row_checks(raw, header, zones, timezone)
    n = len(pids)
    lines = np.asarray(raw.lines, np.int64)
    row_ok = _none(row_reason)
    rejected = raw.rejected + [(int(lines[i]), str(row_reason[i])) for i in np.flatnonzero(~row_ok)]
    parts: list[tuple[I64, int, F64]] = []  # (rows, item, values)
    for col, k in item_cols:
        texts = _column(raw, col)
        values, parsed, empty = parse_numbers(texts, decimal_comma=decimal_comma)
        parsed &= np.isfinite(values)
        live = row_ok & ~empty
        label = header.names[col]
        if not instr.item_ok(np.array([k]))[0]:
            for i in np.flatnonzero(live).tolist():
                rejected.append(
                    (
                        int(lines[i]),
                        f"column {label!r}: item {k} is outside 1..{instr.n_items} of {name}",
                    )
                )
            continue
        for i in np.flatnonzero(live & ~parsed).tolist():
            rejected.append(
                (int(lines[i]), f"column {label!r}: value {texts[i]!r} is not a number")
            )
        in_range = instr.value_ok(values)
        for i in np.flatnonzero(live & parsed & ~in_range).tolist():
            rejected.append(
                (
                    int(lines[i]),
                    f"column {label!r}: value {_fmt(values[i])} is outside "
                    f"{instr.range_text()} of {name}",
                )
            )
        take = np.flatnonzero(live & parsed & in_range)
        parts.append((take, k, values[take]))
    rows = np.concatenate([p[0] for p in parts]) if parts else np.empty(0, np.int64)
    items = (
        np.concatenate([np.full(p[0].size, p[1], np.int64) for p in parts])
        if parts
        else np.empty(0, np.int64)
    )
    values_all = np.concatenate([p[2] for p in parts]) if parts else np.empty(0, np.float64)
    order = np.lexsort((items, rows))
    rows, items, values_all = rows[order], items[order], values_all[order]
    pid_arr = np.array(pids, object) if n else np.empty(0, object)
    return SymptomRows(
        path=path,
        layout="wide",
        file_instrument=name,
        n_lines=len(raw.lines) + len(raw.rejected),
        participant_id=pid_arr[rows],
        ts_us=times.ts_us[rows],
        utc_offset_s=times.offset_s[rows],
        instrument=np.full(rows.size, name, object),
        item=items,
        value=values_all,
        line=lines[rows] if n else np.empty(0, np.int64),
        rejected=sorted(rejected, key=lambda r: r[0]),
    )


def _dedupe(rows: SymptomRows) -> SymptomRows:
    """One value per (participant, instrument, instant, item): repeats of the same value are
    dropped; different values reject every line involved."""
    n = len(rows)
    if n < 2:
        rows.rejected.sort(key=lambda r: r[0])
        return rows
    _, pid_code = np.unique(rows.participant_id.astype(str), return_inverse=True)
    _, inst_code = np.unique(rows.instrument.astype(str), return_inverse=True)
    order = np.lexsort((rows.line, rows.item, rows.ts_us, inst_code.ravel(), pid_code.ravel()))
    keys = np.stack(
        [pid_code.ravel()[order], inst_code.ravel()[order], rows.ts_us[order], rows.item[order]]
    )
    new = np.ones(n, bool)
    new[1:] = (keys[:, 1:] != keys[:, :-1]).any(axis=0)
    starts = np.flatnonzero(new)
    group = np.cumsum(new) - 1
    vals = rows.value[order]
    vmin = np.minimum.reduceat(vals, starts)
    vmax = np.maximum.reduceat(vals, starts)
    conflict_group = vmin != vmax
    keep_sorted = new & ~conflict_group[group]
    conflict_sorted = conflict_group[group]
    keep = np.zeros(n, bool)
    keep[order[keep_sorted]] = True
    if conflict_sorted.any():
        lines_sorted = rows.line[order]
        for g in np.flatnonzero(conflict_group).tolist():
            members = np.flatnonzero(group == g)
            lines = [int(v) for v in lines_sorted[members]]
            first = order[members[0]]
            what = (
                f"{rows.instrument[first]} item {int(rows.item[first])} of "
                f"{rows.participant_id[first]} at "
                f"{_iso(int(rows.ts_us[first]), int(rows.utc_offset_s[first]))}"
            )
            listed = ", ".join(str(v) for v in lines)
            for ln in lines:
                rows.rejected.append((ln, f"{what} has different values on lines {listed}"))
    out = rows.take(keep)
    out.rejected.sort(key=lambda r: r[0])
    return out
