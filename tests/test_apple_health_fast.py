"""The fast Apple Health scanner against the reference (libxml2) reader.

Every test reads the same bytes both ways: through :func:`actidose.ingest.apple_health.read`
(the scanner, handing over to the reference reader whatever it does not take on) and through
:func:`~actidose.ingest.apple_health.read_reference`, and requires the same Recording, or the
same error. Where the scanner is expected to take the file on, that is checked too
(``meta["apple_health_reader"] == "fast"``), so a scanner that always handed over would fail.
"""

from __future__ import annotations

import io
import os
import random
import re
import zipfile
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actidose.errors import InputError
from actidose.ingest import apple_health as ah
from actidose.ingest import apple_health_fast as fast
from actidose.ingest.apple_health_writer import write_export
from actidose.recording import ReadContext, Recording

from .conftest import need_corpus

HR = "HKQuantityTypeIdentifierHeartRate"
HRV = "HKQuantityTypeIdentifierHeartRateVariabilitySDNN"
Q = "HKQuantityTypeIdentifier"
READER = "apple_health_reader"


# --- comparing -----------------------------------------------------------------------------------


def same_recording(a: Recording, b: Recording) -> None:
    """Every field equal (arrays exactly, NaN = NaN); ``meta`` without the reader's name."""
    for series in ("hr", "rr"):
        x, y = getattr(a, series), getattr(b, series)
        for f in x.__dataclass_fields__:
            np.testing.assert_array_equal(getattr(x, f), getattr(y, f), err_msg=f"{series}.{f}")
            assert getattr(x, f).dtype == getattr(y, f).dtype
    assert [(v.kind, v.unit, v.origin) for v in a.vendor] == [
        (v.kind, v.unit, v.origin) for v in b.vendor
    ]
    for v, w in zip(a.vendor, b.vendor, strict=True):
        for f in ("start", "duration_s", "value"):
            np.testing.assert_array_equal(getattr(v, f), getattr(w, f), err_msg=f"{v.kind}.{f}")
    for f in ("format", "kind", "activities", "sensor", "device", "serial", "utc_offset_s"):
        assert getattr(a, f) == getattr(b, f), f
    for f in ("salvaged", "salvage_reason", "warnings"):
        assert getattr(a, f) == getattr(b, f), f
    assert {k: v for k, v in a.meta.items() if k != READER} == {
        k: v for k, v in b.meta.items() if k != READER
    }


def outcome(
    read: Callable[..., Recording], data: bytes, salvage: bool = False
) -> Recording | InputError:
    try:
        return read(io.BytesIO(data), path="export.xml", ctx=ReadContext(), salvage=salvage)
    except InputError as exc:
        return exc


def both(data: bytes, salvage: bool = False) -> Recording | InputError:
    """The scanner's outcome, after checking it equals the reference reader's."""
    got = outcome(ah.read, data, salvage)
    want = outcome(ah.read_reference, data, salvage)
    if isinstance(want, InputError):
        assert isinstance(got, InputError), f"reference failed ({want}), fast read {got}"
        assert (type(got), got.reason, got.offset, got.path) == (
            type(want),
            want.reason,
            want.offset,
            want.path,
        )
    else:
        assert isinstance(got, Recording), got
        same_recording(got, want)
        assert want.meta[READER] == "lxml"
    return got


def fast_read(data: bytes) -> Recording:
    got = both(data)
    assert isinstance(got, Recording)
    assert got.meta[READER] == "fast", got.meta[READER]
    return got


def export(body: str, *, prolog: str = '<?xml version="1.0" encoding="UTF-8"?>\n') -> bytes:
    return (
        prolog
        + '<HealthData locale="en_US">\n <ExportDate value="2024-01-05 10:00:00 +0000"/>\n'
        + body
        + "</HealthData>\n"
    ).encode()


def record(
    rtype: str,
    start: str,
    value: str,
    *,
    end: str | None = None,
    unit: str | None = "count/min",
    source: str = "Sam’s Apple Watch",
    device: str | None = "&lt;&lt;HKDevice: 0x3012&gt;, name:Apple Watch, model:Watch&gt;",
    inner: str = "",
) -> str:
    attrs = [("type", rtype), ("sourceName", source), ("sourceVersion", "10.2")]
    if device is not None:
        attrs.append(("device", device))
    if unit is not None:
        attrs.append(("unit", unit))
    end = end or start
    attrs += [("creationDate", end), ("startDate", start), ("endDate", end), ("value", value)]
    head = " <Record " + " ".join(f'{k}="{v}"' for k, v in attrs)
    return f"{head}>\n{inner} </Record>\n" if inner else head + "/>\n"


@pytest.fixture(scope="module")
def generated() -> bytes:
    buf = io.BytesIO()
    write_export(buf, days=10, seed=4, strap_workouts=0.5)
    return buf.getvalue()


# --- real and generated exports -------------------------------------------------------------


def test_every_export_of_the_corpus() -> None:
    corpus = need_corpus()
    names = [
        line.split("\t")[0]
        for line in (corpus / "MANIFEST.tsv").read_text().splitlines()
        if line.startswith("apple-health/")
    ]
    assert names
    for name in names:
        path = corpus / name
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as zf:
                members = [n for n in zf.namelist() if n.endswith("export.xml")]
                assert members
                datas = [zf.read(n) for n in members if "MACOSX" not in n]
        else:
            datas = [path.read_bytes()]
        for data in datas:
            rec = fast_read(data)
            assert len(rec.hr) or rec.vendor


