"""The one style of every figure in the book: size, fonts, resolution and palette.

The book's text column is about 690 CSS pixels wide at a 1280-pixel window, and a figure is
shown at most that wide. What a reader sees of a label is therefore fixed by two numbers only,
the figure's width in inches and the font size in points:

    on-screen height of a label (px) ≈ points / 72 × COLUMN_PIXELS / width (inches)

With figures :data:`COLUMN_WIDTH` = 6.4 inches wide and fonts of 9 points or more, a label is
at least 13 pixels high on the page; :data:`DPI` = 150 keeps the PNG sharp on high-resolution
screens. Every plot function builds its figure with :func:`new_figure` inside :func:`styled`.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, TypeVar

import matplotlib
from cycler import cycler
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from course_lib import checks

COLUMN_PIXELS = 690  # the book's text column at a 1280-pixel window (sphinx-book-theme)
COLUMN_WIDTH = 6.4  # inches: the widest a figure is drawn, so it is never shrunk much
DEFAULT_FIGSIZE = (COLUMN_WIDTH, 3.6)
DPI = 150

FONT_SIZE = 10.0  # points: axis labels and legends
TICK_SIZE = 9.0  # tick labels
SMALL_SIZE = 8.5  # annotations in cells and on bars; the smallest text of any figure
TITLE_SIZE = 11.0

# One palette for every chapter: matplotlib's "tab10" (distinct in colour and in lightness,
# readable by most colour-blind readers). BAR and HIGHLIGHT are its first two colours.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
BAR_COLOUR = PALETTE[0]
HIGHLIGHT_COLOUR = PALETTE[1]  # <unk>, </s>, a probe's right answer: what the eye should find
MARK_COLOUR = "#ffd54f"  # a highlighter's yellow behind a word the reader should find in a text
FLOOR_STYLE = {"color": "black", "linestyle": ":", "linewidth": 1.5}
# Light fills for token boxes, in the order successive tokens take them.
TOKEN_COLOURS = ("#cfe2f3", "#fce5cd", "#d9ead3", "#f4cccc", "#e1d5e7", "#fff2cc")

RC_PARAMS = {
    "font.size": FONT_SIZE,
    "axes.titlesize": TITLE_SIZE,
    "axes.labelsize": FONT_SIZE,
    "xtick.labelsize": TICK_SIZE,
    "ytick.labelsize": TICK_SIZE,
    "legend.fontsize": TICK_SIZE,
    "figure.titlesize": TITLE_SIZE + 1,
    "axes.prop_cycle": cycler(color=list(PALETTE)),
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
}

F = TypeVar("F", bound=Callable[..., Figure])


def styled(plot: F) -> F:
    """Run a plot function under the book's style (fonts, palette, resolution)."""
    @functools.wraps(plot)
    def with_style(*args: Any, **kwargs: Any) -> Figure:
        with matplotlib.rc_context(RC_PARAMS):
            return plot(*args, **kwargs)
    return with_style  # type: ignore[return-value]


def colour(index: int) -> str:
    """The ``index``-th colour of the palette (it repeats after ten)."""
    return PALETTE[index % len(PALETTE)]


def figure_size(figsize: object, default: tuple[float, float]) -> tuple[float, float]:
    """``figsize`` checked (two positive numbers, inches), or ``default`` when it is None."""
    if figsize is None:
        return default
    if isinstance(figsize, (str, bytes)) or not hasattr(figsize, "__len__") or len(figsize) != 2:
        raise checks.ArgumentError(f"figsize must be (width, height) in inches, got {figsize!r}")
    return (checks.positive_number("figsize width", figsize[0]),
            checks.positive_number("figsize height", figsize[1]))


def new_figure(figsize: object = None, default: tuple[float, float] = DEFAULT_FIGSIZE) -> Figure:
    """An empty figure at the book's resolution, laid out so that no label is cut off."""
    return Figure(figsize=figure_size(figsize, default), dpi=DPI, layout="constrained")


def new_axes(figsize: object = None, default: tuple[float, float] = DEFAULT_FIGSIZE) -> tuple[Figure, Any]:
    figure = new_figure(figsize, default)
    return figure, figure.add_subplot()


def label_axes(axes: Any, title: str, xlabel: str, ylabel: str) -> None:
    """Title and axis labels (each checked to be a str), and tick labels at the book's size."""
    axes.set_title(checks.text("title", title))
    axes.set_xlabel(checks.text("xlabel", xlabel))
    axes.set_ylabel(checks.text("ylabel", ylabel))
    axes.tick_params(labelsize=TICK_SIZE)


def plain_log_ticks(axis: Any) -> None:
    """Label a log axis with plain numbers (5, 10, 20, 50, 100), not powers of ten."""
    def major(value: float, _position: int) -> str:
        return f"{value:g}"

    def minor(value: float, _position: int) -> str:
        leading = round(value / 10 ** math.floor(math.log10(value))) if value > 0 else 0
        return f"{value:g}" if leading in (2, 5) else ""

    axis.set_major_formatter(FuncFormatter(major))
    axis.set_minor_formatter(FuncFormatter(minor))
