"""Interactive explorers for the notebooks (ipywidgets), built on pure functions.

Each explorer is a thin layer of controls over functions that compute what it shows, so the
same numbers can be tested without a browser and drawn as a static figure for the rendered book
(see :mod:`course_lib.viz`). Chapter 1's explorer:

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


# ---------------------------------------------------------------------------------------------
# Chapter 2: a merge-by-merge explorer of byte-pair encoding
# ---------------------------------------------------------------------------------------------
# Built on one pure function, segment_with_merges: the tokens of a text when a trained BPE
# tokenizer may use only its first k merges. Because merges are learned one after another,
# the first k merges are exactly what training with k merges would have learned.

import regex  # noqa: E402 -- this section's own imports, kept next to the code that uses them

from course_lib.bpe import GPT2_SPLIT_PATTERN, UNKNOWN, ByteBPE, CharBPE  # noqa: E402
from course_lib.bpe.base import NotTrainedError  # noqa: E402
from course_lib.bpe.gpt2_files import bytes_to_symbols  # noqa: E402
from course_lib.bpe.training import apply_ranks, merge_ranks  # noqa: E402
from course_lib.viz import TOKEN_COLOURS  # noqa: E402

_GPT2_PIECES = regex.compile(GPT2_SPLIT_PATTERN)


@dataclass(frozen=True)
class Segmentation:
    """A text cut into tokens by a BPE tokenizer limited to its first ``num_merges`` merges.

    tokens     : the readable tokens, as the tokenizer's ``tokens()`` writes them (``"Ġthe"``).
    vocab_size : how many tokens the vocabulary of the limited tokenizer holds.
    last_merge : the ``num_merges``-th merge as readable ``(left, right)``, None for no merges.
    """

    text: str
    tokens: tuple[str, ...]
    num_merges: int
    vocab_size: int
    last_merge: tuple[str, str] | None

    @property
    def tokens_per_char(self) -> float:
        return len(self.tokens) / len(self.text) if self.text else 0.0


def _readable_pair(pair: tuple) -> tuple[str, str]:
    return tuple(bytes_to_symbols(part) if isinstance(part, bytes) else part for part in pair)  # type: ignore[return-value]


def segment_with_merges(tokenizer: ByteBPE | CharBPE, text: str, num_merges: int | None = None) -> Segmentation:
    """``text`` as ``tokenizer`` cuts it when it may apply only its first ``num_merges`` merges.

    ``num_merges=None`` uses them all, and then the tokens equal ``tokenizer.tokens(text)``.
    Byte-level BPE: special tokens first, then GPT-2's pre-tokenization, then each piece's bytes
    merged earliest-learned pair first. Character-level BPE: each whitespace-separated word
    plus ``</w>``, merged the same way; a character the tokenizer never saw is ``[UNK]``.
    """
    if not isinstance(tokenizer, (ByteBPE, CharBPE)):
        raise TypeError(f"tokenizer must be a trained ByteBPE or CharBPE, got {type(tokenizer).__name__}")
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if tokenizer.vocab_size == 0:
        name = type(tokenizer).__name__
        raise NotTrainedError(f"this {name} has no vocabulary yet: call .train(text, vocab_size) first, "
                              f"or load one with {name}.load(path)")
    total = len(tokenizer.merges)
    if num_merges is None:
        num_merges = total
    if isinstance(num_merges, bool) or not isinstance(num_merges, int) or not 0 <= num_merges <= total:
        raise ValueError(f"num_merges must be an integer from 0 to {total} (the merges this tokenizer learned), "
                         f"got {num_merges!r}")
    if isinstance(tokenizer, ByteBPE):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValueError(f"text holds a lone surrogate {text[error.start]!r} at position {error.start}, "
                             "which has no UTF-8 bytes; remove or replace it") from None
    merges = tokenizer.merges[:num_merges]
    ranks = merge_ranks(merges)
    tokens: list[str] = []
    if isinstance(tokenizer, ByteBPE):
        specials = sorted(tokenizer.special_tokens, key=len, reverse=True)  # the longer of two wins
        pattern = regex.compile("(" + "|".join(map(regex.escape, specials)) + ")") if specials else None
        for position, segment in enumerate(pattern.split(text) if pattern else [text]):
            if position % 2:  # the split keeps each matched special token at the odd positions
                tokens.append(segment)
                continue
            for piece in _GPT2_PIECES.findall(segment):
                symbols = tuple(bytes([byte]) for byte in piece.encode("utf-8"))
                tokens.extend(bytes_to_symbols(symbol) for symbol in apply_ranks(symbols, ranks))
    else:
        known = set(tokenizer.vocab[: tokenizer.vocab_size])
        for word in text.split():
            symbols = apply_ranks(tuple(word) + ("</w>",), ranks)
            tokens.extend(symbol if symbol in known else UNKNOWN for symbol in symbols)
    # Two merges may spell the same token (a+bc, ab+c); the vocabulary holds it once.
    all_results = {left + right for left, right in tokenizer.merges}
    vocab_size = tokenizer.vocab_size - len(all_results) + len({left + right for left, right in merges})
    last = _readable_pair(merges[-1]) if merges else None
    return Segmentation(text, tuple(tokens), num_merges, vocab_size, last)


def segmentation_html(segmentation: Segmentation) -> str:
    """The tokens as coloured boxes (the colours of :func:`course_lib.viz.plot_token_segmentations`)."""
    boxes = []
    for index, token in enumerate(segmentation.tokens):
        shown = html.escape(token.replace("\n", "\\n").replace("\t", "\\t"))
        colour = TOKEN_COLOURS[index % len(TOKEN_COLOURS)]
        boxes.append(f"<span style='background:{colour};border:1px solid #888;border-radius:3px;"
                     f"padding:0 2px;margin:1px;display:inline-block;white-space:pre'>{shown}</span>")
    return "<div style='font-family:monospace;line-height:1.9'>" + "".join(boxes) + "</div>"


def segmentation_summary(segmentation: Segmentation) -> str:
    """One line: merges, vocabulary size, tokens and characters, and the latest merge."""
    s = segmentation
    line = (f"{s.num_merges} merges, vocabulary of {s.vocab_size} tokens: {len(s.tokens)} tokens "
            f"for {len(s.text)} characters ({s.tokens_per_char:.3f} tokens per character)")
    if s.last_merge is not None:
        left, right = s.last_merge
        line += f"; merge {s.num_merges} was {left!r} + {right!r} -> {left + right!r}"
    return line


class MergeExplorer(widgets.VBox):
    """A slider over the number of merges and a text box; shows how the text is cut (see :func:`merge_explorer`).

    Attributes for code and tests: ``merges`` (IntSlider), ``text`` (Textarea); ``summary_view``
    and ``tokens_view`` (HTML) show the result, ``segmentation`` is the last :class:`Segmentation`.
    """

    def __init__(self, tokenizer: ByteBPE | CharBPE, text: str, num_merges: int):
        self.tokenizer = tokenizer
        self.segmentation: Segmentation | None = None
        self.merges = widgets.IntSlider(value=num_merges, min=0, max=len(tokenizer.merges), description="merges",
                                        continuous_update=True, layout=widgets.Layout(width="95%"))
        self.text = widgets.Textarea(value=text, description="text", placeholder="type any text",
                                     layout=widgets.Layout(width="95%", height="5em"))
        self.summary_view = widgets.HTML()
        self.tokens_view = widgets.HTML()
        super().__init__([self.merges, self.text, self.summary_view, self.tokens_view])
        for control in (self.merges, self.text):
            control.observe(lambda _change: self.refresh(), names="value")
        self.refresh()

    def refresh(self) -> None:
        """Cut the current text with the current number of merges and show it."""
        try:
            self.segmentation = segment_with_merges(self.tokenizer, self.text.value, self.merges.value)
        except ValueError as error:  # text that has no UTF-8 form: say so instead of raising in a callback
            self.segmentation = None
            self.summary_view.value = f"<div style='color:#b00'>{html.escape(str(error))}</div>"
            self.tokens_view.value = ""
            return
        self.summary_view.value = f"<div>{html.escape(segmentation_summary(self.segmentation))}</div>"
        self.tokens_view.value = segmentation_html(self.segmentation)


def merge_explorer(tokenizer: ByteBPE | CharBPE, *, text: str = "The quick brown fox jumps over the lazy dog.",
                   num_merges: int = 0) -> MergeExplorer:
    """An explorer of how ``tokenizer`` cuts a text after 0, 1, 2, ... of its learned merges.

    Move the slider to add merges one at a time and watch the boxes join: the summary line names
    the merge just added and counts tokens per character. ``num_merges`` is the slider's start.
    """
    segment_with_merges(tokenizer, text, num_merges)  # the same checks, with clear errors, up front
    return MergeExplorer(tokenizer, text, num_merges)


# ---------------------------------------------------------------------------------------------
# Chapter 3: the next-token distribution of a fixed-window neural model, with a temperature
# ---------------------------------------------------------------------------------------------
# One pure function, fixed_window_next_token_table, computes what the explorer shows; the
# explorer itself takes any function (context, k, temperature) -> NextTokenTable, so the
# recurrent and Transformer chapters can reuse it with their own models.

from course_lib.data.text import Vocabulary  # noqa: E402 -- this section's own import

NextTokenFunction = Callable[[str, int, float], NextTokenTable]


def window_context(vocabulary: Vocabulary, context: str | Sequence[str], context_size: int,
                   tokenize: Tokenize = word_tokenize) -> tuple[tuple[str, ...], list[int]]:
    """The last ``context_size`` tokens of ``context`` as a fixed-window model sees them, and their ids.

    Words outside the vocabulary become ``"<unk>"``; a short context is left-padded with ``"<s>"``,
    as at the start of a story.
    """
    if not isinstance(vocabulary, Vocabulary):
        raise TypeError(f"vocabulary must be a course_lib.data.text.Vocabulary, got {type(vocabulary).__name__}")
    if isinstance(context_size, bool) or not isinstance(context_size, int) or context_size < 1:
        raise ValueError(f"context_size must be a positive integer, got {context_size!r}")
    if Vocabulary.BOS not in vocabulary.specials:
        raise ValueError(f"the vocabulary has no {Vocabulary.BOS!r} token to pad a short context with; "
                         f"its specials are {vocabulary.specials!r}")
    tokens = _context_tokens(context, tokenize)[-context_size:]
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
        raise TypeError(f"model must be a FixedWindowLM, got {type(model).__name__}")
    if model.vocab_size != len(vocabulary):
        raise ValueError(f"the model predicts {model.vocab_size} tokens but the vocabulary has {len(vocabulary)}; "
                         "pass the vocabulary the model was trained with")
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"k must be an integer, got {type(k).__name__} {k!r}")
    if k < 1:
        raise ValueError(f"k must be >= 1 (how many next tokens to list), got {k}")
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
            self.table_view.value = (f"<div>temperature T = {self.temperature.value:.2f}</div>"
                                     + table_html(self.table))
        except ValueError as error:
            self.table, self.message = None, str(error)
            self.table_view.value = f"<div style='color:#b00'>{html.escape(self.message)}</div>"


def temperature_explorer(next_tokens: NextTokenFunction, *, context: str = "She had a", temperature: float = 1.0,
                         top_k: int = 10, min_temperature: float = 0.1,
                         max_temperature: float = 3.0) -> TemperatureExplorer:
    """An explorer of a model's next-token distribution after a typed context, at a temperature.

    next_tokens : ``next_tokens(context_text, k, temperature) -> NextTokenTable``, e.g.
        ``functools.partial(fixed_window_next_token_table, model, vocabulary)``.
    Dividing the logits by a temperature T before the softmax sharpens the distribution (T < 1)
    or flattens it (T > 1); the decoding chapter builds sampling strategies on it.
    """
    if not callable(next_tokens):
        raise TypeError(f"next_tokens must be a function (context, k, temperature) -> NextTokenTable, "
                        f"got {type(next_tokens).__name__}")
    if not isinstance(context, str):
        raise TypeError(f"context must be a str, got {type(context).__name__}")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    for value, name in ((min_temperature, "min_temperature"), (max_temperature, "max_temperature"),
                        (temperature, "temperature")):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
            raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    if not min_temperature <= temperature <= max_temperature:
        raise ValueError(f"temperature {temperature} is outside the slider's range "
                         f"[{min_temperature}, {max_temperature}]")
    return TemperatureExplorer(next_tokens, context, float(temperature), top_k,
                               float(min_temperature), float(max_temperature))
