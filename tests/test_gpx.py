"""actidose.ingest.gpx: the real GPX files of the shared corpus, tiny hand-built documents,
hostile XML, damage and salvage, and property tests (any bytes -> Recording or InputError)."""

from __future__ import annotations

import io
import re
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actidose.errors import InputError
from actidose.ingest import gpx, tcx
from actidose.recording import ReadContext, Recording

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
GPX_DIR = CORPUS / "gpx"
needs_corpus = pytest.mark.skipif(not GPX_DIR.is_dir(), reason=f"corpus not found at {GPX_DIR}")
CORPUS_FILES = sorted(p.name for p in GPX_DIR.glob("*.gpx")) if GPX_DIR.is_dir() else []
CTX = ReadContext()
GPX11 = "http://www.topografix.com/GPX/1/1"
GPX10 = "http://www.topografix.com/GPX/1/0"
TPX1 = "http://www.garmin.com/xmlschemas/TrackPointExtension/v1"
TPX2 = "http://www.garmin.com/xmlschemas/TrackPointExtension/v2"


def read(data: bytes, *, salvage: bool = False, ctx: ReadContext = CTX) -> Recording:
    return gpx.read(io.BytesIO(data), path="t.gpx", salvage=salvage, ctx=ctx)


def us(text: str) -> np.datetime64:
    d = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    return np.datetime64(d.replace(tzinfo=None), "us")


# --------------------------------------------------------------------------------------------
# independent reading: xml.etree over the whole document


def independent_hr(data: bytes) -> tuple[list[np.datetime64], list[float], int, int]:
    """(times, bpm) of trkpts with time and HR; counts of timed points without HR and of
    points without time. HR: any descendant named hr/heartrate."""
    root = ET.fromstring(data.lstrip(b"\xef\xbb\xbf \t\r\n"))
    ts: list[np.datetime64] = []
    bpm: list[float] = []
    no_hr = no_time = 0

    def local(tag: str) -> str:
        return tag.rsplit("}", 1)[-1]

    for pt in root.iter():
        if local(pt.tag) != "trkpt":
            continue
        times = [c.text for c in pt if local(c.tag) == "time" and c.text]
        hrs = [
            e.text
            for e in pt.iter()
            if local(e.tag).lower() in ("hr", "heartrate") and e.text and e.text.strip()
        ]
        if not times:
            no_time += 1
        elif not hrs:
            no_hr += 1
        else:
            ts.append(us(times[0].strip()))
            bpm.append(float(hrs[0]))
    return ts, bpm, no_hr, no_time


@needs_corpus
@pytest.mark.parametrize("name", CORPUS_FILES)
def test_corpus_file_matches_independent_reading(name: str) -> None:
    data = (GPX_DIR / name).read_bytes()
    assert gpx.detect(data[:4096]) and not tcx.detect(data[:4096])
    rec = read(data)
    ts, bpm, no_hr, no_time = independent_hr(data)
    assert rec.format == "gpx" and rec.kind == "activity" and not rec.salvaged
    np.testing.assert_array_equal(rec.hr.ts, np.array(ts, "datetime64[us]"))
    np.testing.assert_array_equal(rec.hr.bpm, np.array(bpm, float))
    assert rec.meta["points_without_hr"] == str(no_hr)
    assert rec.meta["points_without_time"] == str(no_time)


@needs_corpus
def test_polar_m400_hand_checked() -> None:
    rec = read((GPX_DIR / "polar-m400-running.gpx").read_bytes())
    assert len(rec.hr) == 0  # Polar's GPX export carries no heart rate
    assert rec.meta["points_without_hr"] == "3032"
    assert rec.device == "Polar M400"
    (a,) = rec.activities
    assert a.start == us("2020-10-26T17:07:30Z")
    assert a.end == us("2020-10-26T17:58:11.019Z")
    assert a.sport is None


@needs_corpus
def test_unicode_with_bom_and_waypoint_files() -> None:
    rec = read((GPX_DIR / "unicode_with_bom.gpx").read_bytes())
    assert len(rec.hr) == 0 and rec.activities == [] and rec.device is None
    # a waypoint with a TrackPointExtension hr: a place, not a sample; counted, not used
    rec = read((GPX_DIR / "gpx_with_garmin_extension.gpx").read_bytes())
    assert len(rec.hr) == 0 and rec.device == "Runkeeper - http://www.runkeeper.com"
    assert any("1 waypoint(s)" in w for w in rec.warnings)


