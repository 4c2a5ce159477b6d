"""Instruments: PHQ-9 and SHAPS scoring worked by hand, proration, reverse items, bands,
incomplete ratings, and TOML definitions with their errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actidose.dose.instruments import (
    BUILTINS,
    Instrument,
    band,
    canonical_name,
    parse_definitions,
    score,
)
from actidose.errors import UsageError

PHQ9 = BUILTINS["phq9"]
SHAPS = BUILTINS["shaps"]


def one(instr: Instrument, values: list[float | None]) -> tuple[float, int, bool]:
    """Score one rating given as item values 1..n (None = unanswered)."""
    items = [i + 1 for i, v in enumerate(values) if v is not None]
    vals = [v for v in values if v is not None]
    res = score(instr, items, vals, [0] * len(items), 1)
    return float(res.score[0]), int(res.n_items[0]), bool(res.complete[0])


# ---------------------------------------------------------------------------------- PHQ-9
def test_phq9_complete_total_and_band() -> None:
    s, n, complete = one(PHQ9, [1, 2, 3, 0, 1, 2, 3, 0, 1])
    assert (s, n, complete) == (13.0, 9, True)
    assert band(PHQ9, [s]) == ["moderate"]


def test_phq9_one_missing_item_is_prorated_and_rounded_half_up() -> None:
    # 8 answered, sum 12: 12 / 8 * 9 = 13.5 -> 14 (halves up, not to even)
    s, n, complete = one(PHQ9, [1, 2, 3, 0, 1, 2, 3, None, 0])
    assert (s, n, complete) == (14.0, 8, False)
    # 8 answered, sum 4: 4.5 -> 5, which moves the band from minimal to mild
    s, _, _ = one(PHQ9, [1, 1, 1, 1, 0, 0, 0, 0, None])
    assert s == 5.0
    assert band(PHQ9, [s]) == ["mild"]


def test_phq9_two_missing_prorated() -> None:
    # 7 answered, sum 10: 10 / 7 * 9 = 12.857 -> 13
    s, n, complete = one(PHQ9, [None, 2, 2, 2, 1, 1, 1, 1, None])
    assert (s, n, complete) == (13.0, 7, False)


def test_phq9_three_missing_has_no_score() -> None:
    s, n, complete = one(PHQ9, [None, None, None, 3, 3, 3, 3, 3, 3])
    assert math.isnan(s)
    assert (n, complete) == (6, False)
    assert band(PHQ9, [s]) == [None]


def test_phq9_bands_at_every_boundary() -> None:
    scores = [0, 4, 5, 9, 10, 14, 15, 19, 20, 27]
    assert band(PHQ9, scores) == [
        "minimal",
        "minimal",
        "mild",
        "mild",
        "moderate",
        "moderate",
        "moderately severe",
        "moderately severe",
        "severe",
        "severe",
    ]


def test_phq9_definition() -> None:
    assert PHQ9.n_items == 9 and (PHQ9.value_min, PHQ9.value_max) == (0, 3)
    assert PHQ9.recall_days == 14
    assert PHQ9.scoring == "prorated_sum" and PHQ9.min_items == 7


# ---------------------------------------------------------------------------------- SHAPS
def test_shaps_counts_disagree_answers() -> None:
    # 1 strongly agree, 2 agree, 3 disagree, 4 strongly disagree: a point for each 3 or 4
    values: list[float | None] = [4, 3, 1, 1, 2, 2, 1, 1, 1, 1, 1, 1, 1, 3]
    s, n, complete = one(SHAPS, values)
    assert (s, n, complete) == (3.0, 14, True)
    assert band(SHAPS, [s]) == ["abnormal"]
    s2, _, _ = one(SHAPS, [3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2])
    assert s2 == 2.0
    assert band(SHAPS, [s2]) == ["normal"]


def test_shaps_needs_every_item() -> None:
    values: list[float | None] = [4] * 13 + [None]
    s, n, complete = one(SHAPS, values)
    assert math.isnan(s) and n == 13 and not complete


def test_shaps_extremes() -> None:
    assert one(SHAPS, [1] * 14)[0] == 0.0
    assert one(SHAPS, [4] * 14)[0] == 14.0
    assert SHAPS.recall_days == 3


# ---------------------------------------------------------------------------------- others
MFI_TOML = """
[instruments.fatigue]
items = 1
min = 0
max = 10
recall_days = 1
scoring = "sum"

