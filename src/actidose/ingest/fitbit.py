"""Fitbit importer (format ``"fitbit"``): the account-archive JSON and the Google Takeout CSVs.

Two layouts, told apart by content (:func:`detect`), never by name:

**Account archive / Takeout "Global Export Data" JSON** (fitbit.com "Export your account
archive"; one file per series and day or month, e.g. ``heart_rate-2024-05-01.json``): a top-level
array of ``{"dateTime": "MM/DD/YY HH:MM:SS", "value": ...}`` with no zone.

* ``heart_rate-*``: ``value = {"bpm": 70, "confidence": 0..3}`` -> heart rate (``kind="allday"``,
  ``bpm`` as given, confidence counted in ``meta``, ``sensor="optical"``: Fitbit trackers).
* ``steps-*`` (count) and ``calories-*`` (kcal, *total* energy: Fitbit's per-minute calories
  include the basal rate): ``value`` a number as a string, one per minute -> VendorSeries of
  60 s values, kinds ``steps`` and :data:`KIND_ENERGY_TOTAL` (``"energy_total_kcal"``, which is
  not (yet) in :data:`~actidose.recording.VENDOR_KINDS`; ``energy_active_kcal`` would be wrong).
* ``lightly_/moderately_/very_active_minutes-*``: one value per local day (``dateTime`` at
  ``00:00:00``) -> ``active_minutes_light/_moderate/_vigorous``; each covers the local day
  ``[midnight, next midnight)`` in the participant's zone (23, 24 or 25 h).
* ``resting_heart_rate-*``: ``value = {"date": "MM/DD/YY", "value": 61.2, "error": ...}`` ->
  ``resting_hr_bpm`` per local day; ``value`` 0 (no estimate that day) is left out, counted.
* ``sleep-*`` (objects with ``logId``/``dateOfSleep``), ``sedentary_minutes``, ``distance``,
  ``altitude``, ``time_in_heart_rate_zones`` and other series carry no heart rate or activity
  dose we store: they raise an InputError whose reason starts with
  :data:`~actidose.ingest.registry.NOT_RECOGNISED`, so an archive import skips them like any
  other member no importer reads, and a single such file is refused with the specific reason.

The scalar series (steps, calories, *_minutes) look alike; which one a file holds is taken from
its name (``steps-...``), the way Fitbit names them — content decides only that it is Fitbit.

*Time.* Years are two digits: ``00``-``69`` are 2000-2069, ``70``-``99`` are 1970-1999 (the
corpus has 1995; Python's ``%y`` would put 69 in 1969). The times carry no zone. By default
(``ctx.options["fitbit_json_time"] = "local"``) they are local wall times placed with
``ctx.timezone`` through :func:`~actidose.timeutil.local_to_utc`: wall times in the hour skipped
when DST starts do not exist and are dropped with a counted warning; the repeated hour is
resolved by file order. No zone -> InputError, never a guess. Public analyses of real archives
(saubury/duckdb-fitbit; a 2026 Takeout mapping) found ``heart_rate``/``steps`` values to be UTC
in day files bounded by local days, while GGIRread reads them as local: ``"utc"`` takes them as
UTC. Day values (``*_minutes``, resting HR) are local calendar days in either mode and need
``ctx.timezone``.

**Google Takeout CSVs** (``Fitbit/Physical Activity_GoogleData``, "Time Series Data Export"
readmes): header ``timestamp,<value column>[,data source]`` with ISO 8601 UTC timestamps
(``2024-10-27T00:00:04Z``):

* ``beats per minute`` -> heart rate (``heart_rate_YYYY-MM-DD.csv``), or ``resting_hr_bpm`` per
  local day for ``daily_resting_heart_rate*.csv`` (same header; the name tells);
* ``steps`` -> ``steps``, ``distance`` (metres) -> ``distance_m``, ``calories`` ->
  ``energy_total_kcal``, each per minute (60 s), one VendorSeries per ``data source`` (a watch
  and a phone both count steps; they must not be summed).

``ctx.options["fitbit_csv_time"] = "local"`` reads the stamps as local wall times in
``ctx.timezone`` despite the ``Z`` (one public parser reports they are; default ``"utc"``).

Errors are InputErrors naming the entry and its line (JSON) or the CSV line, with a byte
offset. With ``salvage=True`` a broken or truncated file keeps the entries before the damage
(``salvaged=True``). Heart rate is returned raw: no range filter, no de-duplication.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, Final

import numpy as np
import numpy.typing as npt
import polars as pl

from actidose.errors import InputError, NothingToImport
from actidose.ingest.csv_hr import civil_to_us, decode_text, parse_iso, parse_numbers
from actidose.recording import TS_DTYPE, HRSeries, ReadContext, Recording, VendorSeries
from actidose.timeutil import (
    LOCAL_AMBIGUOUS,
    LOCAL_NONEXISTENT,
    day_start_utc_us,
    local_days,
    local_to_utc,
)

__all__ = ["FORMAT", "KIND_ENERGY_TOTAL", "detect", "read"]

FORMAT: Final = "fitbit"
#: Total energy expenditure (basal + activity), kcal. Not in VENDOR_KINDS: see module docstring.
KIND_ENERGY_TOTAL: Final = "energy_total_kcal"
_US: Final = 1_000_000
_DAY_US: Final = 86_400 * _US
_BOM: Final = b"\xef\xbb\xbf"
_NO_ZONE: Final = (
    "Fitbit times are local without a zone; give the participant a timezone or --timezone"
)
_NO_ZONE_DAYS: Final = (
    "Fitbit day values are local calendar days; give the participant a timezone or --timezone"
)

_JSON_ARRAY = re.compile(rb"^(?:\xef\xbb\xbf)?\s*\[\s*\{")
_JSON_DATETIME = re.compile(rb'"dateTime"\s*:\s*"\d{2}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}"')
_SLEEP_KEYS = (re.compile(rb'"logId"\s*:'), re.compile(rb'"dateOfSleep"\s*:'))
_FITBIT_TIME = r"^([0-9]{2})/([0-9]{2})/([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})$"


@dataclass(frozen=True)
class _Series:
    kind: str
    unit: str
    daily: bool


#: account-archive JSON file name (before the first "-") -> vendor series
_JSON_SERIES: Final = {
    "steps": _Series("steps", "count", False),
    "calories": _Series(KIND_ENERGY_TOTAL, "kcal", False),
    "lightly_active_minutes": _Series("active_minutes_light", "min", True),
    "moderately_active_minutes": _Series("active_minutes_moderate", "min", True),
    "fairly_active_minutes": _Series("active_minutes_moderate", "min", True),
    "very_active_minutes": _Series("active_minutes_vigorous", "min", True),
}
#: series we recognise but do not store, and why
_JSON_NOT_STORED: Final = {
    "sedentary_minutes": "sedentary minutes (no vendor series kind for them)",
    "distance": "distance (its unit in the JSON export is not documented)",
    "altitude": "altitude",
    "time_in_heart_rate_zones": "time in heart-rate zones",
    "swim_lengths_data": "swim lengths",
    "estimated_oxygen_variation": "estimated oxygen variation",
    "demographic_vo2_max": "VO2 max",
    "run_vo2_max": "VO2 max",
    "weight": "weight",
}
#: Takeout CSV value column -> (series for per-minute rows, or None for heart rate)
_CSV_COLUMNS: Final = {
    "beats per minute": None,
    "steps": _Series("steps", "count", False),
    "distance": _Series("distance_m", "m", False),
    "calories": _Series(KIND_ENERGY_TOTAL, "kcal", False),
}


def detect(head: bytes) -> bool:
    """True for a Fitbit export, judged from the first bytes only.

    JSON (account archive): a top-level array whose first object has a ``"dateTime"`` in
    ``MM/DD/YY HH:MM:SS`` form, or a sleep log (``logId`` and ``dateOfSleep``, refused by
    :func:`read` with a specific reason). CSV (Takeout): a first line ``timestamp,beats per
    minute``, ``timestamp,steps``, ``timestamp,distance`` or ``timestamp,calories``, optionally
    followed by ``,data source``.
    """
    if _JSON_ARRAY.match(head):
        first = head[:600]
        if _JSON_DATETIME.search(first):
            return True
        return all(k.search(first) for k in _SLEEP_KEYS)
    return _takeout_header(head) is not None


def _takeout_header(head: bytes) -> tuple[str, bool] | None:
    """(value column, has data source) when the first line is a Takeout time-series header."""
    line = head[3:] if head.startswith(_BOM) else head
    end = line.find(b"\n")
    if end < 0:
        return None
    try:
        cols = [c.strip().lower() for c in line[:end].decode("utf-8").rstrip("\r").split(",")]
    except UnicodeDecodeError:
        return None
    known = len(cols) in (2, 3) and cols[0] == "timestamp" and cols[1] in _CSV_COLUMNS
    if known and (len(cols) == 2 or cols[2] == "data source"):
        return cols[1], len(cols) == 3
    return None


def read(
    fp: BinaryIO, *, path: str = "<stream>", salvage: bool = False, ctx: ReadContext
) -> Recording:
    """Read one Fitbit export file (account-archive JSON or Takeout CSV, see the module
    docstring) into a :class:`Recording` with ``format="fitbit"`` and ``kind="allday"``.

    ``ctx.timezone`` places the JSON's local times and the local days of day values;
    ``ctx.options["fitbit_json_time"]`` (``local``/``utc``) and ``["fitbit_csv_time"]``
    (``utc``/``local``) say how to read the stamps. Raises InputError for anything unreadable
    (with the entry or line and a byte offset), for local times without a zone, and — with a
    :class:`~actidose.errors.NothingToImport` for Fitbit files that hold no heart rate or
    activity series we store (sleep, altitude, ...).
    """
    data = fp.read()
    if not isinstance(data, bytes | bytearray):
        raise InputError("not a binary stream", path=path, offset=0)
    data = bytes(data)
    if not data:
        raise InputError("empty file", path=path, offset=0)
    text = decode_text(data, path=path)
    src = _Source(path, data, text, salvage, ctx)
    if text.lstrip().startswith("["):
        return _read_json(src)
    header = _takeout_header(data)
    if header is not None:
        return _read_takeout_csv(src, header[0])
    raise InputError(
        "not a Fitbit export: neither an account-archive JSON array nor a Takeout CSV",
        path=path,
        offset=0,
    )


# --------------------------------------------------------------------------------------------
# shared plumbing


@dataclass
class _Source:
    path: str
    data: bytes
    text: str
    salvage: bool
    ctx: ReadContext
    salvage_reason: str | None = None

    def byte_offset(self, char_pos: int) -> int:
        bom = 3 if self.data.startswith(_BOM) else 0
        return bom + len(self.text[:char_pos].encode("utf-8"))

    def line(self, char_pos: int) -> int:
        return self.text.count("\n", 0, char_pos) + 1

    def error(self, reason: str, char_pos: int | None) -> InputError:
        at = None if char_pos is None else self.byte_offset(char_pos)
        return InputError(reason, path=self.path, offset=at)

    def recording(self, **kw: Any) -> Recording:
        rec = Recording(format=FORMAT, kind="allday", **kw)
        if self.salvage_reason is not None:
            rec.salvaged = True
            rec.salvage_reason = self.salvage_reason
        return rec


def _series_name(path: str) -> str:
    """``.../heart_rate-2024-05-01.json`` -> ``heart_rate``; ``steps_2024-05-01.csv`` ->
    ``steps``; ``archive.zip!x/daily_resting_heart_rate.csv`` -> ``daily_resting_heart_rate``."""
    base = re.split(r"[/\\!]", path)[-1].lower()
    base = re.sub(r"\.(json|csv)$", "", base)
    return re.split(r"-|_(?=\d{4}-\d{2}-\d{2})", base, maxsplit=1)[0]


def _not_stored(src: _Source, what: str) -> InputError:
    return NothingToImport(
        f"Fitbit {what}: no heart rate or activity series to store",
        path=src.path,
        offset=0,
    )


def _fitbit_times(
    texts: Sequence[str | None],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """``MM/DD/YY HH:MM:SS`` -> (wall-clock microseconds since 1970-01-01, valid); two-digit
    years 00-69 -> 20xx, 70-99 -> 19xx."""
    if len(texts) == 0:
        return np.empty(0, np.int64), np.empty(0, bool)
    g = pl.Series("t", texts, dtype=pl.String).str.extract_groups(_FITBIT_TIME).struct.unnest()
    cols = [g.get_column(c).cast(pl.Int64, strict=False) for c in g.columns]
    matched = cols[0].is_not_null().to_numpy()
    mo, d, yy, h, mi, s = (c.fill_null(0).to_numpy().astype(np.int64) for c in cols)
    year = np.where(yy < 70, 2000 + yy, 1900 + yy)
    us, ok = civil_to_us(year, mo, d, h, mi, s)
    return us, ok & matched


def _days_start_and_length(
    days: npt.NDArray[np.datetime64], tz: str
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    start = day_start_utc_us(days, tz)
    end = day_start_utc_us(days + np.timedelta64(1, "D"), tz)
    return start, (end - start) / _US


# --------------------------------------------------------------------------------------------
# account-archive JSON


def _scan_array(text: str) -> tuple[list[Any], list[int], tuple[int, str] | None]:
    """Walk a JSON array element by element: (elements, their char offsets, damage) where
    damage is (char offset, message) of the first thing that is not a complete element."""
    dec = json.JSONDecoder()
    ws = re.compile(r"\s*")
    items: list[Any] = []
    starts: list[int] = []
    i = ws.match(text, 0).end()  # type: ignore[union-attr]
    if not text.startswith("[", i):
        return items, starts, (i, "expected '['")
    i = ws.match(text, i + 1).end()  # type: ignore[union-attr]
    if text.startswith("]", i):
        return items, starts, None
    while True:
        try:
            obj, end = dec.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            return items, starts, (exc.pos, exc.msg)
        except (ValueError, RecursionError) as exc:
            return items, starts, (i, f"unreadable element: {exc}")
        items.append(obj)
        starts.append(i)
        i = ws.match(text, end).end()  # type: ignore[union-attr]
        if text.startswith(",", i):
            i = ws.match(text, i + 1).end()  # type: ignore[union-attr]
            continue
        if text.startswith("]", i):
            return items, starts, None
        return items, starts, (i, "expected ',' or ']' after an array element")


def _read_json(src: _Source) -> Recording:
    try:
        items = json.loads(src.text)
    except json.JSONDecodeError as exc:
        # one more pass to find the damage as an element boundary (and what precedes it)
        good, _, damage = _scan_array(src.text)
        pos, msg = damage if damage is not None else (exc.pos, exc.msg)
        reason = f"broken JSON at line {src.line(pos)}: {msg} (offset {src.byte_offset(pos)})"
        if not src.salvage or not good:
            raise src.error(reason, pos) from None
        items = good
        src.salvage_reason = reason
    except RecursionError:
        raise src.error("JSON nested too deeply", 0) from None
    except ValueError as exc:  # e.g. an integer literal longer than Python accepts
        raise src.error(f"unreadable JSON: {exc}", 0) from None
    if not isinstance(items, list):
        raise src.error("not a Fitbit export: the JSON top level is not an array", 0)
    if not items:
        rec = src.recording()
        rec.warnings.append("the Fitbit file holds no entries")
        return rec
    first = items[0]
    if isinstance(first, dict) and ("logId" in first or "dateOfSleep" in first):
        raise _not_stored(src, "sleep log")
    value = first.get("value") if isinstance(first, dict) else None
    name = _series_name(src.path)
    if isinstance(value, dict):
        if "bpm" in value:
            return _json_heart_rate(src, items)
        if "date" in value and "value" in value:
            return _json_resting_hr(src, items)
        if "valuesInZones" in value:
            raise _not_stored(src, "time in heart-rate zones")
    if name in _JSON_SERIES and not isinstance(value, dict | list):
        return _json_scalar(src, items, _JSON_SERIES[name])
    if name in _JSON_NOT_STORED:
        raise _not_stored(src, _JSON_NOT_STORED[name])
    if name == "heart_rate":  # named so, but its first entry is not {"bpm": ...}
        return _json_heart_rate(src, items)
    raise _not_stored(
        src,
        f"series {name!r} (its file name must say what it holds: heart_rate-, steps-, "
        "calories-, lightly_/moderately_/very_active_minutes- or resting_heart_rate-)",
    )


class _EntryError(Exception):
    def __init__(self, index: int, reason: str) -> None:
        self.index = index
        self.reason = reason


def _entry_error(src: _Source, index: int, reason: str) -> InputError:
    _, starts, _ = _scan_array(src.text)
    pos = starts[index] if index < len(starts) else None
    where = f"entry {index + 1}" + ("" if pos is None else f" (line {src.line(pos)})")
    return src.error(f"{where}: {reason}", pos)


def _entries(
    src: _Source, items: list[Any], value_of: Any
) -> tuple[list[str | None], list[Any], int]:
    """(dateTime texts, values, n usable). ``value_of(entry_value)`` returns the value or raises
    ValueError with a reason. A bad entry is an InputError, or with salvage the end of the
    data (what precedes it is kept)."""
    dts: list[str | None] = []
    vals: list[Any] = []
    try:
        for i, it in enumerate(items):
            if not isinstance(it, dict):
                raise _EntryError(i, "not an object")
            dt = it.get("dateTime")
            if not isinstance(dt, str):
                raise _EntryError(i, "no dateTime text")
            try:
                vals.append(value_of(it.get("value")))
            except (ValueError, TypeError) as exc:
                raise _EntryError(i, str(exc)) from None
            dts.append(dt)
    except _EntryError as exc:
        err = _entry_error(src, exc.index, exc.reason)
        if not src.salvage or exc.index == 0:
            raise err from None
        src.salvage_reason = src.salvage_reason or err.reason
        vals = vals[: exc.index]
    return dts[: len(vals)], vals, len(vals)


def _checked_times(src: _Source, dts: list[str | None]) -> tuple[npt.NDArray[np.int64], int]:
    """Wall-clock microseconds of the ``dateTime`` texts; the first bad one is an InputError
    (or, with salvage, the end of the data). Returns (times, n usable)."""
    wall, ok = _fitbit_times(dts)
    if ok.all():
        return wall, wall.size
    i = int(np.flatnonzero(~ok)[0])
    err = _entry_error(src, i, f"dateTime {dts[i]!r} is not a date-time MM/DD/YY HH:MM:SS")
    if not src.salvage or i == 0:
        raise err
    src.salvage_reason = src.salvage_reason or err.reason
    return wall[:i], i


def _place(
    src: _Source, wall: npt.NDArray[np.int64], what: str
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_], list[str], dict[str, str]]:
    """UTC microseconds of the JSON stamps per ``fitbit_json_time``; (utc, keep, warnings,
    meta). Nonexistent local times are not kept (counted in a warning)."""
    mode = src.ctx.options.get("fitbit_json_time", "local")
    if mode == "utc":
        return wall, np.ones(wall.size, bool), [], {"time_basis": "utc (fitbit_json_time)"}
    if mode != "local":
        raise src.error(f"fitbit_json_time must be 'local' or 'utc', not {mode!r}", None)
    tz = src.ctx.timezone
    if not tz:
        raise InputError(_NO_ZONE, path=src.path, offset=0)
    utc, status = local_to_utc(wall, tz)
    keep = status != LOCAL_NONEXISTENT
    warnings = []
    gap = int(wall.size - np.count_nonzero(keep))
    if gap:
        warnings.append(
            f"{gap} {what} at local times that do not exist in {tz} (the hour skipped when "
            "daylight saving starts) were dropped"
        )
    rep = int(np.count_nonzero(status == LOCAL_AMBIGUOUS))
    if rep:
        warnings.append(
            f"{rep} {what} in the hour repeated when daylight saving ends in {tz}: placed by "
            "file order"
        )
    return utc, keep, warnings, {"time_basis": f"local ({tz})"}


def _bpm(value: Any) -> float:
    if not isinstance(value, dict):
        raise ValueError("value is not an object with bpm")
    bpm = value.get("bpm")
    if bpm is None:
        return float("nan")  # no reading
    if isinstance(bpm, bool) or not isinstance(bpm, int | float):
        raise ValueError(f"bpm {bpm!r} is not a number")
    return _float(bpm, "bpm")


def _float(value: int | float, what: str) -> float:
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"{what} {value} is out of range") from None


def _json_heart_rate(src: _Source, items: list[Any]) -> Recording:
    dts, bpm_list, _ = _entries(src, items, _bpm)
    wall, n = _checked_times(src, dts)
    bpm = np.asarray(bpm_list[:n], np.float64)
    utc, keep, warnings, meta = _place(src, wall, "heart-rate values")
    conf = Counter(
        _label(it["value"].get("confidence"))
        for it in items[:n]
        if isinstance(it.get("value"), dict)
    )
    meta["confidence_counts"] = ", ".join(f"{k}: {v}" for k, v in sorted(conf.items()))
    hr = HRSeries(utc[keep].astype(TS_DTYPE), bpm[keep])
    # Fitbit trackers measure heart rate optically at the wrist (they pair with no HR straps)
    return src.recording(hr=hr, warnings=warnings, meta=meta, sensor="optical")


def _label(value: Any) -> str:
    return str(value) if isinstance(value, int | str | None) else "other"


def _number(value: Any) -> float:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"value {value!r} is not a number")
    if isinstance(value, int | float):
        return _float(value, "value")
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"value {value!r} is not a number") from None
    raise ValueError(f"value {value!r} is not a number")


def _json_scalar(src: _Source, items: list[Any], series: _Series) -> Recording:
    dts, vals, _ = _entries(src, items, _number)
    wall, n = _checked_times(src, dts)
    value = np.asarray(vals[:n], np.float64)
    if series.daily:
        days = (wall // _DAY_US).astype("datetime64[D]")
        vs = _daily_series(src, series, days, value)
        return src.recording(vendor=[vs], meta={"series": series.kind})
    utc, keep, warnings, meta = _place(src, wall, f"{series.kind} values")
    vs = VendorSeries(
        series.kind,
        series.unit,
        utc[keep].astype(TS_DTYPE),
        np.full(int(keep.sum()), 60.0),
        value[keep],
        origin="Fitbit",
    )
    meta["series"] = series.kind
    return src.recording(vendor=[vs], warnings=warnings, meta=meta)


def _daily_series(
    src: _Source, series: _Series, days: npt.NDArray[np.datetime64], value: npt.NDArray[np.float64]
) -> VendorSeries:
    tz = src.ctx.timezone
    if not tz:
        raise InputError(_NO_ZONE_DAYS, path=src.path, offset=0)
    start, length = _days_start_and_length(days, tz)
    return VendorSeries(
        series.kind, series.unit, start.astype(TS_DTYPE), length, value, origin="Fitbit"
    )


def _resting(value: Any) -> tuple[str | None, float]:
    if not isinstance(value, dict):
        raise ValueError("value is not an object with date and value")
    day, bpm = value.get("date"), value.get("value")
    if day is not None and not isinstance(day, str):
        raise ValueError(f"date {day!r} is not MM/DD/YY text")
    if bpm is None:
        return day, 0.0
    return day, _number(bpm)


def _json_resting_hr(src: _Source, items: list[Any]) -> Recording:
    dts, vals, n = _entries(src, items, _resting)
    wall, n = _checked_times(src, dts)
    # the day is value.date where given (else the entry's dateTime)
    named = [d for d, _ in vals[:n]]
    day_txt = [f"{d} 00:00:00" if d else None for d in named]
    day_wall, day_ok = _fitbit_times([t or "" for t in day_txt])
    given = np.array([t is not None for t in day_txt], bool)
    bad = given & ~day_ok
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _entry_error(src, i, f"date {named[i]!r} is not MM/DD/YY")
    day_us = np.where(given, day_wall, wall)
    value = np.asarray([v for _, v in vals[:n]], np.float64)
    has = value > 0
    rec_warnings = []
    if (~has).any():
        rec_warnings.append(
            f"{int((~has).sum())} day(s) without a resting heart-rate estimate (value 0) left out"
        )
    days = (day_us[has] // _DAY_US).astype("datetime64[D]")
    vs = _daily_series(src, _Series("resting_hr_bpm", "bpm", True), days, value[has])
    return src.recording(vendor=[vs], warnings=rec_warnings, meta={"series": "resting_hr_bpm"})


# --------------------------------------------------------------------------------------------
# Google Takeout CSV


def _read_takeout_csv(src: _Source, column: str) -> Recording:
    reader = csv.reader(io.StringIO(src.text, newline=""))
    ts_txt: list[str] = []
    val_txt: list[str] = []
    origin: list[str] = []
    lines: list[int] = []
    width = 0
    damage: str | None = None
    try:
        for row in reader:
            if not row or not any(c.strip() for c in row):
                continue
            if not width:
                width = len(row)
                continue
            if len(row) != width:
                damage = f"line {reader.line_num}: {len(row)} fields, the header has {width}"
                break
            lines.append(reader.line_num)
            ts_txt.append(row[0])
            val_txt.append(row[1])
            origin.append(row[2].strip() if width == 3 else "")
    except csv.Error as exc:
        damage = f"line {reader.line_num}: not readable as CSV: {exc}"
    times = parse_iso(ts_txt)
    values, vok, _ = parse_numbers(val_txt)
    ok = times.ok & vok
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        what = "timestamp" if not times.ok[i] else column
        cell = ts_txt[i] if not times.ok[i] else val_txt[i]
        damage = f"line {lines[i]}: {what} {cell!r} not readable"
        n = i
    else:
        n = len(lines)
    if damage is not None:
        if not src.salvage or n == 0:
            raise InputError(damage, path=src.path)
        src.salvage_reason = damage
    lines, origin = lines[:n], origin[:n]
    values = values[:n]

    mode = src.ctx.options.get("fitbit_csv_time", "utc")
    if mode not in ("utc", "local"):
        raise InputError(f"fitbit_csv_time must be 'utc' or 'local', not {mode!r}", path=src.path)
    tz = src.ctx.timezone
    us = times.us[:n].copy()
    has_zone = times.has_zone[:n]
    naive = ~has_zone if mode == "utc" else np.ones(n, bool)
    wall = np.where(has_zone, us + times.offset_s[:n] * _US, us)  # the clock reading as written
    name = _series_name(src.path)
    meta = {"time_basis": "utc" if mode == "utc" else f"local ({tz})"}
    sources = sorted({o for o in origin if o})
    if sources:
        meta["data_sources"] = "; ".join(sources)

    if column == "beats per minute" and "resting" in name:
        # a stamp at 00:00:00 marks a local calendar day (daily_resting_heart_rate.csv);
        # any other stamp is an instant, whose local day is taken in the participant's zone
        day_us = wall // _DAY_US
        if tz and mode == "utc" and (wall % _DAY_US != 0).any():
            instant_days = local_days(us, tz).astype(np.int64)
            day_us = np.where(wall % _DAY_US == 0, day_us, instant_days)
        days = day_us.astype("datetime64[D]")
        has = values > 0
        vs = _daily_series(src, _Series("resting_hr_bpm", "bpm", True), days[has], values[has])
        vs.origin = sources[0] if len(sources) == 1 else "Fitbit"
        meta["series"] = "resting_hr_bpm"
        return src.recording(vendor=[vs], meta=meta)

    warnings: list[str] = []
    keep = np.ones(n, bool)
    if naive.any():
        if not tz:
            first = lines[int(np.flatnonzero(naive)[0])]
            raise InputError(f"line {first}: {_NO_ZONE}", path=src.path)
        placed, status = local_to_utc(wall[naive], tz)
        us[naive] = placed
        gap = np.zeros(n, bool)
        gap[np.flatnonzero(naive)[status == LOCAL_NONEXISTENT]] = True
        keep &= ~gap
        if gap.any():
            warnings.append(f"{int(gap.sum())} rows at nonexistent local times in {tz} dropped")
    ts = us.astype(TS_DTYPE)
    series = _CSV_COLUMNS[column]
    if series is None:
        rec = src.recording(hr=HRSeries(ts[keep], values[keep]), warnings=warnings, meta=meta)
        if len(sources) == 1:
            rec.device = sources[0]
        return rec
    org = np.asarray(origin, dtype=object)
    vendor = []
    for o in sorted(set(origin)):
        sel = keep & (org == o)
        vendor.append(
            VendorSeries(
                series.kind,
                series.unit,
                ts[sel],
                np.full(int(sel.sum()), 60.0),
                values[sel],
                origin=o or "Fitbit",
            )
        )
    meta["series"] = series.kind
    return src.recording(vendor=vendor, warnings=warnings, meta=meta)
