"""Chapter 1: the n-gram explorer, and the next-token table the later explorers reuse.

* :func:`context_as_seen` -- the n-1 tokens an n-gram model actually conditions on;
* :func:`next_token_table` -- the k most probable next tokens after a context;
* :func:`sample_text` -- seeded text generated from a context;
* :func:`ngram_explorer` -- controls for the smoothing, n, the context, k and a "sample" button.
"""
from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import ipywidgets as widgets

from course_lib.data import detokenize as detokenize_words
from course_lib.data import word_tokenize
from course_lib.ngram import BOS, EOS, UNK, NGramLM

Tokenize = Callable[[str], list[str]]
Detokenize = Callable[[Sequence[str]], str]


def _context_tokens(context: str | Sequence[str], tokenize: Tokenize) -> list[str]:
    """A context given as text is tokenized; a list of tokens is taken as it is."""
    if isinstance(context, str):
        return list(tokenize(context))
    if not isinstance(context, Sequence) or not all(isinstance(token, str) for token in context):
        raise TypeError(f"context must be a str or a list of str tokens, got {type(context).__name__}")
    return list(context)


def _check_model(model: object) -> NGramLM:
    if not isinstance(model, NGramLM):
        raise TypeError(f"model must be a fitted NGramLM, got {type(model).__name__}")
    model.vocabulary  # noqa: B018 -- raises a clear ValueError if the model is not fitted
    return model


def context_as_seen(model: NGramLM, context: str | Sequence[str], tokenize: Tokenize = word_tokenize) -> tuple[str, ...]:
    """The last n-1 tokens of ``context`` as the model sees them: words outside its vocabulary
    become ``"<unk>"`` and a short context is left-padded with ``"<s>"``. Empty for n = 1."""
    model = _check_model(model)
    tokens = _context_tokens(context, tokenize)
    width = model.order - 1
    if width == 0:
        return ()
    known = set(model.vocabulary)
    seen = [token if token in known else UNK for token in tokens[-width:]]
    return tuple([BOS] * (width - len(seen)) + seen)


@dataclass(frozen=True)
class NextTokenTable:
    """The k most probable next tokens after a context.

    context : the n-1 tokens the model conditions on (:func:`context_as_seen`).
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


def next_token_table(model: NGramLM, context: str | Sequence[str] = (), k: int = 10,
                     tokenize: Tokenize = word_tokenize) -> NextTokenTable:
    """The top-``k`` entries of P(. | context) under ``model``; tokens of probability 0 are left
    out (an MLE model may have fewer than k possible next tokens).

    ``context`` is text (split with ``tokenize``) or a list of tokens. Raises ValueError where
    the model has no distribution (an MLE model after a context it never saw: 0/0).
    """
    model = _check_model(model)
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"k must be an integer, got {type(k).__name__} {k!r}")
    if k < 1:
        raise ValueError(f"k must be >= 1 (how many next tokens to list), got {k}")
    tokens = _context_tokens(context, tokenize)
    distribution = model.next_token_distribution(tokens)
    possible = [(token, p) for token, p in distribution.items() if p > 0]
    ranked = sorted(possible, key=lambda item: (-item[1], item[0]))[:k]
    return NextTokenTable(context_as_seen(model, tokens), tuple(ranked))


def sample_text(model: NGramLM, context: str | Sequence[str] = (), seed: int = 0, max_tokens: int = 40,
                tokenize: Tokenize = word_tokenize, detokenize: Detokenize = detokenize_words) -> str:
    """Text sampled from ``model`` after ``context`` (not repeated in the result), deterministic
    from ``seed``; it stops at ``"</s>"`` or after ``max_tokens`` tokens, marked by a final "…"."""
    model = _check_model(model)
    tokens = model.generate(max_tokens=max_tokens, context=_context_tokens(context, tokenize), seed=seed)
    return detokenize(tokens) + (" …" if len(tokens) == max_tokens else "")


# ---------------------------------------------------------------------------------------------
# The explorer
# ---------------------------------------------------------------------------------------------

BAR_COLOUR = "#1f77b4"
SPECIAL_COLOUR = "#ff7f0e"


def table_html(table: NextTokenTable) -> str:
    """An HTML table of the rows, each with a bar whose length is its probability (the top row's
    bar full length); the special symbols ``<unk>``, ``</s>`` and ``<s>`` in another colour."""
    context = " ".join(table.context) if table.context else "(no context: n = 1)"
    top = max(table.probabilities)
    lines = [f"<div><b>P(w | {html.escape(context)})</b></div>",
             "<table style='border-collapse:collapse;font-family:monospace'>"]
    for token, probability in table.rows:
        colour = SPECIAL_COLOUR if token in (UNK, EOS, BOS) else BAR_COLOUR
        width = 0 if top == 0 else round(240 * probability / top)
        lines.append(
            f"<tr><td style='padding:1px 8px;text-align:right'>{html.escape(token)}</td>"
            f"<td style='padding:1px 4px'><div style='background:{colour};width:{width}px;height:0.9em'></div></td>"
            f"<td style='padding:1px 4px'>{probability:.4f}</td></tr>")
    lines.append("</table>")
    return "\n".join(lines)


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
            self.table_view.value = f"<div style='color:#b00'>{html.escape(self.message)}</div>"

    def sample(self) -> str:
        """Generate text with the current seed, show it, and move the seed on for the next click."""
        prompt = self.context.value
        try:
            text = sample_text(self.model, prompt, self.seed.value, self._max_tokens, self._tokenize, self._detokenize)
            shown = f"<i>{html.escape(prompt)}</i> <b>{html.escape(text)}</b>"
        except ValueError as error:
            text, shown = "", f"<span style='color:#b00'>{html.escape(str(error))}</span>"
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
        raise ValueError("models must be a non-empty dict {(smoothing label, n): fitted NGramLM}")
    for key, model in models.items():
        if (not isinstance(key, tuple) or len(key) != 2 or not isinstance(key[0], str)
                or isinstance(key[1], bool) or not isinstance(key[1], int)):
            raise ValueError(f"model keys must be (smoothing label, n) pairs such as ('Kneser-Ney', 3), got {key!r}")
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
    if not isinstance(context, str):
        raise TypeError(f"context must be a str, got {type(context).__name__}")
    for value, name in ((top_k, "top_k"), (max_tokens, "max_tokens"), (seed, "seed")):
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "seed" else 1):
            raise ValueError(f"{name} must be a {'non-negative' if name == 'seed' else 'positive'} integer, got {value!r}")
    return NGramExplorer(models, smoothing, n, context, top_k, seed, max_tokens, tokenize, detokenize)
