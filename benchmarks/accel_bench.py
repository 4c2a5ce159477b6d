"""Raw accelerometer processing benchmark: a generated 7-day, 100 Hz recording end to end.

    python benchmarks/accel_bench.py [--days 7] [--sf 100] [--chunk 4000000] [--repeat 3]

The recording (about 60 million samples per axis) is generated chunk by chunk, as a reader
decodes a file, so the generator never holds more than one chunk: a day / night pattern (awake
wrist: wandering orientation, walking; night: postures held 20-40 min, twitches), three hours on a
table on day 3, a few bursts at the +-8 g range, and an injected calibration error.

Each measurement runs in its own subprocess (peak memory is that process's
``resource.getrusage(RUSAGE_SELF).ru_maxrss``):

``decode``    the generator alone (the "decoding" cost, excluded from the ratios);
``baseline``  one numpy pass computing the vector magnitude of every chunk, two ways:
              ``np.linalg.norm(xyz, axis=1)`` and the faster ``sqrt(x*x + y*y + z*z)`` on the
              float32 columns;
``process``   :func:`actidose.dose.accel_process.process` (calibration, non-wear, clipping,
              ENMO / MAD epochs, levels; both passes over the stream) and the MVPA bout flags.

Times exclude the generator (time spent inside ``next(chunks)`` is measured and subtracted).
Budget: processing within 10x the faster one-pass baseline and peak memory under 1.5 GB; the
script exits with status 1 when either is exceeded.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from actidose.dose.accel_process import mvpa_flags, process
from actidose.recording import AccelChunk, AccelStream

T0_US = 1_717_221_600_000_000  # 2024-06-01 06:00 UTC
GAIN = np.array([1.03, 0.98, 1.02])
BIAS = np.array([0.04, -0.02, 0.03])
RANGE_G = 8.0
RATIO_BUDGET = 10.0
MEMORY_BUDGET_MB = 1536.0


# ---------------------------------------------------------------------------------------------
# The generated recording
# ---------------------------------------------------------------------------------------------


def _unit(rng: np.random.Generator, k: int) -> np.ndarray:
    v = rng.standard_normal((k, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _synth_part(rng: np.random.Generator, start: int, n: int, sf: float, out: np.ndarray) -> None:
    """Samples ``[start, start + n)`` into ``out`` (float32, shape (n, 3))."""
    t = (start + np.arange(n)) / sf  # s since the start
    hour = (6.0 + t / 3600.0) % 24.0
    day = (6.0 + t / 3600.0) // 24.0
    asleep = (hour >= 23.0) | (hour < 7.0)
    off = (day == 2) & (hour >= 13.0) & (hour < 16.0)  # on a table on day 3

    # Orientation of gravity: a random walk of two angles at 1 Hz, still between postures at
    # night (a new posture every 20 min).
    secs = int(n / sf) + 2
    sec_t = t[0] + np.arange(secs)
    sec_hour = (6.0 + sec_t / 3600.0) % 24.0
    night = (sec_hour >= 23.0) | (sec_hour < 7.0)
    steps = rng.normal(0.0, np.deg2rad(6.0), (secs, 2))
    steps[night] = 0.0
    turns = night & (np.floor(sec_t) % 1200 == 0)
    steps[turns] = rng.uniform(-1.5, 1.5, (int(turns.sum()), 2))
    ang = np.cumsum(steps, axis=0) + rng.uniform(0, 2 * np.pi, 2)
    th = np.interp(t, sec_t, ang[:, 0]).astype(np.float32)
    ph = np.interp(t, sec_t, ang[:, 1]).astype(np.float32)
    s = np.sin(th)
    out[:, 0] = s * np.cos(ph)
    out[:, 1] = s * np.sin(ph)
    out[:, 2] = np.cos(th)
    # Walking about a fifth of the waking minutes.
    minute = (t // 60).astype(np.int64)
    walk = ~asleep & (((minute * 2654435761) >> 7) % 5 == 0)
    sway = (0.35 * np.sin(2 * np.pi * 1.9 * t)).astype(np.float32) * walk
    out += sway[:, None] * _unit(rng, 1).astype(np.float32)
    if off.any():  # on the table: a fixed orientation
        out[off] = np.array([0.02, -0.05, 0.998], np.float32)
    noise = rng.standard_normal((n, 3), dtype=np.float32)
    noise *= np.where(off, 0.002, np.where(asleep, 0.004, 0.012)).astype(np.float32)[:, None]
    out += noise
    clap = (hour >= 12.0) & (hour < 12.0 + 0.3 / 3600.0)  # a clap at the range: 0.3 s at noon
    out[clap, 0] = RANGE_G
    out *= GAIN.astype(np.float32)
    out += BIAS.astype(np.float32)
    np.clip(out, -RANGE_G, RANGE_G, out=out)


def synth_chunk(k: int, start: int, stop: int, sf: float, seed: int) -> AccelChunk:
    """Samples ``[start, stop)`` of the recording (deterministic in ``k`` and ``seed``),
    made a quarter million samples at a time so the generator's temporaries stay small."""
    rng = np.random.default_rng([seed, k])
    n = stop - start
    ts_us = T0_US + np.round((start + np.arange(n)) * (1e6 / sf)).astype(np.int64)
    xyz = np.empty((n, 3), np.float32)
    part = 250_000
    for i in range(0, n, part):
        j = min(i + part, n)
        _synth_part(rng, start + i, j - i, sf, xyz[i:j])
    return AccelChunk(ts_us, xyz)