def test_corpus_zip_member_stream_takes_the_fast_path() -> None:
    path = need_corpus() / "apple-health" / "alxdrcirilo-export.zip"
    with zipfile.ZipFile(path) as zf:
        name = next(n for n in zf.namelist() if n.endswith("/export.xml") and "MACOSX" not in n)
        with zf.open(name) as member:
            rec = ah.read(cast(BinaryIO, member), path=f"{path}!{name}", ctx=ReadContext())
    assert rec.meta[READER] == "fast" and len(rec.hr) == 2


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"strap_workouts": 1.0, "beat_time_style": "12h_nnbsp"},
        {"beat_time_style": "24h_comma", "distance_unit": "mi", "energy_unit": "kJ"},
        {"dtd": "ios16", "owner": "Ana"},
        {"dtd": "none", "seed": 7},
        # daylight saving time (Europe) and a flight across the date line
        {"tz_changes": [(date(2024, 1, 1), 3600), (date(2024, 1, 4), 7200)]},
        {"tz_changes": [(date(2024, 1, 1), -36000), (date(2024, 1, 5), 46800)], "seed": 2},
        {"tz_changes": [(date(2024, 1, 1), 19800), (date(2024, 1, 3), 20700)], "seed": 3},
    ],
)
def test_generated_exports(kw: dict[str, Any]) -> None:
    buf = io.BytesIO()
    truth = write_export(buf, **{"days": 8, **kw})
    rec = fast_read(buf.getvalue())
    np.testing.assert_array_equal(rec.hr.ts, truth.hr_ts)
    np.testing.assert_array_equal(rec.rr.ts, truth.rr_ts)
    assert len(rec.activities) == len(truth.workouts) > 0


def test_crlf_line_ends(generated: bytes) -> None:
    fast_read(generated.replace(b"\n", b"\r\n"))


def _odd_white_space(data: bytes, per_name: bool) -> bytes:
    """White space around every attribute as some other writer might put it: the same for an
    attribute name each time (``per_name``), or drawn afresh for every attribute."""
    text = data.decode()
    head, body = text.split("<HealthData", 1)
    rng = random.Random(1)
    seps = [" ", "  ", "\n     ", "\t", "\r\n\t"]
    eqs = ["=", " = ", "\n=\t"]
    chosen: dict[str, tuple[str, str]] = {}

    def spaced(m: re.Match[str]) -> str:
        if per_name:
            sep, eq = chosen.setdefault(m.group(1), (rng.choice(seps), rng.choice(eqs)))
        else:
            sep, eq = rng.choice(seps), rng.choice(eqs)
        return f'"{sep}{m.group(1)}{eq}"'

    body = re.sub(r'" (\w+)="', spaced, body)
    body = body.replace('"/>', '" />').replace("\n <Record", "\n\n\t<Record")
    body = body.replace("</Record>", "</Record >")
    return (head + "<HealthData" + body).encode()


def test_odd_white_space(generated: bytes) -> None:
    fast_read(_odd_white_space(generated, per_name=True))


def test_white_space_different_in_every_tag_is_handed_over(generated: bytes) -> None:
    got = both(_odd_white_space(generated, per_name=False))
    assert isinstance(got, Recording) and "too many different forms" in got.meta[READER]


def _shuffled(data: bytes, per_element: bool) -> bytes:
    """The attributes of every element in another order: one order per element name, or a
    new order in every tag."""
    rng = random.Random(2)
    attr = re.compile(r'(\w+)="([^"]*)"')
    orders: dict[tuple[str, int], list[int]] = {}

    def shuffle(m: re.Match[str]) -> str:
        pairs = attr.findall(m.group(2))
        key = (m.group(1), len(pairs))
        if per_element:
            order = orders.setdefault(key, rng.sample(range(len(pairs)), len(pairs)))
        else:
            order = rng.sample(range(len(pairs)), len(pairs))
        return (
            m.group(1) + " ".join(f'{k}="{v}"' for k, v in (pairs[i] for i in order)) + m.group(3)
        )

    return re.sub(
        r"(<(?:Record|InstantaneousBeatsPerMinute|Workout|WorkoutStatistics|Me) )([^>]*?)(/?>)",
        shuffle,
        data.decode(),
    ).encode()


def test_attributes_in_other_orders(generated: bytes) -> None:
    fast_read(_shuffled(generated, per_element=True))


def test_attributes_in_a_new_order_in_every_tag(generated: bytes) -> None:
    both(_shuffled(generated, per_element=False))


def test_escaped_characters_in_values(generated: bytes) -> None:
    text = generated.decode()
    text = text.replace("Alex’s Apple Watch", "Alex&#8217;s &amp; &quot;Co&quot; &lt;Watch&gt;")
    text = text.replace("Alex’s iPhone", "Alex&#x2019;s&#9;iPhone")
    text = text.replace('unit="count/min"', 'unit="count&#47;min"', 50)
    text = text.replace('value="7', 'value="&#55;', 30)
    rec = fast_read(text.encode())
    # libxml2, substituting no entity, reports an "&" made by a reference as "&#38;": both
    # readers give the "&" the file means (and a literal "&#38;", written "&amp;#38;", stays)
    assert 'Alex’s & "Co" <Watch> (' in rec.meta["hr_sources"]
    lit = fast_read(generated.replace("Alex’s Apple Watch".encode(), b"A&amp;#38;B"))
    assert "A&#38;B (" in lit.meta["hr_sources"]
    assert any(v.origin == "Alex’s\tiPhone" for v in rec.vendor)


