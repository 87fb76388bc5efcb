"""course_lib.viz: each figure holds the data it was given, labelled, drawn without a display."""
from __future__ import annotations

import io
import math

import matplotlib
import matplotlib.text

matplotlib.use("Agg")  # no display: the figures must draw all the same

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.colors import to_rgba
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from course_lib.viz import (DEFAULT_FIGSIZE, plot_bars, plot_curves, plot_heatmap,
                            plot_next_token_distribution)


def only_axes(figure: Figure):
    """The plotting axes (a heatmap's colour bar is an axes too, added after them)."""
    assert isinstance(figure, Figure)
    return figure.axes[0]


def legend_texts(axes) -> list[str]:
    return [text.get_text() for text in axes.get_legend().get_texts()]


def png_bytes(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


# ------------------------------------------------------------------ plot_curves

def test_curves_hold_each_series_its_label_and_the_floor():
    train = ([1, 2, 3, 4], [100.0, 9.0, 4.5, 3.1])
    held_out = ([1, 2, 3, 4], [110.0, 9.5, 5.0, 4.8])
    figure = plot_curves({"train": train, "held-out": held_out}, title="Perplexity", xlabel="n",
                         ylabel="perplexity", hline=2.9, hline_label="entropy floor", logy=True,
                         styles={"train": {"linestyle": "--"}})
    axes = only_axes(figure)
    lines = axes.get_lines()
    assert [line.get_label() for line in lines] == ["train", "held-out", "entropy floor"]
    np.testing.assert_array_equal(lines[0].get_xdata(), train[0])
    np.testing.assert_array_equal(lines[0].get_ydata(), train[1])
    np.testing.assert_array_equal(lines[1].get_ydata(), held_out[1])
    assert lines[0].get_linestyle() == "--" and lines[1].get_linestyle() == "-"
    assert set(lines[2].get_ydata()) == {2.9}
    assert legend_texts(axes) == ["train", "held-out", "entropy floor"]
    assert (axes.get_title(), axes.get_xlabel(), axes.get_ylabel()) == ("Perplexity", "n", "perplexity")
    assert axes.get_yscale() == "log" and axes.get_xscale() == "linear"
    assert tuple(figure.get_size_inches()) == DEFAULT_FIGSIZE
    assert png_bytes(figure).startswith(b"\x89PNG")


def test_a_log_axis_is_labelled_with_plain_numbers():
    figure = plot_curves({"s": ([1, 2, 3], [3.0, 40.0, 120.0])}, logy=True)
    figure.draw_without_rendering()
    axes = only_axes(figure)
    labels = [t.get_text() for t in axes.get_yticklabels() + axes.get_yticklabels(minor=True) if t.get_text()]
    assert "10" in labels and "100" in labels and "50" in labels
    assert not any("^" in label or "e" in label for label in labels)


def test_an_infinite_value_becomes_a_gap_in_its_line():
    figure = plot_curves({"MLE": ([1, 2, 3], [50.0, math.inf, math.inf])}, logy=True)
    y = only_axes(figure).get_lines()[0].get_ydata()
    assert y[0] == 50.0 and np.isnan(y[1:]).all()
    png_bytes(figure)  # still draws


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6)), min_size=1, max_size=40))
def test_curves_keep_any_finite_data_exactly(points):
    x, y = [p[0] for p in points], [p[1] for p in points]
    line = only_axes(plot_curves({"s": (x, y)})).get_lines()[0]
    np.testing.assert_array_equal(line.get_xdata(), x)
    np.testing.assert_array_equal(line.get_ydata(), y)


@pytest.mark.parametrize("series, kwargs, error, words", [
    ({}, {}, ValueError, "non-empty"),
    ({"a": ([1, 2], [1.0])}, {}, ValueError, "2 x values but 1 y values"),
    ({"a": ([1, 2], [1.0, float("nan")])}, {}, ValueError, "NaN"),
    ({"a": ([1], [1.0])}, {"styles": {"b": {"color": "red"}}}, ValueError, "not plotted"),
    ({"a": ([1], [1.0])}, {"hline": math.inf}, ValueError, "hline"),
    ({"a": "12"}, {}, ValueError, "pair"),
    ({"a": (["x"], [1.0])}, {}, TypeError, "numbers"),
    ({"a": ([1], [1.0])}, {"title": 3}, TypeError, "title"),
])
def test_curves_reject_bad_input_with_a_clear_message(series, kwargs, error, words):
    with pytest.raises(error, match=words):
        plot_curves(series, **kwargs)


# ------------------------------------------------------------------ plot_heatmap