@dataclass
class TimedStream:
    """An AccelStream over the generator that also measures the time spent generating."""

    sf: float
    n: int
    chunk: int
    seed: int = 7
    decode_s: float = 0.0

    def chunks(self) -> Iterator[AccelChunk]:
        for k, start in enumerate(range(0, self.n, self.chunk)):
            t0 = time.perf_counter()
            c = synth_chunk(k, start, min(start + self.chunk, self.n), self.sf, self.seed)
            self.decode_s += time.perf_counter() - t0
            yield c

    def stream(self) -> AccelStream:
        return AccelStream(self.sf, self.chunks, range_g=RANGE_G, n_samples=self.n)


# ---------------------------------------------------------------------------------------------
# Measurements (one per subprocess)
# ---------------------------------------------------------------------------------------------


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(kind: str, sf: float, n: int, chunk: int) -> dict[str, object]:
    src = TimedStream(sf, n, chunk)
    out: dict[str, object] = {"kind": kind, "n_samples": n}
    t0 = time.perf_counter()
    if kind == "decode":
        total = at_range = 0
        for c in src.chunks():
            total += c.ts_us.shape[0]
            at_range += int((np.abs(c.xyz) >= RANGE_G - 0.01).any(axis=1).sum())
        assert total == n
        out["at_range"] = at_range  # the clipped samples processing should count
    elif kind == "baseline":
        t_norm = t_cols = 0.0
        check = 0.0
        for c in src.chunks():
            a = time.perf_counter()
            r1 = np.linalg.norm(c.xyz, axis=1)
            b = time.perf_counter()
            x, y, z = c.xyz[:, 0], c.xyz[:, 1], c.xyz[:, 2]
            r2 = np.sqrt(x * x + y * y + z * z)
            t_cols += time.perf_counter() - b
            t_norm += b - a
            check += float(r1[0] + r2[-1])
        out.update(norm_s=t_norm, cols_s=t_cols, check=check)
    elif kind == "process":
        res = process(src.stream())
        t_proc = time.perf_counter() - t0 - src.decode_s
        a = time.perf_counter()
        bouts = {
            b: mvpa_flags(res.enmo_mg, res.epoch_s, res.nonwear, bout_min=b, start_us=res.start_us)
            for b in (1, 5, 10)
        }
        t_bouts = time.perf_counter() - a
        info = res.info
        out.update(
            process_s=t_proc,
            bouts_s=t_bouts,
            n_epochs=info["n_epochs"],
            calibration_accepted=info["calibration_accepted"],
            calibration_error_before_g=info["calibration_error_before_g"],
            calibration_error_after_g=info["calibration_error_after_g"],
            calibration_scale=info["calibration_scale"],
            calibration_offset_g=info["calibration_offset_g"],
            nonwear_hours=info["nonwear_blocks"] * 0.25,
            n_clipped=info["n_clipped"],
            mvpa_min=float((res.level >= 2)[~res.nonwear].sum() * res.epoch_s / 60),
            mvpa_bout10_min=float(bouts[10].sum() * res.epoch_s / 60),
        )
    else:
        raise SystemExit(f"unknown measurement {kind}")
    out["wall_s"] = time.perf_counter() - t0
    out["decode_s"] = src.decode_s
    out["peak_mb"] = peak_mb()
    return out


