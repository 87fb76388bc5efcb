"""Chapter 2's picture of tokenization: a text as its tokens in coloured boxes, one row per tokenizer."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from course_lib import checks
from course_lib.checks import ArgumentError
from course_lib.viz._data import as_labels
from course_lib.viz.style import COLUMN_WIDTH, DPI, TOKEN_COLOURS, styled

TOKEN_FONT_POINTS = 9.0
CHAR_WIDTH_INCHES = 0.6 * TOKEN_FONT_POINTS / 72  # a monospace glyph is about 0.6 em wide
LINE_HEIGHT_INCHES = 0.27
TOKEN_GAP_CHARS = 0.6  # white space between two boxes, in character widths
# As many characters as fit in the column: the figure is never wider than the book's text.
COLUMN_CHARS = int((COLUMN_WIDTH - 0.3) / CHAR_WIDTH_INCHES)


def shown_token(token: str) -> str:
    """A token as it can be drawn: line breaks and tabs spelled out so each box stays on one line."""
    return token.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


def _wrapped(tokens: list[str], line_chars: int) -> list[list[str]]:
    lines: list[list[str]] = [[]]
    used = 0.0
    for token in map(shown_token, tokens):
        width = len(token) + TOKEN_GAP_CHARS
        if lines[-1] and used + width > line_chars:
            lines.append([])
            used = 0.0
        lines[-1].append(token)
        used += width
    return lines


@styled
def plot_token_segmentations(rows: Mapping[str, Sequence[str]], *, title: str = "",
                             line_chars: int = COLUMN_CHARS) -> Figure:
    """Each row ``{label: tokens}`` as its tokens in coloured boxes, one box per token, in reading order.

    The label is written above its row; a row longer than ``line_chars`` characters (by default
    as many as fit in the book's column) wraps onto more lines. Boxes are as wide as their text
    in a monospace font, so how finely a tokenizer cuts the text is visible at a glance (compare
    rows with more and fewer merges).
    """
    if not isinstance(rows, Mapping) or not rows:
        raise ArgumentError("rows must be a non-empty dict {label: list of token strings}")
    line_chars = checks.integer("line_chars", line_chars, minimum=8)
    checks.text("title", title)
    layout: list[tuple[str, list[list[str]]]] = []  # (label, lines of tokens)
    for label, tokens in rows.items():
        if not isinstance(label, str):
            raise ArgumentError(f"row labels must be str, got {type(label).__name__} {label!r}")
        tokens = as_labels(tokens, f"the tokens of row {label!r}")
        if not tokens or not all(tokens):
            raise ArgumentError(f"row {label!r} must hold at least one token, and no empty token")
        layout.append((label, _wrapped(tokens, line_chars)))

    total_lines = sum(1 + len(lines) for _, lines in layout)  # a label line, then the token lines
    title_inches = 0.45 if title else 0.1
    width_inches = line_chars * CHAR_WIDTH_INCHES + 0.3
    height_inches = total_lines * LINE_HEIGHT_INCHES + title_inches + 0.1
    figure = Figure(figsize=(width_inches, height_inches), dpi=DPI)
    # One data unit is one character wide and one line high, so boxes fit their text exactly.
    axes = figure.add_axes((0.15 / width_inches, 0.1 / height_inches,
                            line_chars * CHAR_WIDTH_INCHES / width_inches,
                            total_lines * LINE_HEIGHT_INCHES / height_inches))
    axes.set_xlim(0, line_chars)
    axes.set_ylim(total_lines, 0)
    axes.set_axis_off()
    line = 0
    for label, lines in layout:
        axes.text(0, line + 0.5, label, ha="left", va="center", fontsize=TOKEN_FONT_POINTS,
                  fontweight="bold", parse_math=False)
        line += 1
        box_index = 0
        for tokens in lines:
            x = 0.0
            for token in tokens:
                axes.add_patch(Rectangle((x, line + 0.12), len(token), 0.76, linewidth=0.5, edgecolor="#888888",
                                         facecolor=TOKEN_COLOURS[box_index % len(TOKEN_COLOURS)]))
                axes.text(x + len(token) / 2, line + 0.5, token, ha="center", va="center",
                          fontsize=TOKEN_FONT_POINTS, family="monospace", parse_math=False)
                x += len(token) + TOKEN_GAP_CHARS
                box_index += 1
            line += 1
    if title:
        figure.suptitle(title, y=1 - 0.08 / height_inches, va="top")
    return figure
