"""Symptom rating instruments: what a rating's items mean and how they make a score.

An :class:`Instrument` says how many items a questionnaire has (numbered from 1), the range of
an item's value, the recall window its instructions ask about (used as the exposure window
before each rating), and how answered items become one score. Scoring is vectorized over every
item value of many ratings at once (:func:`score`), so a participant's whole history of daily
ratings is scored with a handful of ``np.bincount`` calls.

Built-in instruments
--------------------
``phq9``
    Patient Health Questionnaire-9 (Kroenke, Spitzer & Williams 2001, J Gen Intern Med
    16:606-613): 9 items coded 0 ("not at all") .. 3 ("nearly every day") about the last
    2 weeks (recall 14 days). Total 0-27 with the severity bands of Kroenke 2001: 0 minimal,
    5 mild, 10 moderate, 15 moderately severe, 20 severe. Missing items: with one or two
    items unanswered the missing items take the mean of the answered ones (the PHQ scoring
    instructions; NHS Data Dictionary, "Patient Health Questionnaire-9"), i.e. the total is
    the mean of the answered items x 9, rounded to the nearest integer (halves up); with
    three or more missing there is no score.
``shaps``
    Snaith-Hamilton Pleasure Scale (Snaith et al. 1995, Br J Psychiatry 167:99-103): 14 items
    coded 1 = strongly agree, 2 = agree, 3 = disagree, 4 = strongly disagree. Snaith's score
    counts the items answered "disagree" or "strongly disagree" (one point each), 0-14;
    every item must be answered. A score of 3 or more is the published "abnormal" (anhedonic)
    range, 2 or less "normal" (Snaith 1995), given as the bands ``normal`` / ``abnormal``.
    Recall 3 days: the instructions ask about "the last few days".

Any other instrument without a definition (:meth:`Instrument.default`) is a plain sum of its
items with no range check and a recall window of 1 day (a daily rating is about the day
before it). A study defines its own instruments in TOML (:func:`parse_definitions`).

Scoring rules (``Instrument.scoring``)
--------------------------------------
``sum``             sum of the answered items
``prorated_sum``    mean of the answered items x ``n_items`` (rounded to the nearest integer,
                    halves up, unless ``round_score`` is false)
``mean``            mean of the answered items
``count_at_least``  number of answered items whose value is >= ``threshold``

Before scoring, items listed in ``reverse_items`` are reversed (``value_min + value_max -
value``). A rating with fewer than ``min_items`` answered items has no score (NaN here, NULL
in SQL); it is ``complete`` when every item 1..``n_items`` was answered. Item values that are
NaN, outside ``value_min``..``value_max``, or belong to items outside 1..``n_items`` do not
count as answered (the importer rejects them; they can only appear here when a definition
changed after the values were stored).
"""

from __future__ import annotations

import itertools
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt

from ..errors import UsageError

