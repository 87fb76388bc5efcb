"""Chapter 1: the n-gram explorer (the next-token table it shows is shared: :mod:`._common`).

* :func:`context_as_seen` -- the n-1 tokens an n-gram model actually conditions on;
* :func:`next_token_table` -- the k most probable next tokens after a context;
* :func:`sample_text` -- seeded text generated from a context;
* :func:`ngram_explorer` -- controls for the smoothing, n, the context, k and a "sample" button.
"""
from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import ipywidgets as widgets

from course_lib import checks
from course_lib.checks import ArgumentError
from course_lib.data import detokenize as detokenize_words
from course_lib.data import word_tokenize
from course_lib.ngram import BOS, UNK, NGramLM
from course_lib.widgets._common import (ERROR_STYLE, Detokenize, NextTokenTable, Tokenize, context_tokens, error_html,
                                        how_many, table_html)


def _check_model(model: object) -> NGramLM:
    if not isinstance(model, NGramLM):
        raise ArgumentError(f"model must be a fitted NGramLM, got {type(model).__name__}")
    model.vocabulary  # noqa: B018 -- raises a clear ValueError if the model is not fitted
    return model


def context_as_seen(model: NGramLM, context: str | Sequence[str], tokenize: Tokenize = word_tokenize) -> tuple[str, ...]:
    """The last n-1 tokens of ``context`` as the model sees them: words outside its vocabulary
    become ``"<unk>"`` and a short context is left-padded with ``"<s>"``. Empty for n = 1."""
    model = _check_model(model)
    tokens = context_tokens(context, tokenize)
    width = model.order - 1
    if width == 0:
        return ()
    known = set(model.vocabulary)
    seen = [token if token in known else UNK for token in tokens[-width:]]
    return tuple([BOS] * (width - len(seen)) + seen)


def next_token_table(model: NGramLM, context: str | Sequence[str] = (), k: int = 10,
                     tokenize: Tokenize = word_tokenize) -> NextTokenTable:
    """The top-``k`` entries of P(. | context) under ``model``; tokens of probability 0 are left
    out (an MLE model may have fewer than k possible next tokens).

    ``context`` is text (split with ``tokenize``) or a list of tokens. Raises ValueError where
    the model has no distribution (an MLE model after a context it never saw: 0/0).
    """
    model = _check_model(model)
    k = how_many("k", k)
    tokens = context_tokens(context, tokenize)
    distribution = model.next_token_distribution(tokens)
    possible = [(token, p) for token, p in distribution.items() if p > 0]
    ranked = sorted(possible, key=lambda item: (-item[1], item[0]))[:k]
    return NextTokenTable(context_as_seen(model, tokens), tuple(ranked))


def sample_text(model: NGramLM, context: str | Sequence[str] = (), seed: int = 0, max_tokens: int = 40,
                tokenize: Tokenize = word_tokenize, detokenize: Detokenize = detokenize_words) -> str:
    """Text sampled from ``model`` after ``context`` (not repeated in the result), deterministic
    from ``seed``; it stops at ``"</s>"`` or after ``max_tokens`` tokens, marked by a final "…"."""
    model = _check_model(model)
    tokens = model.generate(max_tokens=max_tokens, context=context_tokens(context, tokenize), seed=seed)
    return detokenize(tokens) + (" …" if len(tokens) == max_tokens else "")


# ---------------------------------------------------------------------------------------------
# The explorer
# ---------------------------------------------------------------------------------------------

