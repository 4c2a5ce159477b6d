"""Live Bluetooth heart-rate sync over bleak's public API.

::

    bleak notify callback --(recv time, bytes)--> asyncio.Queue --> consumer --> spool file
                                                                      |  (every few seconds)
                                                                      +--> short DuckDB transaction

The notify callback does nothing but put ``(host receive time in µs, bytes)`` on a queue; one
consumer appends each item to the session's spool (:mod:`actidose.ingest.spool`) first, then
parses it for the live view; a flusher commits what the spool gained to the database every
``flush_every_s`` seconds, opening and closing the database each time. On an unsolicited
disconnect the loop records a ``disconnected`` event, reconnects with bounded exponential
backoff and subscribes again; the time until the next notification is a gap, never filled.

With ``acc=True`` and a device offering Polar PMD, each connection also starts the accelerometer
(:func:`_start_pmd`: get settings, choose, start, subscribe to data); the chosen settings are a
``pmd_settings`` spool event and each data notification a PMD record (queued like HR: receive
time and bytes only). The accel epochs are computed from the spool once, at the end
(:func:`actidose.ingest.spool.store_accel`).

Every bleak call goes through a backend class that can be injected (``BleakClient(device,
backend=...)``, ``BleakScanner(backend=...)``), and all waiting goes through a :class:`Clock`,
so tests replay a scripted device in accelerated time. Bleak's errors are wrapped into
:class:`~actidose.errors.DeviceError`; no adapter / no BlueZ (bleak then raises a plain
``FileNotFoundError``) / no permission becomes "no Bluetooth adapter available (...)".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from bleak import BleakClient, BleakScanner
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.exc import BleakBluetoothNotAvailableError, BleakError

from ..devices import hrm, pmd
from ..dose import hr as dhr
from ..errors import DeviceError, StorageError
from . import spool as sp

HR_SERVICE = "0000180d-0000-1000-8000-00805f9b34fb"
HR_MEASUREMENT = "00002a37-0000-1000-8000-00805f9b34fb"
PMD_SERVICE = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
BATTERY_LEVEL = "00002a19-0000-1000-8000-00805f9b34fb"
DEVICE_INFO = {  # Device Information Service characteristics
    "manufacturer": "00002a29-0000-1000-8000-00805f9b34fb",
    "model": "00002a24-0000-1000-8000-00805f9b34fb",
    "serial": "00002a25-0000-1000-8000-00805f9b34fb",
    "firmware": "00002a26-0000-1000-8000-00805f9b34fb",
}
ZONE_FRACTIONS = (0.5, 0.6, 0.7, 0.8, 0.9)  # five zones of %HRmax, as Polar and Garmin show
_DISCONNECTED = -1
_STOP = -2

#: Backends used when none is passed (None: bleak's platform backend). Tests swap these.
DEFAULT_CLIENT_BACKEND: type[BaseBleakClient] | None = None
DEFAULT_SCANNER_BACKEND: type[BaseBleakScanner] | None = None


class Clock(Protocol):
    def now_us(self) -> int: ...

    async def sleep(self, seconds: float) -> None: ...


class RealClock:
    def now_us(self) -> int:
        return time.time_ns() // 1000

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def _adapter_problem(exc: BaseException) -> str | None:
    """The reason when ``exc`` means "no usable Bluetooth adapter", else None."""
    if isinstance(exc, FileNotFoundError):
        return "no BlueZ D-Bus service found; is bluetoothd running and an adapter present?"
    if isinstance(exc, PermissionError):
        return "no permission to use Bluetooth; add the user to the 'bluetooth' group"
    if isinstance(exc, BleakBluetoothNotAvailableError):
        return str(exc) or "Bluetooth is off or unavailable"
    text = str(exc)
    for marker in ("No Bluetooth adapters found", "NotReady", "not powered", "powered off"):
        if marker.lower() in text.lower():
            return text
    return None


def wrap_error(exc: BaseException, doing: str) -> DeviceError:
    reason = _adapter_problem(exc)
    if reason is not None:
        return DeviceError(f"no Bluetooth adapter available ({reason})")
    text = str(exc).strip() or type(exc).__name__
    return DeviceError(f"{doing}: {text}")


# --------------------------------------------------------------------------- scanning
def _scanner_args(backend: type[BaseBleakScanner] | None) -> BleakScanner.ExtraArgs:
    args: BleakScanner.ExtraArgs = {}
    chosen = backend or DEFAULT_SCANNER_BACKEND
    if chosen is not None:
        args["backend"] = chosen
    return args


@dataclass(frozen=True)
class FoundDevice:
    name: str | None
    address: str
    rssi: int
    services: tuple[str, ...]  # "hr" and/or "pmd"


def _kinds(adv: AdvertisementData) -> tuple[str, ...]:
    uuids = {u.lower() for u in adv.service_uuids}
    return tuple(k for k, u in (("hr", HR_SERVICE), ("pmd", PMD_SERVICE)) if u in uuids)


async def scan(
    timeout_s: float = 5.0, *, backend: type[BaseBleakScanner] | None = None
) -> list[FoundDevice]:
    """Devices advertising the Heart Rate Service or Polar PMD, strongest signal first."""
    try:
        found = await BleakScanner.discover(timeout_s, return_adv=True, **_scanner_args(backend))
    except (BleakError, OSError) as exc:
        raise wrap_error(exc, "scan failed") from exc
    out = [
        FoundDevice(adv.local_name or dev.name, dev.address, adv.rssi, _kinds(adv))
        for dev, adv in found.values()
        if _kinds(adv)
    ]
    return sorted(out, key=lambda d: -d.rssi)


async def find_device(
    *,
    address: str | None,
    name: str | None,
    timeout_s: float,
    backend: type[BaseBleakScanner] | None,
) -> BLEDevice:
    """The device to sync: by address, by a name substring (case-insensitive), or the first
    one advertising the Heart Rate Service."""

    def wanted(dev: BLEDevice, adv: AdvertisementData) -> bool:
        if address is not None:
            return dev.address.lower() == address.lower()
        shown = (adv.local_name or dev.name or "").lower()
        if name is not None:
            return name.lower() in shown
        return "hr" in _kinds(adv)

    try:
        dev = await BleakScanner.find_device_by_filter(wanted, timeout_s, **_scanner_args(backend))
    except (BleakError, OSError) as exc:
        raise wrap_error(exc, "scan failed") from exc
    if dev is None:
        what = address or (f"named like {name!r}" if name else "advertising heart rate")
        raise DeviceError(
            f"no device {what} found in {timeout_s:g} s; is it worn (straps sleep without "
            "skin contact) and not connected to another app?"
        )
    return dev


# --------------------------------------------------------------------------- live state
@dataclass
class Anchors:
    hr_rest: float | None
    hr_max: float | None
    ab: tuple[float, float] | None  # Banister (a, b); None without sex
    max_gap_s: float = 60.0


def load_anchors(db: Path | str | None, participant_id: str) -> Anchors:
    """The participant's anchors (the ``participants`` row: entered values, else estimated),
    read in one short connection. Raises UsageError for an unknown participant."""
    from ..storage import participants
    from ..storage.db import connect
    from ..storage.derive import load_config

    con = connect(db)
    try:
        participants.require(con, participant_id)
        cfg = load_config(con)
        row = con.execute(
            "SELECT sex, hr_rest_bpm, hr_max_bpm FROM participants WHERE participant_id = ?",
            [participant_id],
        ).fetchone()
    finally:
        con.close()
    assert row is not None
    sex, rest, hmax = row
    ab = dhr.banister_coefficients(sex, cfg.trimp_preset) if sex else None
    return Anchors(rest, hmax, ab, cfg.max_gap_s)


@dataclass
class LiveState:
    """What the live view shows; updated by the consumer as records reach the spool."""

    anchors: Anchors
    started_us: int
    now_us: int = 0
    device_name: str | None = None
    device_info: dict[str, str] = field(default_factory=dict)
    bpm: int | None = None
    contact: bool | None = None
    battery: int | None = None
    connected: bool = False
    notifications: int = 0
    reconnects: int = 0
    committed_samples: int = 0
    gaps: int = 0
    warnings: list[str] = field(default_factory=list)
    _ts: list[int] = field(default_factory=list)
    _bpm: list[float] = field(default_factory=list)

    @property
    def elapsed_s(self) -> float:
        return max(self.now_us - self.started_us, 0) / 1e6

    @property
    def zone(self) -> int | None:
        if self.bpm is None or self.anchors.hr_max is None:
            return None
        edges = dhr.hrmax_zone_edges(float(self.anchors.hr_max), ZONE_FRACTIONS)
        return int(np.searchsorted(edges, self.bpm, side="right"))

    def samples(self) -> tuple[np.ndarray, np.ndarray]:
        """The valid samples so far (as they are stored): UTC µs and bpm."""
        ts = np.asarray(self._ts, np.int64)
        bpm = np.asarray(self._bpm, np.float64)
        _, first = np.unique(ts, return_index=True)
        return ts[np.sort(first)], bpm[np.sort(first)]

    def trimp(self) -> float | None:
        """Banister TRIMP of the session so far, with the same kernel and hold rule as the
        derived ``sessions`` table; None without sex, HR rest and HR max."""
        a = self.anchors
        if a.ab is None or a.hr_rest is None or a.hr_max is None:
            return None
        ts, bpm = self.samples()
        if ts.size == 0:
            return 0.0
        dt = dhr.sample_durations(ts / 1e6, max_gap_s=a.max_gap_s).dt_s
        return dhr.banister_trimp(bpm, dt, a.hr_rest, a.hr_max, a=a.ab[0], b=a.ab[1]).value

    def warn(self, text: str) -> None:
        self.warnings.append(text)
        del self.warnings[:-5]

    def see(self, rec: sp.SpoolRecord) -> None:
        self.now_us = max(self.now_us, rec.recv_ts_us)
        if rec.kind == sp.EVENT:
            ev = rec.json()
            name = ev.get("event")
            if name == "disconnected":
                self.connected = False
                self.gaps += 1
                self.warn(f"connection lost at {self.elapsed_s:.0f} s; reconnecting")
            elif name == "connected":
                self.connected = True
            elif name == "device_info":
                self.device_info.update({k: str(v) for k, v in ev.items() if k != "event"})
            elif name == "battery" and ev.get("percent") is not None:
                self.battery = int(ev["percent"])
            return
        if rec.kind != sp.HRM:
            return
        self.notifications += 1
        try:
            m = hrm.parse(rec.payload)
        except DeviceError as exc:
            self.warn(f"bad notification: {exc}")
            return
        if m.contact is False and self.contact is not False:
            self.warn(f"skin contact lost at {self.elapsed_s:.0f} s")
        self.contact = m.contact
        self.bpm = m.bpm
        if m.contact is not False and 25 <= m.bpm <= 250:  # the sample rules of the design
            self._ts.append(rec.recv_ts_us)
            self._bpm.append(float(m.bpm))


# --------------------------------------------------------------------------- sync
@dataclass
class SyncResult:
    session_uuid: str
    spool_path: Path
    source_id: int | None
    notifications: int
    samples: int  # HR samples committed by this sync
    reconnects: int
    gaps: list[dict[str, Any]]
    trimp_banister: float | None
    device_info: dict[str, str]
    battery: int | None
    recomputed: list[str]
    accel_frames: int = 0  # PMD data notifications spooled
    accel_epochs: int = 0  # accel epochs stored at the end


PMD_TIMEOUT_S = 5.0


def choose_acc_settings(offered: dict[int, list[int]]) -> dict[int, int]:
    """Sample rate 50 Hz if offered, else the lowest offered ≥ 25 Hz (else the highest);
    resolution 16 bits; range 8 g if offered, else the largest. Raises DeviceError when the
    device offers no sample rate."""
    st = pmd.SettingType
    rates = sorted(offered.get(st.SAMPLE_RATE, []))
    if not rates:
        raise DeviceError("PMD accelerometer offers no sample rate")
    rate = 50 if 50 in rates else next((r for r in rates if r >= 25), rates[-1])
    res = offered.get(st.RESOLUTION, [16])
    chosen = {st.SAMPLE_RATE: rate, st.RESOLUTION: 16 if 16 in res else max(res)}
    ranges = offered.get(st.RANGE, [])
    if ranges:
        chosen[st.RANGE] = 8 if 8 in ranges else max(ranges)
    return {int(k): int(v) for k, v in chosen.items()}


async def _pmd_request(
    client: BleakClient, replies: asyncio.Queue[bytes], command: bytes
) -> pmd.ControlResponse:
    """Write a control point command and wait for its response (joining ``more`` parts)."""
    while not replies.empty():
        replies.get_nowait()
    await client.write_gatt_char(pmd.PMD_CONTROL_POINT, command, response=True)
    params = b""
    while True:
        raw = await asyncio.wait_for(replies.get(), PMD_TIMEOUT_S)
        resp = pmd.parse_control_response(raw)
        if resp.op != command[0]:
            continue
        if not resp.ok or not resp.more:
            break
        params += resp.parameters
    if params:  # a multi-part response: parse the whole parameter block
        params += resp.parameters
        settings = pmd.parse_settings(params) if resp.op != pmd.ControlOp.STOP else {}
        resp = pmd.ControlResponse(resp.op, resp.mtype, resp.status, False, params, settings)
    return resp


async def _start_pmd(
    client: BleakClient, on_data: Callable[[object, bytearray], None]
) -> dict[str, Any] | None:
    """Start the accelerometer stream (see the module docstring). Returns the settings to
    spool (``sample_rate_hz``, ``resolution_bits``, ``range_g``, ``factor``), or None when the
    device has no PMD control point."""
    if client.services.get_characteristic(pmd.PMD_CONTROL_POINT) is None:
        return None
    replies: asyncio.Queue[bytes] = asyncio.Queue()
    acc = pmd.MeasurementType.ACC
    await client.start_notify(
        pmd.PMD_CONTROL_POINT, lambda _c, data: replies.put_nowait(bytes(data))
    )
    resp = await _pmd_request(client, replies, pmd.get_settings_command(acc))
    if not resp.ok:
        raise DeviceError(f"PMD get settings failed (status {resp.status})")
    chosen = choose_acc_settings(resp.settings)
    start = pmd.start_command(acc, chosen)
    resp = await _pmd_request(client, replies, start)
    if resp.status == pmd.ControlStatus.ALREADY_IN_STATE:  # still streaming: restart it
        await _pmd_request(client, replies, pmd.stop_command(acc))
        resp = await _pmd_request(client, replies, start)
    if not resp.ok:
        raise DeviceError(f"PMD start failed (status {resp.status})")
    await client.start_notify(pmd.PMD_DATA, on_data)
    st = pmd.SettingType
    return {
        "sample_rate_hz": chosen[st.SAMPLE_RATE],
        "resolution_bits": chosen[st.RESOLUTION],
        "range_g": chosen.get(st.RANGE),
        "factor": resp.factor if resp.factor is not None else 1.0,
    }


async def _stop_pmd(client: BleakClient) -> None:
    with contextlib.suppress(BleakError, OSError, DeviceError, TimeoutError):
        await client.write_gatt_char(
            pmd.PMD_CONTROL_POINT, pmd.stop_command(pmd.MeasurementType.ACC), response=True
        )
    with contextlib.suppress(BleakError, OSError):
        await client.stop_notify(pmd.PMD_DATA)


async def _read_info(client: BleakClient) -> tuple[dict[str, str], int | None]:
    info: dict[str, str] = {}
    for key, char in DEVICE_INFO.items():
        if client.services.get_characteristic(char) is None:
            continue
        try:
            raw = await client.read_gatt_char(char)
        except (BleakError, OSError):
            continue  # optional characteristics: a device that refuses one still syncs
        info[key] = bytes(raw).decode("utf-8", "replace").strip("\x00 ").strip()
    battery = None
    if client.services.get_characteristic(BATTERY_LEVEL) is not None:
        try:
            raw = await client.read_gatt_char(BATTERY_LEVEL)
            battery = int(raw[0]) if raw else None
        except (BleakError, OSError):
            battery = None
    return info, battery


def spool_name(participant_id: str, started_us: int, session: str) -> str:
    stamp = datetime.fromtimestamp(started_us / 1e6, tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", participant_id)
    return f"{safe}-{stamp}-{session[:8]}.spool"


async def sync(
    db: Path | str | None,
    participant_id: str,
    *,
    address: str | None = None,
    name: str | None = None,
    duration_s: float | None = None,
    spool_dir: Path | None = None,
    client_backend: type[BaseBleakClient] | None = None,
    scanner_backend: type[BaseBleakScanner] | None = None,
    clock: Clock | None = None,
    stop: asyncio.Event | None = None,
    on_update: Callable[[LiveState], None] | None = None,
    flush_every_s: float = 5.0,
    scan_timeout_s: float = 10.0,
    backoff_s: tuple[float, float] = (1.0, 30.0),
    give_up_after_s: float = 600.0,
    poll_s: float = 0.5,
    acc: bool = False,
) -> SyncResult:
    """Sync one heart-rate device into the database until ``duration_s`` has passed or
    ``stop`` is set (Ctrl-C). See the module docstring for the flow.

    ``give_up_after_s``: with no connection for this long the sync ends (what was received is
    committed) and a DeviceError is raised. Raises DeviceError when no device is found.
    ``acc``: also stream the accelerometer over Polar PMD when the device offers it.
    """
    from ..storage.db import connect, resolve_db_path
    from ..storage.derive import recompute

    clock = clock or RealClock()
    stop = stop or asyncio.Event()
    client_backend = client_backend or DEFAULT_CLIENT_BACKEND
    anchors = load_anchors(db, participant_id)  # unknown participant: fail before any radio
    device = await find_device(
        address=address, name=name, timeout_s=scan_timeout_s, backend=scanner_backend
    )
    db_path = resolve_db_path(db)
    folder = spool_dir or sp.default_spool_dir(db_path)
    session = str(uuid.uuid4())
    started = clock.now_us()
    header = {
        "session_uuid": session,
        "participant_id": participant_id,
        "device_address": device.address,
        "device_name": device.name,
        "started_at": datetime.fromtimestamp(started / 1e6, tz=UTC).isoformat(),
        "started_us": started,
    }
    path = Path(folder) / spool_name(participant_id, started, session)
    writer = sp.SpoolWriter(path, header)
    state = LiveState(anchors, started, started, device.name)
    deadline = None if duration_s is None else started + int(duration_s * 1e6)
    queue: asyncio.Queue[tuple[int, int, bytes]] = asyncio.Queue()
    lost = asyncio.Event()
    pending: list[sp.SpoolRecord] = []
    committed: list[sp.StoreResult] = []

    def on_notify(_char: object, data: bytearray) -> None:
        queue.put_nowait((clock.now_us(), sp.HRM, bytes(data)))  # nothing else here

    acc_frames = 0  # counted by the consumer

    def on_pmd(_char: object, data: bytearray) -> None:
        queue.put_nowait((clock.now_us(), sp.PMD, bytes(data)))  # nothing else here

    def on_disconnect(_client: BleakClient) -> None:
        queue.put_nowait((clock.now_us(), _DISCONNECTED, b""))
        lost.set()

    def event(name: str, **fields: Any) -> None:
        queue.put_nowait((clock.now_us(), sp.EVENT, json.dumps({"event": name, **fields}).encode()))

    def expired() -> bool:
        return deadline is not None and clock.now_us() >= deadline

    async def consume() -> None:
        nonlocal acc_frames
        while True:
            ts, kind, data = await queue.get()
            if kind == _STOP:
                return
            if kind == _DISCONNECTED:
                rec = writer.event("disconnected", ts)
            else:
                rec = writer.append(kind, data, ts)
                acc_frames += kind == sp.PMD
            pending.append(rec)
            state.see(rec)
            if on_update is not None:
                on_update(state)

    inflight: list[asyncio.Future[sp.StoreResult]] = []

    async def flush(wait_s: float) -> None:
        if not pending:
            return
        n = len(pending)
        fut = asyncio.ensure_future(
            asyncio.to_thread(
                sp.commit, db, header, pending[:n], spool_path=path.resolve(), wait_s=wait_s
            )
        )

        def done(f: asyncio.Future[sp.StoreResult]) -> None:
            if f.cancelled() or f.exception() is not None:
                return  # the records stay pending; the next flush sends them again
            del pending[:n]
            committed.append(f.result())
            state.committed_samples += f.result().new_samples

        fut.add_done_callback(done)
        inflight[:] = [fut]
        # shielded: cancelling the flusher must not abandon a commit running in its thread
        await asyncio.shield(fut)

    async def flusher() -> None:
        while True:
            await clock.sleep(flush_every_s)
            try:
                await flush(wait_s=2.0)
            except StorageError as exc:  # e.g. a long query holds the file: retry next time
                state.warn(f"database busy, will retry: {exc}")

    async def connection_loop() -> None:
        attempt = 0
        down_since = clock.now_us()
        while not stop.is_set() and not expired():
            lost.clear()
            client = BleakClient(
                device, disconnected_callback=on_disconnect, backend=client_backend
            )
            pmd_on = False
            try:
                await client.connect()
                info, battery = await _read_info(client)
                event("connected", address=device.address)
                if info:
                    event("device_info", **info)
                if battery is not None:
                    event("battery", percent=battery)
                await client.start_notify(HR_MEASUREMENT, on_notify)
                if acc:
                    try:
                        chosen = await _start_pmd(client, on_pmd)
                    except (DeviceError, TimeoutError) as exc:
                        state.warn(f"accelerometer not started: {exc}")
                        chosen = None
                    if chosen is None:
                        state.warn("no accelerometer stream (no PMD service or start refused)")
                    else:
                        # queued before the first frame of this connection can be
                        event("pmd_settings", **chosen)
                        pmd_on = True
            except (TimeoutError, BleakError, OSError) as exc:
                if _adapter_problem(exc) is not None:
                    raise wrap_error(exc, "connect") from exc
                if client.is_connected:
                    await _quiet_disconnect(client)
                if (clock.now_us() - down_since) / 1e6 >= give_up_after_s:
                    raise wrap_error(exc, f"cannot reach {device.address}") from exc
                delay = min(backoff_s[0] * 2**attempt, backoff_s[1])
                attempt += 1
                state.warn(f"connect failed ({exc or type(exc).__name__}); retry in {delay:g} s")
                await clock.sleep(delay)
                continue
            attempt = 0
            while not (lost.is_set() or stop.is_set() or expired()):
                await clock.sleep(poll_s)
                state.now_us = max(state.now_us, clock.now_us())
            if lost.is_set():
                state.reconnects += 1
                down_since = clock.now_us()
                continue
            if pmd_on:
                await _stop_pmd(client)
            with contextlib.suppress(BleakError, OSError):
                await client.stop_notify(HR_MEASUREMENT)
            await _quiet_disconnect(client)
            return

    consumer = asyncio.create_task(consume())
    flush_task = asyncio.create_task(flusher())
    failure: DeviceError | None = None
    try:
        await connection_loop()
    except DeviceError as exc:
        failure = exc  # raised after what was received is committed
    finally:
        event("stopped", reason="error" if failure else "done")
        queue.put_nowait((clock.now_us(), _STOP, b""))
        await consumer
        flush_task.cancel()
        await asyncio.gather(flush_task, return_exceptions=True)
        if inflight:  # let a commit in progress finish before the last one
            await asyncio.gather(*inflight, return_exceptions=True)
        writer.close()
        try:
            await flush(wait_s=30.0)
        except StorageError as exc:
            raise StorageError(
                f"{exc}; the session is safe in {path}: run actidose sync --recover"
            ) from exc
    n_epochs = 0
    if acc and acc_frames:
        try:
            n_epochs = await asyncio.to_thread(sp.commit_accel, db, path.resolve())
        except StorageError as exc:
            raise StorageError(
                f"{exc}; the session is safe in {path}: run actidose sync --recover"
            ) from exc
    con = connect(db)
    try:
        done = recompute(con)
    finally:
        con.close()
    if failure is not None:
        raise failure
    last = committed[-1] if committed else None
    return SyncResult(
        session_uuid=session,
        spool_path=path,
        source_id=next((c.source_id for c in committed if c.source_id is not None), None),
        notifications=state.notifications,
        samples=sum(c.new_samples for c in committed),
        reconnects=state.reconnects,
        gaps=last.gaps if last else [],
        trimp_banister=state.trimp(),
        device_info=state.device_info,
        battery=state.battery,
        recomputed=done,
        accel_frames=acc_frames,
        accel_epochs=n_epochs,
    )


async def _quiet_disconnect(client: BleakClient) -> None:
    with contextlib.suppress(BleakError, OSError):
        await client.disconnect()
