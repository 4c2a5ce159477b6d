"""``actidose.dose`` imports only numpy, scipy and the standard library.

Checked in a fresh interpreter, so modules other tests imported cannot hide an import.
"""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = (
    "duckdb",
    "polars",
    "pyarrow",
    "bleak",
    "fitdecode",
    "lxml",
    "actidose.ingest",
    "actidose.storage",
    "actidose.devices",
)

# Blocks the forbidden top-level packages, then prints the modules loaded by interpreter start-up
# plus numpy and scipy.signal (whatever those pull in is theirs) and the modules that importing
# actidose.dose added on top.
SCRIPT = f"""
import json, sys
FORBIDDEN = {FORBIDDEN!r}
for name in FORBIDDEN:  # importing any of these now raises ImportError, as if not installed
    if "." not in name:
        sys.modules[name] = None
import numpy, scipy, scipy.signal
baseline = set(sys.modules)
import actidose.dose
import actidose.dose.accel
import actidose.dose.hr
import actidose.dose.load
import actidose.dose.anchors
import actidose.dose.exposure
import actidose.dose.adherence
import actidose.dose.instruments
loaded = sorted(k for k, v in sys.modules.items() if v is not None)
print(json.dumps({{"all": loaded, "added": sorted(set(sys.modules) - baseline)}}))
"""


def _imports() -> dict[str, list[str]]:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=120
    )
    result: dict[str, list[str]] = json.loads(out.stdout)
    return result


def test_dose_imports_nothing_forbidden() -> None:
    loaded = _imports()["all"]
    assert "actidose.dose" in loaded
    bad = [m for m in loaded if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]
    assert not bad, f"importing actidose.dose loaded {bad}"


def test_dose_adds_only_stdlib_numpy_scipy_and_itself() -> None:
    allowed = set(sys.stdlib_module_names) | {"numpy", "scipy", "actidose"}
    extra = [m for m in _imports()["added"] if m.split(".")[0] not in allowed]
    assert not extra, f"importing actidose.dose added non-stdlib modules: {extra}"