def test_white_space_inside_values_is_normalised() -> None:
    body = record(HR, "2020-05-01 10:00:00 +0000", "70", source="Sam\ts\r\nWatch", unit="count/min")
    body += record(HR, "2020-05-01 10:00:05 +0000", "71", source="Sam s&#10;Watch")
    body += record(HR, "2020-05-01 10:00:10 +0000", "72", source="Sam s Watch")
    rec = fast_read(export(body))
    assert rec.meta["hr_sources"] == "Sam s Watch (2); Sam s\nWatch (1)"


def test_odd_values_units_and_missing_attributes() -> None:
    body = "".join(
        record(HR, f"2020-05-01 10:00:{i:02d} +0000", v)
        for i, v in enumerate(["72", "72.5", "-1", "0072", "1e2", " 7", "7 ", "+5", ".5", "5."])
    )
    body += "".join(
        record(HR, f"2020-05-01 10:01:{i:02d} +0000", v)
        for i, v in enumerate(["abc", "", "nan", "1_000", "12345678901234567890", "0x10"])
    )
    body += record(HR, "2020-05-01 10:02:00 +0000", "1.5", unit="count/s")
    body += record(HR, "2020-05-01 10:02:01 +0000", "80", unit=None, device=None)
    body += record(HR, "2020-05-01 10:02:02 +0000", "80", unit="furlongs")
    body += record(Q + "StepCount", "2020-05-01 10:00:00 +0000", "12", unit="count")
    body += record(Q + "StepCount", "2020-05-01 10:00:00 +0000", "x", unit="count")
    body += record(Q + "DistanceWalkingRunning", "2020-05-01 10:00:00 +0000", "1", unit="km")
    body += record(Q + "DistanceWalkingRunning", "2020-05-01 11:00:00 +0000", "1", unit="mi")
    body += record(Q + "DistanceWalkingRunning", "2020-05-01 12:00:00 +0000", "1", unit="yard")
    body += record(Q + "DistanceWalkingRunning", "2020-05-01 13:00:00 +0000", "2", unit="km")
    body += record(Q + "ActiveEnergyBurned", "2020-05-01 10:00:00 +0000", "4", unit=None)
    body += (
        ' <Record type="HKQuantityTypeIdentifierStepCount" startDate="2020-05-01 10:00:00 +0000"'
    )
    body += ' endDate="2020-05-01 10:00:00 +0000" value="3" unit="count"/>\n'
    body += ' <Record sourceName="no type" value="1"/>\n <Record/>\n'
    rec = fast_read(export(body))
    assert len(rec.hr) == 19 and rec.warnings
    dist = next(v for v in rec.vendor if v.kind == "distance_m")
    assert dist.value.tolist() == [1000.0, 1609.344, 2000.0]  # in file order, yards skipped


def test_heart_rate_variability_beats() -> None:
    beats = "".join(
        f'   <InstantaneousBeatsPerMinute bpm="{60 + i}" time="{t}"/>\n'
        for i, t in enumerate(
            ["11:59:58.50 PM", "11:59:59.40\u202fPM", "12:00:00.20 AM", "0:00:01,5", "bad", ""]
        )
    )
    inner = f"  <HeartRateVariabilityMetadataList>\n{beats}  </HeartRateVariabilityMetadataList>\n"
    body = record(HRV, "2020-05-01 23:59:50 +0200", "40", unit="ms", inner=inner)
    body += record(HRV, "2020-05-02 09:00:00 +0200", "41", unit="ms", inner=inner)  # moved
    body += '   <InstantaneousBeatsPerMinute bpm="70" time="9:00:02.00 AM"/>\n'  # no list
    rec = fast_read(export(' <InstantaneousBeatsPerMinute bpm="1" time="1:00:00 AM"/>\n' + body))
    assert len(rec.rr) > 4 and any("unreadable" in w for w in rec.warnings)


def test_workouts_and_header_elements() -> None:
    stats = (
        '  <WorkoutStatistics type="{t}" startDate="{s}" endDate="{e}" average="{a}" '
        'maximum="{m}" unit="count/min"/>\n'
    )
    body = (
        ' <Me HKCharacteristicTypeIdentifierDateOfBirth="1980-02-03" '
        'HKCharacteristicTypeIdentifierBiologicalSex="HKBiologicalSexFemale"/>\n'
        + record(HR, "2020-05-01 10:00:00 +0000", "99")
        + ' <Workout workoutActivityType="HKWorkoutActivityTypeRunning" duration="30" '
        'durationUnit="min" sourceName="W" startDate="2020-05-01 10:00:00 +0000" '
        'endDate="2020-05-01 10:40:00 +0000">\n'
        + stats.format(t=HR, s="2020-05-01 10:00:00 +0000", e="2020-05-01 10:10:00 +0000", a=1, m=2)
        + stats.format(t=HR, s="2020-05-01 10:00:00 +0000", e="2020-05-01 10:40:00 +0000", a=3, m=4)
        + " </Workout>\n"
        + stats.format(t=HR, s="2020-05-01 10:00:00 +0000", e="2020-05-02 10:40:00 +0000", a=5, m=6)
        + ' <Workout workoutActivityType="HKWorkoutActivityTypeYoga" startDate="2020-05-02 '
        '10:00:00 +0000" endDate="2020-05-02 11:00:00 +0000" sourceName="&amp;"/>\n'
    )
    rec = fast_read(export(body))
    assert [a.sport for a in rec.activities] == ["running", "yoga"]
    assert rec.activities[0].avg_hr == 5.0  # the statistics spanning the longest time
    assert rec.meta["birth_year"] == "1980" and rec.meta["sex"] == "f"


