"""Live BLE sync against a scripted device behind bleak's real public API.

The fake backend subclasses bleak's own backend base classes (``BaseBleakClient``,
``BaseBleakScanner``), so ``BleakClient(device, backend=...)`` and ``BleakScanner(backend=...)``
run their real code paths (characteristic lookup, callback wrapping, disconnect callbacks).
Time is virtual (:class:`VirtualClock`): an hour at 1 Hz runs in seconds.
"""

from __future__ import annotations

import asyncio
import heapq
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError
from click.testing import CliRunner

from actidose.devices import pmd
from actidose.dose import hr as dhr
from actidose.ingest import ble
from actidose.ingest import spool as sp
from actidose.storage.db import connect

from .conftest import add_p

T0_US = 1_709_287_200_000_000  # 2024-03-01 10:00:00 UTC
EPOCH_2000_US = 946_684_800_000_000
BATTERY_SERVICE = "0000180f-0000-1000-8000-00805f9b34fb"
DIS_SERVICE = "0000180a-0000-1000-8000-00805f9b34fb"


# --------------------------------------------------------------------------- virtual time
class VirtualClock:
    """Discrete-event time: ``sleep`` parks a task until the driver advances the clock to its
    wake-up time. ``run`` is the driver (a background task); ``real_step_s`` slows it down."""

    def __init__(self, start_us: int = T0_US, real_step_s: float = 0.0) -> None:
        self.t = start_us
        self.real_step_s = real_step_s
        self._heap: list[tuple[int, int, asyncio.Future[None]]] = []
        self._n = 0

    def now_us(self) -> int:
        return self.t

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, (self.t + round(seconds * 1e6), self._n, fut))
        self._n += 1
        await fut

    async def run(self) -> None:
        while True:
            for _ in range(20):  # let every ready task run before time moves
                await asyncio.sleep(0)
            if self.real_step_s:
                await asyncio.sleep(self.real_step_s)
            if not self._heap:
                await asyncio.sleep(0.001)
                continue
            self.t = max(self.t, self._heap[0][0])
            while self._heap and self._heap[0][0] <= self.t:
                fut = heapq.heappop(self._heap)[2]
                if not fut.done():
                    fut.set_result(None)


# --------------------------------------------------------------------------- scripted device
def hrm_bytes(bpm: int, rr_ms: list[float], *, contact: bool = True) -> bytes:
    """A Heart Rate Measurement: flags 0x16 (uint8 HR, contact supported and detected, RR)."""
    flags = 0x14 | (0x02 if contact else 0) | 0x10
    out = bytes([flags, bpm])
    for rr in rr_ms:
        out += round(rr * 1024 / 1000).to_bytes(2, "little")
    return out


def hour_profile(n: int = 3600, no_contact: tuple[int, ...] = (100, 101, 102)) -> list[bytes]:
    """Warm-up, a steady block, intervals, cool-down: bpm 90..172, RR matching the rate."""
    t = np.arange(n)
    bpm = 90 + 70 * np.clip(t / 600, 0, 1) - 30 * np.clip((t - n + 600) / 600, 0, 1)
    bpm = bpm + 12 * (np.sin(t / 90) > 0.6)
    out = []
    for i, b in enumerate(np.rint(bpm).astype(int)):
        rr = 60_000 / b
        beats = [rr] if i % 3 else [rr, rr]
        out.append(hrm_bytes(int(b), beats, contact=i not in no_contact))
    return out


