"""A process killed (SIGKILL) in the middle of an import leaves each file whole or absent, and the
next command finishes the derived tables it had left pending.

Files are written in batches (one transaction per batch), so the import must last long enough
for a kill to land between two commits: hence many files; and the kills are timed from the
moment the process has the database open, not from its start (how long Python takes to start
varies far more than the import itself)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pytest

from actidose.storage.db import connect

from .conftest import activity_file, add_p, utc

N_FILES = 320


def wait_until_open(proc: subprocess.Popen[bytes], db: Path, timeout_s: float = 60.0) -> None:
    """Until ``proc`` holds ``db`` open (Linux: its /proc fd table); elsewhere a fixed wait."""
    fds = Path(f"/proc/{proc.pid}/fd")
    if not fds.is_dir():
        time.sleep(1.5)
        return
    target = str(db.resolve())
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if any(os.readlink(fds / fd) == target for fd in os.listdir(fds)):
                return
        except OSError:
            pass  # an fd closed while we looked
        time.sleep(0.005)


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="needs SIGKILL")
def test_sigkill_mid_import_leaves_whole_files(tmp_path: Path) -> None:
    db = tmp_path / "k.duckdb"
    con = connect(db)
    add_p(con)
    con.close()
    files = tmp_path / "files"
    files.mkdir()
    for k in range(N_FILES):
        activity_file(
            files / f"f{k:02d}.fit",
            utc(2024, 1, 1 + k % 28, 6 + k // 28),
            np.full(3000, 120.0 + k % 30),
        )
    env = {**os.environ, "ACTIDOSE_DB": str(db)}
    seen = []
    for delay in (0.05, 0.2, 0.4, 0.6, 0.9, 1.2, 1.6):
        proc = subprocess.Popen(
            [sys.executable, "-m", "actidose.cli", "import", str(files), "-P", "P001"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until_open(proc, db)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        con2 = duckdb.connect(str(db), read_only=True)
        rows = con2.execute(
            "SELECT s.source_id, s.n_samples, count(h.ts) FROM sources s "
            "LEFT JOIN hr_samples h USING (source_id) GROUP BY ALL"
        ).fetchall()
        con2.close()
        for sid, n_declared, n_stored in rows:
            assert n_declared == n_stored == 3000, sid
        seen.append(len(rows))
    print("sources after each kill:", seen)
    # The kills must have landed mid-batch at least once for the test to mean anything.
    assert any(0 < n < N_FILES for n in seen), seen
    # The next run imports the rest and heals anything left pending.
    done = subprocess.run(
        [sys.executable, "-m", "actidose.cli", "import", str(files), "-P", "P001", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    con3 = duckdb.connect(str(db), read_only=True)
    assert con3.execute("SELECT count(*) FROM sources").fetchone() == (N_FILES,)
    assert con3.execute("SELECT count(*) FROM hr_samples").fetchone() == (N_FILES * 3000,)
    assert con3.execute("SELECT count(*) FROM pending_recompute").fetchone() == (0,)
    assert con3.execute("SELECT sum(sessions) FROM daily_load").fetchone() == (N_FILES,)
    con3.close()
