"""What the explorers of every chapter share: the next-token table, its HTML, and how a context is read."""
from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from course_lib import checks
from course_lib.checks import ArgumentError
from course_lib.viz.style import BAR_COLOUR, HIGHLIGHT_COLOUR

Tokenize = Callable[[str], list[str]]
Detokenize = Callable[[Sequence[str]], str]

SPECIAL_COLOUR = HIGHLIGHT_COLOUR  # the bars of <unk>, </s> and <s>, as in the figures
SPECIAL_TOKENS = ("<unk>", "</s>", "<s>")
ERROR_STYLE = "color:#b00"
TABLE_BAR_PIXELS = 240  # the length of the most probable token's bar


def context_tokens(context: str | Sequence[str], tokenize: Tokenize) -> list[str]:
    """A context given as text is tokenized; a list of tokens is taken as it is."""
    if isinstance(context, str):
        return list(tokenize(context))
    if not isinstance(context, Sequence) or not all(isinstance(token, str) for token in context):
        raise ArgumentError(f"context must be a str or a list of str tokens, got {type(context).__name__}")
    return list(context)


@dataclass(frozen=True)
class NextTokenTable:
    """The k most probable next tokens after a context.

    context : the tokens the model conditions on (for an n-gram model, its last n-1 tokens).
    rows    : ``((token, P(token | context)), ...)``, most probable first, ties alphabetical.
    """

    context: tuple[str, ...]
    rows: tuple[tuple[str, float], ...]

    @property
    def tokens(self) -> list[str]:
        return [token for token, _ in self.rows]

    @property
    def probabilities(self) -> list[float]:
        return [probability for _, probability in self.rows]


def table_html(table: NextTokenTable) -> str:
    """An HTML table of the rows, each with a bar whose length is its probability (the top row's
    bar full length); the special symbols ``<unk>``, ``</s>`` and ``<s>`` in another colour."""
    context = " ".join(table.context) if table.context else "(no context: n = 1)"
    top = max(table.probabilities)
    lines = [f"<div><b>P(w | {html.escape(context)})</b></div>",
             "<table style='border-collapse:collapse;font-family:monospace'>"]
    for token, probability in table.rows:
        colour = SPECIAL_COLOUR if token in SPECIAL_TOKENS else BAR_COLOUR
        width = 0 if top == 0 else round(TABLE_BAR_PIXELS * probability / top)
        lines.append(
            f"<tr><td style='padding:1px 8px;text-align:right'>{html.escape(token)}</td>"
            f"<td style='padding:1px 4px'><div style='background:{colour};width:{width}px;height:0.9em'></div></td>"
            f"<td style='padding:1px 4px'>{probability:.4f}</td></tr>")
    lines.append("</table>")
    return "\n".join(lines)


def error_html(message: str) -> str:
    """An explanation shown in place of a result, in the explorers' error colour."""
    return f"<div style='{ERROR_STYLE}'>{html.escape(message)}</div>"


def how_many(name: str, k: object) -> int:
    """``k`` if it is an integer >= 1: how many next tokens a table lists."""
    k = checks.integer(name, k)
    if k < 1:
        raise ArgumentError(f"{name} must be >= 1 (how many next tokens to list), got {k}")
    return k