@dataclass
class FakeDevice:
    """A heart-rate strap as a script: what it advertises, what reads return, the
    notifications it sends at ``interval_s`` while connected, and where the link drops
    (``drops``: notification index -> seconds the device stays unreachable)."""

    clock: Any
    address: str = "A0:9E:1A:00:00:01"
    name: str = "Polar H10 ABC123"
    rssi: int = -60
    service_uuids: list[str] = field(default_factory=lambda: [ble.HR_SERVICE])
    reads: dict[str, bytes] = field(
        default_factory=lambda: {
            ble.DEVICE_INFO["manufacturer"]: b"Polar Electro Oy",
            ble.DEVICE_INFO["model"]: b"H10",
            ble.DEVICE_INFO["serial"]: b"C0680226",
            ble.DEVICE_INFO["firmware"]: b"3.1.1\x00",
            ble.BATTERY_LEVEL: bytes([87]),
        }
    )
    notifications: list[bytes] = field(default_factory=list)
    interval_s: float = 1.0
    drops: dict[int, float] = field(default_factory=dict)
    next_index: int = 0
    unreachable_until_us: int = 0
    delivered: list[tuple[int, bytes]] = field(default_factory=list)
    connects: int = 0
    # Polar PMD accelerometer (off unless pmd=True)
    pmd: bool = False
    pmd_rates: tuple[int, ...] = (25, 50, 100, 200)
    pmd_ranges: tuple[int, ...] = (2, 4, 8)
    pmd_factor: float = 1.0
    pmd_frame_samples: int = 25
    pmd_clock_error_ns: int = -3_700_000_000  # sensor clock minus true time
    pmd_rate: int | None = None  # the started rate; None when not streaming
    pmd_commands: list[bytes] = field(default_factory=list)
    pmd_sent: list[np.ndarray] = field(default_factory=list)  # true UTC µs of each sample
    pmd_settings_seen: list[dict[int, list[int]]] = field(default_factory=list)


def acc_signal(t_us: np.ndarray) -> np.ndarray:
    """The fake wrist: gravity on z, a 1-Hz swing of 0.3 g on x; mg as int16."""
    x = 300 * np.sin(2 * np.pi * (t_us % 1_000_000) / 1e6)
    return np.rint(np.column_stack([x, np.zeros_like(x), np.full_like(x, 1000.0)])).astype("<i2")


def acc_frame(sensor_ts_ns: int, mg: np.ndarray) -> bytes:
    """An uncompressed ACC frame, type 1 (int16 × 3, mG); the timestamp is the last sample's."""
    return bytes([2]) + sensor_ts_ns.to_bytes(8, "little") + bytes([1]) + mg.tobytes()


def _tlv(stype: int, values: list[int]) -> bytes:
    size = pmd.SETTING_FIELD_SIZE[stype]
    return bytes([stype, len(values)]) + b"".join(v.to_bytes(size, "little") for v in values)


