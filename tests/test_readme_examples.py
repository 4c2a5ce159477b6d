"""The README's example analysis runs, as written, on the demo study."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from actidose.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
def test_readme_python_and_sql_examples_run_on_the_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["demo", "--participants", "4", "--weeks", "4"])
    assert r.exit_code == 0, r.output
    # with matplotlib (a test dependency) the demo draws the chart and writes both reports
    folder = tmp_path / "actidose-demo"
    png = (folder / "pmc.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 20_000
    for name in ("report-P001.html", "report-cohort.html"):
        html = (folder / name).read_text()
        assert html.count("<svg") >= 2 and "https://" not in html.replace(
            'xmlns="http://www.w3.org/2000/svg"', ""
        )
    assert "chart: " in r.output
    text = README.read_text()
    (python,) = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "actidose.open" in b]
    exec(compile(python, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "mean_change" in out and "trimp_yesterday" in out
    con = duckdb.connect("actidose.duckdb", read_only=True)
    try:
        for block in re.findall(r"```sql\n(.*?)```", text, re.S):
            for statement in filter(str.strip, block.split(";")):
                con.execute(statement).fetchall()
    finally:
        con.close()


def test_demo_without_matplotlib_says_how_to_get_the_pictures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from actidose import plots
    from actidose.errors import UsageError

    def missing() -> None:
        raise UsageError("plotting needs matplotlib", fix="pip install 'actidose[plots]'")

    monkeypatch.setattr(plots, "require_matplotlib", missing)
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["demo", "--participants", "2", "--weeks", "1"])
    assert r.exit_code == 0, r.output
    assert "pip install 'actidose[plots]'" in r.output
    assert not (tmp_path / "actidose-demo" / "pmc.png").exists()
    assert (tmp_path / "actidose.duckdb").exists()
