"""Generic heart-rate / RR CSV importer (format ``"csv"``), chosen by the user, never detected.

A CSV says nothing about what its columns mean, so the caller maps them
(``ReadContext.options``, filled by ``actidose import --format csv --columns ...``):

``columns``
    ``"timestamp=Time,bpm=HR,rr_ms=RR"``: ``target=source column`` pairs. Targets: ``timestamp``
    (required), ``bpm``, ``rr_ms`` (at least one of the two). Without it the columns named
    ``timestamp``, ``bpm`` and ``rr_ms`` are used. :func:`parse_columns` checks a spec up front.
``timestamp_format``
    ``"iso"`` (default: ISO 8601 / RFC 3339, ``T`` or space, optional fraction, with or without
    ``Z``/``±HH:MM``), ``"epoch_s"``, ``"epoch_ms"`` (Unix time, UTC) or a
    :func:`datetime.strptime` format (``%z`` makes it zone-aware).
``timezone``
    IANA zone that places times without an offset (else ``ReadContext.timezone``). Naive times
    and no zone are an InputError, never a guess (DESIGN.md, "Time").
``delimiter``
    ``,`` ``;`` or tab (``\\t``/``tab``); default: sniffed from the header line.
``kind``
    ``"activity"`` (default) or ``"allday"``.
``encoding``
    text encoding, default UTF-8 (a BOM is skipped).

Rows: one header line, then one row per sample. A row whose mapped timestamp or a non-empty
mapped value cannot be read is *bad*: it is left out, counted in ``meta["bad_rows"]`` and listed
with its line number in ``warnings``; more than half the rows bad means the mapping is wrong and
the file is refused. An empty ``bpm`` or ``rr_ms`` cell is no value for that stream (HR and RR
often share a log); a row with no value at all is bad. ``bpm`` is kept as read (the pipeline's
sample rules apply to every format); ``rr_ms`` must be a positive number. With ``;`` or tab as the
delimiter a decimal comma (``72,5``) is read as a decimal point. RR intervals take the row's time
as the time of the beat that ends them. Wall times in the hour skipped when DST starts are bad
rows; those in the repeated hour are resolved by file order (:func:`timeutil.local_to_utc`).

The timestamp helpers here (:func:`parse_iso`, :func:`civil_to_us`) are shared by the JSON
importers (Fitbit, Polar). They are vectorized: strings are matched by one regular expression in
polars and converted with numpy; only the ``strptime`` path is a per-row Python loop.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, BinaryIO, Final

import numpy as np
import numpy.typing as npt

from actidose.errors import InputError, UsageError
from actidose.recording import TS_DTYPE, HRSeries, ReadContext, Recording, RRSeries
from actidose.timeutil import LOCAL_NONEXISTENT, local_to_utc, zone

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "FORMAT",
    "ParsedTimes",
    "civil_to_us",
    "decode_text",
    "detect",
    "parse_columns",
    "parse_epoch",
    "parse_iso",
    "parse_numbers",
    "parse_strptime",
    "read",
]

FORMAT: Final = "csv"
TARGETS: Final = ("timestamp", "bpm", "rr_ms")
KINDS: Final = ("activity", "allday")
_US: Final = 1_000_000
#: plausible instants: 1900-01-01 .. 2200-01-01 (guards the int64 microsecond range)
_MIN_US: Final = int(np.datetime64("1900-01-01", "us").astype(np.int64))
_MAX_US: Final = int(np.datetime64("2200-01-01", "us").astype(np.int64))
_DELIMITERS: Final = {",": ",", ";": ";", "\t": "\t", "\\t": "\t", "tab": "\t"}
#: warnings list at most this many line ranges per kind of damage (the count is always exact)
_MAX_RANGES: Final = 50

# ISO 8601 / RFC 3339 date-time; [0-9] rather than \d, which is Unicode-wide in Rust regex.
_ISO = (
    r"^\s*([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2})"
    r"(?::([0-9]{2})(?:[.,]([0-9]{1,9}))?)?"
    r"\s*([Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?\s*$"
)


def detect(head: bytes) -> bool:
    """Never: a generic CSV is chosen explicitly (``options["format"] == "csv"``), because a
    header alone cannot tell what a column holds. (Fitbit's Takeout CSVs are ``fitbit``.)"""
    return False


# --------------------------------------------------------------------------------------------
# shared text and time helpers


def decode_text(data: bytes, *, path: str, encoding: str = "utf-8") -> str:
    """``data`` as text; a UTF-8 BOM is dropped. Undecodable bytes -> InputError at their offset."""
    enc = encoding.strip().lower().replace("_", "-")
    if enc in ("utf-8", "utf8"):
        enc = "utf-8-sig"
    try:
        return data.decode(enc)
    except LookupError as exc:
        raise UsageError(f"unknown text encoding {encoding!r}", fix="e.g. utf-8, cp1252") from exc
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not {encoding} text: undecodable byte at offset {exc.start}",
            path=path,
            offset=exc.start,
        ) from None