@needs_corpus
def test_polar_with_injected_heart_rate() -> None:
    """Every 3rd trkpt of the real file gets a TrackPointExtension v2 hr; the rest none."""
    text = (GPX_DIR / "polar-m400-running.gpx").read_text()
    text = text.replace("<gpx ", f'<gpx xmlns:gpxtpx="{TPX2}" ', 1)
    count = iter(range(10**6))

    def add(m: re.Match[str]) -> str:
        i = next(count)
        if i % 3:
            return m.group(0)
        ext = (
            f"<extensions><gpxtpx:TrackPointExtension><gpxtpx:hr>{60 + i % 120}</gpxtpx:hr>"
            "</gpxtpx:TrackPointExtension></extensions>"
        )
        return m.group(0).replace("</trkpt>", ext + "</trkpt>")

    data = re.sub(r"<trkpt\b.*?</trkpt>", add, text, flags=re.S).encode()
    rec = read(data)
    ts, bpm, no_hr, _ = independent_hr(data)
    assert len(rec.hr) == len(ts) == 1011
    np.testing.assert_array_equal(rec.hr.ts, np.array(ts, "datetime64[us]"))
    np.testing.assert_array_equal(rec.hr.bpm, bpm)
    assert rec.hr.ts[0] == us("2020-10-26T17:07:30Z") and rec.hr.bpm[0] == 60
    assert rec.meta["points_without_hr"] == str(no_hr) == "2021"


@needs_corpus
@pytest.mark.parametrize("prefix", [b"  ", b"\r\n  \t", b"\xef\xbb\xbf\n "])
def test_leading_whitespace(prefix: bytes) -> None:
    data = prefix + (GPX_DIR / "polar-m400-running.gpx").read_bytes()
    assert gpx.detect(data[:4096])
    assert read(data).meta["points_without_hr"] == "3032"


@pytest.mark.skipif(not (CORPUS / "tcx").is_dir(), reason="corpus not found")
def test_same_heart_rate_as_the_tcx_of_the_same_recording() -> None:
    """slither-running.tcx written out as GPX (TrackPointExtension v1) reads the same HR."""
    data = (CORPUS / "tcx" / "slither-running.tcx").read_bytes()
    want = tcx.read(io.BytesIO(data), path="x.tcx", ctx=CTX)
    ns = {"t": "http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2"}
    pts = []
    for p in ET.fromstring(data).iterfind(".//t:Trackpoint", ns):
        t = p.findtext("t:Time", namespaces=ns)
        hr = p.findtext("t:HeartRateBpm/t:Value", namespaces=ns)
        pts.append(
            f'<trkpt lat="0" lon="0"><time>{t}</time><extensions>'
            f"<gpxtpx:TrackPointExtension><gpxtpx:hr>{hr.strip() if hr else ''}"
            "</gpxtpx:hr></gpxtpx:TrackPointExtension></extensions></trkpt>"
        )
    doc = (
        f'<gpx version="1.1" creator="test" xmlns="{GPX11}" xmlns:gpxtpx="{TPX1}">'
        f"<trk><type>running</type><trkseg>{''.join(pts)}</trkseg></trk></gpx>"
    ).encode()
    rec = read(doc)
    np.testing.assert_array_equal(rec.hr.ts, want.hr.ts)
    np.testing.assert_array_equal(rec.hr.bpm, want.hr.bpm)
    assert rec.activities[0].sport == "running"


# --------------------------------------------------------------------------------------------
# tiny documents


def doc(body: str, *, version: str = "1.1", ns: str | None = GPX11, extra_ns: str = "") -> bytes:
    xmlns = f' xmlns="{ns}"' if ns else ""
    return (
        f'<?xml version="1.0"?><gpx version="{version}" creator="Unit Test"{xmlns}'
        f"{extra_ns}>{body}</gpx>"
    ).encode()


