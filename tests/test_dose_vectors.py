"""Reproduce every reference vector of ``shared/reference/vectors.json`` with its tolerance.

Each vector id has a handler below; a vector without a handler fails
``test_every_vector_has_a_handler``, so a new vector cannot be skipped silently. String inputs
("1800 x 120 then 1800 x 170 bpm") are built by hand per id, and the handler first asserts the
string is still the one it was built from.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from actidose.dose import (
    LEVEL_NAMES,
    acwr_rolling,
    banister_coefficients,
    banister_trimp,
    banister_trimp_avg_hr,
    classify_levels,
    edwards_trimp,
    enmo,
    epoch_enmo_mad,
    foster_week,
    ggir_bouts,
    lucia_trimp,
    pmc,
    sample_durations,
    session_rpe,
)

VECTORS_PATH = Path(__file__).resolve().parents[2] / "shared" / "reference" / "vectors.json"


def _load_vectors() -> dict[str, dict[str, Any]]:
    if not VECTORS_PATH.exists():
        return {}
    vectors = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
    by_id = {v["id"]: v for v in vectors}
    assert len(by_id) == len(vectors), "duplicate vector ids in vectors.json"
    return by_id


VECTORS = _load_vectors()
NO_VECTORS = f"reference vectors not found at {VECTORS_PATH} (shared/ beside the repository)"


# ---------------------------------------------------------------------------------------------
# Tolerances
# ---------------------------------------------------------------------------------------------


def _tolerance(spec: str) -> Callable[[float, float], bool]:
    spec = spec.strip()
    if spec == "exact":
        return lambda got, exp: got == exp
    m = re.fullmatch(r"(rel|abs)\s+([0-9.eE+-]+)", spec)
    if m is None:
        raise AssertionError(f"unparsed tolerance {spec!r}")
    kind, tol = m.group(1), float(m.group(2))
    if kind == "rel":
        return lambda got, exp: abs(got - exp) <= tol * abs(exp)
    return lambda got, exp: abs(got - exp) <= tol


def _compare(got: Any, expected: Any, tolerance: str, where: str = "") -> None:
    """Compare scalars, lists and dicts of numbers or strings with the vector's tolerance."""
    if isinstance(expected, dict):
        assert isinstance(got, dict), f"{where}: expected a dict, got {got!r}"
        assert set(got) == set(expected), f"{where}: keys {sorted(got)} != {sorted(expected)}"
        for key in expected:
            _compare(got[key], expected[key], tolerance, f"{where}.{key}")
    elif isinstance(expected, list):
        assert len(got) == len(expected), f"{where}: length {len(got)} != {len(expected)}"
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            _compare(g, e, tolerance, f"{where}[{i}]")
    elif isinstance(expected, str):
        assert got == expected, f"{where}: {got!r} != {expected!r}"
    else:
        ok = _tolerance(tolerance)(float(got), float(expected))
        assert ok, f"{where}: got {float(got)!r}, expected {expected!r} ({tolerance})"


def test_tolerance_parser() -> None:
    assert _tolerance("rel 1e-12")(1.0 + 5e-13, 1.0)
    assert not _tolerance("rel 1e-12")(1.0 + 5e-12, 1.0)
    assert _tolerance("abs 1e-15")(0.0, 1e-16)
    assert _tolerance("exact")(150.0, 150)
    assert not _tolerance("exact")(150.0 + 1e-13, 150)
    with pytest.raises(AssertionError):
        _tolerance("about 1%")


# ---------------------------------------------------------------------------------------------
# Handlers: vector -> computed value with the structure of "expected"
# ---------------------------------------------------------------------------------------------


