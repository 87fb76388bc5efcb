"""A matrix as coloured cells: count and probability tables, gates and attention weights."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from course_lib import checks
from course_lib.checks import ArgumentError
from course_lib.viz._data import as_labels
from course_lib.viz.style import SMALL_SIZE, TICK_SIZE, label_axes, new_axes, styled

MAX_ANNOTATED_CELLS = 400  # above this, numbers in the cells would not be readable
SMALLEST_TICK_SIZE = 7.0  # points; below this a label is not worth drawing


def column_label_size(columns: int, axes_width_inches: float) -> tuple[float, int]:
    """The font size and rotation at which ``columns`` labels fit under an axes without overlapping.

    A label is written across its column (rotation 0) when the column is wide, slanted (45°)
    when slanting gives it room, and upright (90°) otherwise, in a font no taller than the
    column is wide. Returns ``(points, degrees)``.
    """
    column_points = 72 * axes_width_inches / max(columns, 1)
    if column_points >= 4.5 * TICK_SIZE:
        return TICK_SIZE, 0
    if column_points >= 1.6 * TICK_SIZE:
        return TICK_SIZE, 45
    return max(SMALLEST_TICK_SIZE, min(TICK_SIZE, 0.95 * column_points)), 90


@styled
def plot_heatmap(matrix: Sequence[Sequence[float]] | np.ndarray, row_labels: Sequence[str],
                 col_labels: Sequence[str], *, title: str = "", xlabel: str = "", ylabel: str = "",
                 annotate: bool = True, fmt: str = "{:.2f}", cmap: str = "Blues",
                 colorbar_label: str | None = None, figsize: tuple[float, float] | None = None) -> Figure:
    """``matrix[i, j]`` as a coloured cell in row ``row_labels[i]``, column ``col_labels[j]``.

    matrix : (rows, cols). annotate : write each value in its cell with ``fmt`` (skipped above
    400 cells, where the numbers would not be readable). Column labels turn upright and smaller
    when the columns are narrow, so that neighbours never overlap.
    """
    try:
        values = np.asarray(matrix, dtype=float)
    except (TypeError, ValueError):
        raise ArgumentError(f"matrix must be a 2-D array of numbers, got {type(matrix).__name__}") from None
    if values.ndim != 2 or 0 in values.shape:
        raise ArgumentError(f"matrix must be a non-empty 2-D array (rows, cols), got shape {values.shape}")
    rows, cols = as_labels(row_labels, "row_labels"), as_labels(col_labels, "col_labels")
    if (len(rows), len(cols)) != values.shape:
        raise ArgumentError(f"matrix has shape {values.shape} but there are {len(rows)} row labels "
                            f"and {len(cols)} column labels")
    if not np.isfinite(values).all():
        raise ArgumentError("matrix contains NaN or inf; a heatmap needs finite values")
    if colorbar_label is not None:
        checks.text("colorbar_label", colorbar_label)
    figure, axes = new_axes(figsize)
    image = axes.imshow(values, cmap=cmap, aspect="auto")
    label_axes(axes, title, xlabel, ylabel)
    # The axes gets about 70% of the figure's width once row labels and colour bar are placed.
    size, rotation = column_label_size(len(cols), 0.7 * figure.get_figwidth())
    axes.set_xticks(range(len(cols)), cols, rotation=rotation, fontsize=size,
                    ha={0: "center", 45: "right", 90: "center"}[rotation], rotation_mode="anchor"
                    if rotation == 45 else "default")
    axes.set_yticks(range(len(rows)), rows)
    colorbar = figure.colorbar(image, ax=axes)
    if colorbar_label:
        colorbar.set_label(colorbar_label)
    if annotate and values.size <= MAX_ANNOTATED_CELLS:
        # White text on the darker half of the colour scale, black on the lighter half.
        low, high = values.min(), values.max()
        middle = (low + high) / 2
        for (i, j), value in np.ndenumerate(values):
            axes.text(j, i, fmt.format(value), ha="center", va="center", fontsize=SMALL_SIZE,
                      color="white" if high > low and value > middle else "black")
    return figure
