"""Autocalibration of raw tri-axial acceleration against local gravity (van Hees et al. 2014).

A calibrated device at rest measures a vector of length 1 g in any orientation. Calibration error
shows as still periods whose mean acceleration lies on an ellipsoid, not the unit sphere. The
method finds still 10-s windows, fits a per-axis offset and scale that move their means onto the
unit sphere, and applies the correction only when it helps:

    calibrated[:, k] = (raw[:, k] + offset[k]) * scale[k]                       (g)

This module holds

- :func:`window_stats`, a streaming kernel of per-axis sufficient statistics (count, sum, sum of
  squares, optionally minimum / maximum and the same on a regular subsample) per fixed UTC
  window, shared with the non-wear detection (:mod:`actidose.dose.nonwear`);
- :func:`still_windows`, the selection of still windows (SD < 13 mg on all three axes);
- :func:`fit_calibration`, the iterative weighted least-squares sphere fit (GGIR
  ``g.calibrate.R``, after Zhou Fang's code), with its acceptance rule;
- :func:`apply_calibration`, the correction applied to raw samples.

Temperature is not modelled: GGIR adds a per-axis temperature coefficient when the device logs
temperature; :class:`actidose.recording.AccelChunk` carries none, so the fit is offset and scale
only (van Hees 2014, eq. 1 without the temperature term).

References
----------
van Hees VT, Fang Z, Langford J, et al. Autocalibration of accelerometer data for free-living
physical activity assessment using local gravity and temperature: an evaluation on four
continents. J Appl Physiol 2014;117:738-744. GGIR ``R/g.calibrate.R`` (wadpac/GGIR).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = [
    "AxisStats",
    "Calibration",
    "WindowState",
    "WindowStats",
    "apply_calibration",
    "fit_calibration",
    "still_windows",
    "window_stats",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Float = np.float32 | np.float64

CAL_WINDOW_S = 10.0
"""Window of the still-period features, s (van Hees 2014; GGIR ``calibEpochSize``)."""


# --------------------------------------------------------------------------------------------
# Streaming per-window statistics
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AxisStats:
    """Per-axis sufficient statistics of groups of samples (windows or blocks).

    Attributes
    ----------
    n : ndarray of int64, shape (m,)
        Samples in each group.
    sum : ndarray of float64, shape (m, 3)
        ``sum_i a_i`` per axis, g.
    sumsq : ndarray of float64, shape (m, 3)
        ``sum_i a_i**2`` per axis, g^2.
    min, max : ndarray of float64, shape (m, 3), or shape (0, 3) when not computed
        Extremes per axis, g (``+inf`` / ``-inf`` for an empty group).
    """

    n: I64
    sum: F64
    sumsq: F64
    min: F64
    max: F64

    @property
    def has_minmax(self) -> bool:
        """Whether ``min`` and ``max`` were computed."""
        return self.min.shape[0] == self.n.shape[0] and self.n.shape[0] > 0

    @property
    def mean(self) -> F64:
        """Mean per axis, g (NaN for an empty group)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(self.sum / self.n[:, None], dtype=np.float64)

    @property
    def sd(self) -> F64:
        """Sample standard deviation per axis (``ddof=1``, as R's ``sd``), g; NaN when n < 2.

        ``sd = sqrt((sumsq - sum**2 / n) / (n - 1))``, clipped at 0 against rounding.
        """
        n = self.n[:, None].astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            var = (self.sumsq - self.sum * self.sum / n) / (n - 1.0)
        var = np.where(n >= 2, np.maximum(var, 0.0), np.nan)
        return np.asarray(np.sqrt(var), dtype=np.float64)

    @property
    def range(self) -> F64:
        """``max - min`` per axis, g (NaN for an empty group or when not computed)."""
        if not self.has_minmax:
            return np.full(self.sum.shape, np.nan)
        with np.errstate(invalid="ignore"):
            r = self.max - self.min
        return np.asarray(np.where(self.n[:, None] > 0, r, np.nan), dtype=np.float64)

    def affine(self, offset: npt.ArrayLike, scale: npt.ArrayLike) -> AxisStats:
        """The statistics of ``(a + offset) * scale`` (exact algebra, no resampling).

        ``sum' = s (sum + n o)``, ``sumsq' = s^2 (sumsq + 2 o sum + n o^2)``, extremes mapped
        (and swapped where ``s < 0``).
        """
        o = np.asarray(offset, dtype=np.float64).reshape(1, 3)
        s = np.asarray(scale, dtype=np.float64).reshape(1, 3)
        n = self.n[:, None].astype(np.float64)
        new_sum = s * (self.sum + n * o)
        new_sumsq = s * s * (self.sumsq + 2.0 * o * self.sum + n * o * o)
        if self.min.shape[0] == self.n.shape[0]:
            a = (self.min + o) * s
            b = (self.max + o) * s
            mn, mx = np.minimum(a, b), np.maximum(a, b)
        else:
            mn, mx = self.min, self.max
        return AxisStats(self.n, new_sum, new_sumsq, mn, mx)

    def __len__(self) -> int:
        return int(self.n.shape[0])

    @staticmethod
    def empty() -> AxisStats:
        """No groups."""
        z = np.zeros((0, 3))
        return AxisStats(np.zeros(0, np.int64), z, z.copy(), z.copy(), z.copy())

    @staticmethod
    def concat(parts: Sequence[AxisStats]) -> AxisStats:
        """Groups of ``parts`` one after the other."""
        if not parts:
            return AxisStats.empty()
        minmax = all(p.min.shape[0] == p.n.shape[0] for p in parts)
        z = np.zeros((0, 3))
        return AxisStats(
            np.concatenate([p.n for p in parts]),
            np.concatenate([p.sum for p in parts]),
            np.concatenate([p.sumsq for p in parts]),
            np.concatenate([p.min for p in parts]) if minmax else z,
            np.concatenate([p.max for p in parts]) if minmax else z.copy(),
        )

    def take(self, idx: slice | npt.NDArray[np.intp] | npt.NDArray[np.bool_]) -> AxisStats:
        """The groups at ``idx`` (a slice or an index array)."""
        i = idx
        mm = self.min.shape[0] == self.n.shape[0]
        return AxisStats(
            self.n[i],
            self.sum[i],
            self.sumsq[i],
            self.min[i] if mm else self.min,
            self.max[i] if mm else self.max,
        )

    def group(self, starts: npt.NDArray[np.intp]) -> AxisStats:
        """Merge consecutive groups: ``[starts[g], starts[g+1])`` become group ``g``.

        ``starts`` must be strictly increasing, ``starts[0] == 0``.
        """
        mm = self.min.shape[0] == self.n.shape[0]
        return AxisStats(
            np.add.reduceat(self.n, starts),
            np.add.reduceat(self.sum, starts, axis=0),
            np.add.reduceat(self.sumsq, starts, axis=0),
            np.minimum.reduceat(self.min, starts, axis=0) if mm else self.min,
            np.maximum.reduceat(self.max, starts, axis=0) if mm else self.max,
        )