__all__ = [
    "BUILTINS",
    "SCORINGS",
    "Instrument",
    "Scores",
    "band",
    "canonical_name",
    "parse_definitions",
    "score",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

SCORINGS: Final = ("sum", "prorated_sum", "mean", "count_at_least")
DEFAULT_RECALL_DAYS: Final = 1.0

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_NAME_DROP = re.compile(r"[\s\-.]+")


def canonical_name(text: str) -> str:
    """The stored form of an instrument name: lower case, without spaces, hyphens and dots
    (``"PHQ-9"`` -> ``"phq9"``, ``"GAD 7"`` -> ``"gad7"``); underscores are kept.

    Raises
    ------
    UsageError
        When the result is not a letter followed by letters, digits or underscores.
    """
    name = _NAME_DROP.sub("", text.strip().lower())
    if not _NAME.match(name):
        raise UsageError(
            f"instrument name {text!r} is not usable",
            fix="a letter followed by letters, digits or underscores, e.g. phq9 or fatigue_vas",
        )
    return name


@dataclass(frozen=True)
class Instrument:
    """A rating instrument: items, value range, recall window and scoring.

    ``n_items`` is ``None`` only for instruments without a definition (any item number from 1
    is accepted). ``value_min``/``value_max`` of ``None`` leave that side unchecked.
    ``bands`` are ``(lower_inclusive, label)`` pairs in ascending order.
    """

    name: str
    n_items: int | None
    value_min: float | None = None
    value_max: float | None = None
    recall_days: float = DEFAULT_RECALL_DAYS
    scoring: str = "sum"
    threshold: float | None = None
    min_items: int = 1
    reverse_items: tuple[int, ...] = ()
    bands: tuple[tuple[float, str], ...] = ()
    description: str = ""
    round_score: bool = True

    @classmethod
    def default(cls, name: str) -> Instrument:
        """The instrument assumed for ``name`` when nothing defines it: a plain sum of any
        items, no range check, recall 1 day, a score from one answered item on."""
        return cls(
            name=name,
            n_items=None,
            recall_days=DEFAULT_RECALL_DAYS,
            scoring="sum",
            min_items=1,
            description="no definition: plain sum of the items",
        )

    def validate(self) -> None:
        """Check the definition is coherent.

        Raises
        ------
        UsageError
            Naming the offending field.
        """
        _check(self)

    def to_dict(self) -> dict[str, Any]:
        """Everything the definition says, JSON-ready (the ``instruments.definition``
        column); :meth:`from_dict` reads it back."""
        return {
            "items": self.n_items,
            "min": self.value_min,
            "max": self.value_max,
            "recall_days": self.recall_days,
            "scoring": self.scoring,
            "threshold": self.threshold,
            "min_items": self.min_items,
            "reverse": list(self.reverse_items),
            "bands": [[lo, label] for lo, label in self.bands],
            "description": self.description,
            "round": self.round_score,
        }

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> Instrument:
        """An instrument from :meth:`to_dict` output (unknown keys are ignored, so a newer
        database still reads)."""
        n_items = data.get("items")
        return cls(
            name=name,
            n_items=None if n_items is None else int(n_items),
            value_min=_opt_float(data.get("min")),
            value_max=_opt_float(data.get("max")),
            recall_days=float(data.get("recall_days", DEFAULT_RECALL_DAYS)),
            scoring=str(data.get("scoring", "sum")),
            threshold=_opt_float(data.get("threshold")),
            min_items=int(data.get("min_items", 1)),
            reverse_items=tuple(int(v) for v in data.get("reverse") or ()),
            bands=tuple((float(lo), str(label)) for lo, label in data.get("bands") or ()),
            description=str(data.get("description") or ""),
            round_score=bool(data.get("round", True)),
        )

    def item_ok(self, item: I64) -> npt.NDArray[np.bool_]:
        """Whether each item number is one of this instrument's (1..n_items)."""
        item = np.asarray(item, np.int64)
        ok = item >= 1
        if self.n_items is not None:
            ok &= item <= self.n_items
        return ok

    def value_ok(self, value: F64) -> npt.NDArray[np.bool_]:
        """Whether each value is finite and inside value_min..value_max."""
        value = np.asarray(value, np.float64)
        ok = np.isfinite(value)
        if self.value_min is not None:
            ok &= value >= self.value_min
        if self.value_max is not None:
            ok &= value <= self.value_max
        return ok

    def range_text(self) -> str:
        """``"0..3"``, ``">= 0"``, ``"<= 10"`` or ``"any"``."""
        lo, hi = self.value_min, self.value_max
        if lo is not None and hi is not None:
            return f"{_num(lo)}..{_num(hi)}"
        if lo is not None:
            return f">= {_num(lo)}"
        if hi is not None:
            return f"<= {_num(hi)}"
        return "any"


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


PHQ9: Final = Instrument(
    name="phq9",
    n_items=9,
    value_min=0.0,
    value_max=3.0,
    recall_days=14.0,
    scoring="prorated_sum",
    min_items=7,
    bands=(
        (0.0, "minimal"),
        (5.0, "mild"),
        (10.0, "moderate"),
        (15.0, "moderately severe"),
        (20.0, "severe"),
    ),
    description="PHQ-9 (Kroenke 2001): 0-27; 1-2 missing items prorated",
)

SHAPS: Final = Instrument(
    name="shaps",
    n_items=14,
    value_min=1.0,
    value_max=4.0,
    recall_days=3.0,
    scoring="count_at_least",
    threshold=3.0,
    min_items=14,
    bands=((0.0, "normal"), (3.0, "abnormal")),
    description="SHAPS (Snaith 1995): items coded 1 strongly agree .. 4 strongly disagree; "
    "score = items answered 3 or 4, 0-14; >= 3 abnormal",
)

#: The instruments every database knows (written to ``instruments`` on first use).
BUILTINS: Final[dict[str, Instrument]] = {PHQ9.name: PHQ9, SHAPS.name: SHAPS}


# ------------------------------------------------------------------------------ scoring
class Scores(NamedTuple):
    """Per rating: the score (NaN: none), items answered, and whether all were."""

    score: F64
    n_items: I64
    complete: npt.NDArray[np.bool_]


def score(
    instr: Instrument,
    item: npt.ArrayLike,
    value: npt.ArrayLike,
    rating: npt.ArrayLike,
    n_ratings: int,
) -> Scores:
    """Score many ratings of one instrument at once.

    Parameters
    ----------
    instr
        The instrument.
    item, value, rating
        One entry per item value: item number (from 1), value as entered, and the index
        (0..n_ratings-1) of the rating it belongs to. A repeated (rating, item) pair counts
        once (its first value).
    n_ratings
        Number of ratings.

    Returns
    -------
    Scores
        ``score`` (float64, NaN where fewer than ``min_items`` items were answered),
        ``n_items`` (int64, items answered) and ``complete`` (every item answered; always
        true for an instrument without ``n_items``), each of length ``n_ratings``.
    """
    item_a = np.asarray(item, np.int64).ravel()
    value_a = np.asarray(value, np.float64).ravel()
    rating_a = np.asarray(rating, np.int64).ravel()
    if not item_a.size == value_a.size == rating_a.size:
        raise ValueError("item, value and rating must have the same length")
    if rating_a.size and (rating_a.min() < 0 or rating_a.max() >= n_ratings):
        raise ValueError("rating indices must lie in 0..n_ratings-1")
    keep = instr.item_ok(item_a) & instr.value_ok(value_a)
    item_a, value_a, rating_a = item_a[keep], value_a[keep], rating_a[keep]
    if item_a.size:
        key = rating_a * (int(item_a.max()) + 1) + item_a
        _, first = np.unique(key, return_index=True)
        first.sort()
        item_a, value_a, rating_a = item_a[first], value_a[first], rating_a[first]
    if instr.reverse_items and instr.value_min is not None and instr.value_max is not None:
        rev = np.isin(item_a, np.asarray(instr.reverse_items, np.int64))
        value_a = np.where(rev, instr.value_min + instr.value_max - value_a, value_a)

    answered = np.bincount(rating_a, minlength=n_ratings).astype(np.int64)
    total = np.bincount(rating_a, weights=value_a, minlength=n_ratings).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / answered
    if instr.scoring == "sum":
        out = total
    elif instr.scoring == "mean":
        out = mean
    elif instr.scoring == "prorated_sum":
        if instr.n_items is None:
            raise ValueError("prorated_sum needs n_items")
        with np.errstate(invalid="ignore", divide="ignore"):
            out = total * instr.n_items / answered
        if instr.round_score:
            # Halves up, not to even: a prorated PHQ-9 of 12.5 is 13. The small tolerance keeps
            # a mean like 11/7*9 = 14.142857... from landing a hair below a true .5.
            out = np.floor(out + 0.5 + 1e-9)
    elif instr.scoring == "count_at_least":
        if instr.threshold is None:
            raise ValueError("count_at_least needs a threshold")
        hits = (value_a >= instr.threshold).astype(np.float64)
        out = np.bincount(rating_a, weights=hits, minlength=n_ratings).astype(np.float64)
    else:
        raise ValueError(f"unknown scoring {instr.scoring!r}")
    out = np.where(answered >= max(instr.min_items, 1), out, np.nan)
    complete = np.ones(n_ratings, bool) if instr.n_items is None else answered == instr.n_items
    return Scores(out.astype(np.float64), answered, complete)


def band(instr: Instrument, scores: npt.ArrayLike) -> list[str | None]:
    """The severity band of each score: the label of the last band whose lower bound is <= the
    score; ``None`` for a missing score, a score below the first bound, or no bands."""
    s = np.asarray(scores, np.float64).ravel()
    if not instr.bands:
        return [None] * s.size
    lows = np.array([lo for lo, _ in instr.bands], np.float64)
    labels = [label for _, label in instr.bands]
    idx = np.searchsorted(lows, s, side="right") - 1
    ok = np.isfinite(s) & (idx >= 0)
    return [labels[i] if good else None for i, good in zip(idx.tolist(), ok.tolist(), strict=True)]


# ------------------------------------------------------------------------------ definitions
_KEYS: Final = (
    "items",
    "min",
    "max",
    "recall_days",
    "scoring",
    "threshold",
    "min_items",
    "reverse",
    "bands",
    "description",
    "round",
)
_EXAMPLE: Final = (
    '[instruments.fatigue]\nitems = 1\nmin = 0\nmax = 10\nrecall_days = 1\nscoring = "sum"'
)


class _Where:
    """Error messages that name the definitions file, the line and the key."""

    def __init__(self, text: str, origin: str) -> None:
        self.lines = text.splitlines()
        self.origin = origin

    def line_of(self, name: str, key: str | None) -> int | None:
        """Best-effort line of ``[instruments.name]`` (or of ``key = `` inside it)."""
        head = re.compile(
            r"^\s*\[\s*instruments\s*\.\s*(?:\""
            + re.escape(name)
            + r"\"|'"
            + re.escape(name)
            + r"'|"
            + re.escape(name)
            + r")\s*\]"
        )
        start = next((i for i, t in enumerate(self.lines) if head.match(t)), None)
        if start is None:
            return None
        if key is None:
            return start + 1
        assign = re.compile(r"^\s*(?:\"" + re.escape(key) + r"\"|" + re.escape(key) + r")\s*=")
        for i in range(start + 1, len(self.lines)):
            if self.lines[i].lstrip().startswith("["):
                break
            if assign.match(self.lines[i]):
                return i + 1
        return start + 1

    def error(self, name: str, key: str | None, msg: str, fix: str | None = None) -> UsageError:
        line = self.line_of(name, key)
        where = f"{self.origin} line {line}" if line else self.origin
        path = f"instruments.{name}" + (f".{key}" if key else "")
        return UsageError(f"{where}: {path}: {msg}", fix=fix)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return (isinstance(v, int | float) and not isinstance(v, bool)) and math.isfinite(v)


def parse_definitions(text: str, origin: str) -> list[Instrument]:
    """Instrument definitions from TOML text.

    Parameters
    ----------
    text
        TOML with one table per instrument under ``[instruments.NAME]``. Keys: ``items``
        (required, >= 1), ``min``, ``max`` (value range; either may be left out),
        ``recall_days`` (> 0, default 1), ``scoring`` (``sum`` default, ``prorated_sum``,
        ``mean``, ``count_at_least``), ``threshold`` (``count_at_least`` only, required
        there), ``min_items`` (answered items needed for a score; default: all items),
        ``reverse`` (item numbers scored ``min + max - value``; needs ``min`` and ``max``),
        ``bands`` (``[[lower, "label"], ...]``, ascending), ``description``, ``round``
        (``prorated_sum`` only: round to the nearest integer, default true).
    origin
        Where the text came from (a path), named in every error.

    Returns
    -------
    list of Instrument
        In file order; names in their canonical form (:func:`canonical_name`).

    Raises
    ------
    UsageError
        For TOML syntax errors (with their line) and for any unknown key, wrong type or
        incoherent value, naming the file, line and ``instruments.NAME.key``.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(
            f"{origin}: not valid TOML: {exc}", fix="see the example:\n" + _EXAMPLE
        ) from None
    where = _Where(text, origin)
    extra = sorted(set(data) - {"instruments"})
    if extra:
        raise UsageError(
            f"{origin}: unknown top-level key(s) {', '.join(extra)}",
            fix="define each instrument in a table [instruments.NAME]",
        )
    table = data.get("instruments")
    if not isinstance(table, dict) or not table:
        raise UsageError(f"{origin}: no [instruments.NAME] tables", fix="e.g.\n" + _EXAMPLE)
    out: list[Instrument] = []
    seen: dict[str, str] = {}
    for raw_name, spec in table.items():
        if not isinstance(spec, dict):
            raise where.error(raw_name, None, "must be a table [instruments.NAME]")
        try:
            name = canonical_name(raw_name)
        except UsageError as exc:
            raise where.error(raw_name, None, str(exc), exc.fix) from None
        if name in seen:
            raise where.error(
                raw_name, None, f"names the same instrument as {seen[name]!r} ({name})"
            )
        seen[name] = raw_name
        out.append(_parse_one(raw_name, name, spec, where))
    return out


def _parse_one(raw: str, name: str, spec: dict[str, Any], where: _Where) -> Instrument:
    unknown = [k for k in spec if k not in _KEYS]
    if unknown:
        raise where.error(raw, unknown[0], "unknown key", fix="known keys: " + ", ".join(_KEYS))

    def err(key: str, msg: str, fix: str | None = None) -> UsageError:
        return where.error(raw, key, msg, fix)

    if "items" not in spec:
        raise err("items", "missing (the number of items)", fix="e.g. items = 9")
    n_items = spec["items"]
    if not _is_int(n_items) or not 1 <= n_items <= 1000:
        raise err("items", f"must be a whole number 1..1000, not {n_items!r}")
    bounds: dict[str, float | None] = {}
    for key in ("min", "max"):
        v = spec.get(key)
        if v is not None and not _is_num(v):
            raise err(key, f"must be a number, not {v!r}")
        bounds[key] = None if v is None else float(v)
    lo, hi = bounds["min"], bounds["max"]
    if lo is not None and hi is not None and not lo < hi:
        raise err("max", f"must be above min ({_num(lo)}), not {_num(hi)}")
    recall = spec.get("recall_days", DEFAULT_RECALL_DAYS)
    if not _is_num(recall) or not recall > 0:
        raise err("recall_days", f"must be a positive number of days, not {recall!r}")
    scoring = spec.get("scoring", "sum")
    if scoring not in SCORINGS:
        raise err("scoring", f"must be one of {', '.join(SCORINGS)}, not {scoring!r}")
    threshold = spec.get("threshold")
    if scoring == "count_at_least":
        if threshold is None:
            raise err("threshold", "count_at_least needs a threshold", fix="e.g. threshold = 3")
        if not _is_num(threshold):
            raise err("threshold", f"must be a number, not {threshold!r}")
    elif threshold is not None:
        raise err("threshold", f'only applies to scoring = "count_at_least", not {scoring!r}')
    min_items = spec.get("min_items", n_items)
    if not _is_int(min_items) or not 1 <= min_items <= n_items:
        raise err("min_items", f"must be a whole number 1..{n_items}, not {min_items!r}")
    reverse = spec.get("reverse", [])
    if not isinstance(reverse, list) or not all(_is_int(v) for v in reverse):
        raise err("reverse", f"must be a list of item numbers, not {reverse!r}")
    bad = [v for v in reverse if not 1 <= v <= n_items]
    if bad:
        raise err("reverse", f"item {bad[0]} is outside 1..{n_items}")
    if len(set(reverse)) != len(reverse):
        raise err("reverse", "lists an item twice")
    if reverse and (lo is None or hi is None):
        raise err("reverse", "reversing items needs both min and max")
    bands_raw = spec.get("bands", [])
    bands: list[tuple[float, str]] = []
    if not isinstance(bands_raw, list):
        raise err("bands", 'must be a list of [lower, "label"] pairs')
    for b in bands_raw:
        if not (isinstance(b, list) and len(b) == 2 and _is_num(b[0]) and isinstance(b[1], str)):
            raise err("bands", f'{b!r} is not a [lower, "label"] pair', fix='e.g. [10, "high"]')
        bands.append((float(b[0]), b[1]))
    lows = [b[0] for b in bands]
    if any(b <= a for a, b in itertools.pairwise(lows)):
        raise err("bands", "lower bounds must be in ascending order, each once")
    description = spec.get("description", "")
    if not isinstance(description, str):
        raise err("description", "must be a string")
    rounding = spec.get("round", True)
    if not isinstance(rounding, bool):
        raise err("round", f"must be true or false, not {rounding!r}")
    if "round" in spec and scoring != "prorated_sum":
        raise err("round", 'only applies to scoring = "prorated_sum"')
    instr = Instrument(
        name=name,
        n_items=n_items,
        value_min=lo,
        value_max=hi,
        recall_days=float(recall),
        scoring=scoring,
        threshold=None if threshold is None else float(threshold),
        min_items=min_items,
        reverse_items=tuple(reverse),
        bands=tuple(bands),
        description=description,
        round_score=rounding,
    )
    return instr


def _check(instr: Instrument) -> None:
    def fail(msg: str) -> UsageError:
        return UsageError(f"instrument {instr.name!r}: {msg}")

    canonical_name(instr.name)
    if instr.scoring not in SCORINGS:
        raise fail(f"scoring must be one of {', '.join(SCORINGS)}")
    if instr.n_items is not None and instr.n_items < 1:
        raise fail("n_items must be at least 1")
    if instr.n_items is None and instr.scoring == "prorated_sum":
        raise fail("prorated_sum needs n_items")
    if not instr.recall_days > 0:
        raise fail("recall_days must be positive")
    if instr.scoring == "count_at_least" and instr.threshold is None:
        raise fail("count_at_least needs a threshold")
    if (
        instr.value_min is not None
        and instr.value_max is not None
        and not instr.value_min < instr.value_max
    ):
        raise fail("value_max must be above value_min")
    top = instr.n_items if instr.n_items is not None else math.inf
    if not 1 <= instr.min_items <= top:
        raise fail("min_items must lie in 1..n_items")
    if any(not 1 <= i <= top for i in instr.reverse_items):
        raise fail("reverse_items must lie in 1..n_items")
    if instr.reverse_items and (instr.value_min is None or instr.value_max is None):
        raise fail("reverse_items need value_min and value_max")
    lows: Sequence[float] = [lo for lo, _ in instr.bands]
    if any(b <= a for a, b in itertools.pairwise(lows)):
        raise fail("bands must ascend")