[instruments.mfi]
items = 20
min = 1
max = 5
recall_days = 7
reverse = [2, 5, 9]
bands = [[0, "low"], [60, "high"]]
"""


def test_reverse_items_are_scored_min_plus_max_minus_value() -> None:
    fatigue, mfi = parse_definitions(MFI_TOML, "defs.toml")
    values: list[float | None] = [1.0] * 20
    values[1] = 1.0  # item 2 reversed: 1 + 5 - 1 = 5
    values[4] = 2.0  # item 5 reversed: 4
    values[8] = 5.0  # item 9 reversed: 1
    # 17 items of 1 + 5 + 4 + 1 = 27
    s, n, complete = one(mfi, values)
    assert (s, n, complete) == (27.0, 20, True)
    assert band(mfi, [27, 59.5, 60, 100]) == ["low", "low", "high", "high"]
    assert one(fatigue, [7.5]) == (7.5, 1, True)


def test_default_instrument_is_a_plain_sum_of_any_items() -> None:
    d = Instrument.default("mood")
    assert d.n_items is None and d.recall_days == 1 and d.scoring == "sum"
    res = score(d, [1, 2, 40], [5.0, -2.0, 100.0], [0, 0, 0], 1)
    assert res.score.tolist() == [103.0]
    assert res.n_items.tolist() == [3] and res.complete.tolist() == [True]
    assert band(d, res.score) == [None]


def test_many_ratings_at_once_in_any_order() -> None:
    # rating 0: complete PHQ-9 (13); rating 1: nothing; rating 2: one item missing (14)
    r0 = [1, 2, 3, 0, 1, 2, 3, 0, 1]
    r2 = [1, 2, 3, 0, 1, 2, 3, None, 0]
    items, vals, rating = [], [], []
    for r, values in ((0, r0), (2, r2)):
        for i, v in enumerate(values):
            if v is not None:
                items.append(i + 1)
                vals.append(float(v))
                rating.append(r)
    perm = np.random.default_rng(1).permutation(len(items))
    res = score(PHQ9, np.array(items)[perm], np.array(vals)[perm], np.array(rating)[perm], 3)
    assert res.score[0] == 13 and math.isnan(res.score[1]) and res.score[2] == 14
    assert res.n_items.tolist() == [9, 0, 8]
    assert res.complete.tolist() == [True, False, False]


def test_repeated_item_counts_once_and_out_of_range_values_do_not_count() -> None:
    res = score(PHQ9, [1, 1, 2, 3], [3.0, 3.0, 7.0, np.nan], [0, 0, 0, 0], 1)
    assert res.n_items.tolist() == [1]  # item 2 = 7 is outside 0..3, item 3 is NaN


def test_mean_scoring_and_min_items() -> None:
    (vas,) = parse_definitions(
        "[instruments.vas]\nitems = 3\nmin = 0\nmax = 100\nscoring = 'mean'\nmin_items = 2\n",
        "v.toml",
    )
    assert one(vas, [10, None, 40]) == (25.0, 2, False)
    assert math.isnan(one(vas, [10, None, None])[0])


def test_score_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="same length"):
        score(PHQ9, [1, 2], [1.0], [0, 0], 1)
    with pytest.raises(ValueError, match=r"0\.\.n_ratings-1"):
        score(PHQ9, [1], [1.0], [1], 1)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=9, max_size=9),
        min_size=1,
        max_size=12,
    )
)
def test_phq9_matches_a_written_out_rule(ratings: list[list[int | None]]) -> None:
    items, vals, rating = [], [], []
    for r, values in enumerate(ratings):
        for i, v in enumerate(values):
            if v is not None:
                items.append(i + 1)
                vals.append(float(v))
                rating.append(r)
    res = score(PHQ9, items, vals, rating, len(ratings))
    for r, values in enumerate(ratings):
        answered = [v for v in values if v is not None]
        if len(answered) < 7:
            assert math.isnan(res.score[r])
        else:
            want = math.floor(sum(answered) * 9 / len(answered) + 0.5)
            assert res.score[r] == want
            assert 0 <= res.score[r] <= 27
            if len(answered) == 9:
                assert res.score[r] == sum(answered)
        assert res.n_items[r] == len(answered)
        assert bool(res.complete[r]) == (len(answered) == 9)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=14, max_size=14))
def test_shaps_score_is_the_count_of_3_and_4(values: list[int]) -> None:
    s = one(SHAPS, [float(v) for v in values])[0]
    assert s == sum(v >= 3 for v in values)


# ---------------------------------------------------------------------------------- TOML
def test_parse_definitions_example() -> None:
    fatigue, mfi = parse_definitions(MFI_TOML, "defs.toml")
    assert fatigue == Instrument("fatigue", 1, 0.0, 10.0, 1.0, "sum", None, 1, (), (), "", True)
    assert mfi.n_items == 20 and mfi.recall_days == 7 and mfi.reverse_items == (2, 5, 9)
    assert mfi.bands == ((0.0, "low"), (60.0, "high"))
    assert mfi.min_items == 20  # default: every item


def test_definition_round_trips_through_its_dict() -> None:
    for instr in (*BUILTINS.values(), *parse_definitions(MFI_TOML, "d.toml")):
        assert Instrument.from_dict(instr.name, instr.to_dict()) == instr


def test_names_are_canonical() -> None:
    assert canonical_name(" PHQ-9 ") == "phq9"
    assert canonical_name("GAD 7") == "gad7"
    assert canonical_name("fatigue_vas") == "fatigue_vas"
    with pytest.raises(UsageError, match="not usable"):
        canonical_name("9phq")
    (d,) = parse_definitions('[instruments."Daily-Mood"]\nitems = 1\n', "d.toml")
    assert d.name == "dailymood"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("items = 3\nmni = 1\n", r"d\.toml line 4: instruments\.x\.mni: unknown key"),
        ("min = 1\n", r"instruments\.x\.items: missing"),
        ("items = 0\n", r"instruments\.x\.items: must be a whole number"),
        ("items = true\n", r"instruments\.x\.items: must be a whole number"),
        (
            "items = 3\nmin = 5\nmax = 1\n",
            r"d\.toml line 5: instruments\.x\.max: must be above min",
        ),
        ("items = 3\nmin = 'a'\n", r"instruments\.x\.min: must be a number"),
        ("items = 3\nrecall_days = 0\n", r"instruments\.x\.recall_days: must be a positive"),
        ("items = 3\nscoring = 'total'\n", r"instruments\.x\.scoring: must be one of"),
        ("items = 3\nscoring = 'count_at_least'\n", r"instruments\.x\.threshold: .*needs"),
        ("items = 3\nthreshold = 2\n", r"instruments\.x\.threshold: only applies"),
        ("items = 3\nmin_items = 4\n", r"instruments\.x\.min_items: must be a whole number 1..3"),
        ("items = 3\nmin = 0\nmax = 4\nreverse = [4]\n", r"reverse: item 4 is outside 1..3"),
        ("items = 3\nreverse = [1]\n", r"reverse: reversing items needs both min and max"),
        ("items = 3\nmin = 0\nmax = 4\nreverse = [1, 1]\n", r"reverse: lists an item twice"),
        ("items = 3\nbands = [[5, 'a'], [5, 'b']]\n", r"bands: lower bounds must be in ascending"),
        ("items = 3\nbands = [[5]]\n", r"bands: .* is not a \[lower"),
        ("items = 3\nround = false\n", r"round: only applies"),
    ],
)
def test_definition_errors_name_file_line_and_key(body: str, expected: str) -> None:
    text = "# study instruments\n[instruments.x]\n" + body
    with pytest.raises(UsageError, match=expected):
        parse_definitions(text, "d.toml")


def test_toml_syntax_error_names_the_file_and_line() -> None:
    with pytest.raises(UsageError, match=r"d\.toml: not valid TOML: .*line 2"):
        parse_definitions("[instruments.x]\nitems = = 3\n", "d.toml")


def test_top_level_errors() -> None:
    with pytest.raises(UsageError, match="unknown top-level key"):
        parse_definitions("[instrument.x]\nitems = 1\n", "d.toml")
    with pytest.raises(UsageError, match=r"no \[instruments.NAME\] tables"):
        parse_definitions("", "d.toml")
    with pytest.raises(UsageError, match="names the same instrument as 'PHQ-9'"):
        parse_definitions(
            '[instruments."PHQ-9"]\nitems = 9\n[instruments.phq9]\nitems = 9\n', "d.toml"
        )
    with pytest.raises(UsageError, match="must be a table"):
        parse_definitions("[instruments]\nx = 1\n", "d.toml")