def pt(t: str | None, ext: str = "") -> str:
    time_el = f"<time>{t}</time>" if t is not None else ""
    return f'<trkpt lat="51.5" lon="-0.1"><ele>10</ele>{time_el}{ext}</trkpt>'


def tpx(hr: int, prefix: str = "gpxtpx") -> str:
    return (
        f"<extensions><{prefix}:TrackPointExtension><{prefix}:hr>{hr}</{prefix}:hr>"
        f"</{prefix}:TrackPointExtension></extensions>"
    )


@pytest.mark.parametrize("tpx_ns", [TPX1, TPX2])
def test_trackpointextension_v1_and_v2(tpx_ns: str) -> None:
    body = (
        "<trk><trkseg>"
        + pt("2024-05-01T10:00:00Z", tpx(120))
        + pt("2024-05-01T10:00:01Z", tpx(121))
        + "</trkseg></trk>"
    )
    rec = read(doc(body, extra_ns=f' xmlns:gpxtpx="{tpx_ns}"'))
    assert list(rec.hr.bpm) == [120, 121]
    assert rec.device == "Unit Test"


def test_other_heart_rate_extensions() -> None:
    body = (
        "<trk><trkseg>"
        + pt("2024-05-01T10:00:00Z", tpx(101, "ns3"))  # Garmin TPX under another prefix
        + pt("2024-05-01T10:00:01Z", "<extensions><gpxdata:hr>102</gpxdata:hr></extensions>")
        + pt("2024-05-01T10:00:02Z", "<extensions><x:heartrate>103</x:heartrate></extensions>")
        + pt("2024-05-01T10:00:03Z", "<extensions><HeartRate xmlns=''>104</HeartRate></extensions>")
        + pt("2024-05-01T10:00:04Z", "<extensions><x:cad>80</x:cad></extensions>")
        + "</trkseg></trk>"
    )
    extra = (
        f' xmlns:ns3="{TPX2}" xmlns:gpxdata="http://www.cluetrust.com/XML/GPXDATA/1/0"'
        ' xmlns:x="urn:some-vendor"'
    )
    rec = read(doc(body, extra_ns=extra))
    assert list(rec.hr.bpm) == [101, 102, 103, 104]
    assert rec.meta["points_without_hr"] == "1"


def test_gpx10_with_namespace_less_hr() -> None:
    # GPX 1.0 allows extension elements straight in trkpt; here without any namespace
    body = (
        "<trk><trkseg>"
        + pt("2024-05-01T10:00:00Z", "<hr>130</hr>")
        + pt("2024-05-01T10:00:01Z", "<hr>131</hr>")
        + "</trkseg></trk>"
    )
    for ns in (None, GPX10):
        rec = read(doc(body, version="1.0", ns=ns))
        assert list(rec.hr.bpm) == [130, 131]
        assert rec.meta["gpx_version"] == "1.0"
    assert gpx.detect(doc(body, version="1.0", ns=None))


def test_several_segments_and_tracks_and_points_without_time() -> None:
    body = (
        "<trk><name>morning</name><type>Running</type>"
        "<trkseg>"
        + pt("2024-05-01T07:00:00Z", "<hr>100</hr>")
        + pt(None, "<hr>1</hr>")
        + pt("2024-05-01T07:00:10Z", "<hr>110</hr>")
        + "</trkseg>"
        "<trkseg>"
        + pt("2024-05-01T07:30:00Z", "<hr>120</hr>")
        + pt("2024-05-01T07:30:05Z")
        + "</trkseg></trk>"
        "<trk><trkseg>" + pt("2024-05-01T18:00:00+02:00", "<hr>90</hr>") + "</trkseg></trk>"
        "<trk><trkseg>" + pt(None) + "</trkseg></trk>"
    )
    rec = read(doc(body, ns=None))
    assert list(rec.hr.bpm) == [100, 110, 120, 90]
    assert rec.hr.ts[-1] == us("2024-05-01T16:00:00Z")
    assert rec.meta["points_without_time"] == "2"
    assert rec.meta["points_without_hr"] == "1"
    assert rec.meta["tracks"] == "3" and rec.meta["segments"] == "4"
    assert any("2 track point(s) without a time" in w for w in rec.warnings)
    assert any("1 track(s) without any timed point" in w for w in rec.warnings)
    morning, evening = rec.activities
    assert morning.sport == "running" and evening.sport is None
    assert (morning.start, morning.end) == (us("2024-05-01T07:00:00Z"), us("2024-05-01T07:30:05Z"))
    assert morning.elapsed_s == 1805
    assert evening.start == evening.end == us("2024-05-01T16:00:00Z")