def fake_backends(
    devices: list[FakeDevice],
) -> tuple[type[BaseBleakScanner], type[BaseBleakClient]]:
    class FakeScanner(BaseBleakScanner):
        def __init__(
            self,
            detection_callback: Any,
            service_uuids: list[str] | None,
            scanning_mode: str = "active",
            **kwargs: Any,
        ) -> None:
            super().__init__(detection_callback, service_uuids)
            self._handle: asyncio.TimerHandle | None = None

        def _advertise(self) -> None:
            for d in devices:
                adv = AdvertisementData(d.name, {}, {}, list(d.service_uuids), None, d.rssi, ())
                if self.is_allowed_uuid(adv.service_uuids):
                    dev = self.create_or_update_device(d.address, d.address, d.name, d, adv)
                    self.call_detection_callbacks(dev, adv)
            self._handle = asyncio.get_running_loop().call_later(0.01, self._advertise)

        async def start(self) -> None:
            self.seen_devices = {}
            self._handle = asyncio.get_running_loop().call_later(0.001, self._advertise)

        async def stop(self) -> None:
            if self._handle is not None:
                self._handle.cancel()

    class FakeClient(BaseBleakClient):
        def __init__(self, address_or_ble_device: BLEDevice | str, **kwargs: Any) -> None:
            super().__init__(
                address_or_ble_device,
                disconnected_callback=kwargs.get("disconnected_callback"),
                timeout=kwargs.get("timeout", 10.0),
            )
            assert isinstance(address_or_ble_device, BLEDevice)
            self.dev: FakeDevice = address_or_ble_device.details
            self._connected = False
            self._task: asyncio.Task[None] | None = None
            self._pmd_task: asyncio.Task[None] | None = None
            self._cp_callback: NotifyCallback | None = None

        @property
        def name(self) -> str:
            return self.dev.name

        @property
        def mtu_size(self) -> int:
            return 23

        @property
        def is_connected(self) -> bool:
            return self._connected

        def _services(self) -> BleakGATTServiceCollection:
            coll = BleakGATTServiceCollection()
            handle = 1
            layout = {
                ble.HR_SERVICE: [ble.HR_MEASUREMENT],
                DIS_SERVICE: list(ble.DEVICE_INFO.values()),
                BATTERY_SERVICE: [ble.BATTERY_LEVEL],
            }
            if self.dev.pmd:
                layout[pmd.PMD_SERVICE] = [pmd.PMD_CONTROL_POINT, pmd.PMD_DATA]
            props_of: dict[str, list[Any]] = {
                ble.HR_MEASUREMENT: ["notify"],
                pmd.PMD_CONTROL_POINT: ["read", "write", "indicate"],
                pmd.PMD_DATA: ["notify"],
            }
            for suuid, chars in layout.items():
                svc = BleakGATTService(None, handle, suuid)
                coll.add_service(svc)
                handle += 1
                for cu in chars:
                    if cu not in props_of and cu not in self.dev.reads:
                        continue
                    props: list[Any] = props_of.get(cu, ["read"])
                    coll.add_characteristic(
                        BleakGATTCharacteristic(None, handle, cu, props, lambda: 20, svc)
                    )
                    handle += 2
            return coll

        async def connect(self, pair: bool, **kwargs: Any) -> None:
            await self.dev.clock.sleep(0.3)
            if self.dev.clock.now_us() < self.dev.unreachable_until_us:
                raise BleakError(f"Device with address {self.address} was not found.")
            self.dev.connects += 1
            self._connected = True
            self.services = self._services()

        async def disconnect(self) -> None:
            self._connected = False
            self.dev.pmd_rate = None
            for task in (self._task, self._pmd_task):
                if task is not None:
                    task.cancel()

        async def pair(self, *args: Any, **kwargs: Any) -> None:
            pass

        async def unpair(self) -> None:
            pass

        async def read_gatt_char(
            self, characteristic: BleakGATTCharacteristic, **kwargs: Any
        ) -> bytearray:
            return bytearray(self.dev.reads[characteristic.uuid])

        async def read_gatt_descriptor(
            self, descriptor: BleakGATTDescriptor, **kwargs: Any
        ) -> bytearray:
            raise BleakError("no descriptors")

        async def write_gatt_char(
            self, characteristic: BleakGATTCharacteristic, data: Any, response: bool
        ) -> None:
            if characteristic.uuid != pmd.PMD_CONTROL_POINT:
                return
            d = self.dev
            cmd = bytes(data)
            d.pmd_commands.append(cmd)
            op, mtype = cmd[0], cmd[1]
            params = b""
            status = 0
            st = pmd.SettingType
            if op == pmd.ControlOp.GET_SETTINGS:
                params = (
                    _tlv(st.SAMPLE_RATE, list(d.pmd_rates))
                    + _tlv(st.RESOLUTION, [16])
                    + _tlv(st.RANGE, list(d.pmd_ranges))
                )
            elif op == pmd.ControlOp.START:
                chosen = pmd.parse_settings(cmd[2:])
                d.pmd_settings_seen.append(chosen)
                if d.pmd_rate is not None:
                    status = pmd.ControlStatus.ALREADY_IN_STATE
                else:
                    d.pmd_rate = chosen[st.SAMPLE_RATE][0]
                    factor = int.from_bytes(np.float32(d.pmd_factor).tobytes(), "little")
                    params = _tlv(st.FACTOR, [factor])
            elif op == pmd.ControlOp.STOP:
                d.pmd_rate = None
            reply = bytes([0xF0, op, mtype, status, 0]) + params
            cb = self._cp_callback
            assert cb is not None, "control point written before indications were enabled"
            asyncio.get_running_loop().call_soon(cb, bytearray(reply))

        async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: Any) -> None:
            pass

        async def start_notify(
            self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kw: Any
        ) -> None:
            if characteristic.uuid == pmd.PMD_CONTROL_POINT:
                self._cp_callback = callback
            elif characteristic.uuid == pmd.PMD_DATA:
                self._pmd_task = asyncio.create_task(self._run_pmd(callback))
            else:
                self._task = asyncio.create_task(self._run(callback))

        async def _run_pmd(self, callback: NotifyCallback) -> None:
            """Frames of ``pmd_frame_samples`` at the started rate while streaming."""
            d = self.dev
            while self._connected and d.pmd_rate is not None:
                rate, n = d.pmd_rate, d.pmd_frame_samples
                await d.clock.sleep(n / rate)
                if not self._connected or d.pmd_rate is None:
                    return
                now = d.clock.now_us()
                t_us = now - (n - 1 - np.arange(n, dtype=np.int64)) * 1_000_000 // rate
                sensor_ns = (now - EPOCH_2000_US) * 1000 + d.pmd_clock_error_ns
                d.pmd_sent.append(t_us)
                callback(bytearray(acc_frame(sensor_ns, acc_signal(t_us))))

        async def _run(self, callback: NotifyCallback) -> None:
            d = self.dev
            while d.next_index < len(d.notifications):
                await d.clock.sleep(d.interval_s)
                if not self._connected:
                    return
                i = d.next_index
                d.next_index += 1
                d.delivered.append((i, d.notifications[i]))
                callback(bytearray(d.notifications[i]))
                if i in d.drops:
                    d.unreachable_until_us = d.clock.now_us() + round(d.drops[i] * 1e6)
                    self._connected = False
                    d.pmd_rate = None  # the sensor stops streaming when the link drops
                    if self._disconnected_callback is not None:
                        self._disconnected_callback()
                    return

        async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
            if characteristic.uuid == pmd.PMD_DATA:
                if self._pmd_task is not None:
                    self._pmd_task.cancel()
            elif characteristic.uuid == ble.HR_MEASUREMENT and self._task is not None:
                self._task.cancel()

    return FakeScanner, FakeClient