@dataclass(frozen=True)
class ParsedTimes:
    """Times read from text. ``us``: microseconds since 1970-01-01 — UTC where ``has_zone``
    (the text said ``Z`` or an offset, or it was epoch time), else the naive wall time.
    ``offset_s``: the stated UTC offset (0 where none). ``ok``: parsed and a valid date-time."""

    us: npt.NDArray[np.int64]
    offset_s: npt.NDArray[np.int64]
    has_zone: npt.NDArray[np.bool_]
    ok: npt.NDArray[np.bool_]


def civil_to_us(
    year: npt.ArrayLike,
    month: npt.ArrayLike,
    day: npt.ArrayLike,
    hour: npt.ArrayLike,
    minute: npt.ArrayLike,
    second: npt.ArrayLike,
    micro: npt.ArrayLike | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Microseconds since 1970-01-01T00:00 of proleptic Gregorian calendar fields, and whether
    each is a real date-time (month 1-12, day within the month, 00:00:00-23:59:59, years
    1900-2199). Invalid entries come back as 0."""
    y = np.asarray(year, np.int64)
    mo = np.asarray(month, np.int64)
    d = np.asarray(day, np.int64)
    h = np.asarray(hour, np.int64)
    mi = np.asarray(minute, np.int64)
    s = np.asarray(second, np.int64)
    f = np.zeros_like(y) if micro is None else np.asarray(micro, np.int64)
    ok = (
        (y >= 1900)
        & (y < 2200)
        & (mo >= 1)
        & (mo <= 12)
        & (d >= 1)
        & (h >= 0)
        & (h < 24)
        & (mi >= 0)
        & (mi < 60)
        & (s >= 0)
        & (s < 60)
        & (f >= 0)
        & (f < _US)
    )
    months = np.where(ok, (y - 1970) * 12 + mo - 1, 0)
    first = months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    nxt = (months + 1).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    ok &= d <= nxt - first
    days = first + d - 1
    us = ((days * 86_400 + h * 3600 + mi * 60 + s) * _US + f).astype(np.int64)
    return np.where(ok, us, 0), ok


def _int_col(frame: pl.DataFrame, name: str, default: int = 0) -> npt.NDArray[np.int64]:
    import polars as pl

    col = frame.get_column(name).cast(pl.Int64, strict=False).fill_null(default)
    return col.to_numpy().astype(np.int64)


def parse_iso(texts: Sequence[str | None]) -> ParsedTimes:
    """Vectorized ISO 8601 date-times (``2024-03-31T01:30:00``, ``... 01:30:00.25Z``,
    ``...+01:00``, ``...+0100``, ``...+01``). Seconds are optional; fractions beyond
    microseconds are truncated."""
    import polars as pl  # (loaded when used: every command imports this module)

    n = len(texts)
    if n == 0:
        e = np.empty(0, np.int64)
        return ParsedTimes(e, e.copy(), np.empty(0, bool), np.empty(0, bool))
    g = pl.Series("t", texts, dtype=pl.String).str.extract_groups(_ISO).struct.unnest()
    names = g.columns  # "1" .. "8"
    matched = g.get_column(names[0]).is_not_null().to_numpy()
    frac = (
        g.get_column(names[6])
        .fill_null("0")
        .str.slice(0, 6)
        .str.pad_end(6, "0")
        .cast(pl.Int64, strict=False)
        .fill_null(0)
        .to_numpy()
        .astype(np.int64)
    )
    wall, ok = civil_to_us(
        _int_col(g, names[0]),
        _int_col(g, names[1]),
        _int_col(g, names[2]),
        _int_col(g, names[3]),
        _int_col(g, names[4]),
        _int_col(g, names[5]),
        frac,
    )
    ok &= matched
    tz = g.get_column(names[7])
    has_zone = tz.is_not_null().to_numpy() & ok
    digits = tz.fill_null("").str.replace_all(":", "", literal=True)
    sign = np.where(digits.str.starts_with("-").to_numpy(), -1, 1)
    hh = digits.str.slice(1, 2).cast(pl.Int64, strict=False).fill_null(0).to_numpy()
    mm = digits.str.slice(3, 2).cast(pl.Int64, strict=False).fill_null(0).to_numpy()
    offset = (sign * (hh * 3600 + mm * 60)).astype(np.int64)
    bad_offset = has_zone & ((hh > 14) | (mm > 59))
    ok &= ~bad_offset
    has_zone &= ok
    offset = np.where(has_zone, offset, 0)
    us = np.where(has_zone, wall - offset * _US, wall)
    return ParsedTimes(us.astype(np.int64), offset, has_zone, ok)


def parse_epoch(texts: Sequence[str | None], unit_us: int) -> ParsedTimes:
    """Unix times (seconds: ``unit_us=1_000_000``; milliseconds: ``1_000``), decimals allowed."""
    vals, ok, _ = parse_numbers(texts)
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = vals * unit_us
        ok &= np.isfinite(scaled) & (scaled >= _MIN_US) & (scaled < _MAX_US)
    us = np.zeros(vals.size, np.int64)
    us[ok] = np.rint(vals[ok] * unit_us).astype(np.int64)
    ok &= (us >= _MIN_US) & (us < _MAX_US)
    return ParsedTimes(np.where(ok, us, 0), np.zeros(vals.size, np.int64), ok.copy(), ok)


def parse_strptime(texts: Sequence[str | None], fmt: str) -> ParsedTimes:
    """Times in a :func:`datetime.strptime` format, one row at a time (use ``iso`` or epoch
    formats for very large files). A format with ``%z`` gives zone-aware times."""
    n = len(texts)
    us = np.zeros(n, np.int64)
    off = np.zeros(n, np.int64)
    has_zone = np.zeros(n, bool)
    ok = np.zeros(n, bool)
    epoch = datetime(1970, 1, 1)
    for i, t in enumerate(texts):
        if t is None:
            continue
        try:
            dt = datetime.strptime(t.strip(), fmt)
        except (ValueError, TypeError, OverflowError):
            continue
        if not 1900 <= dt.year < 2200:
            continue
        if dt.tzinfo is not None:
            delta = dt.utcoffset()
            off[i] = int(delta.total_seconds()) if delta is not None else 0
            dt = dt.astimezone(UTC).replace(tzinfo=None)
            has_zone[i] = True
        us[i] = (dt - epoch) // timedelta(microseconds=1)
        ok[i] = True
    return ParsedTimes(us, off, has_zone, ok)


def parse_numbers(
    texts: Sequence[str | None], *, decimal_comma: bool = False
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Vectorized numbers from text: (values, parsed, empty). ``nan``/``inf`` parse (a source's
    own "no value"); empty cells are not parsed and flagged ``empty``."""
    import polars as pl  # (loaded when used: every command imports this module)

    s = pl.Series("v", texts, dtype=pl.String).str.strip_chars()
    empty = s.fill_null("").eq("").to_numpy()
    if decimal_comma:
        s = s.str.replace(r"^([+-]?[0-9]*),([0-9]+)$", "${1}.${2}")
    v = s.cast(pl.Float64, strict=False)
    ok = v.is_not_null().to_numpy() & ~empty
    vals = v.fill_null(np.nan).to_numpy().astype(np.float64)
    return vals, ok, empty


# --------------------------------------------------------------------------------------------
# options


def parse_columns(spec: str) -> dict[str, str]:
    """``"timestamp=Time,bpm=HR,rr_ms=RR"`` -> ``{"timestamp": "Time", ...}``. A bad spec (no
    ``=``, unknown or repeated target, no timestamp, neither bpm nor rr_ms) is a UsageError, so
    a command line can check it before any file is read."""
    fix = "e.g. timestamp=Time,bpm=HR (targets: " + ", ".join(TARGETS) + ")"
    out: dict[str, str] = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        target, sep, source = part.partition("=")
        target, source = target.strip().lower(), source.strip()
        if not sep or not source:
            raise UsageError(f"column mapping {part.strip()!r} is not target=column", fix=fix)
        if target not in TARGETS:
            raise UsageError(f"unknown column target {target!r} in the mapping", fix=fix)
        if target in out:
            raise UsageError(f"column target {target!r} mapped twice", fix=fix)
        out[target] = source
    if "timestamp" not in out:
        raise UsageError("the column mapping has no timestamp=...", fix=fix)
    if "bpm" not in out and "rr_ms" not in out:
        raise UsageError("the column mapping needs bpm=... or rr_ms=...", fix=fix)
    return out


def _delimiter(options: dict[str, str], header: str) -> str:
    given = options.get("delimiter")
    if given is not None:
        if given not in _DELIMITERS:
            raise UsageError(
                f"unsupported CSV delimiter {given!r}", fix="use ',', ';' or tab ('\\t')"
            )
        return _DELIMITERS[given]
    bare = re.sub(r'"[^"]*"', "", header)  # do not count delimiters inside quoted names
    counts = {d: bare.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _ranges(lines: Sequence[int]) -> str:
    """``[3, 4, 5, 9]`` -> ``"3-5, 9"`` (at most _MAX_RANGES ranges)."""
    parts: list[str] = []
    start = prev = lines[0]
    for ln in [*lines[1:], None]:
        if ln is not None and ln == prev + 1:
            prev = ln
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if ln is not None:
            start = prev = ln
    more = len(parts) - _MAX_RANGES
    return ", ".join(parts[:_MAX_RANGES]) + (f", ... ({more} more ranges)" if more > 0 else "")


# --------------------------------------------------------------------------------------------
# the importer


def read(
    fp: BinaryIO, *, path: str = "<stream>", salvage: bool = False, ctx: ReadContext
) -> Recording:
    """Read a generic CSV of heart rate and/or RR intervals, as ``ctx.options`` map it (see the
    module docstring for the keys). Returns a :class:`Recording` with format ``"csv"``; raises
    InputError (with the path and a line number) for an unreadable file, a mapped column that
    is not in the header (naming the columns present), naive times without a zone, or more than
    half the rows bad; UsageError for a malformed option. ``salvage`` has no effect: bad rows
    are always skipped and reported."""
    opts = ctx.options
    mapping = parse_columns(opts["columns"]) if opts.get("columns") else None
    kind = opts.get("kind", "activity")
    if kind not in KINDS:
        raise UsageError(f"unknown recording kind {kind!r}", fix="activity or allday")
    tformat = opts.get("timestamp_format", "iso") or "iso"
    tz_name = opts.get("timezone") or ctx.timezone
    if tz_name:
        zone(tz_name)  # an unknown zone is a usage error, before any work

    data = fp.read()
    if not isinstance(data, bytes | bytearray):
        raise InputError("not a binary stream", path=path, offset=0)
    if not data:
        raise InputError("empty file", path=path, offset=0)
    text = decode_text(bytes(data), path=path, encoding=opts.get("encoding", "utf-8"))
    first = next((ln for ln in io.StringIO(text) if ln.strip()), "")
    delim = _delimiter(opts, first)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)

    header: list[str] | None = None
    header_line = 0
    ts_txt: list[str] = []
    val_txt: dict[str, list[str]] = {}
    lines: list[int] = []
    bad: dict[str, list[int]] = {}
    idx: dict[str, int] = {}
    width = 0
    try:
        for row in reader:
            if not row or not any(c.strip() for c in row):
                continue
            if header is None:
                header = [c.strip() for c in row]
                header_line = reader.line_num
                idx = _column_indices(header, mapping, path, header_line)
                val_txt = {t: [] for t in idx if t != "timestamp"}
                width = max(idx.values()) + 1
                continue
            ln = reader.line_num
            if len(row) < width:
                bad.setdefault(f"fewer than {width} fields", []).append(ln)
                continue
            lines.append(ln)
            ts_txt.append(row[idx["timestamp"]])
            for t, cells in val_txt.items():
                cells.append(row[idx[t]])
    except csv.Error as exc:
        raise InputError(f"line {reader.line_num}: not readable as CSV: {exc}", path=path) from None
    if header is None:
        raise InputError("no header line: the file holds no text rows", path=path, offset=0)
    n_short = sum(len(v) for v in bad.values())
    n_rows = len(lines) + n_short
    if n_rows == 0:
        raise InputError(f"no data rows after the header (line {header_line})", path=path)

    row_lines = np.asarray(lines, np.int64)
    times = _parse_times(ts_txt, tformat)
    good = times.ok.copy()
    _note(bad, "unparseable timestamp (" + _describe(tformat) + ")", row_lines[~times.ok])

    decimal_comma = delim != ","
    values: dict[str, npt.NDArray[np.float64]] = {}
    present: dict[str, npt.NDArray[np.bool_]] = {}
    any_value = np.zeros(row_lines.size, bool)
    for target, cells in val_txt.items():
        vals, ok, empty = parse_numbers(cells, decimal_comma=decimal_comma)
        unusable = np.zeros(vals.size, bool)
        if target == "rr_ms":
            unusable = ok & ~(np.isfinite(vals) & (vals > 0))
            _note(bad, "rr_ms not a positive number", row_lines[unusable])
            ok &= ~unusable
        broken = ~ok & ~empty & ~unusable
        _note(bad, f"{target} not a number", row_lines[broken])
        good &= ~broken & ~unusable
        values[target], present[target] = vals, ok
        any_value |= ok
    no_value = times.ok & ~any_value & good
    _note(bad, "no value in the mapped columns", row_lines[no_value])
    good &= any_value

    # place naive wall times in the zone; nonexistent local times are bad rows
    naive = good & ~times.has_zone
    utc = times.us.copy()
    warnings: list[str] = []
    if naive.any():
        if not tz_name:
            first_naive = int(row_lines[np.flatnonzero(naive)[0]])
            raise InputError(
                f"line {first_naive}: timestamps without a UTC offset and no time zone given; "
                "set the participant's timezone or --timezone (never guessed)",
                path=path,
            )
        placed, status = local_to_utc(times.us[naive], tz_name)
        utc[naive] = placed
        gap = np.zeros(row_lines.size, bool)
        gap[np.flatnonzero(naive)[status == LOCAL_NONEXISTENT]] = True
        _note(bad, f"local time that does not exist in {tz_name} (DST gap)", row_lines[gap])
        good &= ~gap
    n_bad = n_short + int(row_lines.size - np.count_nonzero(good))
    bad_lines = sorted({ln for v in bad.values() for ln in v})
    if n_bad * 2 > n_rows:
        detail = "; ".join(
            f"{why}: line {_ranges(sorted(set(v)))}" for why, v in sorted(bad.items())
        )
        raise InputError(
            f"{n_bad} of {n_rows} data rows could not be read ({detail}): is the column "
            "mapping / timestamp_format right?",
            path=path,
        )
    for why, v in sorted(bad.items()):
        if v:
            uniq = sorted(set(v))
            warnings.append(f"{len(uniq)} bad row(s), {why}: line {_ranges(uniq)}")

    ts = utc.astype(TS_DTYPE)
    rec = Recording(format=FORMAT, kind=kind, warnings=warnings)
    if "bpm" in values:
        keep = good & present["bpm"]
        rec.hr = HRSeries(ts[keep], values["bpm"][keep])
    if "rr_ms" in values:
        keep = good & present["rr_ms"]
        rec.rr = RRSeries(ts[keep], values["rr_ms"][keep])
    stated = good & times.has_zone
    if stated.any():
        off = int(times.offset_s[np.flatnonzero(stated)[0]])
        if abs(off) <= 14 * 3600 and off % 900 == 0:
            rec.utc_offset_s = off
    rec.meta = {
        "rows": str(n_rows),
        "bad_rows": str(n_bad),
        "columns": ",".join(f"{t}={header[i]}" for t, i in idx.items()),
        "timestamp_format": tformat,
        "delimiter": "tab" if delim == "\t" else delim,
    }
    if naive.any() and tz_name:
        rec.meta["timezone"] = tz_name
    if bad_lines:
        rec.meta["bad_lines"] = _ranges(bad_lines)
    return rec


def _describe(tformat: str) -> str:
    return {"iso": "ISO 8601", "epoch_s": "Unix seconds", "epoch_ms": "Unix milliseconds"}.get(
        tformat, f"format {tformat!r}"
    )


def _parse_times(texts: Sequence[str], tformat: str) -> ParsedTimes:
    if tformat == "iso":
        return parse_iso(texts)
    if tformat == "epoch_s":
        return parse_epoch(texts, _US)
    if tformat == "epoch_ms":
        return parse_epoch(texts, 1_000)
    if "%" not in tformat:
        raise UsageError(
            f"unknown timestamp format {tformat!r}",
            fix="iso, epoch_s, epoch_ms or a strptime format such as %d/%m/%Y %H:%M:%S",
        )
    return parse_strptime(texts, tformat)


def _note(bad: dict[str, list[int]], why: str, lines: npt.NDArray[np.int64]) -> None:
    if lines.size:
        bad.setdefault(why, []).extend(int(x) for x in lines)


def _column_indices(
    header: list[str], mapping: dict[str, str] | None, path: str, line: int
) -> dict[str, int]:
    """target -> column index; a mapped column missing from the header is an InputError that
    names it and the columns present."""
    lowered = [h.lower() for h in header]
    if mapping is None:
        mapping = {t: t for t in TARGETS if t in lowered}
        if "timestamp" not in mapping or len(mapping) < 2:
            raise InputError(
                f"line {line}: no column mapping given and the header does not have columns "
                "named timestamp and bpm or rr_ms; columns present: "
                + ", ".join(repr(h) for h in header),
                path=path,
            )
    out: dict[str, int] = {}
    for target, source in mapping.items():
        if source in header:
            out[target] = header.index(source)
        elif lowered.count(source.lower()) == 1:
            out[target] = lowered.index(source.lower())
        else:
            raise InputError(
                f"line {line}: column {source!r} (mapped to {target}) is not in the header; "
                "columns present: " + ", ".join(repr(h) for h in header),
                path=path,
            )
    return out
