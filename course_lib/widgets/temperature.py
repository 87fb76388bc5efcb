"""Chapter 3: the next-token distribution of a fixed-window neural model, with a temperature.

One pure function, :func:`fixed_window_next_token_table`, computes what the explorer shows; the
explorer itself takes any function (context, k, temperature) -> NextTokenTable, so the recurrent and
Transformer chapters can reuse it with their own models.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import ipywidgets as widgets

from course_lib import checks
from course_lib.checks import ArgumentError
from course_lib.data import word_tokenize
from course_lib.data.text import Vocabulary
from course_lib.widgets._common import NextTokenTable, Tokenize, context_tokens, error_html, how_many, table_html

NextTokenFunction = Callable[[str, int, float], NextTokenTable]


def window_context(vocabulary: Vocabulary, context: str | Sequence[str], context_size: int,
                   tokenize: Tokenize = word_tokenize) -> tuple[tuple[str, ...], list[int]]:
    """The last ``context_size`` tokens of ``context`` as a fixed-window model sees them, and their ids.

    Words outside the vocabulary become ``"<unk>"``; a short context is left-padded with ``"<s>"``,
    as at the start of a story.
    """
    if not isinstance(vocabulary, Vocabulary):
        raise ArgumentError(f"vocabulary must be a course_lib.data.text.Vocabulary, got {type(vocabulary).__name__}")
    checks.positive_int("context_size", context_size)
    if Vocabulary.BOS not in vocabulary.specials:
        raise ArgumentError(f"the vocabulary has no {Vocabulary.BOS!r} token to pad a short context with; "
                         f"its specials are {vocabulary.specials!r}")
    tokens = context_tokens(context, tokenize)[-context_size:]
    ids = [vocabulary.special_id(Vocabulary.BOS)] * (context_size - len(tokens)) + vocabulary.encode(tokens)
    return tuple(vocabulary.decode(ids)), ids


def fixed_window_next_token_table(model, vocabulary: Vocabulary, context: str | Sequence[str] = (), k: int = 10,
                                  temperature: float = 1.0, tokenize: Tokenize = word_tokenize) -> NextTokenTable:
    """The top-``k`` entries of ``softmax(y / temperature)`` for a :class:`~course_lib.neural_lm.FixedWindowLM`.

    ``context`` is text (split with ``tokenize``) or a list of tokens; the model sees its last n-1
    tokens (:func:`window_context`). Temperature 1 is the model's own distribution; below 1 it is
    sharper, above 1 flatter.
    """
    import torch

    from course_lib.neural_lm import FixedWindowLM

    if not isinstance(model, FixedWindowLM):
        raise ArgumentError(f"model must be a FixedWindowLM, got {type(model).__name__}")
    if model.vocab_size != len(vocabulary):
        raise ArgumentError(f"the model predicts {model.vocab_size} tokens but the vocabulary has {len(vocabulary)}; "
                         "pass the vocabulary the model was trained with")
    k = how_many("k", k)
    seen, ids = window_context(vocabulary, context, model.context_size, tokenize)
    was_training = model.training
    model.eval()
    try:
        probabilities = model.next_token_distribution(torch.tensor(ids), temperature=temperature)
    finally:
        model.train(was_training)
    ranked = sorted(zip(vocabulary.tokens, probabilities.tolist()), key=lambda item: (-item[1], item[0]))[:k]
    return NextTokenTable(seen, tuple(ranked))


class TemperatureExplorer(widgets.VBox):
    """A context box, a temperature slider and a top-k slider over a next-token function
    (see :func:`temperature_explorer`).

    Attributes for code and tests: ``context`` (Text), ``temperature`` (FloatSlider), ``top_k``
    (IntSlider); ``table_view`` (HTML) shows the result, ``table`` is the last :class:`NextTokenTable`
    and ``message`` the last explanation shown instead of a table.
    """

    def __init__(self, next_tokens: NextTokenFunction, context: str, temperature: float, top_k: int,
                 min_temperature: float, max_temperature: float):
        self._next_tokens = next_tokens
        self.table: NextTokenTable | None = None
        self.message = ""
        self.context = widgets.Text(value=context, description="context",
                                    placeholder="type a few words, e.g. She had a")
        self.temperature = widgets.FloatSlider(value=temperature, min=min_temperature, max=max_temperature,
                                               step=0.05, description="temperature", readout_format=".2f")
        self.top_k = widgets.IntSlider(value=top_k, min=1, max=max(20, top_k), description="top k")
        self.table_view = widgets.HTML()
        super().__init__([self.context, widgets.HBox([self.temperature, self.top_k]), self.table_view])
        for control in (self.context, self.temperature, self.top_k):
            control.observe(lambda _change: self.refresh(), names="value")
        self.refresh()

    def refresh(self) -> None:
        """Recompute the table for the current controls."""
        try:
            self.table = self._next_tokens(self.context.value, self.top_k.value, self.temperature.value)
            self.message = ""
            self.table_view.value = (f"<div>temperature τ = {self.temperature.value:.2f}</div>"
                                     + table_html(self.table))
        except ValueError as error:
            self.table, self.message = None, str(error)
            self.table_view.value = error_html(self.message)


def temperature_explorer(next_tokens: NextTokenFunction, *, context: str = "She had a", temperature: float = 1.0,
                         top_k: int = 10, min_temperature: float = 0.1,
                         max_temperature: float = 3.0) -> TemperatureExplorer:
    """An explorer of a model's next-token distribution after a typed context, at a temperature.

    next_tokens : ``next_tokens(context_text, k, temperature) -> NextTokenTable``, e.g.
        ``functools.partial(fixed_window_next_token_table, model, vocabulary)``.
    Dividing the logits by a temperature τ before the softmax sharpens the distribution (τ < 1)
    or flattens it (τ > 1); the decoding chapter builds sampling strategies on it.
    """
    if not callable(next_tokens):
        raise ArgumentError(f"next_tokens must be a function (context, k, temperature) -> NextTokenTable, "
                        f"got {type(next_tokens).__name__}")
    checks.text("context", context)
    checks.positive_int("top_k", top_k)
    for value, name in ((min_temperature, "min_temperature"), (max_temperature, "max_temperature"),
                        (temperature, "temperature")):
        checks.number(name, value, above=0.0, what="a positive finite number")
    if not min_temperature <= temperature <= max_temperature:
        raise ArgumentError(f"temperature {temperature} is outside the slider's range "
                         f"[{min_temperature}, {max_temperature}]")
    return TemperatureExplorer(next_tokens, context, float(temperature), top_k,
                               float(min_temperature), float(max_temperature))
