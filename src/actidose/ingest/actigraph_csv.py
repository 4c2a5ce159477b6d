"""ActiGraph CSV exports from ActiLife (format ``"actigraph_csv"``): raw samples or count epochs.

Every export starts with ten header lines (cells after the first are empty: ``,,,``)::

    ------------ Data File Created By ActiGraph GT3X+ ActiLife v6.13.3 Firmware v3.2.1
        date format M/d/yyyy at 30 Hz  Filter Normal -----------
    Serial Number: NEO1F18120387
    Start Time 10:00:00
    Start Date 5/7/2019
    Epoch Period (hh:mm:ss) 00:00:00
    Download Time ...
    Download Date ...
    Current Memory Address: 0
    Current Battery Voltage: 4.18     Mode = 12
    --------------------------------------------------

The first line names the date format (a .NET pattern of ``d``, ``dd``, ``M``, ``MM``, ``yy``,
``yyyy`` and separators; honoured as stated, never guessed) and, for raw data, the sample rate.

Raw (epoch period 00:00:00): an optional column header (``Accelerometer X,Accelerometer Y,
Accelerometer Z``, sometimes with ``Timestamp`` first), then one sample per row in g. Times come
from the ``Timestamp`` column when there is one (the date in the stated format, then
``HH:mm:ss.fff``), else from ``Start Date`` + ``Start Time`` + ``i / rate``. The file is read in
blocks (see :mod:`actidose.ingest.accel_csv`) once to check it, again on every ``chunks()``.

Count epochs (any other epoch period): counts per epoch, ActiGraph's proprietary measure, from
which no ENMO can be derived; they become vendor series (``activity_counts_axis1..3``,
``activity_counts_vm`` = sqrt(a1² + a2² + a3²) when there are three axes, and ``steps``) with
``accel=None``, and a warning says so. The columns are named by the column header when there is
one, else by the header's ``Mode``, a bit field (ActiLife; the rule GGIRread's
``readActiGraphCount`` follows for axes and steps): bits 2 and 3 set = three axes (axis1,
axis2, axis3, else axis1 alone), bit 0 = steps, bit 1 = heart rate, bit 4 = lux, bit 5 = four
inclinometer columns (off, standing, sitting, lying), in that column order. So mode 13 =
axis1-3 + steps, mode 61 = axis1-3, steps, lux, inclinometer. Leading date/time columns are
skipped; epoch starts come from the header. Lux, inclinometer and heart-rate columns are not
imported (the heart rate is a per-epoch mean, not samples; a warning says so).

Time: the device clock keeps local time without daylight saving (see
:func:`actidose.ingest.geneactiv.place_device_clock`): every time is placed with the offset of
the participant's zone at the start; no zone -> InputError.

Damage: a short or unreadable header, a row that is not numbers, times out of order -> an
InputError naming the line; with ``salvage=True`` the rows before it are kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import BinaryIO, Final

import numpy as np
import numpy.typing as npt
import polars as pl

from actidose.errors import InputError
from actidose.ingest.accel_csv import (
    CsvLayout,
    RegularClock,
    State,
    finish,
    floats,
    read_fields,
    scan,
    split_blocks,
)
from actidose.ingest.csv_hr import civil_to_us
from actidose.ingest.device_files import FileBuffer, fmt_offset, place_device_clock, require_zone
from actidose.recording import ReadContext, Recording, VendorSeries

__all__ = ["FORMAT", "date_regex", "detect", "read"]

FORMAT: Final = "actigraph_csv"
_US: Final = 1_000_000
_FIRST: Final = re.compile(rb"^(?:\xef\xbb\xbf)?-+\s*Data File Created By ActiGraph")
_TOKENS: Final = {
    "yyyy": r"(?P<y>[0-9]{4})",
    "yy": r"(?P<yy>[0-9]{2})",
    "MM": r"(?P<M>[0-9]{1,2})",
    "M": r"(?P<M>[0-9]{1,2})",
    "dd": r"(?P<d>[0-9]{1,2})",
    "d": r"(?P<d>[0-9]{1,2})",
}
_TIME: Final = r"(?P<H>[0-9]{1,2}):(?P<mi>[0-9]{2}):(?P<S>[0-9]{2})(?:[.,](?P<f>[0-9]{1,6}))?"
NO_ENMO_WARNING: Final = (
    "count epochs: ActiGraph's proprietary counts; no ENMO can be derived from them"
)


def detect(head: bytes) -> bool:
    """The first line of every ActiLife CSV export."""
    return _FIRST.match(head) is not None


def date_regex(fmt: str) -> str:
    """A .NET date pattern (``M/d/yyyy``, ``dd.MM.yyyy``, ``yyyy-MM-dd``) as a regular
    expression with groups ``y`` (or ``yy``), ``M`` and ``d``; ValueError for anything else."""
    out = []
    i = 0
    seen: set[str] = set()
    while i < len(fmt):
        ch = fmt[i]
        if ch.isalpha():
            j = i
            while j < len(fmt) and fmt[j] == ch:
                j += 1
            token = fmt[i:j]
            if token not in _TOKENS or token[0] in seen:
                raise ValueError(f"unsupported date format {fmt!r}")
            seen.add(token[0])
            out.append(_TOKENS[token])
            i = j
        else:
            out.append(re.escape(ch))
            i += 1
    if seen != {"y", "M", "d"}:
        raise ValueError(f"unsupported date format {fmt!r}")
    return "".join(out)


def _civil(frame: pl.DataFrame, n: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    def col(name: str, default: str = "0") -> npt.NDArray[np.int64]:
        if name not in frame.columns:
            return np.full(n, int(default), np.int64)
        s = frame.get_column(name).fill_null(default).cast(pl.Int64, strict=False)
        return s.fill_null(0).to_numpy().astype(np.int64)

    matched = frame.get_column(frame.columns[0]).is_not_null().to_numpy()
    year = col("y") if "y" in frame.columns else 2000 + col("yy")
    frac = np.zeros(n, np.int64)
    if "f" in frame.columns:
        f = frame.get_column("f").fill_null("0").str.pad_end(6, "0").str.slice(0, 6)
        frac = f.cast(pl.Int64, strict=False).fill_null(0).to_numpy().astype(np.int64)
    us, ok = civil_to_us(year, col("M"), col("d"), col("H"), col("mi"), col("S"), frac)
    return us, ok & matched


@dataclass(frozen=True)
class ActiGraphTimes:
    """Times of a raw export's ``Timestamp`` column: ``<date> HH:mm:ss.fff`` local device time,
    placed with one offset (picklable)."""

    pattern: str
    offset_us: int

    def parse(
        self, texts: pl.Series, state: State
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_], str, State]:
        g = texts.str.extract_groups(r"^\s*" + self.pattern + r"\s+" + _TIME + r"\s*$")
        us, ok = _civil(g.struct.unnest(), texts.len())
        return us - self.offset_us, ok, "the timestamp is not in the stated date format", state


@dataclass
class _Header:
    line1: str
    fields: dict[str, str]
    date_format: str | None
    rate: float | None
    start_local_us: int
    epoch_s: int
    mode: int | None
    body: int  # byte offset after the ten lines


def _parse_header(buf: FileBuffer, path: str) -> _Header:
    head = bytes(buf.data[: 1 << 16])
    pos = 3 if head.startswith(b"\xef\xbb\xbf") else 0
    lines: list[str] = []
    for _ in range(10):
        nl = head.find(b"\n", pos)
        if nl < 0:
            raise InputError(
                f"truncated: the header has {len(lines)} of its 10 lines", path=path, offset=pos
            )
        lines.append(head[pos:nl].decode("latin-1").rstrip("\r").rstrip().rstrip(",").strip())
        pos = nl + 1
    line1 = lines[0]
    fmt = re.search(r"date format\s+(\S+)", line1)
    rate = re.search(r"\bat\s+([0-9]+(?:\.[0-9]*)?)\s*Hz", line1, re.IGNORECASE)
    fields: dict[str, str] = {}
    for line in lines[1:9]:
        m = re.match(r"^(Serial Number|Start Time|Start Date|Epoch Period \(hh:mm:ss\)|"
                     r"Download Time|Download Date|Current Memory Address|"
                     r"Current Battery Voltage):?\s*(.*)$", line)  # fmt: skip
        if m:
            fields[m.group(1)] = m.group(2).strip()
        mode = re.search(r"Mode\s*=\s*([0-9]+)", line)
        if mode:
            fields["Mode"] = mode.group(1)
    if fmt is None:
        raise InputError("line 1 states no date format", path=path, offset=0)
    try:
        pattern = date_regex(fmt.group(1))
    except ValueError as exc:
        raise InputError(f"line 1: {exc}", path=path, offset=0) from None
    date = re.match(r"^" + pattern + r"$", fields.get("Start Date", ""))
    time = re.match(r"^" + _TIME + r"$", fields.get("Start Time", ""))
    if date is None or time is None:
        raise InputError(
            f"Start Date {fields.get('Start Date', '')!r} / Start Time "
            f"{fields.get('Start Time', '')!r} do not match the stated date format "
            f"{fmt.group(1)!r}",
            path=path,
            offset=0,
        )
    gd = date.groupdict()
    year = int(gd["y"]) if gd.get("y") else 2000 + int(gd["yy"])
    start, ok = civil_to_us(
        [year], [int(gd["M"])], [int(gd["d"])], [int(time["H"])], [int(time["mi"])],
        [int(time["S"])], [int((time["f"] or "0").ljust(6, "0")[:6])],
    )  # fmt: skip
    if not ok[0]:
        raise InputError("Start Date / Start Time is not a real date-time", path=path, offset=0)
    ep = re.match(r"^([0-9]+):([0-9]{2}):([0-9]{2})$", fields.get("Epoch Period (hh:mm:ss)", ""))
    if ep is None:
        raise InputError("the header has no Epoch Period (hh:mm:ss)", path=path, offset=0)
    epoch_s = int(ep.group(1)) * 3600 + int(ep.group(2)) * 60 + int(ep.group(3))
    return _Header(
        line1=line1,
        fields=fields,
        date_format=fmt.group(1),
        rate=float(rate.group(1)) if rate else None,
        start_local_us=int(start[0]),
        epoch_s=epoch_s,
        mode=int(fields["Mode"]) if "Mode" in fields else None,
        body=pos,
    )


def _device(line1: str) -> tuple[str | None, dict[str, str]]:
    meta: dict[str, str] = {}
    dev = re.search(r"ActiGraph\s+(\S+)", line1)
    for key, pat in (("actilife", r"ActiLife\s+(v\S+)"), ("firmware", r"Firmware\s+(v\S+)"),
                     ("filter", r"Filter\s+(\S+)")):  # fmt: skip
        m = re.search(pat, line1)
        if m:
            meta[key] = m.group(1)
    name = dev.group(1) if dev and not dev.group(1).startswith("ActiLife") else None
    return (f"ActiGraph {name}" if name else "ActiGraph"), meta


def _next_line(buf: FileBuffer, pos: int) -> tuple[str, int]:
    nl = buf.data.find(b"\n", pos)
    end = len(buf) if nl < 0 else nl
    return bytes(buf.data[pos:end]).decode("latin-1").rstrip("\r"), (end + 1 if nl >= 0 else end)


def _is_names(row: str) -> bool:
    return re.search(r"[A-Za-z]{2,}", row) is not None


def _numeric(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def read(
    fp: BinaryIO, *, path: str = "<stream>", salvage: bool = False, ctx: ReadContext
) -> Recording:
    """Read an ActiLife CSV export: raw samples (AccelStream) or count epochs (vendor series)."""
    buf = FileBuffer.of(fp, path=path)
    if not detect(bytes(buf.data[:64])):
        raise InputError("not an ActiGraph CSV export (first line)", path=path, offset=0)
    hdr = _parse_header(buf, path)
    tz = require_zone(ctx, path)
    device, meta = _device(hdr.line1)
    meta["date_format"] = hdr.date_format or ""
    meta["timezone"] = tz
    serial = hdr.fields.get("Serial Number") or None
    if hdr.epoch_s == 0:
        rec = _read_raw(buf, hdr, tz, path=path, salvage=salvage, serial=serial)
    else:
        rec = _read_counts(buf, hdr, tz, path=path, salvage=salvage)
    rec.device = device
    rec.serial = serial
    rec.meta = {**meta, **rec.meta}
    if hdr.mode is not None:
        rec.meta["mode"] = str(hdr.mode)
    return rec


# --------------------------------------------------------------------------------------------
# raw


def _raw_columns(names: list[str]) -> tuple[int | None, tuple[int, int, int]] | None:
    low = [n.strip().strip('"').lower() for n in names]
    t = next((i for i, n in enumerate(low) if "timestamp" in n or n in ("date time", "time")), None)
    axes: list[int] = []
    for a in "xyz":
        hit = next(
            (i for i, n in enumerate(low) if n in (a, f"accelerometer {a}", f"axis {a}")), None
        )
        if hit is None:
            return None
        axes.append(hit)
    return t, (axes[0], axes[1], axes[2])


def _range_for(serial: str | None) -> float | None:
    if not serial:
        return None
    if serial.startswith(("NEO", "CLE", "MRA")):
        return 6.0
    if serial.startswith(("MOS", "TAS")):
        return 8.0
    return None


def _read_raw(
    buf: FileBuffer, hdr: _Header, tz: str, *, path: str, salvage: bool, serial: str | None
) -> Recording:
    first, after = _next_line(buf, hdr.body)
    body, first_line = hdr.body, 11
    cells = first.split(",")
    if _is_names(first):
        cols = _raw_columns(cells)
        if cols is None:
            raise InputError(
                "line 11: the column header has no Accelerometer X, Y and Z: " + first.strip(),
                path=path,
                offset=hdr.body,
            )
        t_col, xyz = cols
        ncols = max([*xyz, t_col or 0]) + 1
        body, first_line = after, 12
        row, _ = _next_line(buf, body)
        cells = row.split(",")
    elif cells and cells[0].strip() and not _numeric(cells[0]) and len(cells) >= 4:
        t_col, xyz, ncols = 0, (1, 2, 3), 4
    else:
        t_col, xyz, ncols = None, (0, 1, 2), 3
    off_us, warnings = place_device_clock(hdr.start_local_us, hdr.start_local_us, tz)
    clock = parser = None
    if t_col is None:
        if not hdr.rate:
            raise InputError(
                "line 1 states no sample rate ('at N Hz') and there is no Timestamp column",
                path=path,
                offset=0,
            )
        clock = RegularClock(hdr.start_local_us - off_us, hdr.rate)
    else:
        parser = ActiGraphTimes(date_regex(hdr.date_format or ""), off_us)
    layout = CsvLayout(sep=",", ncols=ncols, xyz=xyz, time_col=t_col)
    try:
        result = scan(buf, body, first_line, layout, clock=clock, parser=parser, rate=hdr.rate)
    except InputError as exc:
        raise InputError(exc.reason, path=path, offset=exc.offset) from None
    if result.n_samples:
        _, more = place_device_clock(hdr.start_local_us, result.last_us + off_us, tz)
        warnings += more
        if t_col is not None and abs(result.first_us + off_us - hdr.start_local_us) > _US:
            warnings.append("the first Timestamp differs from Start Date + Start Time")
    rec = finish(
        result,
        buf,
        layout,
        path=path,
        salvage=salvage,
        fmt=FORMAT,
        clock=clock,
        parser=parser,
        warnings=warnings,
        range_g=_range_for(serial),
        meta={
            "data": "raw",
            "device_offset": fmt_offset(off_us // _US),
            "times_from": "Timestamp column" if t_col is not None else "Start Date/Time + i/rate",
        },
    )
    if hdr.rate and result.rate and t_col is not None:
        rec.meta["sample_rate_hz"] = f"{hdr.rate:g}"
    return rec


# --------------------------------------------------------------------------------------------
# count epochs

_NAME_KINDS: Final = {
    "axis1": "axis1",
    "activity": "axis1",
    "axis2": "axis2",
    "axis3": "axis3",
    "vector magnitude": "vm",
    "vm": "vm",
    "steps": "steps",
    "hr": "hr",
    "heart rate": "hr",
    "lux": "lux",
}


def _mode_columns(mode: int) -> list[str] | None:
    axes = mode & 12
    if axes not in (0, 12):
        return None
    cols = ["axis1", "axis2", "axis3"] if axes == 12 else ["axis1"]
    if mode & 1:
        cols.append("steps")
    if mode & 2:
        cols.append("hr")
    if mode & 16:
        cols.append("lux")
    if mode & 32:
        cols += ["incline_off", "incline_standing", "incline_sitting", "incline_lying"]
    return cols


def _read_counts(buf: FileBuffer, hdr: _Header, tz: str, *, path: str, salvage: bool) -> Recording:
    warnings = [NO_ENMO_WARNING]
    first, after = _next_line(buf, hdr.body)
    body, first_line = hdr.body, 11
    names: list[str] | None = None
    if _is_names(first):
        names = [c.strip().strip('"').lower() for c in first.split(",")]
        body, first_line = after, 12
        first, _ = _next_line(buf, body)
    cells = [c.strip() for c in first.split(",")]
    while cells and cells[-1] == "" and len(cells) > 1:
        cells.pop()
    ncols = len(cells) if names is None else len(names)
    if ncols == 0 or not any(cells):
        raise InputError("no count epochs after the header", path=path, offset=body)
    kinds: list[str | None]
    if names is not None:
        kinds = [_NAME_KINDS.get(n) for n in names]
        if "axis1" not in kinds and "vm" not in kinds:
            raise InputError(
                f"line 11: no Axis1 or Vector Magnitude column: {first.strip()}",
                path=path,
                offset=hdr.body,
            )
    else:
        lead = 0
        while lead < len(cells) and not _numeric(cells[lead]):
            lead += 1
        n_data = len(cells) - lead
        if hdr.mode is not None:
            layout = _mode_columns(hdr.mode)
            if layout is None:
                raise InputError(
                    f"Mode = {hdr.mode}: the column layout of this mode is not known "
                    "(export with column headers)",
                    path=path,
                    offset=0,
                )
            if len(layout) != n_data:
                raise InputError(
                    f"Mode = {hdr.mode} means {len(layout)} columns ({', '.join(layout)}) but "
                    f"line {first_line} has {n_data}",
                    path=path,
                    offset=body,
                )
        else:
            layout = ["axis1", "axis2", "axis3"][: min(3, n_data)]
            layout += [f"extra{i}" for i in range(n_data - len(layout))]
            warnings.append(f"no Mode in the header: columns taken as {', '.join(layout)}")
        known = set(_NAME_KINDS.values())
        kinds = [None] * lead
        kinds += [k if k in known else None for k in layout]
    frames = [read_fields(buf, s, e, ncols, ",") for s, e in split_blocks(buf, body)]
    frame = pl.concat(frames) if frames else pl.DataFrame()
    n = frame.height
    blank = np.ones(n, bool)
    for c in frame.columns:
        blank &= frame.get_column(c).fill_null("").str.strip_chars().eq("").to_numpy()
    tail = n - int(np.argmax(~blank[::-1])) if n and not blank.all() else 0
    values: dict[str, npt.NDArray[np.float64]] = {}
    good = np.ones(tail, bool)
    for i, kind in enumerate(kinds):
        if kind is None or kind in values:
            continue
        vals, ok = floats(frame.get_column(frame.columns[i])[:tail])
        values[kind] = vals
        good &= ok
    keep = tail
    if not good.all():
        r = int(np.flatnonzero(~good)[0])
        reason = f"line {first_line + r}: a count is not a number"
        if not salvage or r == 0:
            raise InputError(reason, path=path, offset=body)
        keep = r
    if keep == 0:
        raise InputError("no count epochs after the header", path=path, offset=body)
    local = hdr.start_local_us + np.arange(keep, dtype=np.int64) * hdr.epoch_s * _US
    off_us, more = place_device_clock(int(local[0]), int(local[-1]), tz)
    warnings += more
    start = (local - off_us).astype("datetime64[us]")
    dur = np.full(keep, float(hdr.epoch_s))
    series: list[VendorSeries] = []
    for kind in ("axis1", "axis2", "axis3"):
        if kind in values:
            v = values[kind][:keep]
            series.append(VendorSeries(f"activity_counts_{kind}", "counts", start, dur, v))
    if all(k in values for k in ("axis1", "axis2", "axis3")):
        a = np.stack([values[k][:keep] for k in ("axis1", "axis2", "axis3")])
        series.append(
            VendorSeries("activity_counts_vm", "counts", start, dur, np.sqrt((a**2).sum(0)))
        )
    elif "vm" in values:
        series.append(VendorSeries("activity_counts_vm", "counts", start, dur, values["vm"][:keep]))
    if "steps" in values:
        series.append(VendorSeries("steps", "steps", start, dur, values["steps"][:keep]))
    if "hr" in values:
        warnings.append("the heart-rate column (per-epoch means) was not imported")
    rec = Recording(format=FORMAT, kind="allday", vendor=series, warnings=warnings)
    origin = _device(hdr.line1)[0]
    for s in series:
        s.origin = origin
    rec.meta = {
        "data": "counts",
        "epoch_s": str(hdr.epoch_s),
        "epochs": str(keep),
        "columns": ",".join(k or "-" for k in kinds),
        "device_offset": fmt_offset(off_us // _US),
    }
    if keep < tail:
        rec.salvaged = True
        rec.salvage_reason = f"line {first_line + keep}: a count is not a number"
    return rec
