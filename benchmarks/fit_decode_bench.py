"""FIT decoding speed: fitdecode alone, the reference reader and the columnar reader, side by side.

    python benchmarks/fit_decode_bench.py [--corpus DIR] [--repeat 10] [--quick]

For every FIT file of the shared corpus from which the reference reader gets heart rate (with
salvage: damaged files count), in one process, on the same bytes held in memory (no disk):

* **fitdecode**: iterating every frame with ``fitdecode.FitReader`` as it is usually called
  (``FitReader(file)``: values processed, CRC computed; the setting the issue's figure of
  8,000-18,000 records/s describes), and in its fastest setting (``processor=None``, CRC not
  computed, ``ErrorHandling.IGNORE``), about twice as fast;
* **reference**: :func:`actidose.ingest.fit.read_reference` (fitdecode plus the rules that make
  a Recording; CRCs checked);
* **fast**: :func:`actidose.ingest.fit.read` (the columnar decoder, :mod:`actidose.ingest.fitfast`,
  and the same rules: the whole Recording, CRCs checked).

Each is timed as the best of ``--repeat`` runs (fitdecode and the reference: of fewer runs, they
take seconds). The columnar decoder keeps a small cache of message layouts across files, as an
import of many files in one process does. Records are data messages; records/s and MB/s are
over the sum of the files. Then the same on two generated files showing how it scales: a
24-hour activity recorded every second (86,400 records, plus an hrv message every second for
the first hour), and a week of monitoring (one message a minute with heart rate and activity
counters, 16-bit timestamps). Exit status 1 when the columnar reader is less than 100 times as
fast as fitdecode (as usually called) over the corpus files (the issue's acceptance criterion);
the ratio to fitdecode's fastest setting is printed beside it.
"""

from __future__ import annotations

import argparse
import io
import platform
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import fitdecode
import numpy as np

from actidose.errors import InputError
from actidose.ingest import fit, fitfast
from actidose.ingest import fit_writer as fw

REQUIRED = 100.0  # fast / fitdecode, over the corpus files with HR
ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "fit"


def fitdecode_frames(data: bytes) -> int:
    """Iterate every frame as fitdecode is usually called; stop quietly at damage."""
    n = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # CRC mismatches, odd field sizes
        with fitdecode.FitReader(io.BytesIO(data)) as reader:
            try:
                for _ in reader:
                    n += 1
            except fitdecode.FitError:
                pass
    return n


def fitdecode_fastest(data: bytes) -> int:
    """Iterate every frame, as fast as fitdecode goes; stop quietly at damage."""
    n = 0
    with fitdecode.FitReader(
        io.BytesIO(data),
        processor=None,
        check_crc=fitdecode.CrcCheck.DISABLED,
        error_handling=fitdecode.ErrorHandling.IGNORE,
    ) as reader:
        try:
            for _ in reader:
                n += 1
        except fitdecode.FitError:
            pass
    return n


def reader(fn: Callable[..., object]) -> Callable[[bytes], object]:
    def run(data: bytes) -> object:
        try:
            return fn(io.BytesIO(data), path="bench.fit", salvage=True)
        except InputError as e:  # e.g. only power-on-relative times: still fully decoded
            return e

    return run


def best(fn: Callable[[bytes], object], data: bytes, repeat: int) -> float:
    out = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(data)
        out = min(out, time.perf_counter() - t0)
    return out


def records_of(data: bytes) -> int:
    """Data messages in the stream (those before any damage)."""
    return sum(int(d.offsets.size) for d in fitfast.scan(data).defs)


def has_hr(data: bytes) -> bool:
    rec = reader(fit.read_reference)(data)
    return not isinstance(rec, InputError) and len(rec.hr) > 0  # type: ignore[attr-defined]


def generated(quick: bool) -> dict[str, bytes]:
    t0 = np.datetime64("2024-03-01T00:00:00", "s")
    n = 3 * 3600 if quick else 86_400
    ts = t0 + np.arange(n).astype("timedelta64[s]")
    hr = 120 + 25 * np.sin(np.arange(n) / 700.0)
    w = fw.FitWriter()
    w.add_file_id(serial=1, time_created=t0)
    w.add_device_info(t0, serial=1)
    w.add_event(t0)
    rng = np.random.default_rng(0)
    hrv_s = 600 if quick else 3600
    for i in range(hrv_s):  # an hrv message after every record, as Garmin writes them
        w.add_records(ts[i : i + 1], hr[i : i + 1], distance_m=[i * 3.0], speed_mps=[3.0])
        w.add_hrv(rng.integers(450, 520, 2).tolist())
    w.add_records(
        ts[hrv_s:],
        hr[hrv_s:],
        distance_m=np.arange(hrv_s, n) * 3.0,
        speed_mps=np.full(n - hrv_s, 3.0),
    )
    w.add_event(ts[-1], event_type=4)
    w.add_session(ts[0], ts[-1], "cycling")
    w.add_activity(ts[-1], 3600)
    activity = w.to_bytes()

    days = 1 if quick else 7
    m = days * 1440
    tm = t0 + (np.arange(m) * 60).astype("timedelta64[s]")
    steps = (np.arange(m) % 1440) * 6.0
    w = fw.FitWriter()
    w.add_file_id(type=32, serial=1, time_created=t0)
    w.add_monitoring_info(t0, local_offset_s=3600)
    w.add_monitoring(
        tm,
        60 + 20 * np.sin(np.arange(m) / 90.0),
        activity_type="walking",
        cycles=steps,
        active_calories=steps // 25,
        moderate_minutes=np.where(np.arange(m) % 40 == 0, 3, np.nan),
    )
    monitoring = w.to_bytes()
    return {
        f"activity {n // 3600} h at 1 s (+hrv)": activity,
        f"monitoring {days} d at 1 min": monitoring,
    }


