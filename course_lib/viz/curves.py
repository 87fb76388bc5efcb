"""Lines y(x): loss and perplexity curves, gradient norms, one panel or several side by side."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from course_lib import checks
from course_lib.checks import ArgumentError
from course_lib.viz._data import series_pair
from course_lib.viz.style import (COLUMN_WIDTH, FLOOR_STYLE, colour, label_axes, new_axes, new_figure,
                                  plain_log_ticks, styled)

MAX_MARKED_POINTS = 25  # draw a marker at every point of short series only


def _unknown_styles(styles: Mapping[str, Any], labels: Sequence[str]) -> None:
    unknown = set(styles) - set(labels)
    if unknown:
        raise ArgumentError(f"styles names series that are not plotted: {sorted(unknown)}; plotted: {list(labels)}")


@styled
def plot_curves(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], *,
                title: str = "", xlabel: str = "", ylabel: str = "",
                hline: float | None = None, hline_label: str = "floor",
                logx: bool = False, logy: bool = False,
                styles: Mapping[str, Mapping[str, Any]] | None = None,
                xticks: Sequence[float] | None = None,
                figsize: tuple[float, float] | None = None) -> Figure:
    """One line per series ``{label: (x, y)}``, in the order given, with a legend.

    hline : draw y = hline across the plot (e.g. an entropy floor), labelled ``hline_label``.
    styles : per-series keyword arguments for ``Axes.plot``, e.g. ``{"train": {"linestyle": "--"}}``.
    An infinite y (a model that calls the data impossible has infinite perplexity) is left out
    of its line as a gap: there is no point to draw, and the other points stay readable.
    """
    if not isinstance(series, Mapping) or not series:
        raise ArgumentError("series must be a non-empty dict {label: (x, y)}")
    styles = {} if styles is None else styles
    _unknown_styles(styles, list(series))
    figure, axes = new_axes(figsize)
    for label, pair in series.items():
        x, y = series_pair(label, pair, f"series[{label!r}]")
        style = {"marker": "o", "markersize": 4} if x.size <= MAX_MARKED_POINTS else {}
        style.update(styles.get(label, {}))
        axes.plot(x, np.where(np.isfinite(y), y, np.nan), label=label, **style)
    if hline is not None:
        axes.axhline(checks.finite_number("hline", hline), label=hline_label, **FLOOR_STYLE)
    if logx:
        axes.set_xscale("log")
    if logy:
        axes.set_yscale("log")
        plain_log_ticks(axes.yaxis)
    if xticks is not None:  # exactly these ticks, labelled as given (no minor labels on a log axis)
        axes.set_xticks(list(xticks), [f"{tick:g}" for tick in xticks])
        axes.xaxis.set_minor_formatter(NullFormatter())
    axes.grid(True, alpha=0.3)
    axes.legend()
    label_axes(axes, title, xlabel, ylabel)
    return figure


@styled
def plot_curve_panels(panels: Mapping[str, Mapping[str, tuple[Sequence[float], Sequence[float]]]], *,
                      title: str = "", xlabel: str = "", ylabel: str = "", logy: bool = False,
                      styles: Mapping[str, Mapping[str, Any]] | None = None,
                      figsize: tuple[float, float] | None = None) -> Figure:
    """Line plots side by side, one panel per ``{panel title: {label: (x, y)}}``, sharing the y axis.

    Shared axes make the panels comparable at a glance: the same quantity under two settings
    (gradient norms with a linear and a tanh activation, say). A series label used in several
    panels gets the same colour in each, and the legend is drawn once when every panel holds the
    same series. ``styles`` gives per-label keyword arguments for ``Axes.plot``; a y value that
    is not positive is left out of a log-scale panel as a gap.
    """
    if not isinstance(panels, Mapping) or not panels:
        raise ArgumentError("panels must be a non-empty dict {panel title: {label: (x, y)}}")
    styles = {} if styles is None else styles
    checked: dict[str, list[tuple[str, np.ndarray, np.ndarray]]] = {}
    for name, series in panels.items():
        if not isinstance(name, str):
            raise ArgumentError(f"panel titles must be str, got {type(name).__name__} {name!r}")
        if not isinstance(series, Mapping) or not series:
            raise ArgumentError(f"panel {name!r} must be a non-empty dict {{label: (x, y)}}")
        checked[name] = [(label, *series_pair(label, pair, f"panel {name!r}: series {label!r}"))
                         for label, pair in series.items()]
    labels = list(dict.fromkeys(label for lines in checked.values() for label, _, _ in lines))
    _unknown_styles(styles, labels)
    checks.text("title", title)
    colours = {label: colour(i) for i, label in enumerate(labels)}
    figure = new_figure(figsize, (COLUMN_WIDTH, 3.4))
    all_axes = figure.subplots(1, len(checked), sharey=True, squeeze=False)[0]
    same_series = len({tuple(label for label, _, _ in lines) for lines in checked.values()}) == 1
    for index, (axes, (name, lines)) in enumerate(zip(all_axes, checked.items())):
        for label, x, y in lines:
            style = {"color": colours[label]}
            if x.size <= MAX_MARKED_POINTS:
                style.update(marker="o", markersize=4)
            style.update(styles.get(label, {}))
            shown = np.isfinite(y) & ((y > 0) if logy else True)
            axes.plot(x, np.where(shown, y, np.nan), label=label, **style)
        if logy:
            axes.set_yscale("log")
        axes.grid(True, alpha=0.3)
        label_axes(axes, name, xlabel, ylabel if index == 0 else "")
        if not same_series or index == len(checked) - 1:
            axes.legend()
    if title:
        figure.suptitle(title)
    return figure