class NGramExplorer(widgets.VBox):
    """Controls over a set of fitted n-gram models (see :func:`ngram_explorer`).

    Attributes for code and tests: ``smoothing`` (Dropdown), ``order`` (SelectionSlider of n),
    ``context`` (Text), ``top_k`` (IntSlider), ``seed`` (IntText), ``sample_button`` (Button);
    ``table_view`` and ``sample_view`` (HTML) show the results, ``table`` is the last
    :class:`NextTokenTable` (None when the model has no distribution there) and ``message`` the
    last explanation shown instead of a table.
    """

    def __init__(self, models: Mapping[tuple[str, int], NGramLM], smoothing: str, n: int, context: str,
                 top_k: int, seed: int, max_tokens: int, tokenize: Tokenize, detokenize: Detokenize):
        self.models = dict(models)
        self._tokenize, self._detokenize, self._max_tokens = tokenize, detokenize, max_tokens
        self.table: NextTokenTable | None = None
        self.message = ""
        self._quiet = False  # set while the n slider's options change, so the table is drawn once
        labels = list(dict.fromkeys(label for label, _ in self.models))
        self.smoothing = widgets.Dropdown(options=labels, value=smoothing, description="smoothing")
        self.order = widgets.SelectionSlider(options=self._orders(smoothing), value=n, description="n")
        self.context = widgets.Text(value=context, description="context",
                                    placeholder="type a few words, e.g. She had a")
        self.top_k = widgets.IntSlider(value=top_k, min=1, max=max(20, top_k), description="top k")
        self.seed = widgets.IntText(value=seed, description="seed")
        self.sample_button = widgets.Button(description="sample", tooltip="generate text after the context")
        self.table_view = widgets.HTML()
        self.sample_view = widgets.HTML()
        super().__init__([
            widgets.HBox([self.smoothing, self.order]),
            widgets.HBox([self.context, self.top_k]),
            self.table_view,
            widgets.HBox([self.sample_button, self.seed]),
            self.sample_view,
        ])
        self.smoothing.observe(self._on_smoothing, names="value")
        for control in (self.order, self.context, self.top_k):
            control.observe(lambda _change: self._quiet or self.refresh(), names="value")
        self.sample_button.on_click(lambda _button: self.sample())
        self.refresh()

    def _orders(self, label: str) -> list[int]:
        return sorted(n for name, n in self.models if name == label)

    def _on_smoothing(self, change: dict) -> None:
        orders = self._orders(change["new"])
        wanted = self.order.value if self.order.value in orders else orders[-1]
        self._quiet = True
        try:
            self.order.options = orders
            self.order.value = wanted
        finally:
            self._quiet = False
        self.refresh()

    @property
    def model(self) -> NGramLM:
        """The model selected by the smoothing and n controls."""
        return self.models[(self.smoothing.value, self.order.value)]

    def refresh(self) -> None:
        """Recompute the table for the current controls."""
        try:
            self.table = next_token_table(self.model, self.context.value, self.top_k.value, self._tokenize)
            self.message = ""
            self.table_view.value = table_html(self.table)
        except ValueError as error:  # an MLE model after an unseen context has no distribution
            self.table, self.message = None, str(error)
            self.table_view.value = error_html(self.message)

    def sample(self) -> str:
        """Generate text with the current seed, show it, and move the seed on for the next click."""
        prompt = self.context.value
        try:
            text = sample_text(self.model, prompt, self.seed.value, self._max_tokens, self._tokenize, self._detokenize)
            shown = f"<i>{html.escape(prompt)}</i> <b>{html.escape(text)}</b>"
        except ValueError as error:
            text, shown = "", f"<span style='{ERROR_STYLE}'>{html.escape(str(error))}</span>"
        self.sample_view.value = f"<div>seed {self.seed.value}: {shown}</div>"
        self.seed.value += 1
        return text


def ngram_explorer(models: Mapping[tuple[str, int], NGramLM], *, smoothing: str | None = None, n: int | None = None,
                   context: str = "She had a", top_k: int = 10, seed: int = 0, max_tokens: int = 40,
                   tokenize: Tokenize = word_tokenize, detokenize: Detokenize = detokenize_words) -> NGramExplorer:
    """An explorer of next-token distributions and samples over ``models``.

    models : ``{(smoothing label, n): fitted NGramLM}``, e.g. ``{("Kneser-Ney", 3): lm, ...}``;
        the smoothing dropdown lists the labels in the order given, the n slider the orders
        available for the chosen label.
    smoothing, n : the model shown first (default: the first key of ``models``).
    context : the initial text in the context box (a word the model never saw shows as ``<unk>``).
    top_k : how many next tokens to list; seed : the first sampling seed (each click moves it on).
    """
    if not isinstance(models, Mapping) or not models:
        raise ArgumentError("models must be a non-empty dict {(smoothing label, n): fitted NGramLM}")
    for key, model in models.items():
        if (not isinstance(key, tuple) or len(key) != 2 or not isinstance(key[0], str)
                or isinstance(key[1], bool) or not isinstance(key[1], int)):
            raise ArgumentError(f"model keys must be (smoothing label, n) pairs such as ('Kneser-Ney', 3), got {key!r}")
        _check_model(model)
        if model.order != key[1]:
            raise ValueError(f"the model under {key!r} has order {model.order}, not {key[1]}")
    if smoothing is None:
        smoothing, first_n = next(iter(models))
        n = first_n if n is None else n
    orders = sorted(order for label, order in models if label == smoothing)
    if not orders:
        raise ValueError(f"no model has the smoothing label {smoothing!r}; the labels are "
                         f"{list(dict.fromkeys(label for label, _ in models))}")
    n = orders[0] if n is None else n
    if n not in orders:
        raise ValueError(f"there is no {smoothing!r} model of order {n!r}; its orders are {orders}")
    checks.text("context", context)
    checks.positive_int("top_k", top_k)
    checks.positive_int("max_tokens", max_tokens)
    checks.non_negative_int("seed", seed)
    return NGramExplorer(models, smoothing, n, context, top_k, seed, max_tokens, tokenize, detokenize)