def _merge_rows(a: AxisStats, b: AxisStats) -> AxisStats:
    """One group from group 0 of ``a`` and group 0 of ``b`` (the same window split by a chunk
    edge)."""
    mm = a.min.shape[0] > 0 and b.min.shape[0] > 0
    return AxisStats(
        a.n[:1] + b.n[:1],
        a.sum[:1] + b.sum[:1],
        a.sumsq[:1] + b.sumsq[:1],
        np.minimum(a.min[:1], b.min[:1]) if mm else np.zeros((0, 3)),
        np.maximum(a.max[:1], b.max[:1]) if mm else np.zeros((0, 3)),
    )


@dataclass(frozen=True)
class WindowStats:
    """Per-axis statistics per fixed UTC window ``[index * window_us, (index + 1) * window_us)``.

    Only windows holding at least one sample are listed, in time order.

    Attributes
    ----------
    window_us : int
        Window length, microseconds.
    index : ndarray of int64, shape (m,)
        Window number (``floor(t_us / window_us)``), strictly increasing.
    full : AxisStats
        Over every sample of the window.
    sub : AxisStats or None
        Over the regular subsample (every ``sub_step``-th sample of the stream), when asked.
    """

    window_us: int
    index: I64
    full: AxisStats
    sub: AxisStats | None = None

    def __len__(self) -> int:
        return int(self.index.shape[0])

    @staticmethod
    def concat(parts: Sequence[WindowStats], window_us: int) -> WindowStats:
        """Windows of ``parts`` one after the other (parts in time order)."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return WindowStats(window_us, np.zeros(0, np.int64), AxisStats.empty(), None)
        subs = [p.sub for p in parts]
        sub = AxisStats.concat([s for s in subs if s is not None]) if subs[0] is not None else None
        return WindowStats(
            window_us,
            np.concatenate([p.index for p in parts]),
            AxisStats.concat([p.full for p in parts]),
            sub,
        )


@dataclass
class WindowState:
    """State of :func:`window_stats` carried from one chunk to the next (as ``zi`` in
    ``scipy.signal.lfilter``): the window still open at the end of the previous chunk and the
    number of samples seen (the phase of the subsample)."""

    n_seen: int = 0
    open_index: int | None = None
    open_full: AxisStats | None = None
    open_sub: AxisStats | None = None
    work: F64 = field(default_factory=lambda: np.empty(0))

    def buffer(self, n: int) -> F64:
        """A float64 work buffer of ``n`` elements, reused across calls (grown when needed)."""
        if self.work.shape[0] < n:
            self.work = np.empty(max(n, int(self.work.shape[0] * 1.25)))
        return self.work[:n]


def segments(ts_us: I64, unit_us: int) -> tuple[I64, npt.NDArray[np.intp]]:
    """Split ascending timestamps into fixed UTC units ``[k * unit_us, (k + 1) * unit_us)``.

    Parameters
    ----------
    ts_us : ndarray of int64, shape (n,), n >= 1
        Ascending UTC timestamps, microseconds.
    unit_us : int
        Unit length, microseconds.

    Returns
    -------
    index : ndarray of int64, shape (m,)
        Unit number of each non-empty segment, strictly increasing.
    starts : ndarray of intp, shape (m,)
        First sample of each segment (``starts[0] == 0``).

    Notes
    -----
    The boundaries come from a binary search of the unit edges (no per-sample division) when
    the chunk spans fewer units than it has samples, else from ``ts // unit_us``.
    """
    n = ts_us.shape[0]
    first = int(ts_us[0]) // unit_us
    last = int(ts_us[-1]) // unit_us
    if last - first < n:
        ids = np.arange(first, last + 1, dtype=np.int64)
        starts = np.empty(ids.shape[0], dtype=np.intp)
        starts[0] = 0
        starts[1:] = np.searchsorted(ts_us, ids[1:] * unit_us, side="left")
        ends = np.empty_like(starts)
        ends[:-1] = starts[1:]
        ends[-1] = n
        keep = ends > starts
        return ids[keep], starts[keep]
    u = ts_us // unit_us
    starts = np.concatenate(([0], np.flatnonzero(u[1:] != u[:-1]) + 1)).astype(np.intp)
    return u[starts].astype(np.int64), starts


BLOCK_SAMPLES = 1 << 16
"""Samples per cache-sized block: kernels work through a chunk in groups of whole windows or
epochs of about this many samples, so each group's passes run in the CPU cache."""