def test_ties_between_devices_are_broken_as_the_reference_does() -> None:
    """Two devices with as many heart rates: the one met first is the Recording's device."""
    watch = "&lt;&lt;HKDevice: 0x1&gt;, name:Apple Watch, model:Watch&gt;"
    strap = "&lt;&lt;HKDevice: 0x2&gt;, name:Polar H10 1234, manufacturer:Polar&gt;"
    t = "2013-12-31 14:00:00 -1000"
    for first, second in ((watch, strap), (strap, watch)):
        body = record(HR, t, "70", device=None) + record(HR, t, "71", device=first, unit=None)
        body += record(HR, t, "72", device=second, inner='  <MetadataEntry key="k" value="0"/>\n')
        rec = fast_read(export(body))
        assert rec.device == ("Apple Watch" if first is watch else "Polar H10 1234")


def test_long_values_and_many_layouts() -> None:
    long_device = "&lt;" + "x" * 600 + ", name:Polar H10 1&gt;"
    body = "".join(
        record(
            HR,
            f"2020-05-01 10:{i // 60:02d}:{i % 60:02d} +0000",
            str(60 + i % 50),
            device=long_device if i % 7 == 0 else None,
            source=f"S{i % 13}",
        )
        for i in range(400)
    )
    rec = fast_read(export(body))
    assert (len(rec.hr) == 400 and rec.sensor == "chest_strap") or rec.sensor == "unknown"


# --- what the scanner hands over, and hostile input ------------------------------------------


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda t: t.replace(" <Record", " <!-- a comment -->\n <Record", 1), "markup"),
        (lambda t: t.replace('sourceName="W"', "sourceName='W'", 1), "markup"),
        (lambda t: t.replace("</HealthData>", "<?pi x?></HealthData>"), "markup"),
        (lambda t: t.replace(" <Record", " <![CDATA[x]]>\n <Record", 1), "markup"),
        (lambda t: t.replace("<HealthData ", '<HealthData xmlns="urn:x" '), "namespaces"),
        (lambda t: t.replace(" <Record", " text\n <Record", 1), "markup"),
        (lambda t: t.replace('value="70"', 'value="70" value="71"', 1), "twice"),
        (lambda t: t.replace('startDate="2019-01', 'startDate="2019-13', 1), "unreadable"),
        (lambda t: t.replace('startDate="2019', 'startDate="x2019', 1), "another form"),
        (lambda t: t.replace('sourceName="W"', 'sourceName="&wat;"', 1), "entity"),
        (lambda t: t.replace('sourceName="W"', 'sourceName="a&b"', 1), "entity"),
        (lambda t: t.replace('sourceName="W"', 'sourceName="&#0;"', 1), "character reference"),
        (lambda t: t.replace('sourceName="W"', 'sourceName="\x0b"', 1), "control"),
        (lambda t: t.replace('sourceName="W"', 'sourceName="a<b"', 1), "<"),
        (lambda t: t.replace("</Record>", "</Recrod>", 1), "does not match"),
        (lambda t: t[: t.index("</HealthData>")], "truncated"),
        (lambda t: t.replace("\n <Record", "\n <Workout/><Record", 1), "without attributes"),
        (lambda t: t + "<More/>\n", "after the end of the root"),
    ],
)
def test_what_the_scanner_hands_over(change: Callable[[str], str], why: str) -> None:
    hr = (
        ' <Record type="{}" sourceName="W" unit="count/min" startDate="2019-01-01 00:0{}:00 +0000" '
    )
    body = "".join(
        (
            hr.format(HR, i) + 'endDate="2019-01-01 00:00:00 +0000" value="70">\n'
            '  <MetadataEntry key="k" value="v"/>\n </Record>\n'
        )
        for i in range(3)
    )
    data = change(export(body).decode()).encode("utf-8", "surrogateescape")
    got = both(data)
    if isinstance(got, Recording):
        assert got.meta[READER].startswith("lxml (") and why in got.meta[READER], got.meta[READER]
    with pytest.raises(fast.Declined, match=re.escape(why) if why != "<" else '"<"'):
        head = ah._prepare_head(data[: 1 << 20], "x")
        fast.scan(io.BytesIO(data[len(head) :]), head, path="x")


def test_entity_declared_in_the_dtd_and_used_in_an_attribute() -> None:
    data = (
        '<?xml version="1.0"?>\n<!DOCTYPE HealthData [<!ENTITY w "Watch">]>\n'
        '<HealthData locale="x">'
        f'<Record type="{HR}" sourceName="&w;" unit="count/min" startDate="2019-01-01 00:00:00 '
        '+0000" endDate="2019-01-01 00:00:00 +0000" value="60"/></HealthData>\n'
    ).encode()
    got = both(data)
    assert isinstance(got, InputError) and "refused" in got.reason
    # the DOCTYPE blanked as the reader does, the entity still declared nowhere: handed over
    with pytest.raises(fast.Declined, match="entity"):
        doctype = b'<!DOCTYPE HealthData [<!ENTITY w "Watch">]>'
        fast.scan(io.BytesIO(b""), data.replace(doctype, b" " * len(doctype)), path="x")


