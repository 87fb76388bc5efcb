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
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter

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


def _plain_log_ticks(axis: Any) -> None:
    """Label a log axis with plain numbers (5, 10, 20, 50, 100), not powers of ten."""
    def major(value: float, _position: int) -> str:
        return f"{value:g}"

    def minor(value: float, _position: int) -> str:
        leading = round(value / 10 ** math.floor(math.log10(value))) if value > 0 else 0
        return f"{value:g}" if leading in (2, 5) else ""

    axis.set_major_formatter(FuncFormatter(major))
    axis.set_minor_formatter(FuncFormatter(minor))


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


def _series_pair(label: object, pair: object, where: str) -> tuple[np.ndarray, np.ndarray]:
    """The checked ``(x, y)`` of one series ``{label: (x, y)}``; ``where`` names it in errors."""
    if not isinstance(label, str):
        raise TypeError(f"series labels must be str, got {type(label).__name__} {label!r}")
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise ValueError(f"{where} must be a pair (x, y) of equal-length sequences")
    x, y = _as_vector(pair[0], f"x of {label!r}"), _as_vector(pair[1], f"y of {label!r}")
    if x.shape != y.shape:
        raise ValueError(f"{where} has {x.size} x values but {y.size} y values")
    return x, y


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
        x, y = _series_pair(label, pair, f"series[{label!r}]")
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
        _plain_log_ticks(axes.yaxis)
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


# ---------------------------------------------------------------------------------------------
# Chapter 2: how a tokenizer cuts text
# ---------------------------------------------------------------------------------------------


TOKEN_COLOURS = ("#cfe2f3", "#fce5cd", "#d9ead3", "#f4cccc", "#e1d5e7", "#fff2cc")
_TOKEN_FONT_POINTS = 9.0
_CHAR_WIDTH_INCHES = 0.6 * _TOKEN_FONT_POINTS / 72  # a monospace glyph is about 0.6 em wide
_LINE_HEIGHT_INCHES = 0.27
_TOKEN_GAP_CHARS = 0.6  # white space between two boxes, in character widths


def _shown_token(token: str) -> str:
    """A token as it can be drawn: line breaks and tabs spelled out so each box stays on one line."""
    return token.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


def plot_token_segmentations(rows: Mapping[str, Sequence[str]], *, title: str = "",
                             line_chars: int = 72) -> Figure:
    """Each row ``{label: tokens}`` as its tokens in coloured boxes, one box per token, in reading order.

    The label is written above its row; a row longer than ``line_chars`` characters wraps onto
    more lines. Boxes are as wide as their text in a monospace font, so how finely a tokenizer
    cuts the text is visible at a glance (compare rows with more and fewer merges).
    """
    if not isinstance(rows, Mapping) or not rows:
        raise ValueError("rows must be a non-empty dict {label: list of token strings}")
    if isinstance(line_chars, bool) or not isinstance(line_chars, int) or line_chars < 8:
        raise ValueError(f"line_chars must be an integer >= 8, got {line_chars!r}")
    layout: list[tuple[str, list[list[str]]]] = []  # (label, lines of tokens)
    for label, tokens in rows.items():
        if not isinstance(label, str):
            raise TypeError(f"row labels must be str, got {type(label).__name__} {label!r}")
        tokens = _as_labels(tokens, f"the tokens of row {label!r}")
        if not tokens or not all(tokens):
            raise ValueError(f"row {label!r} must hold at least one token, and no empty token")
        lines: list[list[str]] = [[]]
        used = 0.0
        for token in map(_shown_token, tokens):
            width = len(token) + _TOKEN_GAP_CHARS
            if lines[-1] and used + width > line_chars:
                lines.append([])
                used = 0.0
            lines[-1].append(token)
            used += width
        layout.append((label, lines))

    total_lines = sum(1 + len(lines) for _, lines in layout)  # a label line, then the token lines
    title_inches = 0.45 if title else 0.1
    width_inches = line_chars * _CHAR_WIDTH_INCHES + 0.3
    height_inches = total_lines * _LINE_HEIGHT_INCHES + title_inches + 0.1
    figure = Figure(figsize=(width_inches, height_inches), dpi=DPI)
    # One data unit is one character wide and one line high, so boxes fit their text exactly.
    axes = figure.add_axes((0.15 / width_inches, 0.1 / height_inches,
                            line_chars * _CHAR_WIDTH_INCHES / width_inches,
                            total_lines * _LINE_HEIGHT_INCHES / height_inches))
    axes.set_xlim(0, line_chars)
    axes.set_ylim(total_lines, 0)
    axes.set_axis_off()
    line = 0
    for label, lines in layout:
        axes.text(0, line + 0.5, label, ha="left", va="center", fontsize=_TOKEN_FONT_POINTS,
                  fontweight="bold", parse_math=False)
        line += 1
        colour = 0
        for tokens in lines:
            x = 0.0
            for token in tokens:
                box = Rectangle((x, line + 0.12), len(token), 0.76, facecolor=TOKEN_COLOURS[colour % len(TOKEN_COLOURS)],
                                edgecolor="#888888", linewidth=0.5)
                axes.add_patch(box)
                axes.text(x + len(token) / 2, line + 0.5, token, ha="center", va="center",
                          fontsize=_TOKEN_FONT_POINTS, family="monospace", parse_math=False)
                x += len(token) + _TOKEN_GAP_CHARS
                colour += 1
            line += 1
    if title:
        figure.suptitle(title, y=1 - 0.08 / height_inches, va="top")
    return figure