def _minutes_at(minutes_at: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """One sample per second at each HR for the given minutes (dt = 1 s, so sums are exact)."""
    hr = np.concatenate([np.full(round(m * 60), float(h)) for h, m in minutes_at.items()])
    return hr, np.ones(hr.size)


def _avg_hr(v: dict[str, Any]) -> Any:
    i = v["inputs"]
    if "sex" in i:
        return banister_trimp_avg_hr(
            i["duration_min"], i["avg_hr"], i["rest_hr"], i["max_hr"], sex=i["sex"]
        )
    return banister_trimp_avg_hr(
        i["duration_min"], i["avg_hr"], i["rest_hr"], i["max_hr"], a=i["a"], b=i["b"]
    )


def _trimp3(v: dict[str, Any]) -> Any:
    i = v["inputs"]
    assert i["hr"] == "1800 x 120 then 1800 x 170 bpm, dt=1 s"
    hr = np.concatenate([np.full(1800, 120.0), np.full(1800, 170.0)])
    dur = sample_durations(np.arange(3600.0))
    assert dur.covered_s == 3600.0  # last sample holds the median interval, 1 s
    a, b = banister_coefficients(i["sex"])
    res = banister_trimp(hr, dur.dt_s, i["rest_hr"], i["max_hr"], a=a, b=b)
    assert res.n_clipped == 0 and res.n_nan == 0
    return res.value


def _edw1(v: dict[str, Any]) -> Any:
    hr, dt = _minutes_at(v["inputs"]["minutes_at"])
    return edwards_trimp(hr, dt, v["inputs"]["hrmax"]).value


def _edw2(v: dict[str, Any]) -> Any:
    assert v["kernel"] == "edwards boundary HR=120 (60%) for 10 min"
    hr, dt = _minutes_at({"120": 10})
    return {"lower_edge_inclusive": edwards_trimp(hr, dt, v["inputs"]["hrmax"]).value}


def _luc1(v: dict[str, Any]) -> Any:
    i = v["inputs"]
    hr, dt = _minutes_at(i["minutes_at"])
    return lucia_trimp(hr, dt, i["vt1"], i["vt2"]).value


def _srpe1(v: dict[str, Any]) -> Any:
    return session_rpe(v["inputs"]["duration_min"], v["inputs"]["rpe"])


def _fos1(v: dict[str, Any]) -> Any:
    loads = v["inputs"]["daily_loads"]
    pop = foster_week(loads)
    sample = foster_week(loads, ddof=1)
    return {
        "weekly_load": pop.weekly_load,
        "monotony_pop_sd": pop.monotony,
        "monotony_sample_sd": sample.monotony,
        "strain_pop": pop.strain,
    }


def _day_values(res: Any, expected: dict[str, float], offset: int) -> dict[str, float]:
    """Map keys like 'ctl_day42' to res.ctl[42 - offset]."""
    out = {}
    for key in expected:
        series, day = re.fullmatch(r"(ctl|atl)_day(\d+)", key).groups()  # type: ignore[union-attr]
        out[key] = float(getattr(res, series)[int(day) - offset])
    return out


def _pmc1(v: dict[str, Any]) -> Any:
    i = v["inputs"]
    assert i["daily_load"] == "100 every day from day 1"
    res = pmc(np.full(84, 100.0), tau_ctl=i["tau_ctl"], tau_atl=i["tau_atl"])
    return _day_values(res, v["expected"], offset=1)  # day 1 is index 0


def _pmc3(v: dict[str, Any]) -> Any:
    assert v["inputs"]["daily_load"] == "100 on day 0 then 0"
    load = np.zeros(50)
    load[0] = 100.0
    return _day_values(pmc(load), v["expected"], offset=0)


def _acwr2(v: dict[str, Any]) -> Any:
    assert v["inputs"]["daily_load"] == "30 x21 then 50 x7"
    load = np.concatenate([np.full(21, 30.0), np.full(7, 50.0)])
    coupled = acwr_rolling(load)
    uncoupled = acwr_rolling(load, coupled=False)
    assert np.isnan(coupled[:27]).all() and np.isnan(uncoupled[:27]).all()
    return {"coupled": coupled[27], "uncoupled": uncoupled[27]}  # day 28 = index 27


def _sine_epoch(v: dict[str, Any]) -> Any:
    i = v["inputs"]
    assert i["x"] == "0.5*sin(2*pi*2*t) g"
    assert i.get("y", 0) == 0 and i["z"] == 1
    sf, epoch_s = i["sf"], i["epoch_s"]
    t = np.arange(round(sf * epoch_s)) / sf
    x = 0.5 * np.sin(2 * np.pi * 2 * t)
    res = epoch_enmo_mad(x, np.zeros_like(x), np.ones_like(x), sf, epoch_s)
    assert res.enmo_g.size == 1 and res.n_dropped_samples == 0
    return res.enmo_g[0] if v["id"].startswith("ENMO") else res.mad_g[0]


def _enmo_static(v: dict[str, Any]) -> Any:
    xyz = np.asarray(v["inputs"]["xyz"], dtype=float)
    return list(enmo(xyz[:, 0], xyz[:, 1], xyz[:, 2]))


def _cut1(v: dict[str, Any]) -> Any:
    i = v["inputs"]
    return [LEVEL_NAMES[k] for k in classify_levels(i["enmo_mg"], i["thresholds"])]


def _bout(v: dict[str, Any]) -> Any:
    """BOUT-*: inputs and expected range are in units of N = 60/epoch_s; check all 4 epochs."""
    i = v["inputs"]
    runs = re.findall(r"([01]) x(\d+)N", i["above_threshold"])
    assert runs and ", ".join(f"{b} x{m}N" for b, m in runs) == i["above_threshold"]
    m = re.match(r"epochs (\d+)N\+1 \.\. (\d+)N", v["expected"])
    assert m is not None, v["expected"]
    first, last = int(m.group(1)), int(m.group(2))
    n_above = re.search(r"(\d+)N of them above threshold", v["expected"])
    n_total = re.search(r"\((\d+)N epochs\)", v["expected"])
    for epoch_s in (5, 15, 30, 60):
        n = 60 // epoch_s
        above = np.concatenate([np.full(int(k) * n, b == "1") for b, k in runs])
        flags = ggir_bouts(above, epoch_s, bout_min=i["bout_min"], criterion=i["criterion"])
        expected = np.zeros(above.size, dtype=bool)
        expected[first * n : last * n] = True  # 1-based first*N+1 .. last*N
        got_idx = np.flatnonzero(flags) + 1
        assert np.array_equal(flags, expected), (
            f"epoch {epoch_s} s: flagged {got_idx.min() if got_idx.size else None}.."
            f"{got_idx.max() if got_idx.size else None}, expected {first * n + 1}..{last * n}"
        )
        if n_above:
            assert np.count_nonzero(flags & above) == int(n_above.group(1)) * n
        if n_total:
            assert np.count_nonzero(flags) == int(n_total.group(1)) * n
    return v["expected"]  # the range was checked above


HANDLERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "TRIMP-1b": _avg_hr,
    "TRIMP-1c": _avg_hr,
    "TRIMP-2": _avg_hr,
    "TRIMP-3": _trimp3,
    "EDW-1": _edw1,
    "EDW-2": _edw2,
    "LUC-1": _luc1,
    "SRPE-1": _srpe1,
    "FOS-1": _fos1,
    "PMC-1": _pmc1,
    "PMC-3": _pmc3,
    "ACWR-2": _acwr2,
    "ENMO-sine-0.5": _sine_epoch,
    "MAD-sine-0.5": _sine_epoch,
    "ENMO-static": _enmo_static,
    "CUT-1": _cut1,
    "BOUT-1": _bout,
    "BOUT-2": _bout,
    "BOUT-3": _bout,
    "BOUT-4": _bout,
    "BOUT-5": _bout,
}


@pytest.mark.skipif(not VECTORS, reason=NO_VECTORS)
def test_every_vector_has_a_handler() -> None:
    missing = sorted(set(VECTORS) - set(HANDLERS))
    assert not missing, f"vectors without a test handler: {missing}"


@pytest.mark.parametrize("vector_id", sorted(VECTORS) or ["<vectors.json absent>"])
def test_vector(vector_id: str) -> None:
    if not VECTORS:
        pytest.skip(NO_VECTORS)
    if vector_id not in HANDLERS:
        pytest.fail(f"no handler for vector {vector_id}")
    v = VECTORS[vector_id]
    got = HANDLERS[vector_id](v)
    _compare(got, v["expected"], v["tolerance"], vector_id)


@pytest.mark.skipif(not VECTORS, reason=NO_VECTORS)
def test_trimp3_note_avg_hr_form() -> None:
    """TRIMP-3's source note gives the avg-HR form on the same data: 88.1076075935."""
    i = VECTORS["TRIMP-3"]["inputs"]
    got = banister_trimp_avg_hr(60.0, 145.0, i["rest_hr"], i["max_hr"], sex=i["sex"])
    assert math.isclose(got, 88.1076075935, rel_tol=1e-10)