def test_a_fault_of_the_scanner_hands_over(
    generated: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Recording:
        raise IndexError("a bug")

    monkeypatch.setattr(fast, "scan", broken)
    rec = outcome(ah.read, generated)
    assert isinstance(rec, Recording)
    assert rec.meta[READER] == "lxml (the fast scanner failed: IndexError('a bug'))"
    monkeypatch.undo()
    same_recording(rec, fast_read(generated))


def test_unseekable_streams_go_to_the_reference_reader(generated: bytes) -> None:
    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self.buf = io.BytesIO(generated)

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

        def readinto(self, b: Any) -> int:
            data = self.buf.read(len(b))
            b[: len(data)] = data
            return len(data)

    rec = ah.read(cast(BinaryIO, io.BufferedReader(Pipe())), path="p", ctx=ReadContext())
    assert rec.meta[READER] == "lxml (stream not seekable)"
    same_recording(rec, fast_read(generated))


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"plain", "plain"),
        (b"a&amp;b&lt;&gt;&quot;&apos;", "a&#38;b<>\"'"),
        (b"&#38;&#x26;&amp;amp;", "&#38;&#38;&#38;amp;"),
        (b"&#8217;&#x2019;&#X41;", "’’&#X41;"),
        (b"a\tb\nc\r\nd\re", "a b c d e"),
        (b"&#10;&#9;", "\n\t"),
        ("Zoë’s".encode(), "Zoë’s"),
    ],
)
def test_decode_attribute(raw: bytes, text: str) -> None:
    if "&#X" in text:
        with pytest.raises(fast.Declined):
            fast.decode_attribute(raw)
    else:
        assert fast.decode_attribute(raw) == text


@pytest.mark.parametrize(
    "raw",
    [b"<", b"&", b"&x;", b"&#;", b"&#xD800;", b"&#1114112;", b"\x00", b"\xff", b"\xef\xbf\xbe"],
)
def test_decode_attribute_refuses(raw: bytes) -> None:
    with pytest.raises(fast.Declined):
        fast.decode_attribute(raw)


# --- two processes -------------------------------------------------------------------------


@pytest.fixture
def big_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A 14 MB export, read by two processes at once (no probe), in pieces of about 0.5 MB."""
    monkeypatch.setattr(fast, "PARALLEL_MIN", 200_000)
    monkeypatch.setattr(fast, "_IDLE_PROBE_S", 0.0)
    monkeypatch.setattr(fast, "_idle_core", lambda since: True)
    monkeypatch.setattr(fast, "BLOCK", 1 << 18)
    monkeypatch.setattr(fast, "_MIN_PIECE", 1 << 19)
    path = tmp_path / "export.xml"
    write_export(path, days=24, seed=11, strap_workouts=0.3)
    return path


def read_file(path: Path) -> Recording:
    with path.open("rb") as fp:
        return ah.read(fp, path=str(path), ctx=ReadContext())


def spy_joins(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    joined: list[bool] = []
    join = fast._join

    def spy(sc: Any, part: Any) -> bool:
        joined.append(join(sc, part))
        return joined[-1]

    monkeypatch.setattr(fast, "_join", spy)
    return joined


def test_two_processes_give_the_same_recording(
    big_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    joined = spy_joins(monkeypatch)
    rec = read_file(big_file)
    assert rec.meta[READER] == "fast"
    assert joined and all(joined)  # every piece the other process read was joined
    same_recording(rec, outcome(ah.read_reference, big_file.read_bytes()))


@pytest.mark.parametrize(
    "seam",
    [
        b'"/>\n   <InstantaneousBeatsPerMinute',  # inside a beat list
        b'">\n  <MetadataEntry',  # inside a Record
        b'" unit="',  # inside a tag
    ],
)
def test_a_wrong_seam_is_read_on_by_the_first_process(
    big_file: Path, monkeypatch: pytest.MonkeyPatch, seam: bytes
) -> None:
    """A piece that begins where its assumption (it starts directly inside HealthData, just
    after a value) is false: it is not joined and this process reads on from there."""
    data = big_file.read_bytes()
    wrong = data.index(seam, len(data) // 2) + 1
    real = fast._seam_after
    calls: list[int] = []

    def seam_after(fd: int, at: int, stop: int) -> int | None:
        calls.append(at)
        if len(calls) == 2:  # the other process's first cut: its first piece starts wrong
            return wrong
        return real(fd, at, stop)

    monkeypatch.setattr(fast, "_seam_after", seam_after)
    joined = spy_joins(monkeypatch)
    rec = read_file(big_file)
    assert rec.meta[READER] == "fast" and len(calls) >= 2
    assert False not in joined or joined[-1] is False  # joined up to the wrong piece at most
    same_recording(rec, outcome(ah.read_reference, data))


def test_no_second_process_on_a_busy_machine(
    big_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fast, "_idle_core", lambda since: False)
    monkeypatch.setattr(fast.multiprocessing, "get_context", None)  # fails if a split starts
    rec = read_file(big_file)
    assert rec.meta[READER] == "fast"
    same_recording(rec, outcome(ah.read_reference, big_file.read_bytes()))


@pytest.mark.parametrize("platform", ["darwin", "win32"])
def test_one_process_where_forking_is_not_safe(
    big_file: Path, monkeypatch: pytest.MonkeyPatch, platform: str
) -> None:
    monkeypatch.setattr(fast.sys, "platform", platform)
    monkeypatch.setattr(fast.multiprocessing, "get_context", None)  # fails if a split starts
    rec = read_file(big_file)
    assert rec.meta[READER] == "fast"
    same_recording(rec, outcome(ah.read_reference, big_file.read_bytes()))


def test_a_failing_second_process_is_not_trusted(
    big_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def nonsense(*args: Any) -> tuple[Any, dict[str, Any]]:
        return None, {"seam": [(1, "Nonsense")], "end": 0}

    monkeypatch.setattr(fast, "_read_piece", nonsense)
    joined = spy_joins(monkeypatch)
    rec = read_file(big_file)
    assert rec.meta[READER] == "fast" and joined == [False]
    same_recording(rec, outcome(ah.read_reference, big_file.read_bytes()))


def test_a_second_process_that_dies_is_not_waited_for(
    big_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other process killed in the middle of a piece: this one reads what is left."""

    def die(*args: Any) -> Any:
        os._exit(9)

    monkeypatch.setattr(fast, "_read_piece", die)
    rec = read_file(big_file)
    assert rec.meta[READER] == "fast"
    same_recording(rec, outcome(ah.read_reference, big_file.read_bytes()))