async def run_sync(
    clock: VirtualClock, device: FakeDevice, db: Path, **kwargs: Any
) -> ble.SyncResult:
    scanner, client = fake_backends([device])
    driver = asyncio.create_task(clock.run())
    try:
        return await ble.sync(
            db, "P001", client_backend=client, scanner_backend=scanner, clock=clock, **kwargs
        )
    finally:
        driver.cancel()


def _valid(delivered: list[tuple[int, bytes]]) -> int:
    return sum(1 for _, b in delivered if b[0] & 0x02)


# --------------------------------------------------------------------------- tests
def test_scripted_hour_two_disconnects(db_path: Path, tmp_path: Path) -> None:
    with connect(db_path) as con:
        add_p(con)
    clock = VirtualClock()
    dev = FakeDevice(clock, notifications=hour_profile(), drops={1199: 20.0, 2399: 45.0})
    res = asyncio.run(run_sync(clock, dev, db_path, duration_s=3600, spool_dir=tmp_path / "sp"))

    assert res.reconnects == 2 and dev.connects == 3
    assert len(res.gaps) == 2 and all(g["end_us"] is not None for g in res.gaps)
    spans = [(g["end_us"] - g["start_us"]) / 1e6 for g in res.gaps]
    assert spans[0] >= 20 and spans[1] >= 45
    con = connect(db_path)
    try:
        ts, bpm = np.array(
            con.execute(
                "SELECT epoch_us(ts), bpm FROM hr_samples WHERE source_id = ? ORDER BY ts",
                [res.source_id],
            ).fetchall()
        ).T
        n_delivered = _valid(dev.delivered)
        assert len(dev.delivered) > 3400  # an hour minus the gaps and reconnects
        assert ts.size == n_delivered == res.samples  # every delivered sample, exactly once
        assert np.unique(ts).size == ts.size
        src = con.execute(
            "SELECT format, kind, device, serial, sensor, n_invalid, sha256, path "
            "FROM sources WHERE source_id = ?",
            [res.source_id],
        ).fetchone()
        assert src is not None
        assert src[:6] == ("ble", "activity", "Polar Electro Oy H10", "C0680226", "chest_strap", 3)
        assert src[6] == sp.session_sha256(res.session_uuid)
        assert src[7] == str(res.spool_path.resolve())
        # no sample inside a gap: nothing interpolated
        for g in res.gaps:
            inside = (ts > g["start_us"]) & (ts < g["end_us"])
            assert not inside.any()
        # RR: one per beat announced, the last of each notification at its receive time
        n_rr = con.execute(
            "SELECT count(*) FROM rr_intervals WHERE source_id = ?", [res.source_id]
        ).fetchone()
        assert n_rr is not None
        assert n_rr[0] == sum(1 if i % 3 else 2 for i, _ in dev.delivered)
        # the session TRIMP equals the kernel's on the stored samples
        dt = dhr.sample_durations(ts / 1e6, max_gap_s=60.0).dt_s
        a, b = dhr.banister_coefficients("f")
        kernel = dhr.banister_trimp(bpm, dt, 60.0, 190.0, a=a, b=b).value
        assert res.trimp_banister == pytest.approx(kernel, rel=1e-12)
        sess = con.execute(
            "SELECT trimp_banister FROM sessions WHERE source_id = ?", [res.source_id]
        ).fetchall()
        assert len(sess) == 1 and sess[0][0] == pytest.approx(kernel, rel=1e-9)
        gaps = con.execute("SELECT gaps FROM ble_sync WHERE source_id = ?", [res.source_id])
        row = gaps.fetchone()
        assert row is not None and len(__import__("json").loads(row[0])) == 2
    finally:
        con.close()
    # the spool holds the same, and a recover afterwards adds nothing
    c = sp.read_spool(res.spool_path)
    assert c.torn_at_offset is None
    assert sum(r.kind == sp.HRM for r in c.records) == len(dev.delivered)
    con = connect(db_path)
    try:
        outcomes, _ = sp.recover(con, [res.spool_path])
        assert outcomes[0].new_records == 0
        n = con.execute("SELECT count(*) FROM hr_samples").fetchone()
        assert n is not None and n[0] == ts.size
    finally:
        con.close()


