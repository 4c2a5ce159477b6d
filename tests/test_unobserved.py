"""Days without data in the load models: zero, carry-forward decay, or excluded."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actidose.dose.load import (
    acwr_ewma,
    acwr_rolling,
    foster_rolling,
    load_models,
    pmc,
)
from actidose.errors import UsageError

nan = math.nan
# Small windows so that every value can be worked out by hand:
# form='inverse' with tau_ctl=2, tau_atl=1 gives k = 1/2 and 1; EWMA spans 2 and 3 give
# lambda = 2/3 and 1/2; rolling windows 2 (acute) and 3 (chronic); Foster over 2 days.
SMALL = {
    "tau_ctl": 2.0,
    "tau_atl": 1.0,
    "form": "inverse",
    "acute_days": 2,
    "chronic_days": 3,
    "foster_window": 2,
}
LOAD = [10.0, nan, 20.0, 30.0]
UNOBS = [False, True, False, False]


def same(a: np.ndarray, b: list[float] | np.ndarray) -> bool:
    return bool(np.allclose(a, np.asarray(b, float), rtol=0, atol=1e-12, equal_nan=True))


def test_zero_treatment_by_hand() -> None:
    m = load_models(LOAD, UNOBS, treatment="zero", **SMALL)
    assert m.load.tolist() == [10.0, 0.0, 20.0, 30.0]
    assert same(m.ctl, [5, 2.5, 11.25, 20.625])
    assert same(m.atl, [10, 0, 20, 30])
    assert same(m.tsb, [0, -5, 2.5, -8.75])
    # EWMA: acute 10, 10/3, 40/3 + 10/9 = 130/9, 20 + 130/27; chronic 10, 5, 12.5, 21.25.
    acute = [10, 10 / 3, 130 / 9, 20 + 130 / 27]
    chronic = [10, 5, 12.5, 21.25]
    assert same(m.acwr_ewma, np.array(acute) / np.array(chronic))
    # Rolling, day 2: acute mean(0, 20) = 10, chronic mean(10, 0, 20) = 10 -> 1; uncoupled
    # chronic is day 0 alone (10) -> 1. Day 3: acute 25, chronic 50/3 -> 1.5; uncoupled 25/0.
    assert same(m.acwr_rolling, [nan, nan, 1.0, 1.5])
    assert same(m.acwr_uncoupled, [nan, nan, 1.0, nan])
    # Foster over 2 days, population SD: [10, 0] mean 5 SD 5 -> 1, strain 10; [0, 20] -> 1, 20;
    # [20, 30] mean 25 SD 5 -> 5, strain 250.
    assert same(m.monotony, [nan, 1, 1, 5])
    assert same(m.strain, [nan, 10, 20, 250])
    assert m.imputed.tolist() == UNOBS
    assert m.treatment == "zero"


def test_decay_treatment_by_hand() -> None:
    m = load_models(LOAD, UNOBS, treatment="decay", **SMALL)
    z = load_models(LOAD, UNOBS, treatment="zero", **SMALL)
    assert same(m.load, [10, nan, 20, 30])
    # The recurrences decay through the unobserved day exactly as with zero input ...
    for col in ("ctl", "atl", "tsb", "acwr_ewma"):
        assert same(getattr(m, col), getattr(z, col)), col
    # ... and are flagged.
    assert m.imputed.tolist() == UNOBS
    # Rolling ratios need a 3-day window without unobserved days: none here (day 3's window is
    # days 1..3). Foster's 2-day window: day 3 (days 2, 3) is clean.
    assert np.isnan(m.acwr_rolling).all() and np.isnan(m.acwr_uncoupled).all()
    assert same(m.monotony, [nan, nan, nan, 5])
    assert same(m.strain, [nan, nan, nan, 250])
    assert m.treatment == "decay"


def test_exclude_treatment_by_hand() -> None:
    m = load_models(LOAD, UNOBS, treatment="exclude", **SMALL)
    # The models see [10, 20, 30] on days 0, 2, 3.
    assert same(m.load, [10, nan, 20, 30])
    assert same(m.ctl, [5, nan, 12.5, 21.25])
    assert same(m.atl, [10, nan, 20, 30])
    assert same(m.tsb, [0, nan, -5, -7.5])  # day 2 follows day 0: ctl 5 - atl 10
    acute = [10, 50 / 3, 20 + 50 / 9]
    chronic = [10, 15, 22.5]
    assert same(
        m.acwr_ewma, [acute[0] / chronic[0], nan, acute[1] / chronic[1], acute[2] / chronic[2]]
    )
    # Rolling over 3 observed days ending day 3: acute mean(20, 30) = 25, chronic 20 -> 1.25;
    # uncoupled chronic = 10 -> 2.5.
    assert same(m.acwr_rolling, [nan, nan, nan, 1.25])
    assert same(m.acwr_uncoupled, [nan, nan, nan, 2.5])
    # Foster over 2 observed days: (10, 20) -> mean 15 SD 5 -> 3, strain 90; (20, 30) -> 5, 250.
    assert same(m.monotony, [nan, nan, 3, 5])
    assert same(m.strain, [nan, nan, 90, 250])
    assert m.imputed.tolist() == UNOBS
    assert m.treatment == "exclude"


@pytest.mark.parametrize("treatment", ["zero", "decay", "exclude"])
def test_unobserved_counts_under_every_treatment(treatment: str) -> None:
    u = [False, True, False, True, True, False, False, False]
    m = load_models(np.zeros(8), u, treatment=treatment, **SMALL)
    assert m.acute_unobserved_days.tolist() == [0, 1, 1, 1, 2, 1, 0, 0]
    assert m.chronic_unobserved_days.tolist() == [0, 1, 1, 2, 2, 2, 1, 0]
    assert m.acute_unobserved_days.dtype == np.int64


def test_load_on_unobserved_days_is_ignored() -> None:
    a = load_models([10.0, 99.0, 20.0], [False, True, False], treatment="zero")
    b = load_models([10.0, 0.0, 20.0], [False, True, False], treatment="zero")
    assert same(a.ctl, b.ctl) and a.load.tolist() == [10.0, 0.0, 20.0]


def test_bad_input() -> None:
    with pytest.raises(UsageError) as err:
        load_models([1.0], [False], treatment="impute")
    assert err.value.fix and "decay" in err.value.fix
    with pytest.raises(ValueError, match=r"load\[1\]"):
        load_models([1.0, nan], [False, False])
    with pytest.raises(ValueError, match="equal length"):
        load_models([1.0, 2.0], [False])
    with pytest.raises(ValueError, match="booleans"):
        load_models([1.0], [2])
    # 0/1 integers are taken as booleans.
    assert load_models([1.0, 2.0], [0, 1]).imputed.tolist() == [False, True]


@pytest.mark.parametrize("treatment", ["zero", "decay", "exclude"])
def test_empty_and_all_unobserved(treatment: str) -> None:
    assert load_models([], [], treatment=treatment).ctl.size == 0
    m = load_models([nan, nan], [True, True], treatment=treatment)
    assert m.imputed.all() and m.chronic_unobserved_days.tolist() == [1, 2]
    if treatment == "exclude":
        assert np.isnan(m.ctl).all()
    else:
        assert m.ctl.tolist() == [0.0, 0.0]


loads = st.lists(
    st.tuples(st.floats(0, 500, allow_nan=False), st.booleans()), min_size=0, max_size=70
)


@settings(max_examples=60, deadline=None)
@given(loads)
def test_zero_equals_the_published_functions(days: list[tuple[float, bool]]) -> None:
    x = np.array([d[0] for d in days])
    u = np.array([d[1] for d in days], dtype=bool)
    given_load = np.where(u, nan, x)
    m = load_models(given_load, u, treatment="zero")
    z = np.where(u, 0.0, x)
    p = pmc(z)
    assert np.array_equal(m.load, z)
    assert np.array_equal(m.ctl, p.ctl) and np.array_equal(m.atl, p.atl)
    assert np.array_equal(m.tsb, p.tsb)
    assert np.array_equal(m.acwr_ewma, acwr_ewma(z).ratio, equal_nan=True)
    assert np.array_equal(m.acwr_rolling, acwr_rolling(z), equal_nan=True)
    assert np.array_equal(m.acwr_uncoupled, acwr_rolling(z, coupled=False), equal_nan=True)
    mono, strain = foster_rolling(z)
    assert np.array_equal(m.monotony, mono, equal_nan=True)
    assert np.array_equal(m.strain, strain, equal_nan=True)
    assert np.array_equal(m.imputed, u)


@settings(max_examples=60, deadline=None)
@given(loads)
def test_exclude_equals_the_models_over_observed_days(days: list[tuple[float, bool]]) -> None:
    x = np.array([d[0] for d in days])
    u = np.array([d[1] for d in days], dtype=bool)
    m = load_models(np.where(u, nan, x), u, treatment="exclude")
    seen = x[~u]
    assert np.array_equal(m.ctl[~u], pmc(seen).ctl)
    assert np.array_equal(m.tsb[~u], pmc(seen).tsb)
    assert np.array_equal(m.acwr_rolling[~u], acwr_rolling(seen), equal_nan=True)
    for col in (m.load, m.ctl, m.atl, m.tsb, m.acwr_ewma, m.acwr_rolling, m.monotony, m.strain):
        assert np.isnan(col[u]).all()


@settings(max_examples=60, deadline=None)
@given(loads)
def test_decay_never_uses_a_window_with_a_gap(days: list[tuple[float, bool]]) -> None:
    x = np.array([d[0] for d in days])
    u = np.array([d[1] for d in days], dtype=bool)
    m = load_models(np.where(u, nan, x), u, treatment="decay")
    z = load_models(np.where(u, nan, x), u, treatment="zero")
    assert np.array_equal(m.ctl, z.ctl) and np.array_equal(m.acwr_ewma, z.acwr_ewma, equal_nan=True)
    gap28 = m.chronic_unobserved_days > 0
    assert np.isnan(m.acwr_rolling[gap28]).all() and np.isnan(m.acwr_uncoupled[gap28]).all()
    assert np.array_equal(m.acwr_rolling[~gap28], z.acwr_rolling[~gap28], equal_nan=True)
    gap7 = m.acute_unobserved_days > 0  # acute and Foster windows are both 7 days here
    assert np.isnan(m.monotony[gap7]).all() and np.isnan(m.strain[gap7]).all()
    assert np.array_equal(m.strain[~gap7], z.strain[~gap7], equal_nan=True)
