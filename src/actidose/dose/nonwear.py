"""Non-wear detection from raw acceleration, GGIR's 2023 rule (default) and its 2013 rule.

A worn device moves: over an hour its axes never stay still. The rule works on 15-min blocks
and 60-min windows. In a window an axis is *still* when its standard deviation is below 13 mg
**and** its range (max - min) is below 50 mg; the non-wear score of a block is the number of
axes (0-3) found still, and a block is non-wear when the score is at least 2 ("2 of 3 axes").
The two rules differ in which window decides a block:

``"ggir2013"`` (van Hees et al. 2013; GGIR ``nonwear_approach = "2013"``)
    Block ``b`` is judged on the 60-min window centred on it: from the middle of block ``b-2``
    to the middle of block ``b+2`` (half-block resolution). The first three blocks of the
    recording are judged on its first hour, the last four on its last three blocks (45 min), as
    GGIR does. A still period is therefore found only where a whole centred hour fits in it: a
    3-h still period loses about 1.5 blocks at each edge.

``"ggir2023"`` (GGIR ``nonwear_approach = "2023"``: added in 2.9-2, the default since 3.0-0)
    Windows start at every block and cover it and the next three (shorter at the end of the
    recording); a still window flags all four of its blocks, per axis. Block ``b``'s axis is
    still when any window containing ``b`` is still on that axis. Ranges and SDs are taken over
    every ``ceil(sf / 5)``-th sample (GGIR reads the window at about 5 Hz).

In both, a single block with score 1 between two blocks with score >= 2 becomes 2 (GGIR
``detect_nonwear_clipping.R``). GGIR's part 2 post-processing of the block series (wear
islands shorter than 3 or 6 hours between non-wear turned into non-wear, edge corrections,
``g.weardec.R``) is not applied here.

Blocks are ``[k * 15 min, (k + 1) * 15 min)`` in UTC, like GGIR, which drops the samples before
the first whole quarter hour of the clock (here they form a shorter first block). Windows are
evaluated only when they hold at least ``min_window_s`` worth of samples (default 15 min, the
shortest window GGIR evaluates), so a few minutes of data next to a gap or the end of the
recording cannot flag a block alone. The window statistics come from per-half-block sufficient
statistics (count, sum, sum of squares, min, max per axis), exact for any window made of whole
half-blocks.

The range criterion defaults to 50 mg, as the project's specification and van Hees et al. 2013
give it. GGIR's own default differs: its ``nonwear_range_threshold`` is 150 mg (a constant of
150 mg until 3.1-3, which made it a parameter with default 50 mg; 3.1-5 restored 150 mg, NEWS
#1172). Pass ``range_max_g=0.15`` to reproduce current GGIR; the value used is recorded.

References
----------
van Hees VT et al. 2013, PLoS One 8:e61691 (non-wear, 2 of 3 axes, SD 13 mg / range 50 mg);
GGIR ``R/detect_nonwear_clipping.R``, ``R/get_nw_clip_block_params.R``, ``R/g.getmeta.R``,
``R/g.weardec.R``, ``NEWS.md`` (wadpac/GGIR).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from actidose.dose.calibration import AxisStats

__all__ = [
    "BLOCK_S",
    "NONWEAR_RULES",
    "NonwearResult",
    "block_grid",
    "nonwear_blocks",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

BLOCK_S = 900.0
"""Block length, s (GGIR ``windowsizes[2]``, 15 min)."""
WINDOW_BLOCKS = 4
"""Window length in blocks (GGIR ``windowsizes[3]``, 60 min)."""
NONWEAR_RULES = ("ggir2023", "ggir2013")
"""Accepted values of ``rule``; the first is the default."""


@dataclass(frozen=True)
class NonwearResult:
    """Non-wear per 15-min block.

    Attributes
    ----------
    block_start_us : ndarray of int64, shape (nb,)
        UTC start of each block, microseconds (a regular grid from the first to the last block
        holding data; blocks inside gaps are listed, with score 0).
    nonwear : ndarray of bool, shape (nb,)
        ``score >= wear_threshold``.
    score : ndarray of int8, shape (nb,)
        Number of still axes (0-3), after the single-1 fill.
    axis_still : ndarray of bool, shape (nb, 3)
        Which axes were still for each block.
    info : dict
        Rule and parameters used, blocks flagged.
    """

    block_start_us: I64
    nonwear: npt.NDArray[np.bool_]
    score: npt.NDArray[np.int8]
    axis_still: npt.NDArray[np.bool_]
    info: dict[str, object] = field(default_factory=dict)


def block_grid(
    index: I64, stats: AxisStats, window_us: int, block_s: float = BLOCK_S
) -> tuple[int, AxisStats]:
    """Half-block (``block_s / 2``) statistics on a regular grid, from per-window statistics.

    Parameters
    ----------
    index : ndarray of int64, shape (m,)
        Window numbers (window ``k`` starts at ``k * window_us``), strictly increasing.
    stats : AxisStats
        Statistics of those windows.
    window_us : int
        Window length, microseconds; must divide the half-block.
    block_s : float, default 900.0
        Block length, s.

    Returns
    -------
    first_block_us : int
        UTC start of the first block of the grid, microseconds.
    half : AxisStats
        ``2 * nb`` half-blocks from ``first_block_us`` (empty ones have n = 0, min +inf,
        max -inf).
    """
    half_us = round(block_s * 1e6) // 2
    if half_us % window_us:
        raise ValueError(f"window ({window_us} us) must divide the half-block ({half_us} us)")
    if index.shape[0] == 0:
        return 0, AxisStats.empty()
    hb = (index * window_us) // half_us  # half-block of each window
    first_hb = int(hb[0]) - int(hb[0]) % 2  # grid starts at a block edge
    last_hb = int(hb[-1])
    n_hb = last_hb - first_hb + 1
    n_hb += n_hb % 2
    starts = np.concatenate(([0], np.flatnonzero(hb[1:] != hb[:-1]) + 1)).astype(np.intp)
    grouped = stats.group(starts)
    pos = hb[starts] - first_hb
    mm = grouped.min.shape[0] == grouped.n.shape[0]
    out = AxisStats(
        np.zeros(n_hb, np.int64),
        np.zeros((n_hb, 3)),
        np.zeros((n_hb, 3)),
        np.full((n_hb, 3), np.inf) if mm else np.zeros((0, 3)),
        np.full((n_hb, 3), -np.inf) if mm else np.zeros((0, 3)),
    )
    out.n[pos] = grouped.n
    out.sum[pos] = grouped.sum
    out.sumsq[pos] = grouped.sumsq
    if mm:
        out.min[pos] = grouped.min
        out.max[pos] = grouped.max
    return first_hb * half_us, out


def _window_stats(half: AxisStats, lo: npt.NDArray[np.intp], hi: npt.NDArray[np.intp]) -> AxisStats:
    """Statistics of the half-block ranges ``[lo[i], hi[i])`` (exact sums; min/max via a
    sliding reduction)."""
    cn = np.concatenate(([0], np.cumsum(half.n)))
    # Sums by differences of cumulative sums of at most a week of half-blocks (1344 rows).
    c1 = np.concatenate((np.zeros((1, 3)), np.cumsum(half.sum, axis=0)))
    c2 = np.concatenate((np.zeros((1, 3)), np.cumsum(half.sumsq, axis=0)))
    n = cn[hi] - cn[lo]
    s1 = c1[hi] - c1[lo]
    s2 = c2[hi] - c2[lo]
    k = lo.shape[0]
    mn = np.full((k, 3), np.inf)
    mx = np.full((k, 3), -np.inf)
    width = hi - lo
    for wdt in np.unique(width):  # at most a handful of distinct widths
        sel = np.flatnonzero(width == wdt)
        if wdt <= 0:
            continue
        idx = lo[sel][:, None] + np.arange(wdt)[None, :]
        mn[sel] = half.min[idx].min(axis=1)
        mx[sel] = half.max[idx].max(axis=1)
    return AxisStats(n.astype(np.int64), s1, s2, mn, mx)


def _fill_single_ones(score: npt.NDArray[np.int8]) -> npt.NDArray[np.int8]:
    """A score of 1 between two scores > 1 becomes 2 (GGIR)."""
    out = score.copy()
    if score.shape[0] >= 3:
        mid = (score[1:-1] == 1) & (score[:-2] > 1) & (score[2:] > 1)
        out[1:-1][mid] = 2
    return out


def nonwear_blocks(
    half_block: AxisStats,
    first_block_us: int,
    *,
    rule: str = "ggir2023",
    sample_rate_hz: float,
    sd_max_g: float = 0.013,
    range_max_g: float = 0.05,
    wear_threshold: int = 2,
    min_window_s: float = BLOCK_S,
    block_s: float = BLOCK_S,
) -> NonwearResult:
    """Non-wear per 15-min block from per-half-block statistics (GGIR 2023 or 2013 rule).

    For each 60-min window and axis ``k``: still when ``sd_k < sd_max_g`` and
    ``max_k - min_k < range_max_g``; a block's score is the number of still axes (see the module
    docstring for which windows decide a block under each rule); non-wear when
    ``score >= wear_threshold``.

    Parameters
    ----------
    half_block : AxisStats
        Statistics of ``2 * nb`` consecutive half-blocks (7.5 min) from ``first_block_us``
        (:func:`block_grid`), with min / max; for the 2023 rule those of the ~5 Hz subsample.
        Calibrated units (g): apply the calibration with :meth:`AxisStats.affine` first, as
        GGIR detects non-wear on calibrated data.
    first_block_us : int
        UTC start of the first block, microseconds.
    rule : {"ggir2023", "ggir2013"}, default "ggir2023"
        Which windows decide a block.
    sample_rate_hz : float
        Rate of the samples counted in ``half_block`` (after subsampling), Hz; sets the least
        count of an evaluated window, ``min_window_s * sample_rate_hz``.
    sd_max_g : float, default 0.013
        SD criterion, g (GGIR ``sdcriter``).
    range_max_g : float, default 0.05
        Range criterion, g (GGIR ``racriter = nonwear_range_threshold / 1000``; GGIR's default
        is 0.15, see the module docstring).
    wear_threshold : int, default 2
        Score at which a block is non-wear (GGIR ``wearthreshold``: 2 of 3 axes).
    min_window_s : float, default 900.0
        Windows with fewer samples than this many seconds' worth are not evaluated.
    block_s : float, default 900.0
        Block length, s.

    Returns
    -------
    NonwearResult

    References
    ----------
    van Hees VT et al. 2013, PLoS One 8:e61691; GGIR ``R/detect_nonwear_clipping.R``.
    """
    if rule not in NONWEAR_RULES:
        raise ValueError(f"rule must be one of {NONWEAR_RULES}, got {rule!r}")
    if not half_block.has_minmax and len(half_block):
        raise ValueError("half_block statistics need min and max (range criterion)")
    n_half = len(half_block)
    if n_half % 2:
        raise ValueError("half_block must hold a whole number of blocks (even length)")
    nb = n_half // 2
    block_us = round(block_s * 1e6)
    starts_us = first_block_us + np.arange(nb, dtype=np.int64) * block_us
    info: dict[str, object] = {
        "nonwear_rule": rule,
        "nonwear_sd_max_g": sd_max_g,
        "nonwear_range_max_g": range_max_g,
        "nonwear_wear_threshold": wear_threshold,
        "nonwear_block_s": block_s,
        "nonwear_window_s": WINDOW_BLOCKS * block_s,
        "nonwear_min_window_s": min_window_s,
    }
    if nb == 0:
        z = np.zeros(0, bool)
        info.update(nonwear_blocks=0, nonwear_n_blocks=0)
        return NonwearResult(starts_us, z, np.zeros(0, np.int8), np.zeros((0, 3), bool), info)

    b = np.arange(nb, dtype=np.intp)
    if rule == "ggir2023":
        lo = 2 * b
        hi = np.minimum(2 * (b + WINDOW_BLOCKS), n_half)
    else:  # ggir2013: centred window; fixed windows at the edges (GGIR's order of checks)
        lo = 2 * b - 3
        hi = 2 * b + 5
        start = b <= 2
        end = (~start) & (b >= nb - 4)
        lo = np.where(start, 0, np.where(end, 2 * (nb - 3), lo))
        hi = np.where(start, 2 * WINDOW_BLOCKS, np.where(end, n_half, hi))
        lo = np.clip(lo, 0, n_half)
        hi = np.clip(hi, 0, n_half)
    win = _window_stats(half_block, lo, hi)
    min_n = max(2.0, min_window_s * sample_rate_hz)
    with np.errstate(invalid="ignore"):
        still = (
            (win.sd < sd_max_g)
            & (win.range < range_max_g)
            & (win.n[:, None] >= min_n)
        )  # fmt: skip
    if rule == "ggir2023":
        # A still window flags its four blocks: block b is still if any window starting at
        # b-3 .. b is.
        cs = np.zeros((nb + 1, 3), np.int64)
        np.cumsum(still, axis=0, out=cs[1:])
        lo_w = np.maximum(b - (WINDOW_BLOCKS - 1), 0)
        axis_still = (cs[b + 1] - cs[lo_w]) > 0
    else:
        axis_still = still
    score = _fill_single_ones(axis_still.sum(axis=1).astype(np.int8))
    nonwear = score >= wear_threshold
    info.update(nonwear_blocks=int(nonwear.sum()), nonwear_n_blocks=int(nb))
    return NonwearResult(starts_us, nonwear, score, axis_still, info)