def test_mixed_offsets_and_naive_times() -> None:
    body = (
        "<trk><trkseg>"
        + pt("2024-05-01T12:00:00+02:00", "<hr>1</hr>")
        + pt("2024-05-01T06:00:01-04:00", "<hr>2</hr>")
        + pt("2024-05-01T10:00:02.5Z", "<hr>3</hr>")
        + "</trkseg></trk>"
    )
    rec = read(doc(body))
    np.testing.assert_array_equal(
        rec.hr.ts,
        [us("2024-05-01T10:00:00Z"), us("2024-05-01T10:00:01Z"), us("2024-05-01T10:00:02.5Z")],
    )
    naive = (
        "<trk><trkseg>"
        + pt("2024-03-31T00:59:59", "<hr>1</hr>")
        + pt("2024-03-31T02:00:00", "<hr>2</hr>")
        + "</trkseg></trk>"
    )
    with pytest.raises(InputError, match="times without a UTC offset and no time zone"):
        read(doc(naive))
    rec = read(doc(naive), ctx=ReadContext(timezone="Europe/London"))
    np.testing.assert_array_equal(
        rec.hr.ts, [us("2024-03-31T00:59:59Z"), us("2024-03-31T01:00:00Z")]
    )


def test_route_and_waypoints_are_not_samples() -> None:
    body = (
        "<wpt lat='1' lon='2'><time>2024-05-01T10:00:00Z</time><extensions><hr>90</hr>"
        "</extensions></wpt><rte><rtept lat='1' lon='2'><time>2024-05-01T10:00:00Z</time>"
        "</rtept></rte>"
    )
    rec = read(doc(body))
    assert len(rec.hr) == 0 and rec.activities == []
    assert any("1 waypoint(s)" in w for w in rec.warnings)


# --------------------------------------------------------------------------------------------
# damage


def long_track(n: int = 200) -> bytes:
    pts = "\n".join(
        pt(f"2024-05-01T10:{i // 60:02d}:{i % 60:02d}Z", f"<hr>{100 + i % 50}</hr>")
        for i in range(n)
    )
    return doc(f"<trk><type>cycling</type><trkseg>\n{pts}\n</trkseg></trk>")


def test_truncated_with_and_without_salvage() -> None:
    data = long_track()
    cut = data[: len(data) // 2]
    with pytest.raises(InputError, match="malformed XML") as err:
        read(cut)
    assert err.value.path == "t.gpx"
    rec = read(cut, salvage=True)
    complete = len(re.findall(rb"</trkpt>", cut))
    assert rec.salvaged and rec.salvage_reason and "malformed XML" in rec.salvage_reason
    assert len(rec.hr) == complete > 50
    np.testing.assert_array_equal(rec.hr.bpm, [100 + i % 50 for i in range(complete)])
    (a,) = rec.activities
    assert a.sport == "cycling" and a.start == us("2024-05-01T10:00:00Z")
    with pytest.raises(InputError):
        read(data[:120], salvage=True)


def test_bad_time_is_an_error_and_salvage_keeps_before() -> None:
    body = (
        "<trk><trkseg>\n"
        + pt("2024-05-01T10:00:00Z", "<hr>100</hr>")
        + "\n"
        + pt("2024-05-01T25:00:00Z", "<hr>101</hr>")
        + "</trkseg></trk>"
    )
    with pytest.raises(InputError, match=r"time '2024-05-01T25:00:00Z' at line 3"):
        read(doc(body))
    rec = read(doc(body), salvage=True)
    assert rec.salvaged and list(rec.hr.bpm) == [100]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (
            b"<TrainingCenterDatabase/>",
            "not a GPX file: the root element is <TrainingCenterDatabase>",
        ),
        (b"<gpx><trk>", "malformed XML"),
        (b"<?xml version='1.0'?><x:y xmlns:x='a'/>", "not a GPX file"),
    ],
)
def test_bad_documents(data: bytes, reason: str) -> None:
    with pytest.raises(InputError, match=re.escape(reason)):
        read(data)


