"""Charts of the dose: fitness/fatigue/form, weekly minutes against the WHO line, a calendar of
the days with data, symptom scores, and the cohort's adherence and coverage.

Each function takes the polars frame of the matching :class:`actidose.Study` method and returns
a matplotlib :class:`~matplotlib.figure.Figure` (drawn on an Agg canvas, never through
``pyplot``)::

    import actidose
    from actidose import plots

    with actidose.open("study.duckdb") as study:
        fig = plots.pmc(study.load_series("P001"), study.sessions("P001"))
    plots.save(fig, "P001-pmc.pdf")      # .png (300 dpi), .svg or .pdf
    svg = plots.to_svg(fig)              # an <svg> element to inline in HTML

matplotlib is an optional dependency (``pip install 'actidose[plots]'``); it is imported only
when a chart is drawn, and :func:`require_matplotlib` says how to install it when it is missing.
"""

from __future__ import annotations

from ._mpl import require_matplotlib
from .charts import (
    adherence_heatmap,
    cohort_coverage,
    coverage,
    find,
    pmc,
    save,
    symptoms,
    to_svg,
    weekly,
)

__all__ = [
    "adherence_heatmap",
    "cohort_coverage",
    "coverage",
    "find",
    "pmc",
    "require_matplotlib",
    "save",
    "symptoms",
    "to_svg",
    "weekly",
]