def test_heatmap_shows_the_matrix_its_labels_and_annotations():
    matrix = np.array([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])
    figure = plot_heatmap(matrix, ["a", "red"], ["red", "ball", "cat"], title="P(w | h)",
                          xlabel="next word w", ylabel="context h", colorbar_label="probability")
    axes = only_axes(figure)
    np.testing.assert_array_equal(axes.get_images()[0].get_array(), matrix)
    assert [t.get_text() for t in axes.get_xticklabels()] == ["red", "ball", "cat"]
    assert [t.get_text() for t in axes.get_yticklabels()] == ["a", "red"]
    assert [t.get_text() for t in axes.texts] == ["0.00", "0.50", "0.50", "1.00", "0.00", "0.00"]
    # the darkest cell is annotated in white, a light one in black
    assert to_rgba(axes.texts[3].get_color()) == to_rgba("white")
    assert to_rgba(axes.texts[0].get_color()) == to_rgba("black")
    assert figure.axes[1].get_ylabel() == "probability"  # the colour bar
    assert (axes.get_title(), axes.get_xlabel(), axes.get_ylabel()) == ("P(w | h)", "next word w", "context h")


def test_heatmap_annotation_can_be_formatted_or_turned_off():
    counts = [[3, 0], [1, 2]]
    assert [t.get_text() for t in only_axes(plot_heatmap(counts, ["a", "b"], ["x", "y"], fmt="{:.0f}")).texts] \
        == ["3", "0", "1", "2"]
    assert len(only_axes(plot_heatmap(counts, ["a", "b"], ["x", "y"], annotate=False)).texts) == 0


@pytest.mark.parametrize("matrix, rows, cols, error, words", [
    ([1.0, 2.0], ["a"], ["x", "y"], ValueError, "2-D"),
    ([[1.0, 2.0]], ["a", "b"], ["x", "y"], ValueError, "2 row labels"),
    ([[1.0, float("nan")]], ["a"], ["x", "y"], ValueError, "NaN"),
    ([[1.0, 2.0]], "a", ["x", "y"], TypeError, "row_labels"),
    ([["p", "q"]], ["a"], ["x", "y"], TypeError, "numbers"),
])
def test_heatmap_rejects_bad_input(matrix, rows, cols, error, words):
    with pytest.raises(error, match=words):
        plot_heatmap(matrix, rows, cols)


# ------------------------------------------------------------------ plot_bars

def test_bars_have_the_given_heights_order_and_highlight():
    figure = plot_bars(["the", "a", "<unk>"], [0.5, 0.3, 0.2], title="t", ylabel="P", highlight=["<unk>"])
    axes = only_axes(figure)
    patches = axes.patches
    assert [p.get_height() for p in patches] == [0.5, 0.3, 0.2]
    assert [t.get_text() for t in axes.get_xticklabels()] == ["the", "a", "<unk>"]
    assert to_rgba(patches[2].get_facecolor()) != to_rgba(patches[0].get_facecolor())
    assert [t.get_text() for t in axes.texts] == ["0.500", "0.300", "0.200"]


def test_horizontal_bars_put_the_first_label_on_top():
    axes = only_axes(plot_bars(["first", "second"], [2.0, 1.0], horizontal=True, annotate=False))
    assert [p.get_width() for p in axes.patches] == [2.0, 1.0]
    assert axes.yaxis_inverted() and len(axes.texts) == 0


@pytest.mark.parametrize("labels, values, error, words", [
    (["a", "b"], [1.0], ValueError, "2 labels but 1 values"),
    ([], [], ValueError, "at least one"),
    (["a"], [math.inf], ValueError, "finite"),
    ("ab", [1.0, 2.0], TypeError, "labels"),
])
def test_bars_reject_bad_input(labels, values, error, words):
    with pytest.raises(error, match=words):
        plot_bars(labels, values)


# ------------------------------------------------------------------ plot_next_token_distribution

def test_next_token_distribution_draws_the_rows_with_the_context_in_the_title():
    rows = [("red", 0.5), ("ball", 0.25), ("<unk>", 0.125)]
    figure = plot_next_token_distribution(rows, context=["had", "a"])
    axes = only_axes(figure)
    assert [p.get_width() for p in axes.patches] == [0.5, 0.25, 0.125]
    assert [t.get_text() for t in axes.get_yticklabels()] == ["red", "ball", "<unk>"]
    assert "had a" in axes.get_title() and axes.get_xlabel() == "P(w | context)"
    as_dict = only_axes(plot_next_token_distribution(dict(rows), context=()))
    assert [p.get_width() for p in as_dict.patches] == [0.5, 0.25, 0.125]
    assert as_dict.get_title() == "Next token (no context)"


@pytest.mark.parametrize("rows, words", [([], "empty"), ([("a", 1.5)], r"\[0, 1\]"), ([("a",)], "pairs")])
def test_next_token_distribution_rejects_bad_rows(rows, words):
    with pytest.raises(ValueError, match=words):
        plot_next_token_distribution(rows)


