"""The BLE sync spool: every notification on disk before anything else, then into DuckDB.

A live sync appends each notification, with its host receive time, to a spool file of its own
(one per sync session, under ``<db>.spool/`` unless told otherwise) *before* it is parsed or
stored, and the database is written from the spool in short transactions. After a crash,
:func:`store_spool` (``actidose sync --recover``) imports what the spool holds, exactly once.

File layout (all integers little-endian)::

    magic    b"ACTSPOOL1\\n"
    record*  [u32 length][u32 crc32][u64 seq][i64 recv_ts_us][u8 kind][payload]

``length`` counts the bytes after the crc (17 + len(payload)); ``crc32`` (zlib) covers them. The
first record (kind :data:`HEADER`, seq 0) holds JSON: session uuid, participant, device address
and name, started_at. Then notifications (:data:`HRM`, :data:`PMD`: the raw characteristic
value) and :data:`EVENT` records (JSON: connected, disconnected, device_info, battery, stopped).
A record cut short by a crash (short read or bad crc) ends the readable part: it is reported
as ``torn_at_offset``, never guessed at.

Storing (``sources`` & co.): a sync session is ONE source, ``sha256`` = sha256 of the session
uuid (text, UTF-8) so that it is stable across flushes and recoveries; ``format`` 'ble', kind
'activity', ``path`` the spool file. The sensor sends no timestamps: each HR sample is placed at
the host receive time of its notification; the RR intervals of a notification get beat times
reconstructed backwards from that receive time (the last interval ends at it). Exactly-once:
the table ``ble_sync`` (created here on first use, not by the schema migrations) keeps, per
source, the highest spool ``seq`` committed, updated in the same transaction as the samples.
Gaps (a disconnect until the next notification) are kept in ``ble_sync.gaps``; nothing is
interpolated into them. ``ble_sync.battery_pct`` is the lowest battery level the sensor reported
in the session (NULL: never reported), for the cohort report's battery flag.

Accelerometer (``actidose sync --acc``): :data:`PMD` records are the raw Polar PMD data
notifications; the settings the sync chose (sample rate, resolution, range, factor) are an
``pmd_settings`` EVENT written before the first frame of each connection, so a spool decodes on
its own. Frames are decoded in spool order (:func:`decode_pmd`), per-sample times chained from
the previous frame's timestamp within a connection (reset at each ``disconnected`` /
``connected`` / ``pmd_settings`` event: the first frame after one is spread back at 1/rate).
Sensor times (ns since 2000-01-01 on the sensor's own clock) are placed in UTC by ONE offset per
session: the median over frames of (host receive time − sensor time of the frame's last
sample). The median ignores frames delayed in the radio or the queue; BLE latency (tens of ms)
stays in the offset, and sensor clock drift over a session is not corrected. Samples not after
the previous one kept (an overlap after a reconnect) are dropped and counted. The accel epochs
(:func:`store_accel`) are stored once per session, at the end of the sync or by ``--recover``,
in one transaction, and only when the source has no ``accel_processing`` row yet.

DuckDB lets one process hold the file at a time; a sync therefore opens the database for each
short transaction and closes it again, so ``actidose query`` can get in between flushes.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from .. import __version__
from ..devices import hrm
from ..devices import pmd as dpmd
from ..errors import DeviceError, InputError
from ..recording import AccelChunk, AccelEpochs, AccelStream, HRSeries
from ..storage.write import insert_columns, store_accel_epochs, ts_array
from .samples import clean_hr

MAGIC = b"ACTSPOOL1\n"
HEADER = 0
HRM = 1
PMD = 2
EVENT = 3
KINDS = (HEADER, HRM, PMD, EVENT)

_PREFIX = struct.Struct("<II")  # length, crc32
_FIXED = struct.Struct("<QqB")  # seq, recv_ts_us, kind
MAX_RECORD = 1 << 20  # a notification is at most a few hundred bytes; anything larger is damage

BLE_SYNC_DDL = (
    "CREATE TABLE IF NOT EXISTS ble_sync (source_id BIGINT PRIMARY KEY, "
    "session_uuid VARCHAR, last_seq BIGINT, gaps JSON, battery_pct INTEGER)"
)


@dataclass(frozen=True)
class SpoolRecord:
    seq: int
    recv_ts_us: int
    kind: int
    payload: bytes

    def json(self) -> dict[str, Any]:
        value = json.loads(self.payload.decode("utf-8"))
        return value if isinstance(value, dict) else {"value": value}


@dataclass
class SpoolContents:
    header: dict[str, Any]
    records: list[SpoolRecord]  # after the header, in file order
    torn_at_offset: int | None = None
    torn_reason: str | None = None
    size: int = 0


def encode_record(seq: int, recv_ts_us: int, kind: int, payload: bytes) -> bytes:
    body = _FIXED.pack(seq, recv_ts_us, kind) + payload
    return _PREFIX.pack(len(body), zlib.crc32(body)) + body


class SpoolWriter:
    """Append-only writer of one session's spool. Each record is written and flushed to the
    OS at once (a killed process loses nothing already appended); ``fsync`` runs at most every
    ``fsync_every_s`` and at :meth:`close` (a power cut may lose the last second)."""

    def __init__(
        self,
        path: Path,
        header: dict[str, Any],
        *,
        fsync_every_s: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fp = self.path.open("xb")
        self._fsync_every = fsync_every_s
        self._monotonic = monotonic
        self._last_sync = monotonic()
        self.seq = 0
        started = int(header.get("started_us", time.time_ns() // 1000))
        self._fp.write(MAGIC)
        self._write(encode_record(0, started, HEADER, json.dumps(header).encode()))
        self._sync()

    def _write(self, data: bytes) -> None:
        self._fp.write(data)
        self._fp.flush()
        if self._monotonic() - self._last_sync >= self._fsync_every:
            self._sync()

    def _sync(self) -> None:
        os.fsync(self._fp.fileno())
        self._last_sync = self._monotonic()

    def append(self, kind: int, payload: bytes, recv_ts_us: int) -> SpoolRecord:
        if kind not in KINDS or kind == HEADER:
            raise ValueError(f"bad spool record kind {kind}")
        self.seq += 1
        rec = SpoolRecord(self.seq, int(recv_ts_us), kind, bytes(payload))
        self._write(encode_record(rec.seq, rec.recv_ts_us, kind, rec.payload))
        return rec

    def event(self, name: str, recv_ts_us: int, **fields: Any) -> SpoolRecord:
        return self.append(EVENT, json.dumps({"event": name, **fields}).encode(), recv_ts_us)

    def close(self) -> None:
        if not self._fp.closed:
            self._sync()
            self._fp.close()

    def __enter__(self) -> SpoolWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_spool(path: Path) -> SpoolContents:
    """Every whole record of a spool. Reading stops at the first record that is cut short or
    fails its crc (``torn_at_offset``: its byte offset). Raises :class:`InputError` when the
    file is not a spool or its header is unreadable."""
    data = Path(path).read_bytes()
    shown = str(path)
    if not data.startswith(MAGIC):
        raise InputError("not an actidose spool file (bad magic)", path=shown, offset=0)
    pos = len(MAGIC)
    header: dict[str, Any] | None = None
    records: list[SpoolRecord] = []
    torn: int | None = None
    reason: str | None = None
    while pos < len(data):
        if len(data) - pos < _PREFIX.size:
            torn, reason = pos, f"record prefix cut short ({len(data) - pos} of 8 bytes)"
            break
        length, crc = _PREFIX.unpack_from(data, pos)
        start = pos + _PREFIX.size
        if length < _FIXED.size or length > MAX_RECORD:
            torn, reason = pos, f"implausible record length {length}"
            break
        if start + length > len(data):
            torn, reason = pos, f"record cut short ({len(data) - start} of {length} bytes)"
            break
        body = data[start : start + length]
        if zlib.crc32(body) != crc:
            torn, reason = pos, "record fails its crc32"
            break
        seq, ts, kind = _FIXED.unpack_from(body)
        if header is None:
            if kind != HEADER:
                raise InputError("spool does not start with a header", path=shown, offset=pos)
            header = json.loads(body[_FIXED.size :].decode("utf-8"))
        else:
            records.append(SpoolRecord(seq, ts, kind, bytes(body[_FIXED.size :])))
        pos = start + length
    if header is None:
        raise InputError("spool header is missing or torn", path=shown, offset=len(MAGIC))
    return SpoolContents(header, records, torn, reason, len(data))


# --------------------------------------------------------------------------- decoding


@dataclass
class Decoded:
    """What a run of records holds, as arrays (HR at receive times; RR with reconstructed beat
    times), the gaps it opens and closes, and the last device info and battery seen."""

    hr_ts_us: np.ndarray
    hr_bpm: np.ndarray
    rr_ts_us: np.ndarray
    rr_ms: np.ndarray
    n_no_contact: int = 0
    n_bad_payload: int = 0
    device_info: dict[str, str] = field(default_factory=dict)
    battery: int | None = None
    battery_min: int | None = None  # the lowest level reported in these records
    last_ts_us: int | None = None


def decode(records: Sequence[SpoolRecord], gaps: list[dict[str, Any]]) -> Decoded:
    """Decode HRM records; update ``gaps`` in place (a disconnect opens one, ``end`` None, the
    next notification closes it). Samples with skin contact supported but not detected are
    kept as invalid (NaN): the sensor says the value is not a heart rate."""
    hr_ts: list[int] = []
    hr_bpm: list[float] = []
    rr_ts: list[int] = []
    rr_ms: list[float] = []
    out = Decoded(np.empty(0, np.int64), np.empty(0), np.empty(0, np.int64), np.empty(0))
    for r in records:
        out.last_ts_us = r.recv_ts_us
        if r.kind == EVENT:
            ev = r.json()
            name = ev.get("event")
            if name == "disconnected" and not (gaps and gaps[-1]["end_us"] is None):
                gaps.append({"start_us": r.recv_ts_us, "end_us": None, "after_seq": r.seq})
            elif name == "device_info":
                out.device_info.update({k: str(v) for k, v in ev.items() if k != "event" and v})
            elif name == "battery" and ev.get("percent") is not None:
                out.battery = int(ev["percent"])
                out.battery_min = (
                    out.battery if out.battery_min is None else min(out.battery_min, out.battery)
                )
            continue
        if r.kind != HRM:
            continue  # PMD frames: see decode_pmd / store_accel
        try:
            m = hrm.parse(r.payload)
        except DeviceError:
            out.n_bad_payload += 1
            continue
        if gaps and gaps[-1]["end_us"] is None:
            gaps[-1]["end_us"] = r.recv_ts_us
        hr_ts.append(r.recv_ts_us)
        if m.contact is False:
            out.n_no_contact += 1
            hr_bpm.append(float("nan"))
        else:
            hr_bpm.append(float(m.bpm))
        if m.rr_ms:
            rr = np.asarray(m.rr_ms)
            # the last interval ends at the receive time; earlier beats lie before it
            after_ms = np.cumsum(rr[::-1])[::-1] - rr  # time from each beat to the last
            ends = r.recv_ts_us - np.rint(after_ms * 1000).astype(np.int64)
            rr_ts.extend(int(t) for t in ends)
            rr_ms.extend(float(x) for x in rr)
    out.hr_ts_us = np.asarray(hr_ts, np.int64)
    out.hr_bpm = np.asarray(hr_bpm, np.float64)
    out.rr_ts_us = np.asarray(rr_ts, np.int64)
    out.rr_ms = np.asarray(rr_ms, np.float64)
    return out


# --------------------------------------------------------------------------- storing


def session_sha256(session_uuid: str) -> str:
    """The source key of a sync session: sha256 of its uuid (a spool grows while it is
    imported, so the bytes cannot be the key)."""
    return hashlib.sha256(session_uuid.encode("utf-8")).hexdigest()


def sensor_kind(name: str | None) -> str:
    n = (name or "").upper()
    if any(k in n for k in ("H10", "H9", "H7", "HRM", "TICKR")):
        return "chest_strap"
    if any(k in n for k in ("VERITY", "OH1")):
        return "optical"
    return "unknown"


def ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(BLE_SYNC_DDL)
    # databases whose ble_sync predates the battery column
    con.execute("ALTER TABLE ble_sync ADD COLUMN IF NOT EXISTS battery_pct INTEGER")


@dataclass
class StoreResult:
    source_id: int | None
    new_records: int  # spool records committed by this call
    new_samples: int
    new_rr: int
    n_invalid: int
    n_duplicate_ts: int
    last_seq: int
    gaps: list[dict[str, Any]]


def _ts(us: int | None) -> datetime | None:
    return None if us is None else datetime.fromtimestamp(us / 1e6, tz=UTC)


def store_records(
    con: duckdb.DuckDBPyConnection,
    header: dict[str, Any],
    records: Sequence[SpoolRecord],
    *,
    spool_path: str,
    spool_size: int = 0,
) -> StoreResult:
    """Commit the records with ``seq`` above the session's high-water mark, in ONE transaction
    (samples, RR, the session's activity span, ``sources`` counters and ``ble_sync.last_seq``
    together). Records at or below the mark are skipped: calling this again with the same or
    overlapping records changes nothing."""
    ensure_table(con)
    uuid = str(header["session_uuid"])
    pid = str(header["participant_id"])
    sha = session_sha256(uuid)
    con.execute("BEGIN TRANSACTION")
    try:
        row = con.execute(
            "SELECT s.source_id, b.last_seq, b.gaps, s.participant_id FROM sources s "
            "LEFT JOIN ble_sync b USING (source_id) WHERE s.sha256 = ?",
            [sha],
        ).fetchone()
        if row is not None and row[3] != pid:
            raise InputError(f"session {uuid} is stored for participant {row[3]}, not {pid}")
        last_seq = int(row[1]) if row is not None and row[1] is not None else 0
        gaps: list[dict[str, Any]] = json.loads(row[2]) if row is not None and row[2] else []
        new = [r for r in records if r.seq > last_seq]
        if not new:
            con.execute("COMMIT")
            sid = int(row[0]) if row is not None else None
            return StoreResult(sid, 0, 0, 0, 0, 0, last_seq, gaps)
        dec = decode(new, gaps)
        clean = clean_hr(HRSeries(dec.hr_ts_us.astype("datetime64[us]"), dec.hr_bpm))
        name = header.get("device_name")
        if row is None:
            sid = int(
                con.execute(
                    "INSERT INTO sources (sha256, path, format, kind, participant_id, device, "
                    "serial, status, imported_at, size_bytes, n_samples, n_invalid, "
                    "n_duplicate_ts, actidose_version, sensor) "
                    "VALUES (?, ?, 'ble', 'activity', ?, ?, NULL, 'imported', ?, ?, 0, 0, 0, ?, ?) "
                    "RETURNING source_id",
                    [
                        sha,
                        spool_path,
                        pid,
                        name,
                        datetime.now(UTC),
                        spool_size,
                        __version__,
                        sensor_kind(name),
                    ],
                ).fetchone()[0]  # type: ignore[index]
            )
            con.execute(
                "INSERT INTO ble_sync (source_id, session_uuid, last_seq, gaps) "
                "VALUES (?, ?, 0, '[]')",
                [sid, uuid],
            )
        else:
            sid = int(row[0])
        keep = np.ones(clean.ts_us.size, bool)
        if clean.ts_us.size:  # one value per timestamp across flushes as well
            seen = con.execute(
                "SELECT epoch_us(ts) FROM hr_samples WHERE source_id = ? AND ts >= ?",
                [sid, _ts(int(clean.ts_us[0]))],
            ).fetchall()
            if seen:
                keep = ~np.isin(clean.ts_us, np.array([s[0] for s in seen], np.int64))
        ts_us, bpm = clean.ts_us[keep], clean.bpm[keep]
        n_dup = clean.n_duplicate_ts + int(keep.size - np.count_nonzero(keep))
        insert_columns(
            con,
            "hr_samples (participant_id, ts, bpm, source_id)",
            "?, ts, bpm, ?",
            pa.table({"ts": ts_array(ts_us), "bpm": pa.array(bpm, pa.int16())}),
            [pid, sid],
        )
        order = np.argsort(dec.rr_ts_us, kind="stable")
        insert_columns(
            con,
            "rr_intervals (participant_id, ts, rr_ms, source_id)",
            "?, ts, rr_ms, ?",
            pa.table({"ts": ts_array(dec.rr_ts_us[order]), "rr_ms": dec.rr_ms[order]}),
            [pid, sid],
        )
        info = dec.device_info
        device = " ".join(x for x in (info.get("manufacturer"), info.get("model")) if x) or None
        first = _ts(int(ts_us[0])) if ts_us.size else None
        last = _ts(int(ts_us[-1])) if ts_us.size else None
        con.execute(
            "UPDATE sources SET n_samples = n_samples + ?, n_invalid = n_invalid + ?, "
            "n_duplicate_ts = n_duplicate_ts + ?, first_ts = coalesce(first_ts, ?), "
            "last_ts = coalesce(?, last_ts), size_bytes = greatest(size_bytes, ?), "
            "device = coalesce(?, device), serial = coalesce(?, serial) WHERE source_id = ?",
            [
                int(ts_us.size),
                clean.n_invalid,
                n_dup,
                first,
                last,
                spool_size,
                device,
                info.get("serial"),
                sid,
            ],
        )
        # one activity spanning the session: from its start to the last record committed
        start_us = int(header.get("started_us") or new[0].recv_ts_us)
        end_us = max(int(dec.last_ts_us or start_us), start_us)
        con.execute("DELETE FROM activities WHERE source_id = ?", [sid])
        con.execute(
            "INSERT INTO activities (source_id, idx, participant_id, start_ts, end_ts, sport, "
            "elapsed_s) VALUES (?, 0, ?, ?, ?, ?, ?)",
            [
                sid,
                pid,
                _ts(start_us),
                _ts(end_us),
                header.get("sport"),
                (end_us - start_us) / 1e6,
            ],
        )
        last_seq = new[-1].seq
        con.execute(
            "UPDATE ble_sync SET last_seq = ?, gaps = ?, battery_pct = CASE WHEN ? IS NULL "
            "THEN battery_pct ELSE least(coalesce(battery_pct, ?), ?) END WHERE source_id = ?",
            [last_seq, json.dumps(gaps), dec.battery_min, dec.battery_min, dec.battery_min, sid],
        )
        con.execute("INSERT OR IGNORE INTO pending_recompute VALUES (?)", [pid])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return StoreResult(
        sid,
        len(new),
        int(ts_us.size),
        int(dec.rr_ms.size),
        clean.n_invalid,
        n_dup,
        last_seq,
        gaps,
    )


_EPOCH_2000_US = 946_684_800_000_000  # 2000-01-01T00:00:00Z in UTC microseconds


@dataclass
class PmdDecoded:
    """The accelerometer samples of a spool: UTC µs (ascending) and g, with what was done."""

    ts_us: np.ndarray
    xyz_g: np.ndarray  # (n, 3) float32
    sample_rate_hz: float | None
    range_g: float | None
    n_frames: int = 0
    n_bad_frames: int = 0
    n_dropped_samples: int = 0  # not after the previous sample (overlap after a reconnect)
    offset_us: int | None = None  # UTC − sensor time (sensor ns since 2000 → µs)
    settings: dict[str, Any] = field(default_factory=dict)


def decode_pmd(records: Sequence[SpoolRecord]) -> PmdDecoded:
    """Decode the PMD records of a spool in order (see the module docstring)."""
    settings: dict[str, Any] = {}
    prev_ns: int | None = None
    sensor_ns: list[np.ndarray] = []
    mg: list[np.ndarray] = []
    anchors: list[int] = []
    n_frames = n_bad = 0
    for r in records:
        if r.kind == EVENT:
            ev = r.json()
            name = ev.get("event")
            if name in ("disconnected", "connected", "pmd_settings"):
                prev_ns = None
            if name == "pmd_settings":
                settings = {k: v for k, v in ev.items() if k != "event"}
            continue
        if r.kind != PMD:
            continue
        n_frames += 1
        rate = settings.get("sample_rate_hz")
        try:
            f = dpmd.parse_data_frame(
                r.payload,
                resolution_bits=int(settings.get("resolution_bits", 16)),
                factor=float(settings.get("factor") or 1.0),
                sample_rate_hz=float(rate) if rate else None,
                previous_timestamp_ns=prev_ns,
            )
        except DeviceError:
            n_bad += 1
            continue
        prev_ns = f.timestamp_ns
        if f.timestamps_ns is None:
            n_bad += 1
            continue
        sensor_ns.append(np.asarray(f.timestamps_ns, np.int64))
        mg.append(np.asarray(f.mg, np.float64))
        anchors.append(r.recv_ts_us - f.timestamp_ns // 1000)
    rate = settings.get("sample_rate_hz")
    rng = settings.get("range_g")
    out = PmdDecoded(
        np.empty(0, np.int64),
        np.empty((0, 3), np.float32),
        float(rate) if rate else None,
        float(rng) if rng else None,
        n_frames,
        n_bad,
        settings=settings,
    )
    if not anchors:
        return out
    offset = int(np.median(np.asarray(anchors, np.int64)))
    ts = np.concatenate(sensor_ns) // 1000 + offset
    xyz = np.concatenate(mg) / 1000.0
    keep = np.ones(ts.size, bool)
    if ts.size > 1:  # keep a sample only when it is after every sample kept before it
        keep[1:] = ts[1:] > np.maximum.accumulate(ts)[:-1]
    out.ts_us = ts[keep]
    out.xyz_g = xyz[keep].astype(np.float32)
    out.n_dropped_samples = int(keep.size - np.count_nonzero(keep))
    out.offset_us = offset
    return out


def store_accel(
    con: duckdb.DuckDBPyConnection, header: dict[str, Any], records: Sequence[SpoolRecord]
) -> int:
    """Process the session's accelerometer samples into epochs and store them, in one
    transaction, unless the session's source already has them (``accel_processing`` row) or
    is not stored yet. Returns the number of epochs stored (0 when nothing was done)."""
    from ..dose.accel_process import process

    sha = session_sha256(str(header["session_uuid"]))
    row = con.execute(
        "SELECT s.source_id, s.participant_id, "
        "(SELECT count(*) FROM accel_processing a WHERE a.source_id = s.source_id) "
        "FROM sources s WHERE s.sha256 = ?",
        [sha],
    ).fetchone()
    if row is None or row[2]:
        return 0
    dec = decode_pmd(records)
    if dec.ts_us.size == 0:
        return 0
    ts_us, xyz = dec.ts_us, dec.xyz_g
    stream = AccelStream(
        sample_rate_hz=dec.sample_rate_hz or 50.0,
        chunks=lambda: iter([AccelChunk(ts_us, xyz)]),
        range_g=dec.range_g,
        n_samples=int(ts_us.size),
    )
    result = process(stream)
    fields = result.epoch_fields()
    info = dict(result.info)
    info.update(
        source="ble_pmd",
        pmd_frames=dec.n_frames,
        pmd_bad_frames=dec.n_bad_frames,
        pmd_dropped_samples=dec.n_dropped_samples,
        pmd_offset_us=dec.offset_us,
        pmd_settings=dec.settings,
    )
    fields["info"] = info
    ep = AccelEpochs(**fields)  # type: ignore[arg-type]
    sid, pid = int(row[0]), str(row[1])
    con.execute("BEGIN TRANSACTION")
    try:
        again = con.execute(
            "SELECT count(*) FROM accel_processing WHERE source_id = ?", [sid]
        ).fetchall()
        if again[0][0]:
            con.execute("COMMIT")
            return 0
        store_accel_epochs(con, sid, pid, ep)
        con.execute("INSERT OR IGNORE INTO pending_recompute VALUES (?)", [pid])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return int(ep.start_us.size)


def commit_accel(db: Path | str | None, spool_path: Path, *, wait_s: float = 30.0) -> int:
    """Read a finished spool and store its accel epochs (:func:`store_accel`), in one short
    connection."""
    from ..storage.db import connect

    c = read_spool(spool_path)
    con = connect(db, wait_s=wait_s)
    try:
        return store_accel(con, c.header, c.records)
    finally:
        con.close()


def spool_files(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).glob("*.spool") if p.is_file())


def default_spool_dir(db_path: Path) -> Path:
    return Path(str(db_path) + ".spool")


def commit(
    db: Path | str | None,
    header: dict[str, Any],
    records: Sequence[SpoolRecord],
    *,
    spool_path: Path,
    wait_s: float = 5.0,
) -> StoreResult:
    """One short transaction: open the database, store, close it again (so another process,
    e.g. ``actidose query``, can open the file between flushes)."""
    from ..storage.db import connect

    size = spool_path.stat().st_size if spool_path.exists() else 0
    con = connect(db, wait_s=wait_s)
    try:
        return store_records(con, header, records, spool_path=str(spool_path), spool_size=size)
    finally:
        con.close()


@dataclass
class RecoverOutcome:
    path: str
    session_uuid: str | None
    participant_id: str | None
    records: int
    new_records: int
    new_samples: int
    gaps: int
    torn_at_offset: int | None
    torn_reason: str | None
    error: str | None = None
    new_epochs: int = 0


def recover(
    con: duckdb.DuckDBPyConnection, paths: Sequence[Path]
) -> tuple[list[RecoverOutcome], list[str]]:
    """Import what each spool holds, exactly once (records above the committed mark only),
    then recompute the derived tables of the participants touched. Returns the outcomes and
    the participants recomputed. A spool that cannot be read is reported, the others go on."""
    from ..storage.derive import recompute

    out: list[RecoverOutcome] = []
    for p in paths:
        try:
            c = read_spool(p)
        except (InputError, OSError, ValueError) as exc:
            out.append(RecoverOutcome(str(p), None, None, 0, 0, 0, 0, None, None, str(exc)))
            continue
        res = store_records(
            con, c.header, c.records, spool_path=str(p.resolve()), spool_size=c.size
        )
        epochs = store_accel(con, c.header, c.records)
        out.append(
            RecoverOutcome(
                str(p),
                c.header.get("session_uuid"),
                c.header.get("participant_id"),
                len(c.records),
                res.new_records,
                res.new_samples,
                len(res.gaps),
                c.torn_at_offset,
                c.torn_reason,
                new_epochs=epochs,
            )
        )
    return out, recompute(con)
