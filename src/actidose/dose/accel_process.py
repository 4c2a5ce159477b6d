"""Raw accelerometer recording to epochs: calibration, non-wear, clipping, ENMO / MAD, levels.

:func:`process` reads an accelerometer stream (``AccelStream``: ``sample_rate_hz``, ``range_g``
and ``chunks()``, a fresh iterator of ``(ts_us, xyz)`` chunks per call) in two passes, chunk by
chunk, with the state of the windows and epochs cut by a chunk edge carried over, so that any
chunking gives the result of the whole recording:

1. *features*: per 10-s UTC window and axis the count, sum and sum of squares (for the still
   windows of autocalibration, van Hees 2014) and the statistics non-wear needs (per-axis
   min / max, on every sample for GGIR's 2013 rule, on the ~5 Hz subsample for its 2023 rule);
   timestamps are checked (ascending) and gaps counted. Then the calibration is fitted
   (:mod:`actidose.dose.calibration`) and non-wear decided per 15-min block
   (:mod:`actidose.dose.nonwear`).
2. *epochs*: calibrated vector magnitude ``r = ‖(raw + offset) * scale‖`` per sample, and per
   epoch (UTC-aligned, default 5 s) ``ENMO = mean(max(r - 1, 0))`` and
   ``MAD = mean(|r - mean(r)|)`` (GGIR ``g.applymetrics.R``, the definitions of
   :func:`actidose.dose.accel.epoch_enmo_mad`), and the clipped samples (any axis at
   ``|a| >= range_g - clip_margin_g``, raw values).

Nothing is dropped, clipped or filled silently: an epoch cut by a gap or the ends of the
recording is kept with its sample count (its ENMO / MAD are the mean over the samples it has);
epochs without samples (inside gaps) are not listed; counts of samples, gaps, clipped samples
and NaN samples are in ``info``.

Work buffers are allocated once for the largest chunk and reused (a fresh large allocation costs
more than the arithmetic); arithmetic is float64, one contiguous column at a time.

References
----------
van Hees VT et al. 2013, PLoS One 8:e61691 (ENMO, non-wear); van Hees VT et al. 2014, J Appl
Physiol 117:738 (autocalibration); Vähä-Ypyä H et al. 2015, Clin Physiol Funct Imaging 35:64
(MAD); Hildebrand M et al. 2014, Med Sci Sports Exerc 46:1816 and 2017, Scand J Med Sci Sports
27:1814 (thresholds); GGIR ``g.calibrate.R``, ``detect_nonwear_clipping.R``,
``g.applymetrics.R``, ``g.getbout.R``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from actidose.dose.accel import THRESHOLD_SETS, classify_levels, ggir_bouts
from actidose.dose.calibration import (
    CAL_WINDOW_S,
    Calibration,
    WindowStats,
    fit_calibration,
    groups,
    segments,
    still_windows,
    window_stats,
)
from actidose.dose.nonwear import (
    BLOCK_S,
    NONWEAR_RULES,
    NonwearResult,
    block_grid,
    nonwear_blocks,
)

__all__ = [
    "THRESHOLD_SETS_EXTRA",
    "AccelResult",
    "AccelSource",
    "EpochState",
    "EpochStats",
    "epoch_stream",
    "mvpa_flags",
    "mvpa_minutes",
    "process",
    "threshold_values",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]

THRESHOLD_SETS_EXTRA: dict[str, tuple[float, float, float]] = {
    # Hildebrand et al. 2014 MSSE 46:1816 (moderate, vigorous) and 2017 SJMSS 27:1814 (light),
    # adult hip, ENMO mg; as listed in GGIR's vignette "Published cut-points" (CutPoints.Rmd).
    "hildebrand_hip_actigraph": (47.4, 69.1, 258.7),
    "hildebrand_hip_geneactiv": (46.9, 68.7, 266.8),
    # GGIR part 5 defaults threshold.lig / .mod / .vig (ENMO mg); GGIR mvpathreshold is 100.
    "ggir_default": (40.0, 100.0, 400.0),
}
"""Threshold sets in addition to :data:`actidose.dose.accel.THRESHOLD_SETS`: named
(light, moderate, vigorous) lower edges, ENMO in mg. Record the name used."""

EPOCH_S = 5.0
"""Default epoch, s (GGIR ``windowsizes[1]``)."""
CLIP_MARGIN_G = 0.01
"""A sample is clipped when an axis reaches ``range_g - CLIP_MARGIN_G`` (top ADC codes)."""
CAL_MIN_FILL = 0.8
"""A 10-s window takes part in the calibration when it holds >= 80 % of its nominal samples."""


def threshold_values(thresholds: str | Sequence[float]) -> tuple[str, tuple[float, ...]]:
    """Resolve a threshold set: a name in :data:`~actidose.dose.accel.THRESHOLD_SETS` or
    :data:`THRESHOLD_SETS_EXTRA`, or explicit values (named ``"custom"``).

    Returns
    -------
    name : str
    values : tuple of float
        Strictly increasing lower edges, ENMO mg.
    """
    if isinstance(thresholds, str):
        sets: dict[str, tuple[float, ...]] = {**THRESHOLD_SETS, **THRESHOLD_SETS_EXTRA}
        if thresholds not in sets:
            raise ValueError(f"unknown threshold set {thresholds!r}; known: {sorted(sets)}")
        return thresholds, tuple(float(v) for v in sets[thresholds])
    vals = tuple(float(v) for v in thresholds)
    if not vals or any(b <= a for a, b in itertools.pairwise(vals)):
        raise ValueError("thresholds must be a non-empty, strictly increasing sequence")
    return "custom", vals


# --------------------------------------------------------------------------------------------
# Input protocol
# --------------------------------------------------------------------------------------------


class _Chunk(Protocol):
    @property
    def ts_us(self) -> npt.NDArray[np.int64]: ...

    @property
    def xyz(self) -> npt.NDArray[Any]: ...


class AccelSource(Protocol):
    """What :func:`process` reads (``actidose.recording.AccelStream`` is one)."""

    @property
    def sample_rate_hz(self) -> float: ...

    @property
    def range_g(self) -> float | None: ...

    @property
    def chunks(self) -> Callable[[], Iterator[_Chunk]]: ...


# --------------------------------------------------------------------------------------------
# Streaming ENMO / MAD epochs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EpochStats:
    """Epochs closed by one call of :func:`epoch_stream`.

    Attributes
    ----------
    index : ndarray of int64, shape (m,)
        Epoch number; the epoch starts at ``index * epoch_us`` (UTC microseconds).
    n : ndarray of int64, shape (m,)
        Samples in the epoch.
    enmo_g : ndarray of float64, shape (m,)
        ``mean(max(r - 1, 0))`` over the epoch's samples, g (NaN if a sample is NaN).
    mad_g : ndarray of float64, shape (m,)
        ``mean(|r - mean(r)|)``, g.
    clipped : ndarray of int64, shape (m,)
        Samples with an axis at or beyond the clipping threshold.
    n_nan : ndarray of int64, shape (m,)
        Samples with a NaN vector magnitude.
    """

    index: I64
    n: I64
    enmo_g: F64
    mad_g: F64
    clipped: I64
    n_nan: I64

    def __len__(self) -> int:
        return int(self.index.shape[0])

    @staticmethod
    def concat(parts: Sequence[EpochStats]) -> EpochStats:
        """Epochs of ``parts`` one after the other."""
        if not parts:
            zi = np.zeros(0, np.int64)
            zf = np.zeros(0)
            return EpochStats(zi, zi.copy(), zf, zf.copy(), zi.copy(), zi.copy())
        return EpochStats(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in EpochStats._fields())
        )

    @staticmethod
    def _fields() -> tuple[str, ...]:
        return ("index", "n", "enmo_g", "mad_g", "clipped", "n_nan")


@dataclass
class EpochState:
    """State of :func:`epoch_stream` between chunks: the vector magnitudes of the epoch still
    open at the end of the previous chunk (MAD needs all of an epoch's samples) and its clipped
    count, plus the work buffers reused from chunk to chunk."""

    open_index: int | None = None
    open_r: F64 = field(default_factory=lambda: np.empty(0))
    open_n: int = 0
    open_clipped: int = 0
    r: F64 = field(default_factory=lambda: np.empty(0))
    tmp: F64 = field(default_factory=lambda: np.empty(0))

    def r_buffer(self, n: int) -> F64:
        """Vector magnitudes of the open epoch plus a chunk (grown only when needed)."""
        if self.r.shape[0] < n:
            self.r = np.empty(max(n, int(self.r.shape[0] * 1.25)))
        return self.r[:n]

    def tmp_buffer(self, n: int) -> F64:
        """A cache-sized work buffer (grown only when needed)."""
        if self.tmp.shape[0] < n:
            self.tmp = np.empty(max(n, int(self.tmp.shape[0] * 1.25)))
        return self.tmp[:n]

    def keep_open(self, index: int, r: F64, clipped: int) -> None:
        """Hold the samples of the open epoch (copied: the work buffer will be overwritten)."""
        k = r.shape[0]
        if self.open_r.shape[0] < k:
            self.open_r = np.empty(max(k, 2 * self.open_r.shape[0], 64))
        self.open_r[:k] = r
        self.open_n = k
        self.open_index = index
        self.open_clipped = clipped


def _vector_magnitude_into(
    xyz: npt.NDArray[Any], offset: F64, scale: F64, out: F64, tmp: F64
) -> None:
    """``out = sqrt(sum_k ((xyz[:, k] + offset[k]) * scale[k])^2)``, one column at a time."""
    identity = bool(np.all(offset == 0.0) and np.all(scale == 1.0))
    for j in range(3):
        dst = out if j == 0 else tmp
        np.copyto(dst, xyz[:, j])  # strided read, cast to float64
        if not identity:
            dst += offset[j]
            dst *= scale[j]
        np.multiply(dst, dst, out=dst)
        if j:
            out += tmp
    np.sqrt(out, out=out)


def _clip_counts(
    xyz: npt.NDArray[Any], clip_g: float, lo: npt.NDArray[np.intp], hi: npt.NDArray[np.intp]
) -> I64 | None:
    """Clipped samples (any raw ``|axis| >= clip_g``) in the sample ranges ``[lo, hi)`` of
    ``xyz``; None when there are none (the usual case, found with one max / min pass)."""
    if xyz.shape[0] == 0 or (xyz.max() < clip_g and xyz.min() > -clip_g):
        return None  # (NaN goes on to the exact count, where it is not clipped)
    flags = (np.abs(xyz) >= clip_g).any(axis=1)
    cs = np.zeros(flags.shape[0] + 1, np.int64)
    np.cumsum(flags, out=cs[1:])
    return np.asarray(cs[hi] - cs[lo], dtype=np.int64)


def _epoch_values(r: F64, starts: npt.NDArray[np.intp], t: F64) -> tuple[I64, F64, F64, I64]:
    """Count, ENMO, MAD and NaN count of the segments ``starts`` of ``r`` (``starts[0] == 0``,
    all complete), with ``t`` a work buffer of ``len(r)``."""
    m = r.shape[0]
    cnt = np.diff(np.append(starts, m)).astype(np.int64)
    k = cnt.shape[0]
    sum_r = np.add.reduceat(r, starts)
    np.subtract(r, 1.0, out=t)
    np.maximum(t, 0.0, out=t)
    enmo = np.add.reduceat(t, starts) / cnt
    mean = sum_r / cnt
    length = int(cnt[0])
    if length * k == m and bool(np.all(cnt == length)):
        t2 = t.reshape(k, length)
        np.subtract(r.reshape(k, length), mean[:, None], out=t2)
        np.abs(t2, out=t2)
        mad = t2.sum(axis=1) / cnt
    else:  # epochs of unequal length (gaps, irregular sampling)
        np.subtract(r, np.repeat(mean, cnt), out=t)
        np.abs(t, out=t)
        mad = np.add.reduceat(t, starts) / cnt
    n_nan = np.zeros(k, np.int64)
    for i in np.flatnonzero(np.isnan(sum_r)):  # only epochs holding NaN samples
        lo = int(starts[i])
        n_nan[i] = int(np.isnan(r[lo : lo + int(cnt[i])]).sum())
    return cnt, np.asarray(enmo, np.float64), np.asarray(mad, np.float64), n_nan


def epoch_stream(
    ts_us: npt.ArrayLike,
    xyz: npt.ArrayLike,
    *,
    epoch_s: float = EPOCH_S,
    offset: npt.ArrayLike = (0.0, 0.0, 0.0),
    scale: npt.ArrayLike = (1.0, 1.0, 1.0),
    clip_g: float | None = None,
    state: EpochState | None = None,
    final: bool = True,
) -> tuple[EpochStats, EpochState]:
    """ENMO, MAD, sample and clipping counts per UTC epoch of calibrated raw data, streamed.

    Per sample ``r = sqrt(sum_k ((a_k + offset_k) * scale_k)^2)`` (g); per epoch ``e`` (samples
    with ``floor(t_us / epoch_us) = e``)::

        ENMO[e] = mean_{i in e} max(r_i - 1, 0)          (van Hees 2013; truncated per sample)
        MAD[e]  = mean_{i in e} |r_i - mean_{j in e} r_j|  (Vähä-Ypyä 2015)

    An epoch cut by a chunk edge is held in ``state`` and completed by the next call (like
    ``zi`` / ``zf`` of ``scipy.signal.lfilter``), so chunked equals whole. An epoch cut by a gap
    or the end keeps the samples it has (see ``n``).

    Parameters
    ----------
    ts_us : array_like of int64, shape (n,)
        UTC timestamps, microseconds, ascending (also across calls).
    xyz : array_like of float, shape (n, 3)
        Raw acceleration, g.
    epoch_s : float, default 5.0
        Epoch length, s (a whole number of microseconds).
    offset, scale : array_like of float, shape (3,)
        Calibration ``(a + offset) * scale`` (:class:`~actidose.dose.calibration.Calibration`).
    clip_g : float, optional
        Count samples with any raw ``|a_k| >= clip_g``; None: not counted (zeros).
    state : EpochState, optional
        From the previous call; None for the first chunk.
    final : bool, default True
        End of the stream: close the open epoch.

    Returns
    -------
    EpochStats
        Epochs closed by this call, in time order.
    EpochState
        To pass with the next chunk.

    References
    ----------
    GGIR ``R/g.applymetrics.R``; :func:`actidose.dose.accel.epoch_enmo_mad` (same definitions
    on whole epochs).
    """
    st = EpochState() if state is None else state
    epoch_us = round(epoch_s * 1e6)
    if epoch_us <= 0 or abs(epoch_us - epoch_s * 1e6) > 1e-6:
        raise ValueError(f"epoch_s must be a positive whole number of microseconds: {epoch_s}")
    ts = np.asarray(ts_us, dtype=np.int64)
    a = np.asarray(xyz)
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    if a.ndim != 2 or a.shape[1] != 3 or a.shape[0] != ts.shape[0]:
        raise ValueError(f"xyz must have shape (n, 3) matching ts_us, got {a.shape}")
    off = np.asarray(offset, dtype=np.float64).reshape(3)
    sc = np.asarray(scale, dtype=np.float64).reshape(3)
    n = ts.shape[0]
    carry = st.open_n if st.open_index is not None else 0
    total = carry + n
    r_all = st.r_buffer(total)
    if carry:
        r_all[:carry] = st.open_r[:carry]
    if n == 0:
        if not (final and st.open_index is not None):
            return EpochStats.concat([]), st
        ids_b = np.array([st.open_index], np.int64)
        starts_b = np.zeros(1, np.intp)
        clip_b = np.array([st.open_clipped], np.int64)
    else:
        ids, starts = segments(ts, epoch_us)
        if carry and int(ids[0]) == st.open_index:
            starts_b = starts + carry
            starts_b[0] = 0
            ids_b = ids
        elif carry and st.open_index is not None:
            starts_b = np.concatenate(([0], starts + carry)).astype(np.intp)
            ids_b = np.concatenate((np.array([st.open_index], np.int64), ids))
        else:
            starts_b, ids_b = starts, ids
        clip_b = np.zeros(ids_b.shape[0], np.int64)
        if carry:
            clip_b[0] = st.open_clipped

    k_all = ids_b.shape[0]
    k_done = k_all if final else k_all - 1
    cnt = np.empty(k_done, np.int64)
    enmo = np.empty(k_done)
    mad = np.empty(k_done)
    n_nan = np.empty(k_done, np.int64)
    # A cache-sized group of whole epochs at a time: vector magnitude of its new samples, then
    # its epochs while r is still in cache.
    cut = groups(starts_b)
    for g in range(cut.shape[0] - 1):
        g0, g1 = int(cut[g]), int(cut[g + 1])
        a0 = int(starts_b[g0])
        a1 = int(starts_b[g1]) if g1 < k_all else total
        c0 = max(a0, carry)
        if a1 > c0:
            part = a[c0 - carry : a1 - carry]
            _vector_magnitude_into(part, off, sc, r_all[c0:a1], st.tmp_buffer(a1 - c0))
            if clip_g is not None:  # the group's raw samples are in cache now
                seg = starts_b[g0 : g1 + 1] if g1 < k_all else np.append(starts_b[g0:g1], total)
                bounds = np.clip(seg - c0, 0, a1 - c0)
                got = _clip_counts(part, clip_g, bounds[:-1], bounds[1:])
                if got is not None:
                    clip_b[g0:g1] += got
        e1 = min(g1, k_done)
        if e1 > g0:
            b1 = int(starts_b[e1]) if e1 < k_all else total
            vals = _epoch_values(r_all[a0:b1], starts_b[g0:e1] - a0, st.tmp_buffer(b1 - a0))
            cnt[g0:e1], enmo[g0:e1], mad[g0:e1], n_nan[g0:e1] = vals

    if final:
        st.open_index, st.open_n, st.open_clipped = None, 0, 0
    else:
        end = int(starts_b[-1])
        st.keep_open(int(ids_b[-1]), r_all[end:total], int(clip_b[-1]))
    return EpochStats(ids_b[:k_done], cnt, enmo, mad, clip_b[:k_done], n_nan), st


# --------------------------------------------------------------------------------------------
# The whole recording
# --------------------------------------------------------------------------------------------


@dataclass
class AccelResult:
    """Epochs of a processed recording (one row per epoch holding samples, in time order).

    The first eight fields are those of ``actidose.recording.AccelEpochs``
    (``AccelEpochs(**result.epoch_fields())``).

    Attributes
    ----------
    start_us : ndarray of int64, shape (m,)
        Epoch start, UTC microseconds (a multiple of ``epoch_s``).
    epoch_s : float
        Epoch length, s.
    enmo_mg : ndarray of float64, shape (m,)
        ENMO, mg (mean over the epoch's samples; NaN when a sample was NaN).
    mad_mg : ndarray of float64, shape (m,)
        MAD, mg.
    nonwear : ndarray of bool, shape (m,)
        The epoch's 15-min block is non-wear.
    clipped : ndarray of int64, shape (m,)
        Samples at the device's range (0 when the range is unknown; see ``info``).
    n_samples : ndarray of int64, shape (m,)
        Samples in the epoch (fewer than ``sf * epoch_s`` at gaps and the ends).
    info : dict
        What was done, JSON-friendly. Counts: ``n_samples``, ``n_epochs``,
        ``n_partial_epochs`` (fewer than 95 % of ``sample_rate_observed_hz * epoch_s`` samples:
        ends, gaps), ``n_clipped`` (and ``clipping_counted``, ``clip_threshold_g``),
        ``n_nan_samples``, ``n_gaps`` (steps
        between timestamps longer than ``gap_min_s``) and ``gap_total_s`` (time missing in
        them), ``n_repeated_timestamps``, ``stream_gaps`` (spans the reader skipped),
        ``sample_rate_observed_hz`` (samples per second between gaps; window and epoch counts
        are judged against the lower of it and the nominal rate).
        Calibration: ``calibration_accepted``, ``calibration_reason``,
        ``calibration_error_before_g`` / ``_after_g``, ``calibration_offset_g`` /
        ``calibration_scale`` (applied), ``calibration_fitted_*`` (the fit, even if refused),
        ``calibration_n_windows``. Non-wear: ``nonwear_rule`` and its parameters,
        ``nonwear_blocks`` (15-min blocks flagged), ``nonwear_epochs``. Levels: ``thresholds``
        (set name) and ``thresholds_mg``. Also ``sample_rate_hz``, ``range_g``, ``epoch_s``.
    level : ndarray of int8, shape (m,)
        Intensity level (0 inactive, 1 light, 2 moderate, 3 vigorous; -1 for NaN) from
        ``enmo_mg`` and the threshold set in ``info["thresholds"]``; non-wear epochs keep their
        level (mask with ``nonwear``).
    calibration : Calibration
    nonwear_detail : NonwearResult
        Per 15-min block.
    """

    start_us: I64
    epoch_s: float
    enmo_mg: F64
    mad_mg: F64
    nonwear: B
    clipped: I64
    n_samples: I64
    info: dict[str, object]
    level: npt.NDArray[np.int8]
    calibration: Calibration
    nonwear_detail: NonwearResult

    def epoch_fields(self) -> dict[str, object]:
        """The fields of ``actidose.recording.AccelEpochs``."""
        return {
            "start_us": self.start_us,
            "epoch_s": self.epoch_s,
            "enmo_mg": self.enmo_mg,
            "mad_mg": self.mad_mg,
            "nonwear": self.nonwear,
            "clipped": self.clipped,
            "n_samples": self.n_samples,
            "info": self.info,
        }


@dataclass
class _TimeCheck:
    """Ascending timestamps, gaps and repeated timestamps, over the whole stream."""

    gap_us: int
    period_us: float
    last: int | None = None
    n_gaps: int = 0
    gap_s: float = 0.0
    n_repeated: int = 0
    first: int | None = None
    n_steps: int = 0
    gap_steps_us: int = 0
    n_chunks: int = 0
    diff: I64 = field(default_factory=lambda: np.empty(0, np.int64))

    def check(self, ts: I64) -> None:
        n = ts.shape[0]
        k = self.n_chunks
        self.n_chunks += 1
        if n == 0:
            return
        self.n_steps += n - 1 + (self.last is not None)
        if self.last is not None:
            d0 = int(ts[0]) - self.last
            if d0 < 0:
                raise ValueError(f"timestamps go backwards at sample 0 of chunk {k} ({d0} us)")
            self._count(np.array([d0], np.int64))
        block = 1 << 16
        if self.diff.shape[0] < block:
            self.diff = np.empty(block, np.int64)
        for i in range(0, n - 1, block):  # cache-sized pieces of the differences
            j = min(i + block, n - 1)
            d = self.diff[: j - i]
            np.subtract(ts[i + 1 : j + 1], ts[i:j], out=d)
            lo = int(d.min())
            if lo < 0:
                raise ValueError(
                    f"timestamps go backwards at sample {i + int(np.argmax(d < 0)) + 1} "
                    f"of chunk {k}"
                )
            if lo == 0 or int(d.max()) > self.gap_us:
                self._count(d)
        self.last = int(ts[-1])
        if self.first is None:
            self.first = int(ts[0])

    def observed_rate_hz(self) -> float | None:
        """Samples per second over the steps that are not gaps (devices drift from their
        nominal rate: an Axivity set to 100 Hz may record 97)."""
        if self.first is None or self.last is None:
            return None
        steps = self.n_steps - self.n_gaps
        span_us = self.last - self.first - self.gap_steps_us
        return steps * 1e6 / span_us if steps > 0 and span_us > 0 else None

    def _count(self, d: I64) -> None:
        big = d > self.gap_us
        ng = int(np.count_nonzero(big))
        if ng:
            self.n_gaps += ng
            self.gap_steps_us += int(d[big].sum())
            self.gap_s += float((d[big] - self.period_us).sum()) / 1e6
        self.n_repeated += int(np.count_nonzero(d == 0))


def _as_chunk(chunk: _Chunk) -> tuple[I64, npt.NDArray[Any]]:
    ts = np.asarray(chunk.ts_us, dtype=np.int64)
    xyz = np.asarray(chunk.xyz)
    if xyz.dtype not in (np.float32, np.float64):
        xyz = xyz.astype(np.float64)
    if ts.ndim != 1 or xyz.ndim != 2 or xyz.shape != (ts.shape[0], 3):
        raise ValueError(
            f"chunk must hold ts_us (n,) and xyz (n, 3), got {ts.shape} and {xyz.shape}"
        )
    return ts, xyz


def process(
    stream: AccelSource,
    *,
    epoch_s: float = EPOCH_S,
    calibrate: bool = True,
    nonwear_rule: str = "ggir2023",
    thresholds: str | Sequence[float] = "hildebrand_wrist_actigraph",
    clip_margin_g: float = CLIP_MARGIN_G,
    gap_s: float | None = None,
    still_sd_g: float = 0.013,
    sphere_min_g: float = 0.3,
    calibration_max_error_g: float = 0.01,
    nonwear_sd_g: float = 0.013,
    nonwear_range_g: float = 0.05,
    nonwear_min_window_s: float = BLOCK_S,
) -> AccelResult:
    """Process a raw accelerometer recording into epochs (see the module docstring).

    Parameters
    ----------
    stream : AccelSource
        ``sample_rate_hz`` (nominal, Hz), ``range_g`` (± g, or None) and ``chunks()``
        returning a fresh iterator of chunks with ``ts_us`` (int64 UTC microseconds, ascending
        across chunks) and ``xyz`` (float, shape (n, 3), g). Chunk sizes are arbitrary; the
        two passes must see the same samples.
    epoch_s : float, default 5.0
        Epoch length, s; must divide the 15-min block (5, 10, 15, 30, 60 s ...).
    calibrate : bool, default True
        Fit and apply the autocalibration (applied only when accepted).
    nonwear_rule : {"ggir2023", "ggir2013"}, default "ggir2023"
        GGIR's non-wear rule (:mod:`actidose.dose.nonwear`).
    thresholds : str or sequence of float, default "hildebrand_wrist_actigraph"
        Intensity threshold set name (:data:`~actidose.dose.accel.THRESHOLD_SETS`,
        :data:`THRESHOLD_SETS_EXTRA`) or explicit lower edges, ENMO mg.
    clip_margin_g : float, default 0.01
        A sample is clipped when a raw axis reaches ``range_g - clip_margin_g``.
    gap_s : float, optional
        A gap is a step between consecutive timestamps longer than this, s; default two
        nominal sample periods.
    still_sd_g : float, default 0.013
        SD criterion of still 10-s windows for calibration, g.
    sphere_min_g : float, default 0.3
        Sphere coverage criterion of the calibration, g.
    calibration_max_error_g : float, default 0.01
        Largest accepted calibration error after the fit, g.
    nonwear_sd_g, nonwear_range_g : float, default 0.013, 0.05
        Non-wear still-axis criteria, g.
    nonwear_min_window_s : float, default 900.0
        Least data (s) for a 60-min non-wear window to be evaluated.

    Returns
    -------
    AccelResult

    Raises
    ------
    ValueError
        Bad parameters, a malformed chunk, timestamps going backwards (with chunk and sample
        number), or a second pass that does not see the samples of the first.
    """
    sf = float(stream.sample_rate_hz)
    if not sf > 0:
        raise ValueError(f"sample_rate_hz must be positive, got {sf}")
    if nonwear_rule not in NONWEAR_RULES:
        raise ValueError(f"nonwear_rule must be one of {NONWEAR_RULES}, got {nonwear_rule!r}")
    epoch_us = round(epoch_s * 1e6)
    block_us = round(BLOCK_S * 1e6)
    if epoch_us <= 0 or abs(epoch_us - epoch_s * 1e6) > 1e-6 or block_us % epoch_us:
        raise ValueError(f"epoch_s must divide {BLOCK_S:g} s in whole microseconds: {epoch_s}")
    th_name, th_vals = threshold_values(thresholds)
    range_g = stream.range_g
    clip_g = None if range_g is None else float(range_g) - clip_margin_g
    period_us = 1e6 / sf
    gap_us = round((2.0 / sf if gap_s is None else gap_s) * 1e6)

    # Pass 1: 10-s window features, timestamps.
    sub_step = math.ceil(sf / 5.0) if nonwear_rule == "ggir2023" else None
    wstate = None
    tcheck = _TimeCheck(gap_us=gap_us, period_us=period_us)
    parts: list[WindowStats] = []
    n_total = 0
    for chunk in stream.chunks():
        ts, xyz = _as_chunk(chunk)
        tcheck.check(ts)
        if ts.shape[0] == 0:
            continue
        ws, wstate = window_stats(
            ts,
            xyz,
            window_s=CAL_WINDOW_S,
            minmax=nonwear_rule == "ggir2013",
            sub_step=sub_step,
            state=wstate,
            final=False,
        )
        parts.append(ws)
        n_total += ts.shape[0]
    window_us = round(CAL_WINDOW_S * 1e6)
    if wstate is not None:
        ws, wstate = window_stats(
            np.zeros(0, np.int64),
            np.zeros((0, 3)),
            window_s=CAL_WINDOW_S,
            minmax=nonwear_rule == "ggir2013",
            sub_step=sub_step,
            state=wstate,
            final=True,
        )
        parts.append(ws)
    windows = WindowStats.concat(parts, window_us)
    del parts

    # Devices drift from their nominal rate: counts are judged against the observed one.
    rate = min(sf, tcheck.observed_rate_hz() or sf)

    # Calibration from the still windows.
    nominal = rate * CAL_WINDOW_S
    if not calibrate:
        cal = Calibration.identity("calibration not requested")
    else:
        still = still_windows(
            windows.full, sd_max_g=still_sd_g, min_samples=max(2, math.ceil(CAL_MIN_FILL * nominal))
        )
        cal = fit_calibration(
            windows.full.mean[still], sphere_min_g=sphere_min_g, max_error_g=calibration_max_error_g
        )

    # Non-wear per 15-min block, on calibrated statistics (an affine map of the raw ones).
    nw_stats = windows.sub if (sub_step is not None and windows.sub is not None) else windows.full
    if cal.accepted:
        nw_stats = nw_stats.affine(cal.offset, cal.scale)
    first_block_us, half = block_grid(windows.index, nw_stats, window_us)
    nw = nonwear_blocks(
        half,
        first_block_us,
        rule=nonwear_rule,
        sample_rate_hz=rate / (sub_step or 1),
        sd_max_g=nonwear_sd_g,
        range_max_g=nonwear_range_g,
        min_window_s=nonwear_min_window_s,
    )

    # Pass 2: calibrated ENMO / MAD epochs.
    estate: EpochState | None = None
    eparts: list[EpochStats] = []
    n_seen = 0
    for chunk in stream.chunks():
        ts, xyz = _as_chunk(chunk)
        if ts.shape[0] == 0:
            continue
        ep, estate = epoch_stream(
            ts,
            xyz,
            epoch_s=epoch_s,
            offset=cal.offset,
            scale=cal.scale,
            clip_g=clip_g,
            state=estate,
            final=False,
        )
        eparts.append(ep)
        n_seen += ts.shape[0]
    if estate is not None:
        ep, estate = epoch_stream(
            np.zeros(0, np.int64), np.zeros((0, 3)), epoch_s=epoch_s, state=estate, final=True
        )
        eparts.append(ep)
    if n_seen != n_total:
        raise ValueError(
            f"the second pass over the stream saw {n_seen} samples, the first {n_total}: "
            "chunks() must return the same data each call"
        )
    epochs = EpochStats.concat(eparts)
    del eparts, estate

    start_us = epochs.index * epoch_us
    if nw.block_start_us.shape[0]:
        blk = (start_us - int(nw.block_start_us[0])) // block_us
        nonwear = nw.nonwear[blk]
    else:
        nonwear = np.zeros(start_us.shape[0], bool)
    enmo_mg = epochs.enmo_g * 1000.0
    mad_mg = epochs.mad_g * 1000.0
    level = classify_levels(enmo_mg, th_vals)

    observed = tcheck.observed_rate_hz()
    spe = (observed or sf) * epoch_s
    info: dict[str, object] = {
        "sample_rate_hz": sf,
        "sample_rate_observed_hz": observed,
        "range_g": None if range_g is None else float(range_g),
        "epoch_s": float(epoch_s),
        "n_samples": int(n_total),
        "n_epochs": int(start_us.shape[0]),
        "n_partial_epochs": int(np.count_nonzero(epochs.n < 0.95 * spe)),
        "n_clipped": int(epochs.clipped.sum()),
        "clipping_counted": clip_g is not None,
        "clip_threshold_g": clip_g,
        "n_nan_samples": int(epochs.n_nan.sum()),
        "n_gaps": tcheck.n_gaps,
        "gap_total_s": tcheck.gap_s,
        "gap_min_s": gap_us / 1e6,
        "n_repeated_timestamps": tcheck.n_repeated,
        "n_chunks": tcheck.n_chunks,
        "stream_gaps": len(getattr(stream, "gaps", None) or []),
        "calibrate": calibrate,
        **cal.info(),
        "calibration_still_sd_g": still_sd_g,
        "calibration_sphere_min_g": sphere_min_g,
        "calibration_max_error_g": calibration_max_error_g,
        "calibration_window_s": CAL_WINDOW_S,
        **nw.info,
        "nonwear_subsample_step": sub_step,
        "nonwear_epochs": int(np.count_nonzero(nonwear)),
        "thresholds": th_name,
        "thresholds_mg": list(th_vals),
    }
    return AccelResult(
        start_us=start_us,
        epoch_s=float(epoch_s),
        enmo_mg=enmo_mg,
        mad_mg=mad_mg,
        nonwear=nonwear,
        clipped=epochs.clipped,
        n_samples=epochs.n,
        info=info,
        level=level,
        calibration=cal,
        nonwear_detail=nw,
    )


# --------------------------------------------------------------------------------------------
# MVPA
# --------------------------------------------------------------------------------------------


def mvpa_flags(
    enmo_mg: npt.ArrayLike,
    epoch_s: float,
    nonwear: npt.ArrayLike | None = None,
    *,
    thresholds: str | Sequence[float] = "hildebrand_wrist_actigraph",
    bout_min: float | None = None,
    criterion: float = 0.8,
    start_us: npt.ArrayLike | None = None,
) -> B:
    """Per-epoch MVPA flags, unbouted or in GGIR bouts, worn epochs only.

    Unbouted (``bout_min=None``): ``enmo_mg >= moderate`` and worn. Bouted: the epochs of
    :func:`actidose.dose.accel.ggir_bouts` (centred rolling fraction of MVPA epochs over
    ``bout_min`` >= ``criterion``, breaks longer than 1 min never bridged) run on the worn MVPA
    epochs; bridged break epochs are in the bout (as GGIR counts bout time), non-wear epochs
    never are. Sum ``flags * epoch_s / 60`` per local day for minutes.

    Parameters
    ----------
    enmo_mg : array_like of float, shape (m,)
        ENMO per epoch, mg.
    epoch_s : float
        Epoch length, s.
    nonwear : array_like of bool, shape (m,), optional
        Non-wear epochs (never MVPA).
    thresholds : str or sequence of float, default "hildebrand_wrist_actigraph"
        Threshold set; its second value is the moderate threshold (mg).
    bout_min : float, optional
        Bout length, minutes (GGIR ``boutdur.mvpa``: 1, 5, 10). None: unbouted.
    criterion : float, default 0.8
        Fraction of MVPA epochs in a bout window (GGIR ``boutcriter.mvpa``).
    start_us : array_like of int64, shape (m,), optional
        Epoch starts, UTC microseconds, when epochs are missing (gaps): the bout rule then runs
        on the regular grid, missing epochs counting as not MVPA. None: epochs are consecutive.

    Returns
    -------
    ndarray of bool, shape (m,)

    References
    ----------
    GGIR ``R/g.getbout.R``; Hildebrand M et al. 2014, Med Sci Sports Exerc 46:1816.
    """
    v = np.asarray(enmo_mg, dtype=np.float64)
    _, th = threshold_values(thresholds)
    if len(th) < 2:
        raise ValueError("the threshold set needs a moderate threshold (second value)")
    worn = np.ones(v.shape, bool) if nonwear is None else ~np.asarray(nonwear, bool)
    with np.errstate(invalid="ignore"):
        above = (v >= th[1]) & worn
    if bout_min is None:
        return above
    if start_us is None:
        flags = ggir_bouts(above, epoch_s, bout_min=bout_min, criterion=criterion)
    else:
        t = np.asarray(start_us, dtype=np.int64)
        step = round(epoch_s * 1e6)
        if t.shape != v.shape:
            raise ValueError("start_us must match enmo_mg")
        if t.size == 0:
            return np.zeros(0, bool)
        pos = (t - t[0]) // step
        grid = np.zeros(int(pos[-1]) + 1, bool)
        grid[pos] = above
        flags = ggir_bouts(grid, epoch_s, bout_min=bout_min, criterion=criterion)[pos]
    return np.asarray(flags & worn, dtype=bool)


def mvpa_minutes(
    enmo_mg: npt.ArrayLike,
    epoch_s: float,
    nonwear: npt.ArrayLike | None = None,
    *,
    thresholds: str | Sequence[float] = "hildebrand_wrist_actigraph",
    bout_lengths: Sequence[float] = (1, 5, 10),
    criterion: float = 0.8,
    start_us: npt.ArrayLike | None = None,
) -> dict[str, float]:
    """MVPA minutes over the given epochs, unbouted and in bouts (see :func:`mvpa_flags`).

    Returns
    -------
    dict
        ``"mvpa_min"`` (unbouted) and ``"mvpa_bout{L}_min"`` per bout length ``L`` (minutes).
        Per-day totals: run :func:`mvpa_flags` once and sum by the caller's local day.
    """
    out = {
        "mvpa_min": float(
            mvpa_flags(enmo_mg, epoch_s, nonwear, thresholds=thresholds).sum() * epoch_s / 60.0
        )
    }
    for b in bout_lengths:
        f = mvpa_flags(
            enmo_mg,
            epoch_s,
            nonwear,
            thresholds=thresholds,
            bout_min=b,
            criterion=criterion,
            start_us=start_us,
        )
        out[f"mvpa_bout{b:g}_min"] = float(f.sum() * epoch_s / 60.0)
    return out
