"""``actidose plot ...``: files written in the asked format, the right frames drawn, errors as
one line with exit status 2."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import numpy as np
import pytest
from click.testing import CliRunner, Result

pytest.importorskip("matplotlib")

from matplotlib import dates as mdates
from matplotlib.figure import Figure

import actidose
from actidose import plots
from actidose.cli import _Ctx, main
from actidose.plot_cli import prescription_targets, register

from .conftest import demo_study


@click.group()
@click.option("--db")
@click.pass_context
def cli(ctx: click.Context, db: str | None) -> None:
    """The main group's options and context, with the plot commands (``main`` is left as it
    is, whether or not it registers them yet)."""
    ctx.obj = _Ctx(db)


cli.add_command(main.commands["demo"])
register(cli)

MAGIC = {"png": b"\x89PNG", "svg": b"<?xml", "pdf": b"%PDF"}


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_study(tmp_path_factory.mktemp("plot_cli"), "--participants", "4", "--weeks", "3")


def run(db: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--db", str(db), "plot", *args])


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Figure]]:
    """The figures the commands save (still written to disk)."""
    figs: list[Figure] = []
    real = plots.save

    def keep(fig: Figure, path: Any) -> Path:
        figs.append(fig)
        return real(fig, path)

    monkeypatch.setattr(plots, "save", keep)
    yield figs


@pytest.mark.parametrize(
    ("cmd", "suffix"),
    [
        (["pmc", "P001"], "png"),
        (["weekly", "P001"], "pdf"),
        (["coverage", "P002"], "svg"),
        (["symptoms", "P001", "--instrument", "phq9"], "png"),
        (["adherence"], "svg"),
        (["cohort-coverage"], "pdf"),
    ],
)
def test_each_command_writes_the_format_of_its_suffix(
    db: Path, tmp_path: Path, cmd: list[str], suffix: str
) -> None:
    out = tmp_path / f"figure.{suffix}"
    r = run(db, *cmd, "--out", str(out), "--title", "T")
    assert r.exit_code == 0, r.output
    assert r.output.strip() == str(out)
    assert out.read_bytes().startswith(MAGIC[suffix])


def test_pmc_from_to_limits_the_days_and_the_axis(
    db: Path, tmp_path: Path, drawn: list[Figure]
) -> None:
    r = run(db, "pmc", "P001", "--out", str(tmp_path / "p.png"), "--from", "2024-03-06")
    r2 = run(db, "pmc", "P001", "--out", str(tmp_path / "q.png"), "--to", "2024-03-12")
    assert r.exit_code == 0 and r2.exit_code == 0, r.output + r2.output
    with actidose.open(db, read_only=True) as s:
        days = s.load_series("P001")["day"].to_numpy()
    for fig, keep, lim in (
        (drawn[0], days >= np.datetime64("2024-03-06"), (dt.date(2024, 3, 6), days.max())),
        (drawn[1], days <= np.datetime64("2024-03-12"), (days.min(), dt.date(2024, 3, 12))),
    ):
        line = plots.find(fig, "ctl")[0]
        assert list(np.asarray(line.get_xdata(), "datetime64[D]")) == list(days[keep])
        lo, hi = mdates.date2num(np.asarray(lim, "datetime64[D]"))
        assert line.axes.get_xlim() == pytest.approx((lo - 0.5, hi + 0.5))


def test_weekly_draws_the_arms_prescription(db: Path, tmp_path: Path, drawn: list[Figure]) -> None:
    for pid in ("P001", "P002"):  # aerobic (3 x 30 min in the HRR band), stretching
        r = run(db, "weekly", pid, "--out", str(tmp_path / f"{pid}.png"))
        assert r.exit_code == 0, r.output
    aerobic, stretching = drawn
    with actidose.open(db, read_only=True) as s:
        want_trimp = s.adherence("P001")["trimp_prescribed"].max()
        assert prescription_targets(s.con, "P001") == (90.0, want_trimp)
        assert prescription_targets(s.con, "P002") == (None, None)
        assert prescription_targets(s.con, "nobody") == (None, None)
    assert plots.find(aerobic, "prescription_min")[0].get_ydata()[0] == 90.0
    assert plots.find(aerobic, "prescription_trimp")[0].get_ydata()[0] == pytest.approx(want_trimp)
    assert plots.find(stretching, "prescription_min") == []
    assert plots.find(stretching, "who")[0].get_ydata()[0] == 150.0


def test_weekly_from_widens_to_whole_weeks(db: Path, tmp_path: Path, drawn: list[Figure]) -> None:
    r = run(db, "weekly", "P001", "--out", str(tmp_path / "w.svg"), "--from", "2024-03-13")
    assert r.exit_code == 0, r.output
    bars = plots.find(drawn[0], "moderate:", prefix=True)
    assert [b.get_gid() for b in bars] == ["moderate:2024-03-11", "moderate:2024-03-18"]
    lo = mdates.date2num(np.datetime64("2024-03-11"))
    assert bars[0].axes.get_xlim()[0] == pytest.approx(lo - 0.5)


def test_unknown_participant_is_named(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.png"
    r = run(db, "coverage", "P999", "--out", str(out))
    assert r.exit_code == 2
    assert "Error: unknown participant 'P999'" in r.output and "P001" in r.output
    assert not out.exists()


def test_unknown_suffix_and_unknown_instrument_are_usage_errors(db: Path, tmp_path: Path) -> None:
    r = run(db, "pmc", "P001", "--out", str(tmp_path / "x.jpg"))
    assert r.exit_code == 2 and "unknown figure format '.jpg'" in r.output
    assert ".png, .svg or .pdf" in r.output
    r = run(db, "symptoms", "P001", "--out", str(tmp_path / "s.png"), "--instrument", "gad7")
    assert r.exit_code == 2 and "P001 has no 'gad7' ratings" in r.output
    assert "mood, phq9" in r.output
    r = run(
        db,
        "pmc",
        "P001",
        "--out",
        str(tmp_path / "x.png"),
        "--from",
        "2024-04-01",
        "--to",
        "2024-03-01",
    )
    assert r.exit_code == 2 and "--from 2024-04-01 is after --to 2024-03-01" in r.output
    r = run(db, "pmc", "P001", "--out", str(tmp_path / "no" / "such" / "x.png"))
    assert r.exit_code == 2 and "cannot write" in r.output
    r = run(db, "pmc", "P001")
    assert r.exit_code == 2 and "--out" in r.output


def test_missing_matplotlib_says_how_to_install(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "x.png"
    r = run(db, "adherence", "--out", str(out))
    assert r.exit_code == 2
    assert "matplotlib" in r.output and "pip install 'actidose[plots]'" in r.output
    assert not out.exists()


def test_help_lists_the_commands() -> None:
    r = CliRunner().invoke(cli, ["plot", "--help"])
    assert r.exit_code == 0
    for name in ("pmc", "weekly", "coverage", "symptoms", "adherence", "cohort-coverage"):
        assert name in r.output