# ---------------------------------------------------------------------------------------------
# Chapter 3: word vectors in the plane, and distributions side by side
# ---------------------------------------------------------------------------------------------

GROUP_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def plot_labelled_points(groups: Mapping[str, tuple[Sequence[Sequence[float]] | np.ndarray, Sequence[str]]], *,
                         title: str = "", xlabel: str = "", ylabel: str = "", annotate: bool = True,
                         figsize: tuple[float, float] | None = None) -> Figure:
    """Named points in the plane, one colour, marker and legend entry per group.

    groups : ``{group: (points, names)}`` with ``points`` of shape (k, 2) and one name per point,
        e.g. word vectors projected to two dimensions, grouped by the kind of word.
    annotate : write each point's name next to it.
    """
    if not isinstance(groups, Mapping) or not groups:
        raise ValueError("groups must be a non-empty dict {group: (points of shape (k, 2), names)}")
    figure, axes = _new_axes(figsize or (DEFAULT_FIGSIZE[0], 5.0))
    colours = [f"C{i % 10}" for i in range(len(groups))]
    for index, (group, pair) in enumerate(groups.items()):
        if not isinstance(group, str):
            raise TypeError(f"group names must be str, got {type(group).__name__} {group!r}")
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"groups[{group!r}] must be a pair (points, names)")
        try:
            points = np.asarray(pair[0], dtype=float)
        except (TypeError, ValueError):
            raise TypeError(f"the points of {group!r} must be numbers of shape (k, 2)") from None
        names = _as_labels(pair[1], f"the names of {group!r}")
        if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] == 0:
            raise ValueError(f"the points of {group!r} must have shape (k, 2) with k >= 1, got {points.shape}")
        if len(names) != points.shape[0]:
            raise ValueError(f"group {group!r} has {points.shape[0]} points but {len(names)} names")
        if not np.isfinite(points).all():
            raise ValueError(f"the points of {group!r} contain NaN or inf")
        axes.scatter(points[:, 0], points[:, 1], color=colours[index], label=group, s=22,
                     marker=GROUP_MARKERS[index % len(GROUP_MARKERS)])
        if annotate:
            for (x, y), name in zip(points, names):
                axes.annotate(name, (x, y), xytext=(3, 2), textcoords="offset points", fontsize=7,
                              color=colours[index], annotation_clip=False)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small", loc="best")
    _label_axes(axes, title, xlabel, ylabel)
    return figure


