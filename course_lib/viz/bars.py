"""Bars: one bar per label, a next-token distribution, and distributions side by side."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from course_lib import checks
from course_lib.checks import ArgumentError
from course_lib.viz._data import as_labels, as_vector, label_value_pairs
from course_lib.viz.style import (BAR_COLOUR, COLUMN_WIDTH, DEFAULT_FIGSIZE, FONT_SIZE, HIGHLIGHT_COLOUR,
                                  SMALL_SIZE, label_axes, new_axes, new_figure, styled)

ROW_INCHES = 0.26  # the height of one horizontal bar with its label


def bar_colours(labels: Sequence[str], highlight: Sequence[str]) -> list[str]:
    """The palette's bar colour for each label, the highlight colour for the ``highlight`` ones."""
    marked = set(as_labels(list(highlight), "highlight"))
    return [HIGHLIGHT_COLOUR if label in marked else BAR_COLOUR for label in labels]


def _rows_height(rows: int, extra: float = 1.0) -> float:
    return max(2.4, extra + ROW_INCHES * rows)


@styled
def plot_bars(labels: Sequence[str], values: Sequence[float], *, title: str = "", xlabel: str = "",
              ylabel: str = "", horizontal: bool = False, annotate: bool = True, fmt: str = "{:.3f}",
              highlight: Sequence[str] = (), figsize: tuple[float, float] | None = None) -> Figure:
    """One bar per label, in the order given (top to bottom when ``horizontal``).

    highlight : labels whose bars are drawn in a contrasting colour (e.g. ``"<unk>"``).
    """
    names = as_labels(labels, "labels")
    heights = as_vector(values, "values")
    if len(names) != heights.size:
        raise ArgumentError(f"{len(names)} labels but {heights.size} values")
    if not names:
        raise ArgumentError("plot_bars needs at least one bar")
    if not np.isfinite(heights).all():
        raise ArgumentError("values must be finite to draw bars")
    colours = bar_colours(names, highlight)
    figure, axes = new_axes(figsize)
    positions = np.arange(len(names))
    if horizontal:
        bars = axes.barh(positions, heights, color=colours)
        axes.set_yticks(positions, names)
        axes.invert_yaxis()  # the first label on top, as a reader scans a ranked list
        axes.grid(True, axis="x", alpha=0.3)
    else:
        bars = axes.bar(positions, heights, color=colours)
        slanted = len(names) > 6
        axes.set_xticks(positions, names, rotation=45 if slanted else 0,
                        ha="right" if slanted else "center", rotation_mode="anchor")
        axes.grid(True, axis="y", alpha=0.3)
    if annotate:
        axes.bar_label(bars, labels=[fmt.format(h) for h in heights], padding=2, fontsize=SMALL_SIZE)
        # Leave room after the longest bar for its label.
        if horizontal:
            axes.set_xlim(0, max(heights.max(), 0) * 1.2 or 1)
        else:
            axes.set_ylim(0, max(heights.max(), 0) * 1.15 or 1)
    label_axes(axes, title, xlabel, ylabel)
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
        raise ArgumentError("rows is empty: give at least one (token, probability) pair")
    if not all(isinstance(pair, (tuple, list)) and len(pair) == 2 for pair in pairs):
        raise ArgumentError("rows must be (token, probability) pairs")
    tokens = [token for token, _ in pairs]
    probabilities = as_vector([p for _, p in pairs], "probabilities")
    if ((probabilities < 0) | (probabilities > 1)).any():
        raise ArgumentError("probabilities must lie in [0, 1]")
    if title is None:
        shown = " ".join(as_labels(list(context), "context")) if context is not None else "h"
        title = f"Next token after “{shown}”" if shown else "Next token (no context)"
    return plot_bars(tokens, probabilities, title=title, xlabel="P(w | context)", horizontal=True,
                     highlight=["<unk>", "</s>"],
                     figsize=figsize or (DEFAULT_FIGSIZE[0], _rows_height(len(tokens), 0.9)))


@styled
def plot_bar_panels(panels: Mapping[str, Sequence[tuple[str, float]] | Mapping[str, float]], *,
                    title: str = "", xlabel: str = "", fmt: str = "{:.2f}",
                    highlight: Sequence[str] = ("<unk>", "</s>"),
                    figsize: tuple[float, float] | None = None) -> Figure:
    """Horizontal bar charts side by side, one panel per ``{panel title: [(label, value), ...]}``.

    The panels share the x axis, so the same value has the same length everywhere: two
    next-token distributions of one model at two temperatures, say, compare at a glance.
    Within a panel the first pair is on top; ``highlight`` labels are drawn in a contrasting colour.
    With more panels than fit side by side in the column (three), they continue on a new row.
    """
    if not isinstance(panels, Mapping) or not panels:
        raise ArgumentError("panels must be a non-empty dict {panel title: [(label, value), ...]}")
    rows = {}
    for name, pairs in panels.items():
        if not isinstance(name, str):
            raise ArgumentError(f"panel titles must be str, got {type(name).__name__} {name!r}")
        rows[name] = label_value_pairs(pairs, f"panel {name!r}")
    checks.text("title", title)
    as_labels(list(highlight), "highlight")
    columns = min(len(rows), 3)
    grid_rows = -(-len(rows) // columns)
    tallest = max(len(labels) for labels, _ in rows.values())
    figure = new_figure(figsize, (COLUMN_WIDTH, grid_rows * _rows_height(tallest, 1.1)))
    all_axes = figure.subplots(grid_rows, columns, sharex=True, squeeze=False).ravel()
    largest = max(float(values.max()) for _, values in rows.values())
    for axes, (name, (labels, values)) in zip(all_axes, rows.items()):
        positions = np.arange(len(labels))
        bars = axes.barh(positions, values, color=bar_colours(labels, highlight))
        axes.set_yticks(positions, labels)
        axes.invert_yaxis()
        axes.bar_label(bars, labels=[fmt.format(v) for v in values], padding=2, fontsize=SMALL_SIZE)
        axes.set_xlim(0, max(largest, 0) * 1.35 or 1)
        axes.grid(True, axis="x", alpha=0.3)
        label_axes(axes, name, xlabel, "")
        axes.title.set_fontsize(FONT_SIZE)  # several panel titles share one row
    for unused in all_axes[len(rows):]:
        unused.set_axis_off()
    if title:
        figure.suptitle(title)
    return figure