def groups(starts: npt.NDArray[np.intp], block: int = BLOCK_SAMPLES) -> npt.NDArray[np.intp]:
    """Split segments into groups of about ``block`` samples: returns the segment index where
    each group starts, plus ``len(starts)`` at the end."""
    gid = starts // block
    cut = np.flatnonzero(gid[1:] != gid[:-1]) + 1
    return np.concatenate(([0], cut, [starts.shape[0]])).astype(np.intp)


def _stats_of(
    cols: npt.NDArray[Float], starts: npt.NDArray[np.intp], minmax: bool, work: WindowState
) -> AxisStats:
    """AxisStats of the segments ``starts`` of the (n, 3) array ``cols`` (a view is fine),
    a cache-sized group of segments at a time."""
    n = cols.shape[0]
    k = starts.shape[0]
    counts = np.diff(np.append(starts, n)).astype(np.int64)
    s1 = np.empty((k, 3))
    s2 = np.empty((k, 3))
    mn = np.empty((k, 3)) if minmax else np.zeros((0, 3))
    mx = np.empty((k, 3)) if minmax else np.zeros((0, 3))
    cut = groups(starts)
    for g in range(cut.shape[0] - 1):
        g0, g1 = int(cut[g]), int(cut[g + 1])
        a0 = int(starts[g0])
        a1 = int(starts[g1]) if g1 < k else n
        loc = starts[g0:g1] - a0
        col = work.buffer(a1 - a0)
        for j in range(3):
            np.copyto(col, cols[a0:a1, j])  # strided read into a contiguous float64 buffer
            s1[g0:g1, j] = np.add.reduceat(col, loc)
            if minmax:
                mn[g0:g1, j] = np.minimum.reduceat(col, loc)
                mx[g0:g1, j] = np.maximum.reduceat(col, loc)
            np.multiply(col, col, out=col)
            s2[g0:g1, j] = np.add.reduceat(col, loc)
    return AxisStats(counts, s1, s2, mn, mx)