def plot_bar_panels(panels: Mapping[str, Sequence[tuple[str, float]] | Mapping[str, float]], *,
                    title: str = "", xlabel: str = "", fmt: str = "{:.2f}",
                    highlight: Sequence[str] = ("<unk>", "</s>"),
                    figsize: tuple[float, float] | None = None) -> Figure:
    """Horizontal bar charts side by side, one panel per ``{panel title: [(label, value), ...]}``.

    The panels share the x axis, so the same value has the same length everywhere: two
    next-token distributions of one model at two temperatures, say, compare at a glance.
    Within a panel the first pair is on top; ``highlight`` labels are drawn in a contrasting colour.
    """
    if not isinstance(panels, Mapping) or not panels:
        raise ValueError("panels must be a non-empty dict {panel title: [(label, value), ...]}")
    marked = set(_as_labels(list(highlight), "highlight"))
    rows = {}
    for name, pairs in panels.items():
        if not isinstance(name, str):
            raise TypeError(f"panel titles must be str, got {type(name).__name__} {name!r}")
        pairs = list(pairs.items()) if isinstance(pairs, Mapping) else list(pairs)
        if not pairs or not all(isinstance(pair, (tuple, list)) and len(pair) == 2 for pair in pairs):
            raise ValueError(f"panel {name!r} must hold at least one (label, value) pair")
        labels = _as_labels([label for label, _ in pairs], f"the labels of panel {name!r}")
        values = _as_vector([value for _, value in pairs], f"the values of panel {name!r}")
        if not np.isfinite(values).all():
            raise ValueError(f"the values of panel {name!r} must be finite to draw bars")
        rows[name] = (labels, values)
    tallest = max(len(labels) for labels, _ in rows.values())
    height = max(2.5, 1.0 + 0.28 * tallest)
    figure = Figure(figsize=figsize or (3.6 * len(rows) + 0.4, height),
                    dpi=DPI, layout="constrained")
    all_axes = figure.subplots(1, len(rows), sharex=True, squeeze=False)[0]
    largest = max(float(values.max()) for _, values in rows.values())
    for axes, (name, (labels, values)) in zip(all_axes, rows.items()):
        positions = np.arange(len(labels))
        colours = ["tab:orange" if label in marked else "tab:blue" for label in labels]
        bars = axes.barh(positions, values, color=colours)
        axes.set_yticks(positions, labels)
        axes.invert_yaxis()
        axes.bar_label(bars, labels=[fmt.format(v) for v in values], padding=2, fontsize="x-small")
        axes.set_xlim(0, max(largest, 0) * 1.25 or 1)
        axes.grid(True, axis="x", alpha=0.3)
        axes.set_title(name, fontsize="medium")
        axes.set_xlabel(xlabel)
    if not isinstance(title, str):
        raise TypeError(f"title must be a str, got {type(title).__name__}")
    if title:
        figure.suptitle(title)
    return figure


# ---------------------------------------------------------------------------------------------
# Chapter 4: curves side by side, and the recurrent network folded and unrolled
# ---------------------------------------------------------------------------------------------

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
        raise ValueError("panels must be a non-empty dict {panel title: {label: (x, y)}}")
    styles = {} if styles is None else styles
    checked: dict[str, list[tuple[str, np.ndarray, np.ndarray]]] = {}
    for name, series in panels.items():
        if not isinstance(name, str):
            raise TypeError(f"panel titles must be str, got {type(name).__name__} {name!r}")
        if not isinstance(series, Mapping) or not series:
            raise ValueError(f"panel {name!r} must be a non-empty dict {{label: (x, y)}}")
        lines = []
        for label, pair in series.items():
            lines.append((label, *_series_pair(label, pair, f"panel {name!r}: series {label!r}")))
        checked[name] = lines
    labels = list(dict.fromkeys(label for lines in checked.values() for label, _, _ in lines))
    unknown = set(styles) - set(labels)
    if unknown:
        raise ValueError(f"styles names series that are not plotted: {sorted(unknown)}; plotted: {labels}")
    colours = {label: f"C{i % 10}" for i, label in enumerate(labels)}
    figure = Figure(figsize=figsize or (3.4 * len(checked) + 0.6, 3.5), dpi=DPI, layout="constrained")
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
        axes.set_title(name, fontsize="medium")
        axes.set_xlabel(xlabel)
        if index == 0:
            axes.set_ylabel(ylabel)
        if not same_series or index == len(checked) - 1:
            axes.legend(fontsize="small")
    if not isinstance(title, str):
        raise TypeError(f"title must be a str, got {type(title).__name__}")
    if title:
        figure.suptitle(title)
    return figure


