"""A generic raw accelerometer CSV (format ``"accel_csv"``): timestamp, x, y, z in g.

Layout: one header line naming the columns, then one sample per row. The header is matched
case-insensitively: the time column is ``timestamp``, ``time``, ``datetime``, ``date_time``,
``ts`` or ``unix_time``; the axes ``x``/``acc_x``/``accel_x``/``accx``/``acceleration_x``/
``accelerometer_x`` (also with a space instead of ``_``, and ``x_g``/``x (g)``), the same for
y and z. Other columns are ignored. The delimiter (``,`` ``;`` or tab) is taken from the header
line. The file is detected by content: such a header followed by a row whose axis cells are
numbers and whose time cell is a number or an ISO 8601 date-time (a heart-rate CSV, which has
no axis columns, is never claimed).

Times: ISO 8601 with an offset or ``Z`` are instants; ISO times without one are local wall-clock
times placed in the participant's zone (``ReadContext.timezone`` or ``options["timezone"]``;
none -> InputError, never a guess), the hour repeated when DST ends resolved by file order
(:func:`actidose.timeutil.local_to_utc`); plain numbers are Unix time in seconds (milliseconds
when above 10^11). Which of these the file uses is read from its first row.

Samples must be in time order (strictly increasing); the sample rate is the mean interval of
the first block, leaving out intervals over twice the median (gaps); a step of more than 1 s is
a gap (``AccelStream.gaps``), never filled. A first block whose median vector magnitude is near
9.8 is refused: those are m/s², not g.

Damage (a row whose time or an axis is not a number / date-time, a non-finite value, a local
time in the hour skipped when DST starts, a time not after the one before) is an InputError
naming the line. With ``salvage=True`` the rows before the first bad one are kept.

The file is read in blocks of about 24 MiB (about a million rows) with polars, once in
:func:`read` to check it and find its gaps, and again on every ``chunks()`` call; the helpers
for this (:func:`split_blocks`, :func:`read_fields`, :func:`scan`, :class:`CsvChunks`) are
shared with :mod:`actidose.ingest.actigraph_csv`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Final, Protocol

import numpy as np
import numpy.typing as npt
import polars as pl

from actidose.errors import InputError
from actidose.ingest.csv_hr import parse_epoch, parse_iso
from actidose.ingest.device_files import FileBuffer, require_zone
from actidose.recording import AccelChunk, AccelStream, ReadContext, Recording
from actidose.timeutil import LOCAL_NONEXISTENT, local_to_utc, zone

__all__ = [
    "FORMAT",
    "CsvChunks",
    "CsvLayout",
    "RegularClock",
    "detect",
    "read",
    "read_fields",
    "scan",
    "split_blocks",
]

FORMAT: Final = "accel_csv"
_US: Final = 1_000_000
BLOCK_BYTES: Final = 24 << 20
GAP_TOLERANCE_US: Final = 1_000_000
_TIME_NAMES: Final = frozenset(
    {"timestamp", "time", "datetime", "date_time", "ts", "unix_time", "time_utc", "timestamp_utc"}
)


def _axis_names(a: str) -> frozenset[str]:
    names = {a, f"{a}_g", f"{a} (g)", f"{a}[g]", f"{a} [g]"}
    for prefix in ("acc", "accel", "acceleration", "accelerometer"):
        names |= {f"{prefix}_{a}", f"{prefix} {a}", f"{prefix}{a}"}
    return frozenset(names)


_AXES: Final = {a: _axis_names(a) for a in "xyz"}
_NUMBER: Final = re.compile(r"^\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$")
_ISO_LIKE: Final = re.compile(r"^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}")


# --------------------------------------------------------------------------------------------
# shared block machinery


def split_blocks(buf: FileBuffer, start: int, size: int | None = None) -> list[tuple[int, int]]:
    """Byte ranges from ``start`` to the end of the file, each about ``size`` bytes (default
    :data:`BLOCK_BYTES`) and ending just after a line end (the last one at the end of the
    file)."""
    size = size or BLOCK_BYTES
    out: list[tuple[int, int]] = []
    n = len(buf)
    s = start
    while s < n:
        e = min(s + size, n)
        if e < n:
            nl = buf.data.find(b"\n", e - 1)
            e = n if nl < 0 else nl + 1
        out.append((s, e))
        s = e
    return out


def read_fields(buf: FileBuffer, start: int, end: int, ncols: int, sep: str) -> pl.DataFrame:
    """Rows of bytes ``[start, end)`` split into ``ncols`` text columns ``c0``... (a short row
    has nulls, extra fields are dropped, a blank line is a row of nulls; no quoting)."""
    data = bytes(buf.data[start:end])
    schema = {f"c{i}": pl.String for i in range(ncols)}
    if not data.strip():
        n = data.count(b"\n")
        return pl.DataFrame({k: [None] * n for k in schema}, schema=schema)
    try:
        return pl.read_csv(
            data,
            has_header=False,
            separator=sep,
            quote_char=None,
            schema=schema,
            truncate_ragged_lines=True,
            missing_columns="insert",
            extra_columns="ignore",
            raise_if_empty=False,
            encoding="utf8-lossy",
        )
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"unreadable CSV block: {exc}", offset=start) from None


def floats(col: pl.Series) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Numbers of a text column and which are finite numbers."""
    v = col.str.strip_chars().cast(pl.Float64, strict=False)
    vals = v.fill_null(np.nan).to_numpy().astype(np.float64)
    return vals, np.isfinite(vals)


