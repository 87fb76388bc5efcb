"""Figures for the book: each function takes plain numbers and returns a matplotlib ``Figure``.

The figures are built without ``pyplot``, so nothing is kept in a global list of open figures
and no figure is shown twice: in a notebook, leave the returned figure as the cell's last value
and Jupyter draws it; elsewhere call ``fig.savefig(path)``.

* :func:`plot_curves`  -- lines y(x), one per named series, with an optional horizontal floor line
  (loss and perplexity curves, the share of unseen n-grams, ...).
* :func:`plot_heatmap` -- a matrix with labelled rows and columns, optionally annotated
  (count and probability tables, attention weights).
* :func:`plot_bars`    -- one bar per label (distributions, scores).
* :func:`plot_next_token_distribution` -- the top next tokens of a language model after a context.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

import numpy as np
from matplotlib.figure import Figure

DEFAULT_FIGSIZE = (6.0, 3.5)  # inches: readable in the book's column, modest as a PNG
DPI = 100
FLOOR_STYLE = {"color": "black", "linestyle": ":", "linewidth": 1.5}
MAX_MARKED_POINTS = 25  # draw a marker at every point of short series only


def _new_axes(figsize: tuple[float, float] | None) -> tuple[Figure, Any]:
    figure = Figure(figsize=DEFAULT_FIGSIZE if figsize is None else figsize, dpi=DPI, layout="constrained")
    return figure, figure.add_subplot()


def _label_axes(axes: Any, title: str, xlabel: str, ylabel: str) -> None:
    for value, name in ((title, "title"), (xlabel, "xlabel"), (ylabel, "ylabel")):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)


def _as_vector(values: object, what: str) -> np.ndarray:
    """A 1-D float array, or a clear error naming ``what``."""
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{what} must be a sequence of numbers, not a str")
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a sequence of numbers, got {type(values).__name__}") from None
    if array.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {array.shape}")
    if np.isnan(array).any():
        raise ValueError(f"{what} contains NaN; drop those points or pass inf for an infinite value")
    return array


def _as_labels(labels: object, what: str) -> list[str]:
    if isinstance(labels, str) or not isinstance(labels, Sequence):
        raise TypeError(f"{what} must be a list of str, got {type(labels).__name__}")
    if not all(isinstance(label, str) for label in labels):
        raise TypeError(f"{what} must contain only str")
    return list(labels)


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
        raise ValueError("series must be a non-empty dict {label: (x, y)}")
    styles = {} if styles is None else styles
    unknown = set(styles) - set(series)
    if unknown:
        raise ValueError(f"styles names series that are not plotted: {sorted(unknown)}; plotted: {list(series)}")
    figure, axes = _new_axes(figsize)
    for label, pair in series.items():
        if not isinstance(label, str):
            raise TypeError(f"series labels must be str, got {type(label).__name__} {label!r}")
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"series[{label!r}] must be a pair (x, y) of equal-length sequences")
        x, y = _as_vector(pair[0], f"x of {label!r}"), _as_vector(pair[1], f"y of {label!r}")
        if x.shape != y.shape:
            raise ValueError(f"series[{label!r}] has {x.size} x values but {y.size} y values")
        style = {"marker": "o", "markersize": 4} if x.size <= MAX_MARKED_POINTS else {}
        style.update(styles.get(label, {}))
        axes.plot(x, np.where(np.isfinite(y), y, np.nan), label=label, **style)
    if hline is not None:
        if isinstance(hline, bool) or not isinstance(hline, Real) or not math.isfinite(hline):
            raise ValueError(f"hline must be a finite number, got {hline!r}")
        axes.axhline(float(hline), label=hline_label, **FLOOR_STYLE)
    if logx:
        axes.set_xscale("log")
    if logy:
        axes.set_yscale("log")
    if xticks is not None:
        axes.set_xticks(list(xticks))
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small")
    _label_axes(axes, title, xlabel, ylabel)
    return figure


def plot_heatmap(matrix: Sequence[Sequence[float]] | np.ndarray, row_labels: Sequence[str],
                 col_labels: Sequence[str], *, title: str = "", xlabel: str = "", ylabel: str = "",
                 annotate: bool = True, fmt: str = "{:.2f}", cmap: str = "Blues",
                 colorbar_label: str | None = None, figsize: tuple[float, float] | None = None) -> Figure:
    """``matrix[i, j]`` as a coloured cell in row ``row_labels[i]``, column ``col_labels[j]``.

    matrix : (rows, cols). annotate : write each value in its cell with ``fmt`` (skipped above
    400 cells, where the numbers would not be readable).
    """
    try:
        values = np.asarray(matrix, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"matrix must be a 2-D array of numbers, got {type(matrix).__name__}") from None
    if values.ndim != 2 or 0 in values.shape:
        raise ValueError(f"matrix must be a non-empty 2-D array (rows, cols), got shape {values.shape}")
    rows, cols = _as_labels(row_labels, "row_labels"), _as_labels(col_labels, "col_labels")
    if (len(rows), len(cols)) != values.shape:
        raise ValueError(f"matrix has shape {values.shape} but there are {len(rows)} row labels "
                         f"and {len(cols)} column labels")
    if not np.isfinite(values).all():
        raise ValueError("matrix contains NaN or inf; a heatmap needs finite values")
    figure, axes = _new_axes(figsize)
    image = axes.imshow(values, cmap=cmap, aspect="auto")
    axes.set_xticks(range(len(cols)), cols, rotation=45, ha="right", rotation_mode="anchor")
    axes.set_yticks(range(len(rows)), rows)
    colorbar = figure.colorbar(image, ax=axes)
    if colorbar_label:
        colorbar.set_label(colorbar_label)
    if annotate and values.size <= 400:
        # White text on the darker half of the colour scale, black on the lighter half.
        low, high = values.min(), values.max()
        middle = (low + high) / 2
        for (i, j), value in np.ndenumerate(values):
            axes.text(j, i, fmt.format(value), ha="center", va="center", fontsize="small",
                      color="white" if high > low and value > middle else "black")
    _label_axes(axes, title, xlabel, ylabel)
    return figure


def plot_bars(labels: Sequence[str], values: Sequence[float], *, title: str = "", xlabel: str = "",
              ylabel: str = "", horizontal: bool = False, annotate: bool = True, fmt: str = "{:.3f}",
              highlight: Sequence[str] = (), figsize: tuple[float, float] | None = None) -> Figure:
    """One bar per label, in the order given (top to bottom when ``horizontal``).

    highlight : labels whose bars are drawn in a contrasting colour (e.g. ``"<unk>"``).
    """
    names = _as_labels(labels, "labels")
    heights = _as_vector(values, "values")
    if len(names) != heights.size:
        raise ValueError(f"{len(names)} labels but {heights.size} values")
    if not names:
        raise ValueError("plot_bars needs at least one bar")
    if not np.isfinite(heights).all():
        raise ValueError("values must be finite to draw bars")
    marked = set(_as_labels(list(highlight), "highlight"))
    colours = ["tab:orange" if name in marked else "tab:blue" for name in names]
    figure, axes = _new_axes(figsize)
    positions = np.arange(len(names))
    if horizontal:
        bars = axes.barh(positions, heights, color=colours)
        axes.set_yticks(positions, names)
        axes.invert_yaxis()  # the first label on top, as a reader scans a ranked list
        axes.grid(True, axis="x", alpha=0.3)
    else:
        bars = axes.bar(positions, heights, color=colours)
        axes.set_xticks(positions, names, rotation=45 if len(names) > 6 else 0,
                        ha="right" if len(names) > 6 else "center", rotation_mode="anchor")
        axes.grid(True, axis="y", alpha=0.3)
    if annotate:
        axes.bar_label(bars, labels=[fmt.format(h) for h in heights], padding=2, fontsize="small")
        # Leave room after the longest bar for its label.
        if horizontal:
            axes.set_xlim(0, max(heights.max(), 0) * 1.18 or 1)
        else:
            axes.set_ylim(0, max(heights.max(), 0) * 1.15 or 1)
    _label_axes(axes, title, xlabel, ylabel)
    return figure


def plot_next_token_distribution(rows: Sequence[tuple[str, float]] | Mapping[str, float], *,
                                 context: Sequence[str] | None = None, title: str | None = None,
                                 figsize: tuple[float, float] | None = None) -> Figure:
    """Horizontal bars of P(w | context) for the given next tokens, most probable on top.

    rows : ``[(token, probability), ...]`` in the order to show (e.g. the ``rows`` of
        :func:`course_lib.widgets.next_token_table`), or a dict ``{token: probability}``.
    context : the tokens the model conditions on, shown in the title (``"<unk>"`` included).
    """
    pairs = list(rows.items()) if isinstance(rows, Mapping) else list(rows)
    if not pairs:
        raise ValueError("rows is empty: give at least one (token, probability) pair")
    if not all(isinstance(pair, (tuple, list)) and len(pair) == 2 for pair in pairs):
        raise ValueError("rows must be (token, probability) pairs")
    tokens = [token for token, _ in pairs]
    probabilities = _as_vector([p for _, p in pairs], "probabilities")
    if ((probabilities < 0) | (probabilities > 1)).any():
        raise ValueError("probabilities must lie in [0, 1]")
    if title is None:
        shown = " ".join(_as_labels(list(context), "context")) if context is not None else "h"
        title = f"Next token after “{shown}”" if shown else "Next token (no context)"
    height = max(2.5, 0.9 + 0.28 * len(tokens))
    return plot_bars(tokens, probabilities, title=title, xlabel="P(w | context)", horizontal=True,
                     highlight=["<unk>", "</s>"], figsize=figsize or (DEFAULT_FIGSIZE[0], height))