# --------------------------------------------------------------------------------------------
# hostile XML

LOL = "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
HOSTILE = {
    "billion_laughs": f'<!DOCTYPE gpx [<!ENTITY lol0 "lol">{LOL}]><gpx><trk><name>&lol9;</name>'
    "</trk></gpx>",
    "quadratic_blowup": '<!DOCTYPE gpx [<!ENTITY a "'
    + "x" * 50_000
    + '">]><gpx><trk><name>'
    + "&a;" * 50_000
    + "</name></trk></gpx>",
    "external_file": '<!DOCTYPE gpx [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    '<gpx creator="&x;"><trk><name>&x;</name></trk></gpx>',
    "external_http": '<!DOCTYPE gpx [<!ENTITY x SYSTEM "http://127.0.0.1:9/x">]>'
    "<gpx><trk><name>&x;</name></trk></gpx>",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_hostile_xml_refused(name: str, encoding: str) -> None:
    data = (f'<?xml version="1.0" encoding="{encoding.upper()}"?>\n' + HOSTILE[name]).encode(
        encoding
    )
    t0 = time.perf_counter()
    with pytest.raises(InputError, match=r"DOCTYPE|entit|malformed") as err:
        read(data, salvage=True)
    assert time.perf_counter() - t0 < 5
    assert "root:" not in str(err.value)


# --------------------------------------------------------------------------------------------
# properties

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def recording_or_input_error(data: bytes, salvage: bool) -> None:
    try:
        rec = read(data, salvage=salvage, ctx=ReadContext(timezone="Europe/London"))
    except InputError as exc:
        assert exc.path == "t.gpx" and exc.reason
        return
    assert isinstance(rec, Recording) and rec.format == "gpx"
    assert len(rec.hr.ts) == len(rec.hr.bpm)


@FAST
@given(st.binary(max_size=2000), st.booleans())
def test_any_bytes(data: bytes, salvage: bool) -> None:
    recording_or_input_error(data, salvage)
    gpx.detect(data[:4096])


@FAST
@given(st.binary(max_size=400), st.booleans())
def test_any_bytes_inside_a_track(data: bytes, salvage: bool) -> None:
    recording_or_input_error(
        b"<gpx><trk><trkseg><trkpt><time>2024-05-01T10:00:00Z</time>" + data, salvage
    )


def seeds() -> list[bytes]:
    out = [
        long_track(20),
        doc(
            "<trk><trkseg>"
            + pt("2024-05-01T10:00:00", tpx(120))
            + pt(None, tpx(1))
            + "</trkseg></trk>",
            extra_ns=f' xmlns:gpxtpx="{TPX2}"',
        ),
    ]
    if GPX_DIR.is_dir():
        out += [(GPX_DIR / n).read_bytes() for n in CORPUS_FILES if n != "polar-m400-running.gpx"]
    return out


SEEDS = seeds()
mutation = st.tuples(
    st.sampled_from(["flip", "insert", "delete", "truncate"]),
    st.floats(0, 1),
    st.binary(min_size=1, max_size=8),
)


def mutate(data: bytes, ops: list[tuple[str, float, bytes]]) -> bytes:
    for op, where, junk in ops:
        i = int(where * len(data))
        if op == "flip" and data:
            i = min(i, len(data) - 1)
            data = data[:i] + bytes([data[i] ^ junk[0]]) + data[i + 1 :]
        elif op == "insert":
            data = data[:i] + junk + data[i:]
        elif op == "delete":
            data = data[:i] + data[i + len(junk) * 8 :]
        else:
            data = data[:i]
    return data


@FAST
@given(
    st.sampled_from(range(len(SEEDS))), st.lists(mutation, min_size=1, max_size=4), st.booleans()
)
def test_mutated_files(seed: int, ops: list[tuple[str, float, bytes]], salvage: bool) -> None:
    recording_or_input_error(mutate(SEEDS[seed], ops), salvage)