@dataclass(frozen=True)
class CsvLayout:
    """Where the data are: field separator, fields per row, the x, y, z columns, the time
    column (None: times from a :class:`RegularClock`)."""

    sep: str
    ncols: int
    xyz: tuple[int, int, int]
    time_col: int | None


@dataclass(frozen=True)
class RegularClock:
    """Sample ``i`` (0-based over the file) at ``start_us + i / rate``."""

    start_us: int
    rate: float

    def times(self, first: int, n: int) -> npt.NDArray[np.int64]:
        i = np.arange(first, first + n, dtype=np.float64)
        return self.start_us + np.rint(i * _US / self.rate).astype(np.int64)


#: what a TimeParser carries from one block to the next (the generic CSV: the largest and the
#: last naive local time so far, so the hour repeated at the end of DST is told apart by order)
State = tuple[int, int] | None


class TimeParser(Protocol):
    """Turns a block's time column into UTC microseconds. ``state`` carries what the previous
    block left (e.g. the last local time, for DST order) and is handed back updated."""

    def parse(
        self, texts: pl.Series, state: State
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_], str, State]: ...


@dataclass
class Damage:
    line: int
    offset: int
    reason: str


@dataclass
class CsvScan:
    """What one pass found: per block (start, end, rows kept), the sample count and rate,
    the gaps, the first and last instants and the first damage."""

    blocks: list[tuple[int, int, int]] = field(default_factory=list)
    n_samples: int = 0
    rate: float = 0.0
    gaps: list[tuple[int, int]] = field(default_factory=list)
    first_us: int = 0
    last_us: int = 0
    damage: Damage | None = None
    first_xyz_median_g: float = float("nan")


def _block_values(
    frame: pl.DataFrame,
    layout: CsvLayout,
    first_row: int,
    clock: RegularClock | None,
    parser: TimeParser | None,
    state: State,
) -> tuple[
    npt.NDArray[np.int64],
    npt.NDArray[np.float64],
    npt.NDArray[np.bool_],
    npt.NDArray[np.bool_],
    str,
    State,
]:
    """Times (UTC us), xyz (g), which rows have good axes and good times, why a time is bad,
    and the parser's new state."""
    cols = frame.columns
    xyz = np.empty((frame.height, 3))
    ax_ok = np.ones(frame.height, bool)
    for k, c in enumerate(layout.xyz):
        xyz[:, k], good = floats(frame.get_column(cols[c]))
        ax_ok &= good
    if layout.time_col is None:
        assert clock is not None
        return clock.times(first_row, frame.height), xyz, ax_ok, ax_ok | True, "", state
    assert parser is not None
    ts, t_ok, t_why, state = parser.parse(frame.get_column(cols[layout.time_col]), state)
    return ts, xyz, ax_ok, t_ok, t_why, state


