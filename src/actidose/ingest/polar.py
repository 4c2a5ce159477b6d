"""Polar Flow training-session JSON (format ``"polar_flow"``), from the account data export.

Polar Flow's "Export your data" (account.polar.com) writes one ``training-session-*.json`` per
session. No public schema exists; what is read here follows the real export in the shared corpus
(``exportVersion`` 1.3) and public readers of it (AlexanderFabisch/slither ``polar_json_loader``;
Polar's AccessLink documentation for the offset convention)::

    {"exportVersion": "1.3", "name": "...", "startTime": "2017-01-23T18:20:18.000",
     "stopTime": "...", "timeZoneOffset": 60, "duration": "PT2753.875S", ...,
     "exercises": [{"startTime": "...", "stopTime": "...", "timezoneOffset": 60,
                    "duration": "PT2754.128S", "sport": "RUNNING",
                    "heartRate": {"min": 95, "avg": 138, "max": 164},
                    "samples": {"heartRate": [{"dateTime": "2017-01-23T18:20:18.000",
                                               "value": 95}, ...],
                                "recordedRoute": [...]}}]}

* Times are local wall times without a zone; ``timezoneOffset`` (per exercise; the session's
  ``timeZoneOffset`` where an exercise has none) is the UTC offset in minutes, so
  ``UTC = local - offset`` (AccessLink: "start_time" local plus "start_time_utc_offset"). An
  offset must lie within ±14 h on a 15-minute grid. Without any offset the times are placed
  with ``ctx.timezone``; without that, InputError (never a guess).
* ``samples.heartRate`` -> heart rate, 1 s apart; a sample without ``value`` is NaN (slither
  notes such entries). Values are returned raw (the pipeline applies the sample rules).
* RR intervals, where an export has them, are read from ``samples.rr`` (also ``rrIntervals``,
  ``RR``): numbers (ms), ISO durations (``PT0.812S``) or objects with ``value``/``duration``
  and perhaps ``dateTime``. With a ``dateTime`` on every entry that is the beat time; otherwise
  beat times are rebuilt as the exercise start plus the cumulative intervals, with a warning.
  (The corpus file has no RR; this layout is an assumption, see the tests.)
* Each exercise -> :class:`ActivityInfo`: ``sport`` lower-cased, start/stop (stop = start +
  ``duration`` where no ``stopTime``), ``duration`` ISO 8601 (``PT2753.875S``) as elapsed
  seconds, ``heartRate.avg``/``max`` as the device computed them.
* ``recordedRoute`` is not used (its stamps in the corpus file run 1 h 20 min after the HR
  samples of the same run, in no documented frame).

``kind="activity"``; ``utc_offset_s`` from the first exercise's offset; ``device`` where the
file names one. Errors are InputErrors with the JSON path of the bad item and its line where it
can be found. ``salvage`` does not apply: a JSON object cut short has no usable prefix.
"""

from __future__ import annotations

import json
import re
from typing import Any, BinaryIO, Final

import numpy as np
import numpy.typing as npt

from actidose.errors import InputError
from actidose.ingest.csv_hr import decode_text, parse_iso
from actidose.recording import (
    TS_DTYPE,
    ActivityInfo,
    HRSeries,
    ReadContext,
    Recording,
    RRSeries,
)
from actidose.timeutil import LOCAL_NONEXISTENT, local_to_utc

__all__ = ["FORMAT", "detect", "iso_duration_s", "read"]

FORMAT: Final = "polar_flow"
_US: Final = 1_000_000
_MAX_OFFSET_MIN: Final = 14 * 60
_BOM: Final = b"\xef\xbb\xbf"
_OBJECT = re.compile(rb"^(?:\xef\xbb\xbf)?\s*\{")
_EXPORT_VERSION = re.compile(rb'"exportVersion"\s*:')
_EXERCISES = re.compile(rb'"exercises"\s*:\s*\[')
_DURATION = re.compile(
    r"^P(?:([0-9]+(?:\.[0-9]+)?)D)?"
    r"(?:T(?:([0-9]+(?:\.[0-9]+)?)H)?(?:([0-9]+(?:\.[0-9]+)?)M)?(?:([0-9]+(?:\.[0-9]+)?)S)?)?$"
)
#: Polar sessions last at most 99 hours (Polar data notice); allow some margin
_MAX_ELAPSED_S: Final = 10 * 86_400
_RR_KEYS: Final = ("rr", "rrIntervals", "RR", "rrInterval")
_DEVICE_KEYS: Final = ("device", "deviceName", "deviceModel", "product", "model")


