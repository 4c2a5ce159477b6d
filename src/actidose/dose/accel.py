"""Acceleration dose kernels: ENMO and MAD per epoch, intensity levels, GGIR MVPA bouts.

Raw accelerations are in g (1 g = 9.80665 m/s^2), per axis, calibrated. Epoch values are
returned in g; the project stores them in mg (multiply by 1000), and the level thresholds of
:data:`THRESHOLD_SETS` are in mg.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "LEVEL_NAMES",
    "THRESHOLD_SETS",
    "EpochResult",
    "classify_levels",
    "enmo",
    "epoch_enmo_mad",
    "ggir_bouts",
    "vector_magnitude",
]

FloatArray = npt.NDArray[np.float64]


def vector_magnitude(x: npt.ArrayLike, y: npt.ArrayLike, z: npt.ArrayLike) -> FloatArray:
    """Euclidean norm of the acceleration, ``r = sqrt(x^2 + y^2 + z^2)``, in g.

    Parameters
    ----------
    x, y, z : array_like of float
        Acceleration per axis, g (broadcastable to each other).

    Returns
    -------
    ndarray of float64
        Vector magnitude, g.
    """
    ax = np.asarray(x, dtype=np.float64)
    ay = np.asarray(y, dtype=np.float64)
    az = np.asarray(z, dtype=np.float64)
    return np.asarray(np.sqrt(ax * ax + ay * ay + az * az), dtype=np.float64)


def enmo(x: npt.ArrayLike, y: npt.ArrayLike, z: npt.ArrayLike) -> FloatArray:
    """Euclidean norm minus one, negatives set to zero, per sample.

    ``ENMO = max(sqrt(x^2 + y^2 + z^2) - 1, 0)`` in g. Truncation is per sample, before any
    epoch averaging (GGIR). NaN stays NaN.

    Parameters
    ----------
    x, y, z : array_like of float
        Calibrated acceleration per axis, g.

    Returns
    -------
    ndarray of float64
        ENMO, g.

    References
    ----------
    van Hees VT et al. 2013, PLoS One 8:e61691; GGIR ``R/g.applymetrics.R``.
    """
    return np.maximum(vector_magnitude(x, y, z) - 1.0, 0.0)


@dataclass(frozen=True)
class EpochResult:
    """ENMO and MAD per complete epoch.

    Attributes
    ----------
    enmo_g : ndarray of float64, shape (n_epochs,)
        Mean of per-sample ENMO in each epoch, g.
    mad_g : ndarray of float64, shape (n_epochs,)
        Mean amplitude deviation of the vector magnitude in each epoch, g.
    samples_per_epoch : int
        ``round(sf_hz * epoch_s)``.
    n_dropped_samples : int
        Samples of the incomplete trailing epoch, not in any epoch.
    """

    enmo_g: FloatArray
    mad_g: FloatArray
    samples_per_epoch: int
    n_dropped_samples: int


def epoch_enmo_mad(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    z: npt.ArrayLike,
    sf_hz: float,
    epoch_s: float = 5.0,
) -> EpochResult:
    """ENMO and MAD per epoch of raw tri-axial acceleration.

    ``enmo[e] = mean_{i in e} max(r_i - 1, 0)`` and
    ``mad[e] = mean_{i in e} |r_i - mean_{j in e} r_j|``, with ``r`` the vector magnitude.
    Epochs start at the first sample; an incomplete trailing epoch is dropped and its samples
    counted in ``n_dropped_samples``.

    Parameters
    ----------
    x, y, z : array_like of float, shape (n,)
        Calibrated acceleration per axis, g, sampled at ``sf_hz``.
    sf_hz : float
        Sampling frequency, Hz.
    epoch_s : float, default 5.0
        Epoch length, s; ``sf_hz * epoch_s`` must be a whole number of samples.

    Returns
    -------
    EpochResult

    References
    ----------
    van Hees VT et al. 2013, PLoS One 8:e61691 (ENMO); Vähä-Ypyä H et al. 2015, Clin Physiol
    Funct Imaging 35:64 (MAD); GGIR ``R/g.applymetrics.R``.
    """
    r = vector_magnitude(x, y, z)
    if r.ndim != 1:
        raise ValueError(f"x, y, z must be 1-D, got shape {r.shape}")
    if not (sf_hz > 0 and epoch_s > 0):
        raise ValueError("sf_hz and epoch_s must be positive")
    spe_f = sf_hz * epoch_s
    spe = round(spe_f)
    if spe < 1 or abs(spe_f - spe) > 1e-9 * max(1.0, spe_f):
        raise ValueError(f"sf_hz * epoch_s must be a whole number of samples, got {spe_f}")
    n_ep = r.size // spe
    blocks = r[: n_ep * spe].reshape(n_ep, spe)
    enmo_g = np.maximum(blocks - 1.0, 0.0).mean(axis=1)
    mad_g = np.abs(blocks - blocks.mean(axis=1, keepdims=True)).mean(axis=1)
    return EpochResult(
        enmo_g=enmo_g, mad_g=mad_g, samples_per_epoch=spe, n_dropped_samples=r.size - n_ep * spe
    )


LEVEL_NAMES: tuple[str, str, str, str] = ("IN", "LIG", "MOD", "VIG")
"""Names of the levels returned by :func:`classify_levels` (index = level)."""

THRESHOLD_SETS: dict[str, tuple[float, float, float]] = {
    # Hildebrand et al. 2014 MSSE 46:1816 and 2017 SJMSS 27:1814, adult non-dominant wrist, ENMO mg.
    "hildebrand_wrist_actigraph": (44.8, 100.6, 428.8),
    "hildebrand_wrist_geneactiv": (45.8, 93.2, 418.3),
}
"""Named (light, moderate, vigorous) lower thresholds, ENMO in mg. Record the name used."""


def classify_levels(
    values: npt.ArrayLike,
    thresholds: Sequence[float] = THRESHOLD_SETS["hildebrand_wrist_actigraph"],
) -> npt.NDArray[np.int8]:
    """Intensity level of each epoch: the number of thresholds the value reaches.

    ``level = #{k : value >= thresholds[k]}`` (lower edge inclusive): with the default three
    thresholds 0 inactive, 1 light, 2 moderate, 3 vigorous (:data:`LEVEL_NAMES`). NaN gives -1.

    Parameters
    ----------
    values : array_like of float
        Epoch values in the thresholds' units (ENMO mg for :data:`THRESHOLD_SETS`).
    thresholds : sequence of float, default Hildebrand wrist ActiGraph (44.8, 100.6, 428.8)
        Strictly increasing lower edges of levels 1, 2, 3, ...

    Returns
    -------
    ndarray of int8, shape of ``values``

    References
    ----------
    GGIR ``R/identify_levels.R``; Hildebrand M et al. 2014, Med Sci Sports Exerc 46:1816.
    """
    v = np.asarray(values, dtype=np.float64)
    t = np.asarray(thresholds, dtype=np.float64)
    if t.ndim != 1 or t.size == 0 or t.size > 126 or np.any(np.diff(t) <= 0):
        raise ValueError("thresholds must be a non-empty, strictly increasing 1-D sequence")
    lev = np.searchsorted(t, v, side="right")
    return np.where(np.isnan(v), -1, lev).astype(np.int8)


def _long_false_runs(a: npt.NDArray[np.bool_], min_len: int) -> npt.NDArray[np.bool_]:
    """Mask of the epochs in runs of False at least ``min_len`` long."""
    d = np.diff(np.concatenate(([1], a.astype(np.int8), [1])))
    starts = np.flatnonzero(d == -1)
    ends = np.flatnonzero(d == 1)  # exclusive
    long = (ends - starts) >= min_len
    return _cover(starts[long], ends[long] - starts[long], a.size)


def _cover(starts: npt.NDArray[np.intp], lengths: npt.ArrayLike, n: int) -> npt.NDArray[np.bool_]:
    """Mask of length ``n`` that is True on ``[starts[i], starts[i] + lengths[i])`` for all i."""
    stops = starts + np.asarray(lengths, dtype=np.intp)
    delta = np.bincount(starts, minlength=n + 1) - np.bincount(stops, minlength=n + 1)
    return np.cumsum(delta[:n]) > 0


def ggir_bouts(
    above: npt.ArrayLike,
    epoch_s: float,
    *,
    bout_min: float = 10,
    criterion: float = 0.8,
    max_break_s: float = 60.0,
) -> npt.NDArray[np.bool_]:
    """Epochs in bouts, GGIR's rule (``g.getbout.R``, ``bout.metric = 6``).

    A window of ``W = bout_min * 60 / epoch_s`` consecutive epochs is a bout window when

    1. the fraction of its epochs above threshold is ``>= criterion`` (the rolling mean over
       the bout length),
    2. it starts and ends with an above-threshold epoch, and
    3. it contains no break (run of below-threshold epochs) longer than ``max_break_s``
       (breaks of exactly one minute may be bridged, longer ones never).

    An epoch is in a bout if any bout window covers it; bridged break epochs are therefore in
    the bout (``flags & above`` gives the above-threshold bout epochs GGIR counts).

    This is GGIR's centred rolling mean written over window starts, with GGIR's "first and
    last epoch must meet the threshold" check applied to every window (GGIR trims it from the
    ends of runs of window centres). It reproduces the project vectors BOUT-1..5 (GGIR's
    ``test_ggetbout.R`` cases at 5, 15, 30 and 60 s epochs). Known one-epoch differences from
    GGIR's code: GGIR can flag one below-threshold epoch just after a bout that bridged a
    break (BOUT-4 at 5-30 s epochs), and treats windows touching the first or last half bout
    of the series differently; here every window inside the series counts.

    Parameters
    ----------
    above : array_like of bool, shape (n,)
        Whether each epoch is at or above the intensity threshold (e.g. ``level >= 2``).
    epoch_s : float
        Epoch length, s.
    bout_min : float, default 10
        Bout length, minutes; ``bout_min * 60 / epoch_s`` must be a whole number of epochs.
    criterion : float, default 0.8
        Minimum fraction of above-threshold epochs in a window, 0 < criterion <= 1.
    max_break_s : float, default 60.0
        Longest break that may be bridged, s.

    Returns
    -------
    ndarray of bool, shape (n,)
        True for epochs in a bout.

    References
    ----------
    GGIR ``R/g.getbout.R`` (van Hees, wadpac/GGIR) and ``tests/testthat/test_ggetbout.R``.
    """
    a = np.asarray(above, dtype=bool)
    if a.ndim != 1:
        raise ValueError(f"above must be 1-D, got shape {a.shape}")
    if not (epoch_s > 0 and bout_min > 0 and max_break_s >= 0):
        raise ValueError("epoch_s and bout_min must be positive, max_break_s >= 0")
    if not (0.0 < criterion <= 1.0):
        raise ValueError(f"criterion must be in (0, 1], got {criterion}")
    w_f = bout_min * 60.0 / epoch_s
    w = round(w_f)
    if w < 1 or abs(w_f - w) > 1e-9 * max(1.0, w_f):
        raise ValueError(f"bout_min * 60 / epoch_s must be a whole number of epochs, got {w_f}")
    n = a.size
    if n < w:
        return np.zeros(n, dtype=bool)

    # A break is "longer than max_break_s" when its duration run * epoch_s exceeds it.
    min_break = int(np.floor(max_break_s / epoch_s + 1e-9)) + 1
    blocked = _long_false_runs(a, min_break)

    cs_a = np.concatenate(([0], np.cumsum(a, dtype=np.int64)))
    cs_b = np.concatenate(([0], np.cumsum(blocked, dtype=np.int64)))
    count = cs_a[w:] - cs_a[:-w]  # above-threshold epochs in window starting at s
    n_blocked = cs_b[w:] - cs_b[:-w]
    # count / w is correctly rounded, so 9/10 >= 0.9 holds exactly.
    ok = (count / w >= criterion) & (n_blocked == 0) & a[: n - w + 1] & a[w - 1 :]
    starts = np.flatnonzero(ok)
    return _cover(starts, np.full(starts.size, w), n)
