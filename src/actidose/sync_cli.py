"""``actidose scan`` and ``actidose sync``: live Bluetooth heart rate, spool recovery, and
Garmin watches over USB. Registered on the main group by :func:`register`.

Errors are one line, ``Error: ...`` (exit 1; usage errors exit 2), as everywhere in the CLI.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from contextlib import suppress
from pathlib import Path
from typing import Any

import click

from .cli_errors import user_errors
from .errors import UsageError
from .ingest import ble
from .ingest import spool as sp
from .output import render
from .pipeline import EXIT_FAILURE

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> float:
    """``30s``, ``45m``, ``1h30m`` (or plain seconds) -> seconds."""
    t = text.strip().lower()
    if t.isdigit():
        return float(t)
    m = _DURATION.match(t)
    if not t or m is None or not any(m.groups()):
        raise UsageError(f"bad duration {text!r}", fix="e.g. 30s, 45m or 1h30m")
    h, mi, s = (int(g or 0) for g in m.groups())
    total = h * 3600 + mi * 60 + s
    if total <= 0:
        raise UsageError(f"duration {text!r} is zero")
    return float(total)


def _db(ctx: click.Context) -> str | None:
    return getattr(ctx.obj, "db", None)


# --------------------------------------------------------------------------- live view
def _view(state: ble.LiveState) -> Any:
    from rich.table import Table

    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    trimp = state.trimp()
    mins, secs = divmod(int(state.elapsed_s), 60)
    t.add_row("device", state.device_name or "?")
    t.add_row("link", "[green]connected[/]" if state.connected else "[red]not connected[/]")
    t.add_row("HR", "-" if state.bpm is None else f"{state.bpm} bpm")
    t.add_row("zone", "-" if state.zone is None else str(state.zone))
    t.add_row("TRIMP", "-" if trimp is None else f"{trimp:.1f}")
    t.add_row("elapsed", f"{mins // 60}:{mins % 60:02d}:{secs:02d}")
    t.add_row("battery", "-" if state.battery is None else f"{state.battery} %")
    t.add_row("stored", f"{state.committed_samples} samples, {state.gaps} gap(s)")
    if state.contact is False:
        t.add_row("[yellow]warning[/]", "[yellow]no skin contact: moisten the strap[/]")
    for w in state.warnings[-3:]:
        t.add_row("[yellow]note[/]", w)
    return t


async def _run_sync(db: str | None, participant_id: str, **kwargs: Any) -> ble.SyncResult:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)  # Ctrl-C: stop cleanly and commit
    live: Any = None
    shown = 0
    if sys.stdout.isatty():
        from rich.live import Live

        live = Live(refresh_per_second=2, transient=False)
        live.start()

    last_draw = 0.0

    def on_update(state: ble.LiveState) -> None:
        nonlocal shown, last_draw
        if live is not None:
            if loop.time() - last_draw >= 0.5:
                live.update(_view(state))
                last_draw = loop.time()
        else:
            for w in state.warnings[shown:] if len(state.warnings) > shown else []:
                click.echo(f"warning: {w}", err=True)
            shown = len(state.warnings)

    try:
        return await ble.sync(db, participant_id, stop=stop, on_update=on_update, **kwargs)
    finally:
        if live is not None:
            live.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)


# --------------------------------------------------------------------------- commands
@click.command("scan")
@click.option("--timeout", type=float, default=5.0, show_default=True, help="Seconds to listen.")
def scan_cmd(timeout: float) -> None:
    """List nearby devices advertising heart rate (0x180D) or Polar PMD."""
    with user_errors():
        found = asyncio.run(ble.scan(timeout))
        if not found:
            click.echo("no heart-rate devices found", err=True)
            return
        rows = [(d.name, d.address, d.rssi, ",".join(d.services)) for d in found]
        click.echo(render(["name", "address", "rssi", "services"], rows, "table"))


@click.command("sync")
@click.option("--participant", "-P", "participant_id", help="Whose heart rate this is.")
@click.option("--address", help="Bluetooth address of the device.")
@click.option("--name", help="Part of the device name, e.g. H10.")
@click.option("--duration", help="Stop after this long: 30s, 45m, 1h30m (default: Ctrl-C).")
@click.option(
    "--spool-dir",
    type=click.Path(path_type=Path),
    help="Folder of the sync spools (default: <db>.spool/ beside the database).",
)
@click.option("--recover", is_flag=True, help="Import what the spools hold (after a crash).")
@click.option(
    "--acc",
    is_flag=True,
    help="Also stream the accelerometer (Polar PMD); stored as accel epochs at the end.",
)
@click.option(
    "--usb",
    type=click.Path(path_type=Path),
    help="Mount point of a Garmin watch: import its new FIT files.",
)
@click.pass_context
def sync_cmd(
    ctx: click.Context,
    participant_id: str | None,
    address: str | None,
    name: str | None,
    duration: str | None,
    spool_dir: Path | None,
    recover: bool,
    acc: bool,
    usb: Path | None,
) -> None:
    """Record a chest strap live over Bluetooth, recover spools, or import a Garmin watch.

    Every notification is appended to a spool file before anything else; the database is
    written from it in short transactions (it is closed in between, so queries can run during
    a sync). After a crash, ``--recover`` imports what the spools hold, exactly once."""
    db = _db(ctx)
    with user_errors():
        if recover:
            _recover(db, spool_dir)
            return
        if participant_id is None:
            raise UsageError("--participant is required", fix="e.g. --participant P001")
        if usb is not None:
            _usb(db, participant_id, usb)
            return
        if address and name:
            raise UsageError("give --address or --name, not both")
        seconds = parse_duration(duration) if duration else None
        res = asyncio.run(
            _run_sync(
                db,
                participant_id,
                address=address,
                name=name,
                duration_s=seconds,
                spool_dir=spool_dir,
                acc=acc,
            )
        )
        info = res.device_info
        dev = " ".join(x for x in (info.get("manufacturer"), info.get("model")) if x) or "device"
        trimp = "-" if res.trimp_banister is None else f"{res.trimp_banister:.1f}"
        batt = "" if res.battery is None else f", battery {res.battery} %"
        click.echo(
            f"{participant_id}: {res.samples} samples from {dev}{batt}; "
            f"{len(res.gaps)} gap(s), {res.reconnects} reconnect(s); TRIMP {trimp}"
        )
        if acc:
            click.echo(
                f"accelerometer: {res.accel_frames} frames, {res.accel_epochs} epochs stored"
            )
        click.echo(f"spool: {res.spool_path}")


def _recover(db: str | None, spool_dir: Path | None) -> None:
    from .storage.db import connect, resolve_db_path

    folder = spool_dir or sp.default_spool_dir(resolve_db_path(db))
    paths = sp.spool_files(folder) if folder.is_dir() else []
    if not paths:
        click.echo(f"no spool files in {folder}")
        return
    con = connect(db)
    try:
        outcomes, _ = sp.recover(con, paths)
    finally:
        con.close()
    rows = []
    for o in outcomes:
        if o.torn_at_offset is not None:
            click.echo(
                f"warning: {o.path}: torn record at byte {o.torn_at_offset} ({o.torn_reason}); "
                "everything before it was imported",
                err=True,
            )
        rows.append(
            (
                Path(o.path).name,
                o.participant_id,
                o.records,
                o.new_records,
                o.new_samples,
                o.gaps,
                o.new_epochs,
                o.error or "",
            )
        )
    click.echo(
        render(
            ["spool", "participant", "records", "new", "samples", "gaps", "epochs", "error"],
            rows,
            "table",
        )
    )
    if any(o.error for o in outcomes):
        sys.exit(EXIT_FAILURE)


def _usb(db: str | None, participant_id: str, mount: Path) -> None:
    from .cli import _print_summary
    from .ingest.usb import find_fit_files
    from .pipeline import import_paths
    from .storage.db import connect
    from .storage.derive import recompute

    files = find_fit_files(mount)
    if not files:
        click.echo(f"no activity or monitoring FIT files on {mount}")
        return
    con = connect(db)
    try:
        recompute(con)
        summary = import_paths(con, files, participant_id)
    finally:
        con.close()
    _print_summary(summary)
    if summary.exit_code:
        sys.exit(summary.exit_code)


def register(main: click.Group) -> None:
    """Add ``scan`` and ``sync`` to the main ``actidose`` group."""
    main.add_command(scan_cmd)
    main.add_command(sync_cmd)


def cli_for_tests() -> click.Group:
    """A stand-in for the main group (``--db`` and these commands), for tests that must not
    depend on cli.py registering them."""

    class _Obj:
        def __init__(self, db: str | None) -> None:
            self.db = db

    @click.group()
    @click.option("--db")
    @click.pass_context
    def group(ctx: click.Context, db: str | None) -> None:
        ctx.obj = _Obj(db)

    register(group)
    return group