def detect(head: bytes) -> bool:
    """True when ``head`` starts a Polar Flow training-session export: a top-level JSON object
    with an ``"exportVersion"`` and an ``"exercises"`` array (both near the top in real files)."""
    return bool(_OBJECT.match(head) and _EXPORT_VERSION.search(head) and _EXERCISES.search(head))


def iso_duration_s(text: str) -> float | None:
    """Seconds of an ISO 8601 duration such as ``PT2753.875S`` or ``PT1H2M3S`` (None if not)."""
    m = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if m is None or not any(m.groups()):
        return None
    d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    return ((d * 24 + h) * 60 + mi) * 60 + s


class _Doc:
    """The decoded text, to turn a JSON path into a line and byte offset for error messages."""

    def __init__(self, path: str, data: bytes, text: str) -> None:
        self.path = path
        self.data = data
        self.text = text

    def error(self, reason: str, needle: str | None = None) -> InputError:
        pos = None
        if needle is not None:
            m = re.search(needle, self.text)
            pos = m.start() if m else None
        if pos is None:
            return InputError(reason, path=self.path)
        bom = 3 if self.data.startswith(_BOM) else 0
        line = self.text.count("\n", 0, pos) + 1
        offset = bom + len(self.text[:pos].encode("utf-8"))
        return InputError(f"{reason} (line {line})", path=self.path, offset=offset)


def read(
    fp: BinaryIO, *, path: str = "<stream>", salvage: bool = False, ctx: ReadContext
) -> Recording:
    """Read one Polar Flow training-session JSON into a :class:`Recording` (``kind="activity"``:
    heart rate, RR intervals where present, one :class:`ActivityInfo` per exercise).

    Raises InputError for broken JSON (line and byte offset), a structure that is not a
    training session, unreadable samples (their JSON path and line), an implausible
    ``timezoneOffset``, or local times with neither an offset in the file nor ``ctx.timezone``.
    """
    data = fp.read()
    if not isinstance(data, bytes | bytearray):
        raise InputError("not a binary stream", path=path, offset=0)
    data = bytes(data)
    if not data:
        raise InputError("empty file", path=path, offset=0)
    text = decode_text(data, path=path)
    doc = _Doc(path, data, text)
    try:
        top = json.loads(text)
    except json.JSONDecodeError as exc:
        bom = 3 if data.startswith(_BOM) else 0
        at = bom + len(text[: exc.pos].encode("utf-8"))
        raise InputError(
            f"broken JSON at line {exc.lineno} column {exc.colno}: {exc.msg} (offset {at})",
            path=path,
            offset=at,
        ) from None
    except RecursionError:
        raise InputError("JSON nested too deeply", path=path, offset=0) from None
    except ValueError as exc:  # e.g. an integer literal longer than Python accepts
        raise InputError(f"unreadable JSON: {exc}", path=path, offset=0) from None
    if not isinstance(top, dict) or "exercises" not in top:
        raise InputError(
            "not a Polar Flow training session: no top-level object with exercises",
            path=path,
            offset=0,
        )
    exercises = top["exercises"]
    if not isinstance(exercises, list):
        raise doc.error("exercises is not an array", r'"exercises"')
    session_offset = top.get("timeZoneOffset", top.get("timezoneOffset"))

    hr_ts: list[npt.NDArray[np.int64]] = []
    hr_bpm: list[npt.NDArray[np.float64]] = []
    rr_ts: list[npt.NDArray[np.int64]] = []
    rr_ms: list[npt.NDArray[np.float64]] = []
    rec = Recording(format=FORMAT, kind="activity")
    for k, ex in enumerate(exercises):
        where = f"exercises[{k}]"
        if not isinstance(ex, dict):
            raise doc.error(f"{where} is not an object", r'"exercises"')
        offset = _offset(doc, where, ex.get("timezoneOffset", ex.get("timeZoneOffset")))
        if offset is None:
            offset = _offset(doc, "timeZoneOffset", session_offset)
        if offset is not None and rec.utc_offset_s is None:
            rec.utc_offset_s = offset * 60
        place = _Placer(doc, offset, ctx.timezone, rec.warnings)
        samples = ex.get("samples", {})
        if samples is None:
            samples = {}
        if not isinstance(samples, dict):
            raise doc.error(f"{where}.samples is not an object", r'"samples"')
        ts, bpm = _heart_rate(doc, where, samples.get("heartRate"), place)
        hr_ts.append(ts)
        hr_bpm.append(bpm)
        start = _instant(doc, place, ex.get("startTime"), f"{where}.startTime")
        if start is None:
            start = int(ts[0]) if ts.size else None
        rr_key = next((key for key in _RR_KEYS if samples.get(key)), None)
        if rr_key is not None:
            t, v = _rr(doc, f"{where}.samples.{rr_key}", samples[rr_key], place, start, rec)
            rr_ts.append(t)
            rr_ms.append(v)
        info = _activity(doc, where, ex, place, start, ts)
        if info is not None:
            rec.activities.append(info)
        elif ts.size == 0:
            rec.warnings.append(f"{where}: no start time and no samples; left out")

    rec.hr = HRSeries(
        np.concatenate([np.empty(0, np.int64), *hr_ts]).astype(TS_DTYPE),
        np.concatenate([np.empty(0), *hr_bpm]),
    )
    if rr_ts:
        rec.rr = RRSeries(np.concatenate(rr_ts).astype(TS_DTYPE), np.concatenate(rr_ms))
    rec.device = _device(top, exercises)
    rec.meta = {
        k: str(top[k])
        for k in ("exportVersion", "name", "distance", "kiloCalories", "duration")
        if isinstance(top.get(k), str | int | float) and not isinstance(top.get(k), bool)
    }
    return rec


