"""Reports a trial team reads: one participant's load, symptoms, weekly dose, days with data,
sessions and the parameters behind them, or the whole cohort's adherence, coverage, arm
summaries and flagged participants, each as one self-contained HTML file.

>>> import actidose
>>> from actidose.report import write_participant_report, write_cohort_report
>>> with actidose.open("actidose.duckdb") as study:                 # doctest: +SKIP
...     write_participant_report(study, "P001", "P001.html")
...     write_cohort_report(study, "cohort.html")

matplotlib draws the charts (``pip install 'actidose[plots]'``); importing this package does
not import it.
"""

from __future__ import annotations

from .data import (
    ArmPrescription,
    CohortData,
    ParameterSet,
    ParticipantData,
    ParticipantInfo,
    cohort_data,
    default_as_of,
    participant_data,
    write_readme_figure,
)
from .flags import FLAG_KINDS, FlagRules, battery_stored, cohort_flags
from .html import cohort_html, participant_html, write_cohort_report, write_participant_report

__all__ = [
    "FLAG_KINDS",
    "ArmPrescription",
    "CohortData",
    "FlagRules",
    "ParameterSet",
    "ParticipantData",
    "ParticipantInfo",
    "battery_stored",
    "cohort_data",
    "cohort_flags",
    "cohort_html",
    "default_as_of",
    "participant_data",
    "participant_html",
    "write_cohort_report",
    "write_participant_report",
    "write_readme_figure",
]