def row(name: str, size: int, records: int, t: list[float]) -> str:
    """t: fitdecode, fitdecode fastest, reference, fast (seconds)."""
    rates = "".join(f" {records / x:11,.0f}" for x in t)
    ratios = f"{t[0] / t[3]:6.0f}x {t[1] / t[3]:5.0f}x"
    return f"{name[:40]:40s} {size / 1e6:6.3f} {records:7d}{rates} {ratios}"


HEAD = (
    f"{'file':40s} {'MB':>6s} {'records':>7s} {'fitdecode':>11s} {'fd fastest':>11s} "
    f"{'reference':>11s} {'fast':>11s} {'ratio':>7s} {'ratio':>6s}\n"
    f"{'':40s} {'':>6s} {'':>7s}" + " {:>11s}".format("records/s") * 4 + f" {'fast/fd':>7s} "
    f"{'/fast':>6s}"
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=CORPUS, help="folder of FIT files")
    ap.add_argument("--repeat", type=int, default=10, help="runs of the fast reader (best of)")
    ap.add_argument("--quick", action="store_true", help="smaller generated files, fewer runs")
    args = ap.parse_args(argv)
    repeat = 3 if args.quick else max(1, args.repeat)
    slow_repeat = 1 if args.quick else 2

    print(f"python {platform.python_version()}, numpy {np.__version__}, fitdecode "
          f"{fitdecode.__version__}, {platform.machine()}")  # fmt: skip
    files = sorted(args.corpus.glob("*.fit"))
    if not files:
        print(f"no FIT files in {args.corpus}", file=sys.stderr)
        return 2
    fast_read, ref_read = reader(fit.read), reader(fit.read_reference)
    print(f"\ncorpus files with heart rate ({args.corpus})\n{HEAD}")
    size = n = 0
    tot = np.zeros(4)  # seconds: fitdecode, fitdecode fastest, reference, fast
    decoders: dict[str, int] = {}
    for path in files:
        data = path.read_bytes()
        if not has_hr(data):
            continue
        rec = fast_read(data)
        how = getattr(rec, "meta", {}).get("fit_decoder", "error")
        decoders[how] = decoders.get(how, 0) + 1
        records = records_of(data)
        t = [
            best(fitdecode_frames, data, slow_repeat),
            best(fitdecode_fastest, data, slow_repeat),
            best(ref_read, data, slow_repeat),
            best(fast_read, data, repeat),
        ]
        size, n, tot = size + len(data), n + records, tot + t
        print(row(path.name, len(data), records, t))
    print(row("TOTAL", size, n, list(tot)))
    ratio = tot[0] / tot[3]
    print(
        f"\nMB/s: fitdecode {size / 1e6 / tot[0]:.2f} (fastest setting {size / 1e6 / tot[1]:.2f}), "
        f"reference {size / 1e6 / tot[2]:.2f}, fast {size / 1e6 / tot[3]:.1f}; the fast reader is "
        f"{ratio:.0f}x fitdecode ({tot[1] / tot[3]:.0f}x its fastest setting) and "
        f"{tot[2] / tot[3]:.0f}x the reference reader (decoder: {decoders})"
    )

    print(f"\ngenerated files\n{HEAD}")
    for name, data in generated(args.quick).items():
        records = records_of(data)
        t = [
            best(fitdecode_frames, data, 1),
            best(fitdecode_fastest, data, 1),
            best(ref_read, data, 1),
            best(fast_read, data, repeat),
        ]
        print(row(name, len(data), records, t))
        print(f"{'':40s} fast: {len(data) / 1e6 / t[3]:.1f} MB/s")

    if ratio < REQUIRED:
        print(f"\nFAIL: fast decoding is {ratio:.0f}x fitdecode, below {REQUIRED:.0f}x")
        return 1
    print(f"\nOK: fast decoding is {ratio:.0f}x fitdecode (required: {REQUIRED:.0f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
