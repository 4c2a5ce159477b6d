"""GPX importer: heart rate from the track points of GPX 1.0 and 1.1 files.

Schemas: GPX 1.1, https://www.topografix.com/GPX/1/1/gpx.xsd (and GPX 1.0,
https://www.topografix.com/GPX/1/0/gpx.xsd, same track structure). What is read:

* the ``creator`` attribute of ``gpx`` (required in both versions): the device or program;
* ``trk`` (``trkType``): ``type`` (1.1 only; free text such as "running") and its ``trkseg``
  (``trksegType``) of ``trkpt`` (``wptType``) with ``time`` (``xsd:dateTime``);
* heart rate: not part of GPX. Garmin's TrackPointExtension v1 and v2
  (https://www8.garmin.com/xmlschemas/TrackPointExtensionv2.xsd, ``gpxtpx:hr``, beats per
  minute) puts it in ``trkpt/extensions/TrackPointExtension/hr``; other writers use their own
  namespaces (``ns3:hr``), Cluetrust's ``gpxdata:hr``, or ``heartrate``; GPX 1.0 allows
  extension elements straight inside ``trkpt`` and some writers give them no namespace at all.
  So the first element below a ``trkpt`` whose local name is ``hr`` or ``heartrate`` (any case,
  any namespace or none) is its heart rate.

Waypoints (``wpt``) and route points (``rtept``) are places, not samples of a recording: they
are not used (waypoints carrying a heart rate are counted in a warning). A file without tracks
gives a Recording with no samples. Streaming, XML defences, time parsing and the salvage rules
are shared with :mod:`actidose.ingest.tcx`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, BinaryIO, Final

import numpy as np

from actidose.errors import InputError
from actidose.ingest.xmlsafe import root_name
from actidose.ingest.xmltrack import (
    PlacedPoints,
    TrackPoints,
    child,
    drop,
    local_name,
    xml_events,
)
from actidose.recording import ActivityInfo, ReadContext, Recording

__all__ = ["detect", "read"]

_ROOT: Final = "gpx"
_TAGS: Final = tuple("{*}" + t for t in (_ROOT, "trk", "trkseg", "trkpt", "wpt", "rtept"))
_HR_NAMES: Final = frozenset({"hr", "heartrate"})


def detect(head: bytes) -> bool:
    """True when the root element of ``head`` (the first bytes of a file) is ``gpx``, in any
    namespace or none (GPX 1.0 and 1.1 both have root ``gpx``).

    A UTF-8 BOM and whitespace before ``<?xml`` are tolerated (Strava writes them). Content
    decides, never the file name.
    """
    return root_name(head) == _ROOT.encode()


def read(
    fp: BinaryIO,
    *,
    path: str,
    salvage: bool = False,
    ctx: ReadContext,
) -> Recording:
    """Read one GPX document into a :class:`Recording` (``format="gpx"``, ``kind="activity"``).

    ``hr`` holds one sample per ``trkpt`` with a ``time`` and a heart-rate extension (raw: no
    range filter, no de-duplication; a value that is not a number is kept as NaN and counted in a
    warning). All tracks and segments of the file are read, in file order. Track points without a
    time are skipped and counted (``meta["points_without_time"]``, a warning); those with a time
    but no heart rate are counted in ``meta["points_without_hr"]``. ``activities`` has one
    :class:`ActivityInfo` per ``trk`` with timed points: start/end = its earliest/latest point
    time, ``sport`` = ``trk/type`` lower-cased. ``device`` is the ``creator`` attribute.

    Times carry ``Z`` or an offset (which may change within a file); times without one are local
    wall times placed with ``ctx.timezone`` (an :class:`InputError` when there is none).

    Every failure is an :class:`InputError` naming ``path`` (and the line where known): a
    DOCTYPE (entity attacks), malformed XML, a root other than ``gpx``, a ``time`` that is not an
    ISO 8601 date-time. With ``salvage=True`` damage stops the reading and the points before it
    are returned (``salvaged=True``, ``salvage_reason``); when nothing usable precedes the damage
    the error is raised anyway.
    """
    events = xml_events(fp, path, root=_ROOT, fmt="GPX", tags=_TAGS)
    st = _Gpx(TrackPoints(path))
    damage: InputError | None = None
    try:
        for event, el in events:
            st.event(event, el)
    except InputError as exc:
        if not salvage:
            raise
        damage = exc
    damage = st.points.close(damage, salvage)
    if damage is not None:
        if st.open is not None:
            st.end_track(None)
        st.tracks = [t for t in st.tracks if t.first <= st.points.n]  # see tcx.read

    pts = st.points.finish(ctx.timezone)
    rec = Recording(format="gpx", kind="activity", hr=pts.hr(), device=st.creator)
    rec.activities = _activities(st.tracks, pts, rec.warnings)
    pts.report(rec)
    rec.meta["tracks"] = str(len(st.tracks))
    rec.meta["segments"] = str(st.segments)
    if st.version:
        rec.meta["gpx_version"] = st.version
    if st.waypoints_with_hr:
        rec.warnings.append(
            f"{st.waypoints_with_hr} waypoint(s)/route point(s) with a heart rate not used: "
            "only track points (trk/trkseg/trkpt) are samples"
        )
    if st.stray_points:
        rec.warnings.append(f"{st.stray_points} trkpt(s) outside any trk ignored")
    if damage is not None:
        if len(rec.hr) == 0 and not rec.activities:
            raise damage
        rec.salvaged = True
        rec.salvage_reason = damage.reason
    return rec


@dataclass
class _Track:
    first: int  # index of its first timed point
    last: int = -1  # one past its last timed point
    sport: str | None = None


class _Gpx:
    """State of the streaming read."""

    def __init__(self, points: TrackPoints) -> None:
        self.points = points
        self.tracks: list[_Track] = []
        self.open: _Track | None = None
        self.open_el: Any = None
        self.segments = 0
        self.waypoints_with_hr = 0
        self.stray_points = 0
        self.creator: str | None = None
        self.version: str | None = None

    def event(self, event: str, el: Any) -> None:
        name = local_name(el.tag)
        if event == "start":
            if name == "trk":
                if self.open is None:
                    self.open = _Track(self.points.n)
                    self.open_el = el
            elif name == "trkseg":
                self.segments += 1
            elif name == _ROOT and el.getparent() is None:
                self.creator = _strip(el.get("creator"))
                self.version = _strip(el.get("version"))
            return
        if name == "trkpt":
            if self.open is None:
                self.stray_points += 1
            else:
                time_el = child(el, "time")
                hr = _hr(el)
                self.points.add(
                    None if time_el is None else time_el.text,
                    None if hr is None else hr.text,
                    el.sourceline,
                )
            drop(el)
        elif name in ("wpt", "rtept"):
            self.waypoints_with_hr += _hr(el) is not None
            drop(el)
        elif name == "trk" and el is self.open_el:
            self.end_track(el)
            drop(el)

    def end_track(self, el: Any) -> None:
        """Finish the open ``trk`` (None: cut short by damage; what was read of it is used)."""
        track, el = self.open, el if el is not None else self.open_el
        if track is None:
            return
        track.last = self.points.n
        type_el = child(el, "type") if el is not None else None
        sport = _strip(type_el.text) if type_el is not None else None
        track.sport = sport.lower() if sport else None
        self.tracks.append(track)
        self.open = self.open_el = None


def _hr(el: Any) -> Any:
    """The first element below ``el`` named ``hr``/``heartrate`` (any namespace) with text."""
    for sub in el.iterdescendants():
        if local_name(sub.tag).lower() in _HR_NAMES and _strip(sub.text):
            return sub
    return None


def _strip(value: str | None) -> str | None:
    if value is None:
        return None
    return value.strip() or None


def _activities(tracks: list[_Track], pts: PlacedPoints, warnings: list[str]) -> list[ActivityInfo]:
    out: list[ActivityInfo] = []
    n = len(pts.ts_us)
    untimed = 0
    for t in tracks:
        span = pts.ts_us[min(t.first, n) : min(max(t.last, t.first), n)]
        if span.size == 0:
            untimed += 1
            continue
        start, end = int(span.min()), int(span.max())
        out.append(
            ActivityInfo(
                start=np.datetime64(start, "us"),
                end=np.datetime64(end, "us"),
                sport=t.sport,
                elapsed_s=(end - start) / 1e6,
            )
        )
    if untimed:
        warnings.append(f"{untimed} track(s) without any timed point: no activity for them")
    return out