def _empty_stats(k: int, minmax: bool) -> AxisStats:
    z = np.zeros((0, 3))
    return AxisStats(
        np.zeros(k, np.int64),
        np.zeros((k, 3)),
        np.zeros((k, 3)),
        np.full((k, 3), np.inf) if minmax else z,
        np.full((k, 3), -np.inf) if minmax else z.copy(),
    )


def window_stats(
    ts_us: npt.ArrayLike,
    xyz: npt.ArrayLike,
    *,
    window_s: float = CAL_WINDOW_S,
    minmax: bool = False,
    sub_step: int | None = None,
    sub_minmax: bool = True,
    state: WindowState | None = None,
    final: bool = True,
) -> tuple[WindowStats, WindowState]:
    """Per-axis count, sum and sum of squares per fixed UTC window, streamed over chunks.

    Windows are ``[k * window_s, (k + 1) * window_s)`` in UTC (aligned to whole multiples of
    the window since the epoch, so they nest in GGIR's 15-min blocks). A window cut by a chunk
    edge is held in ``state`` and merged with the next chunk's first window; feeding a recording
    in any chunking gives the windows of the whole (up to float rounding of the sums). Windows
    without samples are not listed; a window at a gap or the ends keeps its actual count.

    Parameters
    ----------
    ts_us : array_like of int64, shape (n,)
        UTC timestamps, microseconds, ascending (also across chunks).
    xyz : array_like of float, shape (n, 3)
        Acceleration, g.
    window_s : float, default 10.0
        Window length, s (a whole number of microseconds).
    minmax : bool, default False
        Also the per-axis minimum and maximum (for the range criterion of non-wear).
    sub_step : int, optional
        Also the statistics of the regular subsample "every ``sub_step``-th sample of the
        stream" (GGIR's 2023 non-wear rule reads every ``ceil(sf / 5)``-th sample).
    sub_minmax : bool, default True
        Minimum and maximum of the subsample too.
    state : WindowState, optional
        State from the previous chunk (None for the first).
    final : bool, default True
        Close the last window (end of the stream). With False it stays open in the state.

    Returns
    -------
    stats : WindowStats
        The windows closed by this call.
    state : WindowState
        To pass with the next chunk.

    Notes
    -----
    ``sd = sqrt((sumsq - sum^2/n) / (n - 1))`` is accumulated in float64; for a 1-g axis over
    one hour at 100 Hz the cancellation error is about 1e-11 g^2, far below the 13-mg
    criterion's 1.7e-4 g^2.
    """
    st = WindowState() if state is None else state
    window_us = round(window_s * 1e6)
    if window_us <= 0 or abs(window_us - window_s * 1e6) > 1e-6:
        raise ValueError(f"window_s must be a positive whole number of microseconds: {window_s}")
    ts = np.asarray(ts_us, dtype=np.int64)
    a = np.asarray(xyz)
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    if a.ndim != 2 or a.shape[1] != 3 or a.shape[0] != ts.shape[0]:
        raise ValueError(f"xyz must have shape (n, 3) matching ts_us, got {a.shape}")
    n = ts.shape[0]
    parts_idx: list[I64] = []
    parts_full: list[AxisStats] = []
    parts_sub: list[AxisStats] = []
    if n:
        ids, starts = segments(ts, window_us)
        full = _stats_of(a, starts, minmax, st)
        sub: AxisStats | None = None
        if sub_step is not None:
            p0 = (-st.n_seen) % sub_step
            sub_a = a[p0::sub_step]
            m = sub_a.shape[0]
            sub_starts = np.maximum(0, -((p0 - starts) // sub_step))  # ceil((s - p0) / step)
            sub_ends = np.append(sub_starts[1:], m)
            nonempty = sub_ends > sub_starts
            sub = _empty_stats(ids.shape[0], sub_minmax)
            if m and nonempty.any():
                got = _stats_of(sub_a, sub_starts[nonempty], sub_minmax, st)
                sub.n[nonempty] = got.n
                sub.sum[nonempty] = got.sum
                sub.sumsq[nonempty] = got.sumsq
                if sub_minmax:
                    sub.min[nonempty] = got.min
                    sub.max[nonempty] = got.max
        # Merge the window left open by the previous chunk.
        if st.open_index is not None and st.open_full is not None:
            if int(ids[0]) == st.open_index:
                full = AxisStats.concat(
                    [_merge_rows(st.open_full, full), full.take(slice(1, None))]
                )
                if sub is not None and st.open_sub is not None:
                    sub = AxisStats.concat(
                        [_merge_rows(st.open_sub, sub), sub.take(slice(1, None))]
                    )
            else:
                parts_idx.append(np.array([st.open_index], np.int64))
                parts_full.append(st.open_full)
                if st.open_sub is not None:
                    parts_sub.append(st.open_sub)
        st.n_seen += n
        if final:
            st.open_index, st.open_full, st.open_sub = None, None, None
            parts_idx.append(ids)
            parts_full.append(full)
            if sub is not None:
                parts_sub.append(sub)
        else:
            st.open_index = int(ids[-1])
            st.open_full = full.take(slice(-1, None))
            st.open_sub = sub.take(slice(-1, None)) if sub is not None else None
            parts_idx.append(ids[:-1])
            parts_full.append(full.take(slice(None, -1)))
            if sub is not None:
                parts_sub.append(sub.take(slice(None, -1)))
    elif final and st.open_index is not None and st.open_full is not None:
        parts_idx.append(np.array([st.open_index], np.int64))
        parts_full.append(st.open_full)
        if st.open_sub is not None:
            parts_sub.append(st.open_sub)
        st.open_index, st.open_full, st.open_sub = None, None, None
    index = np.concatenate(parts_idx) if parts_idx else np.zeros(0, np.int64)
    full_all = AxisStats.concat(parts_full) if parts_full else AxisStats.empty()
    sub_all = AxisStats.concat(parts_sub) if (sub_step is not None and parts_sub) else None
    if sub_step is not None and sub_all is None:
        sub_all = _empty_stats(0, sub_minmax)
    return WindowStats(window_us, index, full_all, sub_all), st


# --------------------------------------------------------------------------------------------
# Still windows and the sphere fit
# --------------------------------------------------------------------------------------------


def still_windows(
    stats: AxisStats,
    *,
    sd_max_g: float = 0.013,
    mean_abs_max_g: float = 2.0,
    min_samples: int = 2,
) -> npt.NDArray[np.bool_]:
    """Windows without movement: ``sd < sd_max_g`` on all three axes and ``|mean| <
    mean_abs_max_g`` on all three (the latter keeps out clipped periods), per GGIR.

    Parameters
    ----------
    stats : AxisStats
        Per-window statistics (10-s windows, :func:`window_stats`).
    sd_max_g : float, default 0.013
        SD criterion, g (GGIR ``sdcriter`` 13 mg; van Hees 2014).
    mean_abs_max_g : float, default 2.0
        Bound on each axis' mean, g.
    min_samples : int, default 2
        Windows with fewer samples are never still (SD undefined).

    Returns
    -------
    ndarray of bool, shape (m,)

    References
    ----------
    GGIR ``R/g.calibrate.R`` (``nomovement``); van Hees VT et al. 2014, J Appl Physiol 117:738.
    """
    sd = stats.sd
    mean = stats.mean
    with np.errstate(invalid="ignore"):
        ok = (sd < sd_max_g).all(axis=1) & (np.abs(mean) < mean_abs_max_g).all(axis=1)
    return np.asarray(ok & (stats.n >= max(min_samples, 2)), dtype=bool)


@dataclass(frozen=True)
class Calibration:
    """Result of :func:`fit_calibration`.

    The correction is ``calibrated = (raw + offset) * scale`` per axis (GGIR's convention: its
    ``offset`` is added before scaling). Unless ``accepted`` it is the identity (offset 0,
    scale 1); the fitted values are then in ``fitted_offset`` / ``fitted_scale`` for the record.

    Attributes
    ----------
    offset : ndarray of float64, shape (3,)
        Offset correction, g.
    scale : ndarray of float64, shape (3,)
        Scale correction, dimensionless.
    error_before_g : float
        ``mean_w |‖mean_w‖ - 1|`` over the still windows before correction, g (NaN if none).
    error_after_g : float
        The same after the fitted correction, g (NaN when no fit was made).
    n_windows : int
        Still windows used.
    accepted : bool
        Whether the correction is applied.
    reason : str
        Why it was or was not accepted.
    fitted_offset, fitted_scale : ndarray of float64, shape (3,)
        The fit, accepted or not (identity when no fit was made).
    n_iter : int
        Iterations of the fit.
    """

    offset: F64
    scale: F64
    error_before_g: float
    error_after_g: float
    n_windows: int
    accepted: bool
    reason: str
    fitted_offset: F64 = field(default_factory=lambda: np.zeros(3))
    fitted_scale: F64 = field(default_factory=lambda: np.ones(3))
    n_iter: int = 0

    @staticmethod
    def identity(
        reason: str, error_before_g: float = float("nan"), n_windows: int = 0
    ) -> Calibration:
        """No correction, with the reason."""
        return Calibration(
            np.zeros(3), np.ones(3), error_before_g, float("nan"), n_windows, False, reason
        )

    @property
    def is_identity(self) -> bool:
        """Offset 0 and scale 1 exactly."""
        return bool(np.all(self.offset == 0.0) and np.all(self.scale == 1.0))

    def info(self) -> dict[str, object]:
        """Plain-Python summary for the processing record."""
        return {
            "calibration_accepted": self.accepted,
            "calibration_reason": self.reason,
            "calibration_error_before_g": _nan_none(self.error_before_g),
            "calibration_error_after_g": _nan_none(self.error_after_g),
            "calibration_offset_g": [float(v) for v in self.offset],
            "calibration_scale": [float(v) for v in self.scale],
            "calibration_fitted_offset_g": [float(v) for v in self.fitted_offset],
            "calibration_fitted_scale": [float(v) for v in self.fitted_scale],
            "calibration_n_windows": self.n_windows,
            "calibration_n_iter": self.n_iter,
        }


def _nan_none(v: float) -> float | None:
    return None if not np.isfinite(v) else float(v)


def _sphere_error(means: F64) -> float:
    return float(np.mean(np.abs(np.sqrt(np.einsum("ij,ij->i", means, means)) - 1.0)))


def fit_calibration(
    means: npt.ArrayLike,
    *,
    sphere_min_g: float = 0.3,
    max_error_g: float = 0.01,
    min_windows: int = 10,
    max_iter: int = 1000,
    tol: float = 1e-10,
) -> Calibration:
    """Offset and scale per axis that move still-window means onto the unit sphere.

    Iterative weighted least squares (van Hees 2014; GGIR ``g.calibrate.R``, Zhou Fang's code):
    with ``c = (m + offset) * scale`` and ``p = c / ‖c‖`` its closest point on the unit sphere,
    each iteration regresses, per axis k and with weights w, ``p_k ~ a_k + b_k c_k``, then
    ``offset += a / (scale * b)``, ``scale *= b``; the weights are ``min(1 / ‖c - p‖, 100)``
    (outlying windows count less); it stops when the weighted residual
    ``3 mean(w (c - p)^2) / sum(w)`` changes by less than ``tol``.

    Accepted only when it improves: ``error_after < error_before`` and ``error_after <
    max_error_g``, where ``error = mean |‖mean_w‖ - 1|`` over the still windows. Refused (identity,
    with the reason) when fewer than ``min_windows`` still windows exist, or when the windows do
    not cover the sphere: on every axis some window mean must be below ``-sphere_min_g`` and
    some above ``+sphere_min_g`` (GGIR ``spherecrit``), else offset and scale are not separable.

    Parameters
    ----------
    means : array_like of float, shape (m, 3)
        Mean acceleration of the still windows, g (:func:`still_windows`).
    sphere_min_g : float, default 0.3
        Sphere coverage criterion, g (GGIR ``spherecrit``).
    max_error_g : float, default 0.01
        Largest accepted error after correction, g (10 mg, van Hees 2014). GGIR's part 1 applies
        any fit that does not increase the error; pass ``inf`` for that behaviour.
    min_windows : int, default 10
        Fewest still windows to attempt a fit (GGIR).
    max_iter : int, default 1000
        Iteration limit (GGIR).
    tol : float, default 1e-10
        Convergence tolerance on the weighted residual (GGIR).

    Returns
    -------
    Calibration

    Notes
    -----
    The whole recording's still windows are used. GGIR reads the file in 12-h steps and stops
    at the first step past ``minloadcrit`` hours (72; 168 since GGIR 3.0-10) with a fit below
    10 mg, then (``g.part1``) applies the last fit unless it increased the error. GGIR also
    rounds the errors to 5 decimals and drops consecutive windows with repeated features
    (imputed gaps); gaps are never imputed here, so the latter does not arise. No temperature
    term.

    References
    ----------
    van Hees VT et al. 2014, J Appl Physiol 117:738-744; GGIR ``R/g.calibrate.R``.
    """
    m = np.asarray(means, dtype=np.float64)
    if m.ndim != 2 or m.shape[1] != 3:
        raise ValueError(f"means must have shape (m, 3), got {m.shape}")
    m = m[np.isfinite(m).all(axis=1)]
    nw = int(m.shape[0])
    if nw < min_windows:
        return Calibration.identity(
            f"not enough still 10-s windows: {nw} < {min_windows}",
            _sphere_error(m) if nw else float("nan"),
            nw,
        )
    err0 = _sphere_error(m)
    covered = (m.min(axis=0) < -sphere_min_g) & (m.max(axis=0) > sphere_min_g)
    if not covered.all():
        axes = ",".join("xyz"[k] for k in range(3) if not covered[k])
        return Calibration.identity(
            f"still windows do not cover the sphere (axis {axes} never beyond ±{sphere_min_g} g)",
            err0,
            nw,
        )
    offset = np.zeros(3)
    scale = np.ones(3)
    w = np.ones(nw)
    res_prev = np.inf
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        curr = (m + offset) * scale
        norm = np.sqrt(np.einsum("ij,ij->i", curr, curr))
        closest = curr / norm[:, None]
        sw = w.sum()
        xm = w @ curr / sw
        ym = w @ closest / sw
        dx = curr - xm
        b = (w @ (dx * (closest - ym))) / (w @ (dx * dx))
        a = ym - b * xm
        curr = a + b * curr
        offset = offset + a / (scale * b)
        scale = scale * b
        d = curr - closest
        res = 3.0 * float(np.mean(w[:, None] * d * d / sw))
        with np.errstate(divide="ignore"):
            w = np.minimum(1.0 / np.sqrt(np.einsum("ij,ij->i", d, d)), 100.0)
        if abs(res - res_prev) < tol:
            break
        res_prev = res
    if not (np.all(np.isfinite(offset)) and np.all(np.isfinite(scale))):
        return Calibration.identity("sphere fit did not converge (non-finite result)", err0, nw)
    err1 = _sphere_error((m + offset) * scale)

    def result(accepted: bool, reason: str) -> Calibration:
        return Calibration(
            offset=offset.copy() if accepted else np.zeros(3),
            scale=scale.copy() if accepted else np.ones(3),
            error_before_g=err0,
            error_after_g=err1,
            n_windows=nw,
            accepted=accepted,
            reason=reason,
            fitted_offset=offset.copy(),
            fitted_scale=scale.copy(),
            n_iter=it,
        )

    if not err1 < err0:
        return result(False, f"fit does not reduce the error ({err1:.5f} g >= {err0:.5f} g)")
    if not err1 < max_error_g:
        return result(False, f"error after fit {err1:.5f} g not below {max_error_g} g")
    return result(True, f"error reduced from {err0:.5f} g to {err1:.5f} g")


def apply_calibration(
    xyz: npt.ArrayLike, cal: Calibration, out: npt.NDArray[Float] | None = None
) -> npt.NDArray[Float]:
    """Apply a calibration: ``out[:, k] = (xyz[:, k] + offset[k]) * scale[k]``, g.

    Parameters
    ----------
    xyz : array_like of float, shape (n, 3)
        Raw acceleration, g.
    cal : Calibration
        From :func:`fit_calibration` (identity unless accepted).
    out : ndarray of float, shape (n, 3), optional
        Where to write (may be ``xyz`` itself for in place); a new float64 array if omitted.

    Returns
    -------
    ndarray, shape (n, 3)
        Calibrated acceleration, g.
    """
    a = np.asarray(xyz)
    if out is None:
        out = np.array(a, dtype=np.float64)
    elif out is not a:
        np.copyto(out, a, casting="same_kind")
    np.add(out, cal.offset.astype(out.dtype), out=out)
    np.multiply(out, cal.scale.astype(out.dtype), out=out)
    return out