def scan(
    buf: FileBuffer,
    body: int,
    first_line: int,
    layout: CsvLayout,
    *,
    clock: RegularClock | None = None,
    parser: TimeParser | None = None,
    rate: float | None = None,
) -> CsvScan:
    """Check every row from byte ``body`` (line ``first_line``, 1-based) on: values, time
    order; find gaps and the first damage (the rows before it are kept)."""
    out = CsvScan()
    row = 0
    line = first_line
    state: State = None
    prev_t: int | None = None
    blocks = split_blocks(buf, body)
    for bi, (s, e) in enumerate(blocks):
        frame = read_fields(buf, s, e, layout.ncols, layout.sep)
        ts, xyz, ax_ok, t_ok, t_why, state = _block_values(frame, layout, row, clock, parser, state)
        n = frame.height
        if bi == len(blocks) - 1:  # blank lines at the very end are not rows
            n -= _trailing_true(_blank_rows(frame))
        ts, xyz, ax_ok, t_ok = ts[:n], xyz[:n], ax_ok[:n], t_ok[:n]
        # strictly increasing times, also across blocks
        full = np.concatenate([[prev_t], ts]) if prev_t is not None else ts
        order_ok = np.ones(n, bool)
        order_ok[n - (full.size - 1) :] = np.diff(full) > 0
        bad = ~ax_ok | ~t_ok | ~order_ok
        keep = n
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            if not t_ok[r]:
                reason = t_why
            elif not ax_ok[r]:
                reason = "an axis value is not a finite number"
            else:
                reason = "the time is not after the one before"
            if bi == len(blocks) - 1 and r == n - 1 and bytes(buf.data[-1:]) != b"\n":
                reason = f"truncated: the last line is incomplete ({reason})"
            offset = s + _line_offset(buf, s, r)
            out.damage = Damage(line + r, offset, f"line {line + r}: {reason}")
            keep = r
        if keep:
            t = ts[:keep]
            if out.n_samples == 0:
                out.first_us = int(t[0])
                out.first_xyz_median_g = float(np.median(np.linalg.norm(xyz[:keep], axis=1)))
                out.rate = float(rate) if rate else _mean_rate(t)
            full = np.concatenate([[prev_t], t]) if prev_t is not None else t
            step_us = round(_US / out.rate) if out.rate > 0 else 0
            for i in np.flatnonzero(np.diff(full) > GAP_TOLERANCE_US).tolist():
                out.gaps.append((int(full[i]) + step_us, int(full[i + 1])))
            prev_t = int(t[-1])
            out.last_us = prev_t
            out.n_samples += keep
        out.blocks.append((s, e, keep))
        row += frame.height
        line += frame.height
        if out.damage is not None:
            break
    return out


def _blank_rows(frame: pl.DataFrame) -> npt.NDArray[np.bool_]:
    if frame.height == 0:
        return np.empty(0, bool)
    blank = np.ones(frame.height, bool)
    for c in frame.columns:
        blank &= frame.get_column(c).fill_null("").str.strip_chars().eq("").to_numpy()
    return blank


def _trailing_true(a: npt.NDArray[np.bool_]) -> int:
    if a.size == 0 or not a[-1]:
        return 0
    false = np.flatnonzero(~a)
    return int(a.size - (false[-1] + 1)) if false.size else int(a.size)


def _line_offset(buf: FileBuffer, start: int, row: int) -> int:
    """Byte offset (from ``start``) of the ``row``-th line after ``start``."""
    pos = start
    for _ in range(row):
        nl = buf.data.find(b"\n", pos)
        if nl < 0:
            break
        pos = nl + 1
    return pos - start


def _mean_rate(t: npt.NDArray[np.int64]) -> float:
    d = np.diff(t)
    if d.size == 0:
        return 0.0
    med = float(np.median(d))
    d = d[d <= 2 * med]
    return _US / float(d.mean()) if d.size and d.mean() > 0 else 0.0


