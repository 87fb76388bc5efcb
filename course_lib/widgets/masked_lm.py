"""Chapter 9: what a masked language model puts in a blank, and what each objective trains on.

Type a sentence with ``[MASK]`` in it: the explorer shows the masked LM's most probable words for
each blank (the model sees the whole sentence, both sides of every blank), and the same sentence
as each pretraining objective turns it into an input and a target (:func:`objective_views`).
"""
from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

import ipywidgets as widgets
import torch
from matplotlib.figure import Figure

from course_lib import checks
from course_lib.checks import ArgumentError
from course_lib.data import word_tokenize
from course_lib.data.text import Vocabulary
from course_lib.objectives import IGNORE_INDEX, causal_lm_targets, mask_tokens, prefix_lm_targets, span_corruption
from course_lib.viz.bars import plot_bar_panels
from course_lib.viz.style import MARK_COLOUR, SMALL_SIZE, TOKEN_COLOURS, new_figure, styled
from course_lib.widgets._common import NextTokenTable, error_html, table_html

MASK = "[MASK]"
NO_LOSS = "·"  # a position without a target


def _mask_tokens(sentence: str) -> list[str]:
    """Words and punctuation, ``[MASK]`` kept whole."""
    tokens: list[str] = []
    for part in checks.text("sentence", sentence).split(MASK):
        tokens += word_tokenize(part) + [MASK]
    return tokens[:-1]


def masked_predictions(model, vocabulary: Vocabulary, sentence: str, *, k: int = 5) -> list[NextTokenTable]:
    """For each ``[MASK]`` of ``sentence``, the ``k`` most probable words (special tokens left out)
    under the masked LM ``model`` (a :class:`~course_lib.bert.BertForMaskedLM` whose last id is
    ``[MASK]``), which reads ``<s> sentence </s>`` with every word seeing every other."""
    checks.positive_int("k", k)
    tokens = _mask_tokens(sentence)
    if MASK not in tokens:
        raise ArgumentError("the sentence has no [MASK]: write [MASK] where the model should guess a word")
    unknown = [token for token in tokens if token != MASK and token not in vocabulary]
    if unknown:
        raise ArgumentError(f"the model does not know the words {unknown}: it was trained on the stories' "
                            "vocabulary (names, colours, places, ...)")
    mask_id = model.config.vocab_size - 1
    ids = [vocabulary.special_id("<s>")] + [mask_id if t == MASK else vocabulary.encode([t])[0] for t in tokens]
    ids.append(vocabulary.special_id("</s>"))
    with torch.no_grad():
        probabilities = model(torch.tensor([ids])).logits[0].softmax(-1)  # (T, V)
    ordinary = [i for i, token in enumerate(vocabulary.tokens) if token not in ("<pad>", "<unk>", "<s>", "</s>")]
    tables = []
    for position, token in enumerate(tokens, start=1):
        if token != MASK:
            continue
        p = probabilities[position, ordinary]
        top = p.topk(min(k, len(ordinary)))
        context = tuple(tokens[max(0, position - 5) : position + 3])
        rows = tuple((vocabulary.tokens[ordinary[int(i)]], float(v)) for v, i in zip(top.values, top.indices))
        tables.append(NextTokenTable(context, rows))
    return tables


@dataclass(frozen=True)
class ObjectiveView:
    """One objective's reading of a sentence: what the model is given and what it must produce
    (``NO_LOSS`` where there is no target)."""

    name: str
    inputs: tuple[str, ...]
    targets: tuple[str, ...]


def objective_views(sentence: str, *, seed: int = 0, prefix_length: int | None = None) -> list[ObjectiveView]:
    """``sentence`` under causal LM, prefix LM, BERT's masked LM and T5's span corruption, over
    the sentence's own words (a toy vocabulary: the words in order, then ``[MASK]``, sentinels)."""
    words = word_tokenize(checks.text("sentence", sentence).replace(MASK, ""))
    if len(words) < 3:
        raise ArgumentError("write a sentence of at least three words")
    vocabulary = list(dict.fromkeys(words)) + [MASK]
    ids = torch.tensor([[vocabulary.index(w) for w in words]])
    mask_id = len(vocabulary) - 1
    prefix = max(1, len(words) // 2) if prefix_length is None else checks.integer(
        "prefix_length", prefix_length, minimum=1, maximum=len(words) - 1)

    def names(row: torch.Tensor, table: list[str]) -> tuple[str, ...]:
        return tuple(NO_LOSS if int(i) == IGNORE_INDEX else table[int(i)] for i in row)

    views = []
    inputs, targets = causal_lm_targets(ids)
    views.append(ObjectiveView("causal LM", names(inputs[0], vocabulary), names(targets[0], vocabulary)))
    inputs, targets = prefix_lm_targets(ids, prefix)
    shown = [word if i >= prefix else word + "*" for i, word in enumerate(names(inputs[0], vocabulary))]
    views.append(ObjectiveView(f"prefix LM (prefix* {prefix})", tuple(shown), names(targets[0], vocabulary)))
    masked = mask_tokens(ids, vocab_size=len(vocabulary), mask_id=mask_id, special_ids=[mask_id], generator=seed,
                         select_probability=0.3)
    views.append(ObjectiveView("masked LM", names(masked.inputs[0], vocabulary), names(masked.labels[0], vocabulary)))
    size = len(vocabulary) + 10  # room for ten sentinels above the words
    corrupted = span_corruption(ids[0], vocab_size=size, generator=seed, noise_density=0.3, mean_span_length=2.0)
    sentinel = {size - 1 - j: f"<S{j}>" for j in range(10)}
    full = {**{i: w for i, w in enumerate(vocabulary)}, **sentinel}
    views.append(ObjectiveView("span corruption (T5)", tuple(full[int(i)] for i in corrupted.inputs),
                               tuple(full[int(i)] for i in corrupted.targets)))
    return views


