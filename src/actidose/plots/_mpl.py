"""matplotlib, imported lazily, and the house style of every actidose figure.

Nothing here touches matplotlib's global state: figures are made with
:class:`matplotlib.figure.Figure` and an Agg canvas (never ``pyplot``, so no display backend
and no figure registry), and the style is applied with :func:`style`, a ``rc_context`` around
drawing and saving only.

The style is for a paper: 7 x 3.5 in (a two-column page width), 9 pt text (8 pt ticks and
legends, 10 pt titles), DejaVu Sans (shipped with matplotlib, so a file looks the same on every
machine), the Okabe & Ito (2008) colour-blind-safe palette, 300 dpi PNG.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

from ..errors import UsageError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PIP_FIX: Final = "pip install 'actidose[plots]'"

#: Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour
#: vision deficiency.
OKABE_ITO: Final = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
}
GREY: Final = "#BBBBBB"
LIGHT_GREY: Final = "#DDDDDD"

#: day_status -> code in the status images, and its colour.
STATUS_CODES: Final = {"unobserved": 0, "partial": 1, "observed": 2}
STATUS_COLOURS: Final = (GREY, OKABE_ITO["orange"], OKABE_ITO["blue"])

PAPER_SIZE: Final = (7.0, 3.5)
SVG_HASHSALT: Final = "actidose"

RC: Final[dict[str, Any]] = {
    "figure.figsize": PAPER_SIZE,
    "figure.dpi": 100,
    "savefig.dpi": 300,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.04,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica", "Liberation Sans"],
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "figure.titlesize": 10,
    "axes.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 3,
    "ytick.major.size": 3,
    "lines.linewidth": 1.4,
    "lines.markersize": 4,
    "hatch.linewidth": 0.6,
    "image.interpolation": "nearest",
    "svg.fonttype": "none",  # text stays text: small, selectable; see to_svg
    "svg.hashsalt": SVG_HASHSALT,  # deterministic ids: same figure, same bytes
    "pdf.fonttype": 42,  # TrueType in PDFs: editable text for journals
    "ps.fonttype": 42,
}


def require_matplotlib() -> None:
    """Check that matplotlib can be imported.

    Raises
    ------
    UsageError
        When it cannot, with ``fix="pip install 'actidose[plots]'"``.
    """
    try:
        importlib.import_module("matplotlib")
    except ImportError as exc:
        raise UsageError(
            f"plotting needs matplotlib, which cannot be imported ({exc})", fix=PIP_FIX
        ) from None


def _rc() -> dict[str, Any]:
    from cycler import cycler

    rc = dict(RC)
    rc["axes.prop_cycle"] = cycler(
        color=[OKABE_ITO[k] for k in ("blue", "vermillion", "green", "orange", "purple")]
        + [OKABE_ITO["sky_blue"], OKABE_ITO["black"]]
    )
    return rc


@contextmanager
def style() -> Iterator[None]:
    """The house style for the duration of a ``with`` block (matplotlib's ``rc_context``)."""
    require_matplotlib()
    import matplotlib

    rc: Any = _rc()
    with matplotlib.rc_context(rc):
        yield


def new_figure(size: tuple[float, float] = PAPER_SIZE) -> Figure:
    """A figure on an Agg canvas with constrained layout (call inside :func:`style`)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def root_figure(ax: Axes) -> Figure:
    """The top-level figure an axes belongs to (through any subfigures)."""
    from matplotlib.figure import Figure

    fig: Any = ax.figure
    while not isinstance(fig, Figure):
        fig = fig.figure
    return fig