def run_child(kind: str, args: argparse.Namespace, n: int) -> dict[str, object]:
    cmd = [sys.executable, __file__, "--measure", kind, "--sf", str(args.sf), "--n", str(n)]
    cmd += ["--chunk", str(args.chunk)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--sf", type=float, default=100.0)
    ap.add_argument("--chunk", type=int, default=4_000_000, help="samples per chunk")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each measurement (best kept)")
    ap.add_argument("--measure", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.sf, args.n, args.chunk)))
        return 0

    n = round(args.days * 86400 * args.sf)
    print(f"recording        {args.days:g} days at {args.sf:g} Hz = {n:,} samples per axis, "
          f"chunks of {args.chunk:,}")  # fmt: skip
    runs: dict[str, list[dict[str, object]]] = {"decode": [], "baseline": [], "process": []}
    for _ in range(args.repeat):
        for kind in runs:  # interleaved, so drift in machine load hits all alike
            runs[kind].append(run_child(kind, args, n))

    def best(kind: str, key: str) -> float:
        return min(float(r[key]) for r in runs[kind])  # type: ignore[arg-type]

    def peak(kind: str) -> float:
        return max(float(r["peak_mb"]) for r in runs[kind])  # type: ignore[arg-type]

    t_dec = best("decode", "decode_s")
    t_norm = best("baseline", "norm_s")
    t_cols = best("baseline", "cols_s")
    t_proc = best("process", "process_s")
    last = runs["process"][-1]
    lines = [
        f"generator        {t_dec:6.2f} s   {n / t_dec / 1e6:6.1f} M samples/s   "
        f"peak {peak('decode'):5.0f} MB  (excluded below)",
        f"baseline norm    {t_norm:6.2f} s   {n / t_norm / 1e6:6.1f} M samples/s   "
        "np.linalg.norm(xyz, axis=1)",
        f"baseline cols    {t_cols:6.2f} s   {n / t_cols / 1e6:6.1f} M samples/s   "
        f"sqrt(x*x + y*y + z*z), peak {peak('baseline'):5.0f} MB",
        f"process          {t_proc:6.2f} s   {n / t_proc / 1e6:6.1f} M samples/s   "
        f"peak {peak('process'):5.0f} MB  (both passes)",
        f"MVPA bout flags  {best('process', 'bouts_s'):6.3f} s   (1, 5, 10 min, on epochs)",
    ]
    ratio_cols = t_proc / t_cols
    ratio_norm = t_proc / t_norm
    lines.append(
        f"ratio            {ratio_cols:.2f}x the sqrt-of-columns pass, "
        f"{ratio_norm:.2f}x np.linalg.norm (budget {RATIO_BUDGET:g}x)"
    )
    # On the table on day 3, 13:00-16:00 (the recording starts at 06:00 on day 1).
    table_h = max(0.0, min(args.days * 24 + 6, 2 * 24 + 16) - (2 * 24 + 13))
    cal_s = np.round(np.asarray(last["calibration_scale"], float), 4)
    cal_o = np.round(np.asarray(last["calibration_offset_g"], float), 4)
    lines.append(
        f"results          {last['n_epochs']:,} epochs; calibration accepted "
        f"{last['calibration_accepted']} (error {last['calibration_error_before_g']:.4f} -> "
        f"{last['calibration_error_after_g']:.4f} g; scale {cal_s}, offset {cal_o}); "
        f"non-wear {last['nonwear_hours']} h ({table_h:g} h generated); "
        f"{last['n_clipped']} clipped samples ({runs['decode'][-1]['at_range']} generated); "
        f"MVPA {last['mvpa_min']:.0f} min ({last['mvpa_bout10_min']:.0f} in 10-min bouts)"
    )
    print("\n".join(lines))
    ok = ratio_cols <= RATIO_BUDGET and peak("process") < MEMORY_BUDGET_MB
    print("budget           " + ("met" if ok else "EXCEEDED"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
