"""Figures for the book: each function takes plain numbers and returns a matplotlib ``Figure``.

The figures are built without ``pyplot``, so nothing is kept in a global list of open figures
and no figure is shown twice: in a notebook, leave the returned figure as the cell's last value
and Jupyter draws it; elsewhere call ``fig.savefig(path)``. Every figure shares one style
(:mod:`~course_lib.viz.style`: the column's width, fonts readable at that width, 150 dpi, one
palette), so a new chapter's figures look like the old ones without a single setting.

Curves (:mod:`~course_lib.viz.curves`)
    :func:`plot_curves` -- lines y(x), one per named series, with an optional floor line;
    :func:`plot_curve_panels` -- the same side by side, sharing the y axis.
Bars (:mod:`~course_lib.viz.bars`)
    :func:`plot_bars` -- one bar per label; :func:`plot_next_token_distribution` -- the top next
    tokens after a context; :func:`plot_bar_panels` -- distributions side by side.
Heatmaps (:mod:`~course_lib.viz.heatmaps`)
    :func:`plot_heatmap` -- a matrix with labelled rows and columns, optionally annotated.
Points (:mod:`~course_lib.viz.points`)
    :func:`plot_labelled_points` -- named points in the plane, labels that never overlap.
Token segmentations (:mod:`~course_lib.viz.tokens`)
    :func:`plot_token_segmentations` -- a text as its tokens in coloured boxes.
Diagrams (:mod:`~course_lib.viz.diagrams`)
    :func:`plot_unrolled_rnn` -- the recurrent network, folded and unrolled.
    :func:`plot_encoder_decoder` -- the encoder-decoder unrolled, with or without attention;
    :func:`plot_lstm_cell` -- one LSTM step, its memory line and gates;
    :func:`plot_gpt_architecture` -- GPT-2 from the bottom up, named as ``GPT2Model`` names it.
"""
from course_lib.viz.bars import plot_bar_panels, plot_bars, plot_next_token_distribution
from course_lib.viz.curves import plot_curve_panels, plot_curves
from course_lib.viz.diagrams import plot_encoder_decoder, plot_gpt_architecture, plot_lstm_cell, plot_unrolled_rnn
from course_lib.viz.heatmaps import plot_heatmap
from course_lib.viz.points import plot_labelled_points
from course_lib.viz.style import (BAR_COLOUR, COLUMN_WIDTH, DEFAULT_FIGSIZE, DPI, HIGHLIGHT_COLOUR, PALETTE,
                                  TOKEN_COLOURS)
from course_lib.viz.tokens import plot_token_segmentations

__all__ = [
    "BAR_COLOUR", "COLUMN_WIDTH", "DEFAULT_FIGSIZE", "DPI", "HIGHLIGHT_COLOUR", "PALETTE", "TOKEN_COLOURS",
    "plot_bar_panels", "plot_bars", "plot_curve_panels", "plot_curves", "plot_heatmap", "plot_labelled_points",
    "plot_next_token_distribution", "plot_token_segmentations", "plot_unrolled_rnn",
    "plot_encoder_decoder", "plot_gpt_architecture", "plot_lstm_cell",
]