def test_unreachable_device_gives_up_cleanly(db_path: Path, tmp_path: Path) -> None:
    with connect(db_path) as con:
        add_p(con)
    clock = VirtualClock()
    dev = FakeDevice(clock, notifications=hour_profile(30), drops={9: 10_000.0})
    with pytest.raises(ble.DeviceError, match="cannot reach"):
        asyncio.run(
            run_sync(clock, dev, db_path, duration_s=3600, spool_dir=tmp_path, give_up_after_s=120)
        )
    with connect(db_path) as con:  # what was received before is committed
        n = con.execute("SELECT count(*) FROM hr_samples").fetchone()
        assert n is not None and n[0] == 10


def test_no_device_found(db_path: Path, tmp_path: Path) -> None:
    with connect(db_path) as con:
        add_p(con)
    clock = VirtualClock()
    dev = FakeDevice(clock, notifications=[])
    with pytest.raises(ble.DeviceError, match="no device named like"):
        asyncio.run(
            run_sync(clock, dev, db_path, name="Verity", scan_timeout_s=0.1, spool_dir=tmp_path)
        )


def test_scan_lists_hr_and_pmd_devices() -> None:
    clock = VirtualClock()
    devs = [
        FakeDevice(clock),
        FakeDevice(clock, "A0:00:00:00:00:02", "Polar Verity Sense", -40, [ble.PMD_SERVICE]),
        FakeDevice(
            clock, "A0:00:00:00:00:03", "Kettle", -30, ["0000fff0-0000-1000-8000-00805f9b34fb"]
        ),
    ]
    scanner, _ = fake_backends(devs)
    found = asyncio.run(ble.scan(0.05, backend=scanner))
    assert [(d.name, d.rssi, d.services) for d in found] == [
        ("Polar Verity Sense", -40, ("pmd",)),
        ("Polar H10 ABC123", -60, ("hr",)),
    ]