@dataclass
class CsvChunks:
    """``AccelStream.chunks`` of a CSV: re-parses the checked blocks on each call
    (picklable)."""

    buf: FileBuffer
    blocks: list[tuple[int, int, int]]
    layout: CsvLayout
    clock: RegularClock | None = None
    parser: TimeParser | None = None

    def __call__(self) -> Iterator[AccelChunk]:
        row = 0
        state: State = None
        for s, e, keep in self.blocks:
            frame = read_fields(self.buf, s, e, self.layout.ncols, self.layout.sep)
            ts, xyz, _, _, _, state = _block_values(
                frame, self.layout, row, self.clock, self.parser, state
            )
            row += frame.height
            if keep:
                yield AccelChunk(
                    ts_us=ts[:keep].astype(np.int64), xyz=xyz[:keep].astype(np.float32)
                )


# --------------------------------------------------------------------------------------------
# the generic CSV


def _sniff(header: str) -> str:
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _columns(header: str, sep: str) -> tuple[int, int, int, int] | None:
    """(time, x, y, z) column indices from a header line, or None."""
    names = [h.strip().strip('"').strip().lower() for h in header.split(sep)]
    found: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in _TIME_NAMES:
            found.setdefault("t", i)
        for a in "xyz":
            if name in _AXES[a]:
                found.setdefault(a, i)
    if len(found) != 4:
        return None
    return found["t"], found["x"], found["y"], found["z"]


def _first_lines(head: bytes) -> tuple[str, str] | None:
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = head[: exc.start].decode("utf-8")
    lines = text.split("\n")
    if len(lines) < 2:
        return None
    return lines[0].rstrip("\r"), lines[1].rstrip("\r")


def _time_kind(text: str) -> str | None:
    if _NUMBER.match(text):
        return "epoch_ms" if abs(float(text)) > 1e11 else "epoch_s"
    if _ISO_LIKE.match(text):
        return "iso"
    return None


def detect(head: bytes) -> bool:
    """A header naming a time column and x, y, z columns, and a first row with numbers in the
    axis columns and a number or ISO date-time in the time column."""
    first = _first_lines(head)
    if first is None:
        return False
    header, row = first
    sep = _sniff(header)
    cols = _columns(header, sep)
    if cols is None:
        return False
    cells = row.split(sep)
    if len(cells) <= max(cols):
        return False
    t, *axes = (cells[i].strip().strip('"') for i in cols)
    return all(_NUMBER.match(a) for a in axes) and _time_kind(t) is not None


@dataclass(frozen=True)
class GenericTimes:
    """Times of the generic CSV: ``kind`` ``iso``/``epoch_s``/``epoch_ms``; naive ISO times
    are placed in ``tz`` (wall-clock, DST by file order)."""

    kind: str
    tz: str | None

    def parse(
        self, texts: pl.Series, state: State
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_], str, State]:
        values = texts.to_list()
        if self.kind == "epoch_s":
            p = parse_epoch(values, _US)
        elif self.kind == "epoch_ms":
            p = parse_epoch(values, 1_000)
        else:
            p = parse_iso(values)
        us, ok = p.us.copy(), p.ok.copy()
        why = f"the time is not {'an ISO 8601 date-time' if self.kind == 'iso' else 'a number'}"
        naive = ok & ~p.has_zone
        if naive.any():
            if self.tz is None:
                return us, ok & ~naive, "a time without a UTC offset and no time zone given", state
            local = us[naive]
            prefix = np.array(state if state is not None else (), np.int64)
            utc, status = local_to_utc(np.concatenate([prefix, local]), self.tz)
            utc, status = utc[prefix.size :], status[prefix.size :]
            us[naive] = utc
            gap = np.zeros(us.size, bool)
            gap[np.flatnonzero(naive)[status == LOCAL_NONEXISTENT]] = True
            if gap.any():
                why = f"a local time that does not exist in {self.tz} (DST gap)"
            ok &= ~gap
            top = int(np.max(local)) if state is None else max(state[0], int(np.max(local)))
            state = (top, int(local[-1]))
        return us, ok, why, state


