"""The reports of the demo study open in a real browser (headless Chromium, no network) and
the screenshot is not blank."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import actidose
from actidose.report import write_cohort_report, write_participant_report

from .conftest import demo_study

pytestmark = pytest.mark.slow  # a browser start per page: about 6 s with the demo study

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _chromium() -> str:
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("headless Chromium not installed: apt-get install chromium (.ci/run installs it)")


def screenshot(page: Path, tmp: Path) -> np.ndarray:
    """A 1280 x 2000 screenshot of ``page`` as an RGB(A) float array (0-1)."""
    import matplotlib.image

    shot = tmp / "shot.png"
    cmd = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp / 'profile'}",
        f"--screenshot={shot}",
        "--window-size=1280,2000",
        page.resolve().as_uri(),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)
    assert shot.exists(), f"no screenshot (exit {done.returncode}): {done.stderr[-2000:]}"
    return np.asarray(matplotlib.image.imread(str(shot)))


def assert_not_blank(img: np.ndarray) -> None:
    assert img.shape[0] == 2000 and img.shape[1] == 1280
    rgb = img[..., :3]
    ink: np.ndarray = np.asarray((rgb < 0.9).any(axis=-1))  # visibly darker than white
    assert ink.mean() > 0.03, f"only {ink.mean():.1%} of the page is not white"
    # text, charts and table rules: many colours, not one flat fill
    q = (rgb * 255).round().astype(np.uint32)
    colours = np.unique((q[..., 0] << 16) | (q[..., 1] << 8) | q[..., 2])
    assert colours.size >= 50, colours.size
    # content down the page, not only a header: ink in most 200-pixel bands of the first 1600
    bands = [ink[y : y + 200].mean() > 0.005 for y in range(0, 1600, 200)]
    assert sum(bands) >= 6, bands


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    _chromium()  # skip before building anything
    tmp = tmp_path_factory.mktemp("render")
    db = demo_study(tmp)
    with actidose.open(db) as study:
        return {
            "participant": write_participant_report(study, "P001", tmp / "P001.html"),
            "cohort": write_cohort_report(study, tmp / "cohort.html"),
        }


@pytest.mark.parametrize("which", ["participant", "cohort"])
def test_report_renders_in_headless_chromium(
    reports: dict[str, Path], which: str, tmp_path: Path
) -> None:
    assert_not_blank(screenshot(reports[which], tmp_path))


def test_blank_page_is_caught(tmp_path: Path) -> None:
    page = tmp_path / "blank.html"
    page.write_text("<!DOCTYPE html><html><body></body></html>")
    with pytest.raises(AssertionError):
        assert_not_blank(screenshot(page, tmp_path))