class _NoAdapterScanner(BaseBleakScanner):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(None, None)

    async def start(self) -> None:
        raise FileNotFoundError(2, "No such file or directory")

    async def stop(self) -> None:
        pass


@pytest.mark.parametrize("cmd", [["scan"], ["sync", "--participant", "P001"]])
def test_no_bluetooth_exit_1_one_line(
    cmd: list[str], db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from actidose.sync_cli import cli_for_tests

    with connect(db_path) as con:
        add_p(con)
    monkeypatch.setattr(ble, "DEFAULT_SCANNER_BACKEND", _NoAdapterScanner)
    r = CliRunner().invoke(cli_for_tests(), ["--db", str(db_path), *cmd])
    assert r.exit_code == 1, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1
    assert lines[0].startswith("Error: no Bluetooth adapter available")
    assert "Traceback" not in r.output


def test_cli_sync_and_scan_with_fake(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from actidose.sync_cli import cli_for_tests

    with connect(db_path) as con:
        add_p(con)
    dev = FakeDevice(ble.RealClock(), notifications=hour_profile(100, ()), interval_s=0.01)
    scanner, client = fake_backends([dev])
    monkeypatch.setattr(ble, "DEFAULT_SCANNER_BACKEND", scanner)
    monkeypatch.setattr(ble, "DEFAULT_CLIENT_BACKEND", client)
    runner = CliRunner()
    r = runner.invoke(cli_for_tests(), ["--db", str(db_path), "scan", "--timeout", "0.05"])
    assert r.exit_code == 0, r.output
    assert "Polar H10 ABC123" in r.output and dev.address in r.output
    r = runner.invoke(
        cli_for_tests(),
        ["--db", str(db_path), "sync", "-P", "P001", "--name", "h10", "--duration", "1s"],
    )
    assert r.exit_code == 0, r.output
    assert "samples" in r.output
    with connect(db_path) as con:
        n = con.execute("SELECT count(*) FROM hr_samples").fetchone()
        assert n is not None and n[0] == len(dev.delivered) > 10
    r = runner.invoke(cli_for_tests(), ["--db", str(db_path), "sync", "--recover"])
    assert r.exit_code == 0, r.output
    with connect(db_path) as con:
        n2 = con.execute("SELECT count(*) FROM hr_samples").fetchone()
        assert n2 == n


# --------------------------------------------------------------------------- SIGKILL
CHILD = """
import asyncio, sys
sys.path.insert(0, {root!r})
from pathlib import Path
from tests.test_ble import FakeDevice, VirtualClock, hour_profile, run_sync

def report(state):
    if state.committed_samples:
        print("committed", state.committed_samples, flush=True)

clock = VirtualClock(real_step_s=0.0005)
dev = FakeDevice(clock, notifications=hour_profile(), drops={{300: 10.0}})
asyncio.run(run_sync(clock, dev, Path({db!r}), duration_s=3600, spool_dir=Path({spool!r}),
                     flush_every_s=20, on_update=report))
print("finished", flush=True)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_sigkill_during_sync_then_recover(db_path: Path, tmp_path: Path) -> None:
    with connect(db_path) as con:
        add_p(con)
    spool_dir = tmp_path / "spool"
    root = str(Path(__file__).resolve().parents[1])
    script = CHILD.format(root=root, db=str(db_path), spool=str(spool_dir))
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=root
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    seen = 0
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("committed"):
            seen = int(line.split()[1])
            if seen >= 400:  # past a commit and the disconnect, well before the end
                break
        assert not line.startswith("finished") and line != "", "child ended before the kill"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert seen >= 400
    [path] = sp.spool_files(spool_dir)
    contents = sp.read_spool(path)
    valid_hrm = [r for r in contents.records if r.kind == sp.HRM and r.payload[0] & 0x02]
    con = connect(db_path)
    try:
        before = con.execute("SELECT count(*) FROM hr_samples").fetchone()
        assert before is not None and 0 < before[0] <= len(valid_hrm)
        sp.recover(con, [path])
        out2, _ = sp.recover(con, [path])
        assert out2[0].new_records == 0
        rows = con.execute("SELECT epoch_us(ts) FROM hr_samples ORDER BY 1").fetchall()
        got = [r[0] for r in rows]
        assert len(got) == len(set(got))  # nothing twice
        assert got == sorted(r.recv_ts_us for r in valid_hrm)  # nothing lost
        gaps = con.execute("SELECT gaps FROM ble_sync").fetchone()
        assert gaps is not None and len(__import__("json").loads(gaps[0])) == 1
    finally:
        con.close()


# --------------------------------------------------------------------------- accelerometer
def test_acc_stream_spooled_decoded_and_stored_once(db_path: Path, tmp_path: Path) -> None:
    with connect(db_path) as con:
        add_p(con)
    clock = VirtualClock()
    dev = FakeDevice(
        clock,
        service_uuids=[ble.HR_SERVICE, ble.PMD_SERVICE],
        notifications=hour_profile(300, ()),
        drops={119: 20.0},
        pmd=True,
    )
    res = asyncio.run(
        run_sync(clock, dev, db_path, duration_s=300, spool_dir=tmp_path / "sp", acc=True)
    )
    assert res.reconnects == 1 and dev.connects == 2
    # control point: get settings, start (50 Hz, 16 bit, 8 g) per connection, stop at the end
    ops = [c[0] for c in dev.pmd_commands]
    assert ops == [1, 2, 1, 2, 3]
    st = pmd.SettingType
    assert dev.pmd_settings_seen[0] == {st.SAMPLE_RATE: [50], st.RESOLUTION: [16], st.RANGE: [8]}
    # the spool holds every frame sent and the settings, once per connection
    c = sp.read_spool(res.spool_path)
    frames = [r for r in c.records if r.kind == sp.PMD]
    assert len(frames) == len(dev.pmd_sent) == res.accel_frames > 500
    settings = [r.json() for r in c.records if r.kind == sp.EVENT]
    settings = [e for e in settings if e["event"] == "pmd_settings"]
    assert settings == 2 * [
        {
            "event": "pmd_settings",
            "sample_rate_hz": 50,
            "resolution_bits": 16,
            "range_g": 8,
            "factor": 1.0,
        }
    ]
    first_frame = next(i for i, r in enumerate(c.records) if r.kind == sp.PMD)
    assert any(
        r.kind == sp.EVENT and r.json()["event"] == "pmd_settings" for r in c.records[:first_frame]
    )
    # decoding: every sample sent, at its true UTC time despite the sensor clock's error
    dec = sp.decode_pmd(c.records)
    sent = np.concatenate(dev.pmd_sent)
    assert dec.ts_us.size == sent.size and dec.n_bad_frames == dec.n_dropped_samples == 0
    np.testing.assert_array_equal(dec.ts_us, sent)
    np.testing.assert_allclose(dec.xyz_g, acc_signal(sent) / 1000.0, atol=1e-6)
    assert dec.offset_us == -dev.pmd_clock_error_ns // 1000 + EPOCH_2000_US
    # epochs: one per 5-s UTC epoch holding samples, ENMO of the 0.3 g swing (~22.5 mg)
    n_epochs = np.unique(sent // 5_000_000).size
    assert res.accel_epochs == n_epochs
    con = connect(db_path)
    try:
        rows = con.execute(
            "SELECT enmo_mg, n_samples FROM accel_epochs WHERE source_id = ? ORDER BY ts",
            [res.source_id],
        ).fetchall()
        assert len(rows) == n_epochs
        enmo = np.array([r[0] for r in rows])
        full = np.array([r[1] for r in rows]) == 250
        assert full.sum() > 40
        assert np.all((enmo[full] > 15) & (enmo[full] < 30))
        proc = con.execute(
            "SELECT sample_rate_hz, range_g, n_samples FROM accel_processing WHERE source_id = ?",
            [res.source_id],
        ).fetchone()
        assert proc == (50.0, 8.0, sent.size)
        # --recover afterwards adds nothing (HR or accel)
        for _ in range(2):
            out, _ = sp.recover(con, [res.spool_path])
            assert out[0].new_records == 0 and out[0].new_epochs == 0
        n = con.execute("SELECT count(*) FROM accel_epochs").fetchone()
        assert n is not None and n[0] == n_epochs
    finally:
        con.close()
    # a spool recovered into a database that never saw it: epochs once, then nothing
    other = tmp_path / "other.duckdb"
    with connect(other) as con2:
        add_p(con2)
        out, _ = sp.recover(con2, [res.spool_path])
        assert out[0].new_epochs == n_epochs
        out, _ = sp.recover(con2, [res.spool_path])
        assert out[0].new_records == 0 and out[0].new_epochs == 0
        n = con2.execute("SELECT count(*) FROM accel_epochs").fetchone()
        assert n is not None and n[0] == n_epochs


def test_acc_without_pmd_service_syncs_hr_only(db_path: Path, tmp_path: Path) -> None:
    with connect(db_path) as con:
        add_p(con)
    clock = VirtualClock()
    dev = FakeDevice(clock, notifications=hour_profile(60, ()))
    res = asyncio.run(
        run_sync(clock, dev, db_path, duration_s=60, spool_dir=tmp_path / "sp", acc=True)
    )
    assert res.samples > 50 and res.accel_frames == 0 and res.accel_epochs == 0
    assert dev.pmd_commands == []


def test_cli_sync_acc_with_fake(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from actidose.sync_cli import cli_for_tests

    with connect(db_path) as con:
        add_p(con)
    dev = FakeDevice(
        ble.RealClock(),
        service_uuids=[ble.HR_SERVICE, ble.PMD_SERVICE],
        notifications=hour_profile(200, ()),
        interval_s=0.01,
        pmd=True,
        pmd_frame_samples=5,
    )
    scanner, client = fake_backends([dev])
    monkeypatch.setattr(ble, "DEFAULT_SCANNER_BACKEND", scanner)
    monkeypatch.setattr(ble, "DEFAULT_CLIENT_BACKEND", client)
    runner = CliRunner()
    args = ["--db", str(db_path), "sync", "-P", "P001", "--name", "h10", "--duration", "2s"]
    r = runner.invoke(cli_for_tests(), [*args, "--acc"])
    assert r.exit_code == 0, r.output
    assert "accelerometer:" in r.output and dev.pmd_sent
    with connect(db_path) as con:
        n = con.execute("SELECT sum(n_samples) FROM accel_epochs").fetchone()
        assert n is not None and n[0] == sum(t.size for t in dev.pmd_sent)
    r = runner.invoke(cli_for_tests(), ["--db", str(db_path), "sync", "--recover"])
    assert r.exit_code == 0, r.output
    assert "epochs" in r.output
    with connect(db_path) as con:
        n2 = con.execute("SELECT sum(n_samples) FROM accel_epochs").fetchone()
        assert n2 == n