def read(
    fp: BinaryIO, *, path: str = "<stream>", salvage: bool = False, ctx: ReadContext
) -> Recording:
    """Read a generic raw accelerometer CSV (see the module docstring)."""
    buf = FileBuffer.of(fp, path=path)
    head = bytes(buf.data[: 1 << 16])
    bom = 3 if head.startswith(b"\xef\xbb\xbf") else 0
    nl = head.find(b"\n")
    if nl < 0:
        raise InputError("no header line", path=path, offset=0)
    header = head[bom:nl].decode("utf-8", errors="replace").rstrip("\r")
    sep = _sniff(header)
    cols = _columns(header, sep)
    if cols is None:
        raise InputError(
            "line 1: the header does not name a time column and x, y, z columns; columns "
            "present: " + ", ".join(repr(h.strip()) for h in header.split(sep)),
            path=path,
            offset=0,
        )
    first = _first_lines(head[bom:])
    kind = _time_kind(first[1].split(sep)[cols[0]].strip().strip('"')) if first else None
    if first is None or len(first[1].split(sep)) <= max(cols) or kind is None:
        raise InputError(
            "line 2: the first row has no time that is a number or an ISO 8601 date-time",
            path=path,
            offset=nl + 1,
        )
    tz = ctx.options.get("timezone") or ctx.timezone
    if kind == "iso":
        if tz:
            zone(tz)
        probe = parse_iso([first[1].split(sep)[cols[0]].strip().strip('"')])
        if probe.ok[0] and not probe.has_zone[0]:
            tz = require_zone(ctx, path, "the times")
    parser = GenericTimes(kind, tz)
    layout = CsvLayout(
        sep=sep, ncols=max(cols) + 1, xyz=(cols[1], cols[2], cols[3]), time_col=cols[0]
    )
    try:
        result = scan(buf, nl + 1, 2, layout, parser=parser)
    except InputError as exc:
        raise InputError(exc.reason, path=path, offset=exc.offset) from None
    return finish(
        result,
        buf,
        layout,
        path=path,
        salvage=salvage,
        fmt=FORMAT,
        parser=parser,
        meta={"time_format": kind, **({"timezone": tz} if tz else {})},
    )


def finish(
    result: CsvScan,
    buf: FileBuffer,
    layout: CsvLayout,
    *,
    path: str,
    salvage: bool,
    fmt: str,
    clock: RegularClock | None = None,
    parser: TimeParser | None = None,
    meta: dict[str, str] | None = None,
    warnings: list[str] | None = None,
    range_g: float | None = None,
) -> Recording:
    """The Recording of a scanned raw CSV (damage -> InputError unless salvage)."""
    dmg = result.damage
    if dmg is not None and (not salvage or result.n_samples == 0):
        raise InputError(dmg.reason, path=path, offset=dmg.offset)
    if result.n_samples == 0:
        raise InputError("no samples", path=path, offset=len(buf))
    if 7.0 <= result.first_xyz_median_g <= 12.0:
        raise InputError(
            f"the accelerations look like m/s² (median magnitude "
            f"{result.first_xyz_median_g:.2f}), not g",
            path=path,
            offset=0,
        )
    rate = result.rate
    if not rate > 0:
        raise InputError("cannot tell the sample rate (one sample?)", path=path, offset=0)
    chunks = CsvChunks(buf, result.blocks, layout, clock, parser)
    stream = AccelStream(
        sample_rate_hz=rate,
        chunks=chunks,
        range_g=range_g,
        n_samples=result.n_samples,
        gaps=result.gaps,
    )
    rec = Recording(format=fmt, kind="allday", accel=stream, warnings=list(warnings or []))
    rec.meta = {"sample_rate_hz": f"{rate:g}", **(meta or {})}
    if result.gaps:
        rec.warnings.append(
            f"{len(result.gaps)} gap(s) of more than 1 s between samples, left as gaps"
        )
    if dmg is not None:
        rec.salvaged = True
        rec.salvage_reason = dmg.reason
    return rec