def test_a_second_process_that_hangs_is_stopped(
    big_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other process stuck in a piece: after the wait, it is stopped and this process
    reads what is left."""
    import time

    def hang(*args: Any) -> Any:
        time.sleep(600)

    monkeypatch.setattr(fast, "_read_piece", hang)
    monkeypatch.setattr(fast, "_WAIT_S", 0.5)
    t0 = time.perf_counter()
    rec = read_file(big_file)
    assert time.perf_counter() - t0 < 60
    assert rec.meta[READER] == "fast"
    same_recording(rec, outcome(ah.read_reference, big_file.read_bytes()))


def test_the_parts_come_back_through_the_pipe_without_a_memory_file(
    big_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(fast.os, "memfd_create", raising=False)
    joined = spy_joins(monkeypatch)
    rec = read_file(big_file)
    assert joined and all(joined)
    same_recording(rec, outcome(ah.read_reference, big_file.read_bytes()))


def test_a_truncated_file_read_in_two_is_refused_like_the_reference(
    big_file: Path, tmp_path: Path
) -> None:
    data = big_file.read_bytes()
    for cut in (len(data) - 30, data.rindex(b'"') + 1, len(data) * 3 // 4):
        path = tmp_path / f"cut{cut}.xml"
        path.write_bytes(data[:cut])
        with pytest.raises(InputError) as got:
            read_file(path)
        want = outcome(ah.read_reference, data[:cut])
        assert isinstance(want, InputError)
        assert (got.value.reason, got.value.offset) == (want.reason, want.offset)


def _read_in_pieces(path: Path, cuts: list[int]) -> Recording:
    """Read ``path`` as the two processes would, in one process, with this process's part
    ending at ``cuts[0]`` and the other's pieces between the cuts (deterministic)."""
    from actidose.ingest import xmlsafe

    end = path.stat().st_size
    with path.open("rb") as fp:
        head = ah._prepare_head(fp.read(xmlsafe.PROLOG_LIMIT), str(path))
        start = fast._root_start(head)
        sc = fast._Scanner(str(path))
        sc.offset = start
        src = fast._Source(memoryview(head)[start:], fp, limit=cuts[0] - start)
        fast._run(sc, src, final=False)
        sc.collect()
        pieces: list[tuple[int, Any]] = []
        like = None
        fd = fp.fileno()
        for a, b in zip(cuts, [*cuts[1:], end], strict=True):
            try:
                like, got = fast._read_piece(fd, a, b, b == end, str(path), like)
            except fast.Declined as exc:
                got = str(exc)
            pieces.append((a, got))
        return fast._join_all(sc, fp, cuts[0], end, pieces)


def _stray_beats(data: bytes, every: int) -> tuple[bytes, list[int]]:
    """The export with a beat directly inside HealthData after every ``every``-th HRV record
    (a beat the reference reader gives to the last HRV record before it), and the offsets
    just after those HRV records' last values."""
    marker = b"HeartRateVariabilitySDNN"
    out = bytearray()
    cuts: list[int] = []
    pos = 0
    k = 0
    while (i := data.find(marker, pos)) >= 0:
        close = data.index(b"</Record>\n", i) + len(b"</Record>\n")
        out += data[pos:close]
        pos = close
        k += 1
        if k % every == 0:
            last = data.rindex(b'"', 0, close)  # the HRV record's last value ends there
            cuts.append(len(out) - (close - last - 1))
            out += b' <InstantaneousBeatsPerMinute bpm="70" time="1:00:00.00 AM"/>\n'
    out += data[pos:]
    return bytes(out), cuts


def test_beats_before_a_pieces_first_hrv_record_belong_to_the_record_before(
    tmp_path: Path,
) -> None:
    src = tmp_path / "plain.xml"
    write_export(src, days=6, seed=5)
    data, seams = _stray_beats(src.read_bytes(), every=3)
    assert len(seams) >= 4
    path = tmp_path / "stray.xml"
    path.write_bytes(data)
    want = outcome(ah.read_reference, data)
    assert isinstance(want, Recording)
    # cuts at the end of an HRV record (so the stray beat after the next record is the
    # piece's before its first HRV record), and one before any HRV record at all
    first_hrv = data.index(b"HeartRateVariabilitySDNN")
    early = data.rindex(b'"', 0, data.rindex(b"\n <Record", 0, first_hrv)) + 1
    for cuts in ([seams[0], seams[2]], [early, seams[1], seams[3]]):
        assert all(data[c - 1 : c] == b'"' for c in cuts)
        same_recording(_read_in_pieces(path, cuts), want)


def test_a_piece_that_fails_is_read_by_this_process(tmp_path: Path) -> None:
    src = tmp_path / "plain.xml"
    write_export(src, days=6, seed=5)
    data = src.read_bytes()
    cuts = [m.start() + 1 for m in fast._SEAM.finditer(data)]
    chosen = [cuts[len(cuts) // 4], cuts[len(cuts) // 2], cuts[3 * len(cuts) // 4]]
    # a control character inside the middle piece: the reference refuses the file, and so
    # does this process when it reads that piece itself
    bad = bytearray(data)
    at = bad.index(b'value="', chosen[1]) + 7
    bad[at] = 1
    path = tmp_path / "bad.xml"
    path.write_bytes(bytes(bad))
    want = outcome(ah.read_reference, bytes(bad))
    try:
        got: Recording | InputError = _read_in_pieces(path, chosen)
    except fast.Declined:
        got = outcome(ah.read_reference, bytes(bad))  # what ah.read does on a refusal
    assert type(got) is type(want)
    path.write_bytes(data)
    same_recording(_read_in_pieces(path, chosen), outcome(ah.read_reference, data))


def test_seam_after_finds_the_first_line_that_starts_a_record(tmp_path: Path) -> None:
    src = tmp_path / "plain.xml"
    write_export(src, days=3, seed=2)
    data = src.read_bytes()
    seams = [m.start() + 1 for m in fast._SEAM.finditer(data)]
    with src.open("rb") as fp:
        fd = fp.fileno()
        for at in (0, seams[3] - 1, seams[3], seams[3] + 1, len(data) // 2):
            want = next(s for s in seams if s >= at)
            assert fast._seam_after(fd, at, len(data)) == want
        assert fast._seam_after(fd, seams[-1] + 1, len(data)) is None
        assert fast._seam_after(fd, seams[3] - 1, seams[3]) is None  # not before stop


def test_seam_after_looks_only_so_far(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file without places to cut costs a bounded search, not a read of the rest."""
    path = tmp_path / "flat.xml"
    filler = b'\n  <MetadataEntry key="k" value="v"/>' * 80_000  # 3 MB, nowhere to cut
    path.write_bytes(b'<HealthData>\n <Record value="1">' + filler + b'\n <Record a="2"/>')
    monkeypatch.setattr(fast, "_SEAM_SEARCH", 1 << 20)
    with path.open("rb") as fp:
        assert fast._seam_after(fp.fileno(), 0, path.stat().st_size) is None
        monkeypatch.setattr(fast, "_SEAM_SEARCH", 8 << 20)
        assert fast._seam_after(fp.fileno(), 0, path.stat().st_size) is not None


# --- generated records and damage: the same outcome as the reference reader -------------------

_SOURCES = [
    "Sam’s Apple Watch",
    "Polar Beat",
    "A &amp; B",
    "x&#8217;s",
    "&lt;iPhone&gt;",
    "tab\tname",
    "Zoë",
    "",
]
_DEVICES = [
    None,
    "&lt;&lt;HKDevice: 0x1&gt;, name:Apple Watch, model:Watch&gt;",
    "&lt;&lt;HKDevice: 0x2&gt;, name:Polar H10 1234, manufacturer:Polar&gt;",
    "name:iPhone",
]
_TYPES = [
    HR,
    HR,
    HRV,
    Q + "StepCount",
    Q + "DistanceWalkingRunning",
    Q + "ActiveEnergyBurned",
    Q + "RestingHeartRate",
    Q + "BasalEnergyBurned",
    "HKCategoryTypeIdentifierSleepAnalysis",
]
_UNITS = [None, "count/min", "count/s", "count", "km", "mi", "kcal", "kJ", "ms", "s", "furlong"]
_VALUES = st.one_of(
    st.integers(0, 300).map(str),
    st.decimals(-1000, 1000, places=3, allow_nan=False).map(str),
    st.sampled_from(["", "abc", " 7", "1e3", "-0", "+5", ".5", "5.", "nan", "1_000", "&#55;2"]),
)
_OFFSETS = [-36000, -18000, 0, 3600, 7200, 19800, 20700, 46800]


@st.composite
def _date(draw: st.DrawFn) -> str:
    t = draw(st.datetimes(datetime(2014, 1, 1), datetime(2030, 1, 1)))
    off = draw(st.sampled_from(_OFFSETS))
    local = t + timedelta(seconds=off)
    sign = "-" if off < 0 else "+"
    text = f"{local:%Y-%m-%d %H:%M:%S} {sign}{abs(off) // 3600:02d}{abs(off) % 3600 // 60:02d}"
    return draw(
        st.sampled_from(
            [text] * 12
            + [
                text.replace("-", "", 2).replace(" ", "").replace(":", ""),
                "2019-02-30 00:00:00 +0000",
                text[:-1],
            ]
        )
    )


@st.composite
def _record(draw: st.DrawFn) -> str:
    rtype = draw(st.sampled_from(_TYPES))
    attrs: list[tuple[str, str]] = [("type", rtype)]
    if draw(st.integers(0, 9)):
        attrs.append(("sourceName", draw(st.sampled_from(_SOURCES))))
    device = draw(st.sampled_from(_DEVICES))
    if device is not None:
        attrs.append(("device", device))
    unit = draw(st.sampled_from(_UNITS))
    if unit is not None:
        attrs.append(("unit", unit))
    attrs += [("startDate", draw(_date())), ("endDate", draw(_date()))]
    if draw(st.integers(0, 9)):
        attrs.append(("value", draw(_VALUES)))
    attrs = draw(st.permutations(attrs)) if draw(st.booleans()) else attrs
    sep = draw(st.sampled_from([" ", " ", " ", "\n  ", "\t"]))
    eq = draw(st.sampled_from(["=", "=", " = "]))
    head = "<Record" + "".join(f'{sep}{k}{eq}"{v}"' for k, v in attrs)
    if rtype == HRV and draw(st.booleans()):
        times = draw(
            st.lists(
                st.sampled_from(
                    ["7:43:12.34 PM", "7:43:13.10\u202fPM", "19:43:14,5", "x", "12:00:01 AM"]
                ),
                max_size=4,
            )
        )
        beats = "".join(
            f'<InstantaneousBeatsPerMinute bpm="{60 + i}" time="{t}"/>' for i, t in enumerate(times)
        )
        return (
            f"{head}><HeartRateVariabilityMetadataList>{beats}</HeartRateVariabilityMetadataList>"
            "</Record>\n"
        )
    if draw(st.integers(0, 3)) == 0:
        meta = draw(st.sampled_from(["0", "é", "&amp;", "a\tb"]))
        return f'{head}>\n  <MetadataEntry key="k" value="{meta}"/>\n</Record>\n'
    return head + "/>\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_record(), min_size=1, max_size=25), st.booleans())
def test_generated_records(records: list[str], salvage: bool) -> None:
    both(export(" " + " ".join(records)), salvage)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_record().filter(lambda r: '="2019-02-30' not in r), min_size=20, max_size=40))
def test_generated_records_of_clean_files_take_the_fast_path(records: list[str]) -> None:
    data = export(" " + " ".join(records))
    got = both(data)
    if isinstance(got, Recording) and not re.search(
        rb'Date\s*=\s*"(?!\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}")', data
    ):
        assert got.meta[READER] == "fast", got.meta[READER]


def _damaged_seeds() -> list[bytes]:
    out = []
    for kw in ({"days": 1, "seed": 5}, {"days": 1, "seed": 6, "dtd": "ios16"}):
        buf = io.BytesIO()
        write_export(buf, **kw)
        out.append(buf.getvalue())
    return out


SEEDS = _damaged_seeds()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(range(len(SEEDS))),
    st.lists(
        st.tuples(
            st.sampled_from(["flip", "insert", "delete", "cut", "dup"]),
            st.floats(0.02, 1),
            st.binary(min_size=1, max_size=6)
            | st.sampled_from([b'"', b"<", b">", b"&", b"/", b"=", b" ", b"\x0b", b"&#0;"]),
        ),
        min_size=1,
        max_size=3,
    ),
    st.booleans(),
)
def test_damaged_exports(which: int, edits: list[tuple[str, float, bytes]], salvage: bool) -> None:
    """Whatever the damage, the same Recording or the same error as the reference reader."""
    data = bytearray(SEEDS[which])
    for op, where, payload in edits:
        i = int(where * (len(data) - 1))
        if op == "flip" and data:
            data[i] ^= payload[0] or 1
        elif op == "insert":
            data[i:i] = payload
        elif op == "delete":
            del data[i : i + len(payload)]
        elif op == "dup":
            data[i:i] = data[i : i + 40]
        else:
            del data[i:]
    both(bytes(data), salvage)


def test_every_truncation_point_of_a_small_export() -> None:
    buf = io.BytesIO()
    write_export(buf, days=1, seed=8, dtd="none")
    data = buf.getvalue()
    start = data.index(b"<Record")
    for cut in range(start, len(data), max(1, (len(data) - start) // 150)):
        both(data[:cut], salvage=bool(cut % 2))


def test_a_second_process_only_if_a_core_was_free_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The split asks how much the cores idled while this process read alone (not the
    lagging load average, which counts this process's own recent work)."""
    got = fast._cpu_times()
    if got is not None:  # Linux: /proc/stat
        assert 0 <= got[0] <= got[1]
    monkeypatch.setattr(fast.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(fast, "_cpu_times", lambda: (1090, 2200))
    assert fast._idle_core((1000, 2000))  # 90 of 200 ticks idle: the other core mostly
    assert not fast._idle_core((1060, 2000))  # 30 of 200: the other core was busy too
    monkeypatch.setattr(fast, "_cpu_times", lambda: None)  # no /proc/stat: load average
    monkeypatch.setattr(fast.os, "getloadavg", lambda: (0.2, 0.0, 0.0))
    assert fast._idle_core(None)
    monkeypatch.setattr(fast.os, "getloadavg", lambda: (1.5, 0.0, 0.0))
    assert not fast._idle_core(None)
    monkeypatch.setattr(fast.os, "cpu_count", lambda: 1)
    assert not fast._idle_core(None)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(1, 60)), min_size=0, max_size=80),
)
def test_stable_order_over_runs_equals_a_stable_sort(runs: list[tuple[int, int]]) -> None:
    key = np.repeat(
        np.array([k for k, _ in runs], np.int64), np.array([n for _, n in runs], np.int64)
    )
    assert np.array_equal(fast._stable_order(key), np.argsort(key, kind="stable"))