def plot_unrolled_rnn(steps: int = 4, *, title: str = "", figsize: tuple[float, float] | None = None) -> Figure:
    """The recurrent network as a cyclic graph (left) and unrolled over ``steps`` time steps (right).

    Inputs ``i_t`` at the bottom, hidden states ``h_t`` in the middle, outputs ``o_t`` on top; every
    arrow of one kind carries the same matrix (``W_hi``, ``W_hh``, ``W_oh``): the unrolled network is
    a deep network whose layers share their weights.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 8:
        raise ValueError(f"steps must be an integer from 1 to 8 (the diagram's width), got {steps!r}")
    if not isinstance(title, str):
        raise TypeError(f"title must be a str, got {type(title).__name__}")
    gap = 1.35
    start = 4.3  # x of h_1
    figure = Figure(figsize=figsize or (1.6 + 1.25 * (steps + 2), 3.4), dpi=DPI, layout="constrained")
    axes = figure.add_subplot()
    axes.set_xlim(-0.2, start + gap * (steps - 1) + 0.7)
    axes.set_ylim(-0.55, 2.55)
    axes.axis("off")
    colours = {"i": "#dbe9f6", "h": "#fde3c8", "o": "#dcefd9"}

    def node(x: float, y: float, text: str, kind: str) -> None:
        axes.text(x, y, text, ha="center", va="center", fontsize=12, zorder=3,
                  bbox={"boxstyle": "round,pad=0.35", "facecolor": colours[kind], "edgecolor": "0.3"})

    def arrow(start_xy: tuple[float, float], end_xy: tuple[float, float], label: str = "",
              offset: tuple[float, float] = (0.0, 0.0), curve: float = 0.0) -> None:
        axes.annotate("", xy=end_xy, xytext=start_xy, zorder=2,
                      arrowprops={"arrowstyle": "-|>", "color": "0.25", "shrinkA": 15, "shrinkB": 15,
                                  "connectionstyle": f"arc3,rad={curve}"})
        if label:
            middle = ((start_xy[0] + end_xy[0]) / 2 + offset[0], (start_xy[1] + end_xy[1]) / 2 + offset[1])
            axes.text(*middle, label, ha="center", va="center", fontsize=9, color="0.15")

    # the cyclic graph
    node(0.6, 0, "$i_t$", "i")
    node(0.6, 1, "$h_t$", "h")
    node(0.6, 2, "$o_t$", "o")
    arrow((0.6, 0), (0.6, 1), "$W_{hi}$", (-0.3, 0))
    arrow((0.6, 1), (0.6, 2), "$W_{oh}$", (-0.3, 0))
    axes.annotate("", xy=(0.78, 0.86), xytext=(0.78, 1.14), zorder=2,
                  arrowprops={"arrowstyle": "-|>", "color": "0.25", "shrinkA": 0, "shrinkB": 0,
                              "connectionstyle": "arc3,rad=-2.2"})
    axes.text(1.32, 1.0, "$W_{hh}$", ha="left", va="center", fontsize=9, color="0.15")
    axes.text(2.1, 1.0, "unroll\n$\\Longrightarrow$", ha="center", va="center", fontsize=10)

    # the unrolled network
    names = [str(t) for t in range(1, steps + 1)] if steps <= 4 else [*map(str, range(1, steps)), "T"]
    node(start - gap, 1, "$h_0$", "h")
    for index, t in enumerate(names):
        x = start + gap * index
        node(x, 0, f"$i_{{{t}}}$", "i")
        node(x, 1, f"$h_{{{t}}}$", "h")
        node(x, 2, f"$o_{{{t}}}$", "o")
        arrow((x, 0), (x, 1), "$W_{hi}$", (-0.3, 0))
        arrow((x, 1), (x, 2), "$W_{oh}$", (-0.3, 0))
        arrow((x - gap, 1), (x, 1), "$W_{hh}$", (0, 0.17))
    if title:
        axes.set_title(title)
    return figure