def views_html(views: Sequence[ObjectiveView]) -> str:
    """The views as small tables: inputs above, targets below."""
    parts = []
    for view in views:
        cells = lambda row: "".join(f"<td style='padding:1px 4px;border:1px solid #ddd'>{html.escape(t)}</td>"
                                    for t in row)
        parts.append(f"<div><b>{html.escape(view.name)}</b></div><table style='font-family:monospace;"
                     f"border-collapse:collapse'><tr><td>input</td>{cells(view.inputs)}</tr>"
                     f"<tr><td>target</td>{cells(view.targets)}</tr></table>")
    return "\n".join(parts)


@styled
def objectives_figure(views: Sequence[ObjectiveView], *, title: str = "") -> Figure:
    """Each objective's input (top row) and target (bottom row), one token per box."""
    if not views:
        raise ArgumentError("objectives_figure needs at least one view")
    width = max(max(len(v.inputs), len(v.targets)) for v in views)
    figure = new_figure(None, (6.4, 0.95 * len(views) + 0.4))
    figure.set_layout_engine("none")  # the axes fill the figure by hand
    axes = figure.add_axes((0.0, 0.0, 1.0, 0.93 if title else 1.0))
    axes.set_xlim(-2.2, width)
    axes.set_ylim(-3 * len(views) + 1.4, 1.3)
    axes.axis("off")
    for row, view in enumerate(views):
        top = -3 * row
        axes.text(-2.2, top + 0.9, view.name, fontsize=SMALL_SIZE + 0.5, fontweight="bold", va="bottom")
        for line, (label, tokens) in enumerate((("input", view.inputs), ("target", view.targets))):
            y = top - line
            axes.text(-0.15, y, label, fontsize=SMALL_SIZE, ha="right", va="center", color="#555")
            for x, token in enumerate(tokens):
                changed = line == 0 and token in (MASK,) or token.startswith("<S")
                colour = MARK_COLOUR if changed else (TOKEN_COLOURS[0] if token != NO_LOSS else "white")
                axes.text(x + 0.45, y, token, fontsize=SMALL_SIZE - 1.5, ha="center", va="center",
                          bbox={"boxstyle": "square,pad=0.15", "facecolor": colour, "edgecolor": "#bbb"})
    if title:
        figure.suptitle(title)
    return figure


def masked_lm_figure(tables: Sequence[NextTokenTable], *, title: str = "") -> Figure:
    """The top words of each blank, one panel per ``[MASK]``."""
    panels = {f"blank {i + 1}: {' '.join(t.context)}"[:30]: list(t.rows) for i, t in enumerate(tables)}
    return plot_bar_panels(panels, title=title, xlabel="probability")


class MaskedLMExplorer(widgets.VBox):
    """A text box for a sentence with ``[MASK]``, a seed for the objectives' random choices.

    Attributes for code and tests: ``sentence`` (Text), ``seed`` (IntSlider); ``predictions_view``
    and ``objectives_view`` (HTML); ``tables`` and ``views`` are the last results shown.
    """

    def __init__(self, model, vocabulary: Vocabulary, sentence: str) -> None:
        self._model, self._vocabulary = model, vocabulary
        self.tables: list[NextTokenTable] = []
        self.views: list[ObjectiveView] = []
        self.sentence = widgets.Text(value=sentence, description="sentence",
                                     layout=widgets.Layout(width="95%"), continuous_update=False)
        self.seed = widgets.IntSlider(value=0, min=0, max=20, description="seed")
        self.predictions_view = widgets.HTML()
        self.objectives_view = widgets.HTML()
        super().__init__([self.sentence, self.predictions_view, self.seed, self.objectives_view])
        for control in (self.sentence, self.seed):
            control.observe(lambda _change: self.refresh(), names="value")
        self.refresh()

    def refresh(self) -> None:
        try:
            self.tables = masked_predictions(self._model, self._vocabulary, self.sentence.value)
            self.predictions_view.value = "".join(table_html(table) for table in self.tables)
        except ArgumentError as error:
            self.tables = []
            self.predictions_view.value = error_html(str(error))
        try:
            self.views = objective_views(self.sentence.value, seed=self.seed.value)
            self.objectives_view.value = views_html(self.views)
        except ArgumentError as error:
            self.views = []
            self.objectives_view.value = error_html(str(error))


def masked_lm_explorer(model, vocabulary: Vocabulary, sentence: str = "Mia had a [MASK] ball .") -> MaskedLMExplorer:
    """The explorer on ``model`` (a masked LM over ``vocabulary`` plus ``[MASK]`` as its last id)."""
    if not isinstance(vocabulary, Vocabulary):
        raise ArgumentError(f"vocabulary must be a course_lib Vocabulary, got {type(vocabulary).__name__}")
    return MaskedLMExplorer(model, vocabulary, sentence)