def _device(top: dict[str, Any], exercises: list[Any]) -> str | None:
    """The device name, where the session or an exercise states one."""
    for src in (top, *[e for e in exercises if isinstance(e, dict)]):
        for key in _DEVICE_KEYS:
            name = src.get(key)
            if isinstance(name, str) and name.strip():
                return name.strip()
    return None


def _offset(doc: _Doc, where: str, value: Any) -> int | None:
    """The UTC offset in minutes, checked: within ±14 h and on a 15-minute grid."""
    if value is None:
        return None
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole:
        raise doc.error(
            f"{where}: timezoneOffset {value!r} is not a whole number of minutes",
            r'"time[zZ]oneOffset"',
        )
    minutes = int(value)
    if abs(minutes) > _MAX_OFFSET_MIN or minutes % 15:
        raise doc.error(
            f"{where}: timezoneOffset {minutes} minutes is not a plausible UTC offset",
            r'"time[zZ]oneOffset"',
        )
    return minutes


class _Placer:
    """Local wall-clock microseconds -> UTC, by the file's offset or else the given zone."""

    def __init__(self, doc: _Doc, offset_min: int | None, tz: str | None, warnings: list[str]):
        self.doc = doc
        self.offset_min = offset_min
        self.tz = tz
        self.warnings = warnings

    def __call__(
        self, wall: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        if self.offset_min is not None:
            return wall - self.offset_min * 60 * _US, np.ones(wall.size, bool)
        if not self.tz:
            raise InputError(
                "Polar times are local and the file gives no timeZoneOffset; give the "
                "participant a timezone or --timezone",
                path=self.doc.path,
                offset=0,
            )
        utc, status = local_to_utc(wall, self.tz)
        keep = status != LOCAL_NONEXISTENT
        if not keep.all():
            self.warnings.append(
                f"{int((~keep).sum())} samples at local times that do not exist in {self.tz} "
                "dropped"
            )
        return utc, keep


def _times(
    doc: _Doc, where: str, texts: list[Any], place: _Placer, *, key: str = "dateTime"
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """UTC microseconds of naive ISO date-time texts (an explicit offset or Z is honoured).
    ``where`` names the array (``...samples.heartRate``) or, with ``key=""``, the one value."""
    parsed = parse_iso([t if isinstance(t, str) else None for t in texts])
    if not parsed.ok.all():
        i = int(np.flatnonzero(~parsed.ok)[0])
        label = f"{where}[{i}].{key}" if key else where
        field = key or where.rsplit(".", 1)[-1]
        needle = f'"{field}"\\s*:\\s*' + re.escape(json.dumps(texts[i])) if texts[i] else None
        raise doc.error(f"{label} {texts[i]!r} is not a date-time", needle)
    utc = parsed.us.copy()
    keep = np.ones(utc.size, bool)
    naive = ~parsed.has_zone
    if naive.any():
        utc[naive], keep[naive] = place(parsed.us[naive])
    return utc, keep


def _instant(doc: _Doc, place: _Placer, text: Any, where: str) -> int | None:
    if text is None:
        return None
    utc, keep = _times(doc, where, [text], place, key="")
    return int(utc[0]) if keep[0] else None


def _heart_rate(
    doc: _Doc, where: str, samples: Any, place: _Placer
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    where = f"{where}.samples.heartRate"
    if samples is None:
        return np.empty(0, np.int64), np.empty(0)
    if not isinstance(samples, list):
        raise doc.error(f"{where} is not an array", r'"heartRate"\s*:\s*[^\[]')
    texts: list[Any] = []
    bpm = np.full(len(samples), np.nan)
    for i, s in enumerate(samples):
        if not isinstance(s, dict):
            raise doc.error(f"{where}[{i}] is not an object", r'"heartRate"\s*:\s*\[')
        texts.append(s.get("dateTime"))
        v = s.get("value")
        if v is None:
            continue  # no reading at this second
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise doc.error(
                f"{where}[{i}].value {v!r} is not a number",
                '"dateTime"\\s*:\\s*' + re.escape(json.dumps(texts[-1]))
                if isinstance(texts[-1], str)
                else None,
            )
        bpm[i] = _float(v)
    utc, keep = _times(doc, where, texts, place)
    return utc[keep], bpm[keep]


def _rr_value(item: Any) -> float | None:
    if isinstance(item, dict):
        for key in ("value", "duration", "rr", "interval", "ms"):
            if key in item:
                return _rr_value(item[key])
        return None
    if isinstance(item, bool) or item is None:
        return None
    if isinstance(item, int | float):
        return _float(item)
    if isinstance(item, str):
        secs = iso_duration_s(item)
        if secs is not None:
            return secs * 1000.0
        try:
            return float(item)
        except ValueError:
            return None
    return None


def _rr(
    doc: _Doc, where: str, items: Any, place: _Placer, start_us: int | None, rec: Recording
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    if not isinstance(items, list):
        raise doc.error(f"{where} is not an array", None)
    ms = np.empty(len(items))
    for i, item in enumerate(items):
        v = _rr_value(item)
        if v is None or not np.isfinite(v) or v <= 0:
            raise doc.error(f"{where}[{i}] {item!r} is not an RR interval", None)
        ms[i] = v
    stamps = [it.get("dateTime") if isinstance(it, dict) else None for it in items]
    if stamps and all(isinstance(s, str) for s in stamps):
        utc, keep = _times(doc, where, stamps, place)
        return utc[keep], ms[keep]
    if start_us is None:
        raise doc.error(f"{where}: RR intervals without beat times and no exercise start", None)
    ends = start_us + np.rint(np.cumsum(ms) * 1000.0).astype(np.int64)
    rec.warnings.append(
        f"{where}: beat times rebuilt from the exercise start and the cumulative RR intervals"
    )
    return ends, ms


def _float(value: int | float) -> float:
    """float(value); an integer too large for a float is infinite (not a plausible value)."""
    try:
        return float(value)
    except OverflowError:
        return float("inf")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return _float(value)


def _activity(
    doc: _Doc,
    where: str,
    ex: dict[str, Any],
    place: _Placer,
    start: int | None,
    hr_ts: npt.NDArray[np.int64],
) -> ActivityInfo | None:
    if start is None:
        return None
    duration = ex.get("duration")
    elapsed = iso_duration_s(duration) if isinstance(duration, str) else _number(duration)
    if duration is not None and (elapsed is None or not 0 <= elapsed < _MAX_ELAPSED_S):
        raise doc.error(
            f"{where}.duration {duration!r} is not a plausible ISO 8601 duration",
            r'"duration"\s*:\s*' + re.escape(json.dumps(duration)),
        )
    stop = _instant(doc, place, ex.get("stopTime"), f"{where}.stopTime")
    if stop is None or stop < start:
        if elapsed is not None:
            stop = start + round(elapsed * _US)
        else:
            stop = int(hr_ts.max()) if hr_ts.size else start
    if elapsed is None:
        elapsed = (stop - start) / _US
    summary = ex.get("heartRate")
    hr: dict[str, Any] = summary if isinstance(summary, dict) else {}
    sport = ex.get("sport")
    return ActivityInfo(
        start=np.datetime64(start, "us"),
        end=np.datetime64(stop, "us"),
        sport=sport.strip().lower() if isinstance(sport, str) and sport.strip() else None,
        elapsed_s=elapsed,
        avg_hr=_number(hr.get("avg")),
        max_hr=_number(hr.get("max")),
    )
