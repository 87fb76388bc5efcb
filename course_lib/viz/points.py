"""Named points in the plane (word vectors projected to two dimensions), labels that never overlap."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from course_lib.checks import ArgumentError
from course_lib.viz._data import as_labels, as_points
from course_lib.viz.style import COLUMN_WIDTH, SMALL_SIZE, colour, label_axes, new_axes, styled

GROUP_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
# Where a label may go, as (dx, dy) in points from its point, tried in this order: beside the
# point first, then above or below it, then the same further out.
_NEAR = ((4, 2), (4, -9), (-4, 2), (-4, -9), (0, 5), (0, -13), (7, -4), (-7, -4))
LABEL_OFFSETS = _NEAR + tuple((2.6 * dx, 2.6 * dy) for dx, dy in _NEAR)


def _overlap(box: Bbox, others: Sequence[Bbox]) -> float:
    """The area of ``box`` covered by ``others`` (overlaps counted once per other box)."""
    total = 0.0
    for other in others:
        width = min(box.x1, other.x1) - max(box.x0, other.x0)
        height = min(box.y1, other.y1) - max(box.y0, other.y0)
        if width > 0 and height > 0:
            total += width * height
    return total


def place_labels(axes, points: np.ndarray, names: Sequence[str], colours: Sequence[str],
                 obstacles: Sequence[Bbox] = ()) -> list[tuple[float, float]]:
    """Write each name next to its point where it covers no other label, point or obstacle.

    points : (k, 2) in data coordinates; the axes must be laid out (drawn once) already.
    Each label takes the first of :data:`LABEL_OFFSETS` at which its box stays inside the axes
    and overlaps nothing placed before it, else the offset where it overlaps least.
    Returns the chosen offsets, in points.
    """
    figure = axes.figure
    canvas = figure.canvas if isinstance(figure.canvas, FigureCanvasAgg) else FigureCanvasAgg(figure)
    renderer = canvas.get_renderer()
    pixels_per_point = figure.dpi / 72
    inside = axes.get_window_extent(renderer)
    centres = axes.transData.transform(points)
    marker = 4 * pixels_per_point
    taken = [Bbox.from_extents(x - marker, y - marker, x + marker, y + marker) for x, y in centres]
    taken += list(obstacles)
    chosen = []
    for (x, y), name, name_colour in zip(centres, names, colours):
        probe = axes.text(0, 0, name, fontsize=SMALL_SIZE, parse_math=False)
        extent = probe.get_window_extent(renderer)
        probe.remove()
        best, best_cost = None, float("inf")
        for dx, dy in LABEL_OFFSETS:
            left = x + dx * pixels_per_point - (extent.width if dx < 0 else extent.width / 2 if dx == 0 else 0)
            bottom = y + dy * pixels_per_point
            box = Bbox.from_bounds(left, bottom, extent.width, extent.height)
            outside = (max(0, inside.x0 - box.x0) + max(0, box.x1 - inside.x1)
                       + max(0, inside.y0 - box.y0) + max(0, box.y1 - inside.y1))
            cost = _overlap(box, taken) + 1e3 * outside
            if cost < best_cost:
                best, best_cost = (dx, dy, box), cost
            if cost == 0:
                break
        dx, dy, box = best
        taken.append(box)
        chosen.append((dx, dy))
        label = axes.annotate(name, points[len(chosen) - 1], xytext=(dx, dy), textcoords="offset points",
                              ha="right" if dx < 0 else "center" if dx == 0 else "left", va="bottom",
                              fontsize=SMALL_SIZE, color=name_colour, annotation_clip=False,
                              parse_math=False)
        label.set_in_layout(False)  # placed for this layout: it must not move the axes
    return chosen


@styled
def plot_labelled_points(groups: Mapping[str, tuple[Sequence[Sequence[float]] | np.ndarray, Sequence[str]]], *,
                         title: str = "", xlabel: str = "", ylabel: str = "", annotate: bool = True,
                         figsize: tuple[float, float] | None = None) -> Figure:
    """Named points in the plane, one colour, marker and legend entry per group.

    groups : ``{group: (points, names)}`` with ``points`` of shape (k, 2) and one name per point,
        e.g. word vectors projected to two dimensions, grouped by the kind of word.
    annotate : write each point's name next to it, where it covers no other name
        (:func:`place_labels`); the legend sits outside the plotting area, beside it.
    """
    if not isinstance(groups, Mapping) or not groups:
        raise ArgumentError("groups must be a non-empty dict {group: (points of shape (k, 2), names)}")
    checked = []
    for index, (group, pair) in enumerate(groups.items()):
        if not isinstance(group, str):
            raise ArgumentError(f"group names must be str, got {type(group).__name__} {group!r}")
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ArgumentError(f"groups[{group!r}] must be a pair (points, names)")
        names = as_labels(pair[1], f"the names of {group!r}")
        points = as_points(pair[0], f"the points of {group!r}")
        if len(names) != points.shape[0]:
            raise ArgumentError(f"group {group!r} has {points.shape[0]} points but {len(names)} names")
        checked.append((group, points, names, colour(index), GROUP_MARKERS[index % len(GROUP_MARKERS)]))
    figure, axes = new_axes(figsize, (COLUMN_WIDTH, 4.6))
    for group, points, _, group_colour, marker in checked:
        axes.scatter(points[:, 0], points[:, 1], color=group_colour, label=group, s=24, marker=marker)
    axes.margins(0.12)  # room for the labels of the outermost points
    axes.grid(True, alpha=0.3)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    label_axes(axes, title, xlabel, ylabel)
    if annotate:
        figure.draw_without_rendering()  # fix the layout, so positions on the page are known
        all_points = np.concatenate([points for _, points, _, _, _ in checked])
        place_labels(axes, all_points, [name for *_, names, _, _ in checked for name in names],
                     [c for _, points, _, c, _ in checked for _ in range(len(points))])
    return figure