# ------------------------------------------------------------------ the shared style

import course_lib.viz as viz_package  # noqa: E402
from course_lib.viz import (plot_bar_panels, plot_curve_panels, plot_labelled_points,  # noqa: E402
                            plot_token_segmentations, plot_unrolled_rnn)
from course_lib.viz.heatmaps import column_label_size  # noqa: E402
from course_lib.viz.style import PALETTE, SMALL_SIZE  # noqa: E402


def every_figure() -> dict[str, Figure]:
    """One figure of each kind, drawn with the defaults, as a chapter draws them."""
    words = [f"word{i}" for i in range(40)]
    return {
        "curves": plot_curves({"a": ([1, 2], [1.0, 2.0])}),
        "curve panels": plot_curve_panels({"p": {"a": ([0, 1], [1.0, 2.0])}, "q": {"a": ([0, 1], [2.0, 1.0])}}),
        "bars": plot_bars(["a", "b"], [1.0, 2.0]),
        "next token": plot_next_token_distribution([("a", 0.5), ("b", 0.25)]),
        "bar panels": plot_bar_panels({f"T = {t}": [("park", 0.5), ("zoo", 0.2)] for t in (0.5, 1, 2)}),
        "heatmap": plot_heatmap(np.ones((3, 40)), ["x", "y", "z"], words, annotate=False),
        "points": plot_labelled_points({"g": ([[0.0, 0.0], [1.0, 1.0]], ["a", "b"])}),
        "tokens": plot_token_segmentations({"row": ["The", " cat"] * 30}),
        "diagram": plot_unrolled_rnn(4),
    }


@pytest.mark.parametrize("kind", list(every_figure()))
def test_every_figure_fits_the_column_at_the_shared_resolution_with_readable_text(kind):
    figure = every_figure()[kind]
    assert figure.dpi == viz_package.DPI >= 150
    assert figure.get_figwidth() <= viz_package.COLUMN_WIDTH + 1e-9, f"{kind} is wider than the column"
    figure.draw_without_rendering()
    sizes = [text.get_fontsize() for text in figure.findobj(matplotlib.text.Text)
             if text.get_text() and text.get_visible()]
    assert sizes and min(sizes) >= 7.0, f"{kind} has text of {min(sizes)} points"


def test_the_palette_is_the_one_every_series_and_bar_takes():
    axes = only_axes(plot_curves({"a": ([1], [1.0]), "b": ([1], [2.0])}))
    assert [to_rgba(line.get_color()) for line in axes.get_lines()] == [to_rgba(PALETTE[0]), to_rgba(PALETTE[1])]
    bars = only_axes(plot_bars(["a", "<unk>"], [1.0, 2.0], highlight=["<unk>"])).patches
    assert [to_rgba(bar.get_facecolor()) for bar in bars] == [to_rgba(PALETTE[0]), to_rgba(PALETTE[1])]


def test_heatmap_column_labels_turn_upright_and_smaller_as_columns_narrow():
    assert column_label_size(3, 4.5) == (9.0, 0)
    assert column_label_size(15, 4.5)[1] == 45
    size, rotation = column_label_size(45, 4.5)
    assert rotation == 90 and 7.0 <= size <= 72 * 4.5 / 45  # no taller than its column is wide


def text_boxes(figure: Figure, texts) -> list:
    renderer = figure.canvas.get_renderer()
    return [text.get_window_extent(renderer) for text in texts]


def test_labelled_points_place_their_names_without_overlap_even_when_points_crowd():
    rng = np.random.default_rng(0)
    crowded = rng.normal(0, 0.05, (6, 2))  # six points almost on top of one another
    spread = rng.uniform(-1, 1, (12, 2))
    groups = {"crowded": (crowded, [f"Name{i}" for i in range(6)]),
              "spread": (spread, [f"word{i}" for i in range(12)])}
    figure = plot_labelled_points(groups)
    FigureCanvasAgg(figure)
    figure.draw_without_rendering()
    axes = figure.axes[0]
    labels = [text for text in axes.texts if text.get_text()]
    assert sorted(text.get_text() for text in labels) == sorted(groups["crowded"][1] + groups["spread"][1])
    boxes = text_boxes(figure, labels)
    overlapping = [(a.get_text(), b.get_text()) for i, (a, box_a) in enumerate(zip(labels, boxes))
                   for b, box_b in list(zip(labels, boxes))[i + 1:] if box_a.overlaps(box_b)]
    assert not overlapping, f"labels overlap: {overlapping}"
    assert all(text.get_fontsize() == SMALL_SIZE for text in labels)
