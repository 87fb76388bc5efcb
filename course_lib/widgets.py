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


# ---------------------------------------------------------------------------------------------
# Chapter 5: long-range probes. A story is cut right before the answer to a question about a fact
# stated many words earlier; the explorer shows which answer each model bets on.
# ---------------------------------------------------------------------------------------------

from course_lib.data.stories import Probe  # noqa: E402 -- this section's own import

CandidateFunction = Callable[[str, Probe], Sequence[tuple[str, float]]]
FACT_COLOUR = "#ffd54f"
ANSWER_COLOUR = "#2ca02c"


def probe_fact_index(probe: Probe) -> int:
    """The position, among the prompt's word tokens, of the fact the question asks for.

    ``Probe.distance`` counts the tokens after the fact's word up to the end of the prompt, so the
    fact is ``distance + 1`` tokens from the end.
    """
    if not isinstance(probe, Probe):
        raise TypeError(f"probe must be a course_lib.data.stories.Probe, got {type(probe).__name__}")
    tokens = word_tokenize(probe.prompt)
    index = len(tokens) - 1 - probe.distance
    if not 0 <= index < len(tokens) or tokens[index] != probe.answer:
        raise ValueError(f"the probe's prompt does not hold its answer {probe.answer!r} {probe.distance + 1} "
                         "tokens from the end; it was not made by make_probes")
    return index


def probe_html(probe: Probe) -> str:
    """The prompt as HTML, the fact's word highlighted, followed by the expected answer."""
    tokens = word_tokenize(probe.prompt)
    fact = probe_fact_index(probe)
    shown = [html.escape(token) for token in tokens]
    shown[fact] = f"<mark style='background:{FACT_COLOUR}'><b>{shown[fact]}</b></mark>"
    text = detokenize_words(shown)
    return (f"<div style='max-width:60em;line-height:1.5'>{text} "
            f"<span style='color:{ANSWER_COLOUR}'><b>[{html.escape(probe.answer)}]</b></span></div>"
            f"<div style='color:#555'>the {probe.kind} fact is {probe.distance + 1} words before the answer</div>")


def candidate_table(candidate_probabilities: CandidateFunction, model: str, probe: Probe) -> NextTokenTable:
    """The candidate answers of ``probe`` under ``model``, most probable first (ties alphabetical)."""
    if not callable(candidate_probabilities):
        raise TypeError("candidate_probabilities must be a function (model name, probe) -> [(answer, P), ...]")
    rows = [(str(answer), float(p)) for answer, p in candidate_probabilities(model, probe)]
    if not rows:
        raise ValueError(f"no candidate answers for the probe under model {model!r}")
    ranked = sorted(rows, key=lambda item: (-item[1], item[0]))
    return NextTokenTable(tuple(word_tokenize(probe.prompt)[-4:]), tuple(ranked))


class ProbeExplorer(widgets.VBox):
    """Buttons for the model, a slider for how far back the fact is, a slider for the probe
    (see :func:`probe_explorer`).

    Attributes for code and tests: ``model`` (ToggleButtons), ``distance`` (SelectionSlider),
    ``number`` (IntSlider); ``prompt_view`` and ``table_view`` (HTML) show the result; ``probe``
    and ``table`` are the last probe and :class:`NextTokenTable` shown.
    """

    def __init__(self, candidate_probabilities: CandidateFunction, models: Sequence[str],
                 probes: Mapping[int, Sequence[Probe]]):
        self._candidates = candidate_probabilities
        self._probes = {distance: list(group) for distance, group in probes.items()}
        self.probe: Probe | None = None
        self.table: NextTokenTable | None = None
        self.model = widgets.ToggleButtons(options=list(models), description="model")
        self.distance = widgets.SelectionSlider(options=list(self._probes), description="words back ≥")
        self.number = widgets.IntSlider(value=0, min=0, max=len(self._probes[self.distance.value]) - 1,
                                        description="probe")
        self.prompt_view = widgets.HTML()
        self.table_view = widgets.HTML()
        super().__init__([self.model, widgets.HBox([self.distance, self.number]), self.prompt_view,
                          self.table_view])
        self.distance.observe(self._on_distance, names="value")
        for control in (self.model, self.number):
            control.observe(lambda _change: self.refresh(), names="value")
        self.refresh()

    def _on_distance(self, _change) -> None:
        group = self._probes[self.distance.value]
        self.number.value = min(self.number.value, len(group) - 1)
        self.number.max = len(group) - 1
        self.refresh()

    def refresh(self) -> None:
        """Show the current probe and the chosen model's bets on its candidate answers."""
        self.probe = self._probes[self.distance.value][self.number.value]
        self.table = candidate_table(self._candidates, self.model.value, self.probe)
        self.prompt_view.value = probe_html(self.probe)
        right = sum(p for answer, p in self.table.rows if answer == self.probe.answer)
        verdict = "right" if self.table.rows[0][0] == self.probe.answer else "wrong"
        self.table_view.value = (f"<div>{html.escape(self.model.value)}: best guess "
                                 f"<b>{html.escape(self.table.rows[0][0])}</b> ({verdict}); "
                                 f"P(answer) = {right:.3f}</div>" + table_html(self.table))


def probe_explorer(candidate_probabilities: CandidateFunction, models: Sequence[str],
                   probes: Mapping[int, Sequence[Probe]]) -> ProbeExplorer:
    """An explorer of long-range probes: pick a model, how far back the fact is, and a probe.

    candidate_probabilities : ``f(model_name, probe) -> [(answer, P(answer | prompt)), ...]`` over
        the candidate answers of the probe's kind.
    models : the model names, as ``candidate_probabilities`` knows them.
    probes : ``{target distance: [Probe, ...]}``, e.g. grouped from :func:`make_probes`.
    """
    if not callable(candidate_probabilities):
        raise TypeError("candidate_probabilities must be a function (model name, probe) -> [(answer, P), ...]")
    if isinstance(models, str) or not models or not all(isinstance(name, str) for name in models):
        raise ValueError(f"models must be a non-empty list of model names, got {models!r}")
    if not isinstance(probes, Mapping) or not probes:
        raise ValueError("probes must be a non-empty dict {distance: [Probe, ...]}")
    for distance, group in probes.items():
        if not group or not all(isinstance(probe, Probe) for probe in group):
            raise ValueError(f"probes[{distance!r}] must be a non-empty list of Probe")
    return ProbeExplorer(candidate_probabilities, list(models), probes)


# ---------------------------------------------------------------------------------------------
# Chapter 4: how the gradient through a recurrent network grows or fades with distance
# ---------------------------------------------------------------------------------------------
# gradient_flow computes the norms of dh_T/dh_k for a random recurrent matrix of a chosen
# spectral radius; gradient_flow_figure draws them; the explorer puts sliders on both.

import io  # noqa: E402 -- this section's own imports
from dataclasses import field  # noqa: E402

import numpy as np  # noqa: E402

GRADIENT_FLOW_ACTIVATIONS = ("tanh", "relu", "linear")


def random_recurrent_matrix(d_hidden: int, spectral_radius: float, seed: int = 0) -> np.ndarray:
    """A Gaussian ``(d_hidden, d_hidden)`` matrix rescaled so that its largest ``|eigenvalue|`` is ``spectral_radius``.

    The same seed gives the same matrix up to scale, so two radii compare the same directions.
    """
    if isinstance(d_hidden, bool) or not isinstance(d_hidden, int) or d_hidden < 1:
        raise ValueError(f"d_hidden must be a positive integer, got {d_hidden!r}")
    if isinstance(spectral_radius, bool) or not isinstance(spectral_radius, (int, float)) \
            or not 0 < spectral_radius < float("inf"):
        raise ValueError(f"spectral_radius must be a positive finite number, got {spectral_radius!r}")
    matrix = np.random.default_rng(seed).standard_normal((d_hidden, d_hidden)) / np.sqrt(d_hidden)
    return matrix * (spectral_radius / np.max(np.abs(np.linalg.eigvals(matrix))))


@dataclass(frozen=True)
class GradientFlow:
    """The norms of ``dh_T/dh_k`` against the distance ``T - k`` for one recurrent matrix.

    ``steps_back[s] = s``; ``norms[s]`` is the spectral norm of ``dh_T/dh_{T-s}``;
    ``linear_theory[s] = spectral_radius ** s``, how a long product of the same matrix grows;
    ``bound[s] = (gamma * sigma_max) ** s``, Pascanu et al.'s upper bound with ``gamma`` the largest
    slope of the activation (1 for tanh, relu and linear) and ``sigma_max`` the largest singular
    value of ``W_hh``.
    """

    spectral_radius: float
    activation: str
    sigma_max: float
    steps_back: np.ndarray = field(repr=False)
    norms: np.ndarray = field(repr=False)
    linear_theory: np.ndarray = field(repr=False)
    bound: np.ndarray = field(repr=False)


def gradient_flow(spectral_radius: float, activation: str = "tanh", T: int = 50, *, d_hidden: int = 32,
                  seed: int = 0, input_scale: float = 0.5) -> GradientFlow:
    """Norms of ``dh_T/dh_k`` (k = T .. 0) of ``h_t = f(W_hh h_{t-1} + u_t)`` with a random ``W_hh``.

    ``W_hh`` is :func:`random_recurrent_matrix`; the start state and the input terms ``u_t`` are
    Gaussian with standard deviation ``input_scale`` (drawn from ``seed``), so the units are driven
    as an input sequence drives them and a relu network is not stuck at zero.
    """
    from course_lib.rnn import hidden_state_jacobian_norms

    if activation not in GRADIENT_FLOW_ACTIVATIONS:
        raise ValueError(f"activation must be one of {GRADIENT_FLOW_ACTIVATIONS}, got {activation!r}")
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be a positive integer (the number of steps), got {T!r}")
    if isinstance(input_scale, bool) or not isinstance(input_scale, (int, float)) or not 0 <= input_scale < float("inf"):
        raise ValueError(f"input_scale must be a finite number >= 0, got {input_scale!r}")
    W_hh = random_recurrent_matrix(d_hidden, spectral_radius, seed)
    rng = np.random.default_rng([seed, 1])
    h0 = input_scale * rng.standard_normal(d_hidden)
    input_terms = input_scale * rng.standard_normal((T, d_hidden))
    norms = hidden_state_jacobian_norms(W_hh, T, activation, h0=h0, input_terms=input_terms)
    steps_back = np.arange(T + 1)
    sigma_max = float(np.linalg.norm(W_hh, 2))
    return GradientFlow(float(spectral_radius), activation, sigma_max, steps_back, norms,
                        float(spectral_radius) ** steps_back, sigma_max ** steps_back)


def gradient_flow_figure(flow: GradientFlow, *, figsize: tuple[float, float] | None = None):
    """The norms of a :class:`GradientFlow` on a log scale, with the linear theory and the bound dashed."""
    from course_lib.viz import plot_curves

    if not isinstance(flow, GradientFlow):
        raise TypeError(f"flow must be a GradientFlow (see gradient_flow), got {type(flow).__name__}")
    rho = flow.spectral_radius
    measured = f"{flow.activation}, $\\rho$ = {rho:.2f}"
    theory = f"$\\rho^{{T-k}}$ = ${rho:.2f}^{{T-k}}$"
    bound = f"bound $\\sigma_{{max}}^{{T-k}}$, $\\sigma_{{max}}$ = {flow.sigma_max:.2f}"
    return plot_curves(
        {measured: (flow.steps_back, flow.norms), theory: (flow.steps_back, flow.linear_theory),
         bound: (flow.steps_back, flow.bound)},
        styles={theory: {"linestyle": "--", "color": "tab:gray"},
                bound: {"linestyle": ":", "color": "tab:red"}},
        logy=True, title="How far back does the gradient reach?", xlabel="steps back, T - k",
        ylabel=r"$\|\partial h_T / \partial h_k\|$", figsize=figsize)


def _figure_png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


class GradientFlowExplorer(widgets.VBox):
    """Sliders for the spectral radius and the number of steps, a choice of activation, and the
    figure of :func:`gradient_flow_figure` (see :func:`gradient_flow_explorer`).

    Attributes for code and tests: ``spectral_radius`` (FloatSlider), ``activation`` (Dropdown),
    ``steps`` (IntSlider); ``flow`` is the last :class:`GradientFlow`, ``summary`` (HTML) states
    the norm after the longest distance and ``image`` shows the figure.
    """

    def __init__(self, spectral_radius: float, activation: str, T: int, d_hidden: int, seed: int):
        self._d_hidden, self._seed = d_hidden, seed
        self.flow: GradientFlow | None = None
        self.spectral_radius = widgets.FloatSlider(value=spectral_radius, min=0.1, max=3.0, step=0.05,
                                                   description="radius ρ", readout_format=".2f")
        self.activation = widgets.Dropdown(options=list(GRADIENT_FLOW_ACTIVATIONS), value=activation,
                                           description="activation")
        self.steps = widgets.IntSlider(value=T, min=5, max=100, step=5, description="steps T")
        self.summary = widgets.HTML()
        self.image = widgets.Image(format="png")
        super().__init__([widgets.HBox([self.spectral_radius, self.activation, self.steps]), self.summary,
                          self.image])
        for control in (self.spectral_radius, self.activation, self.steps):
            control.observe(lambda _change: self.refresh(), names="value")
        self.refresh()

    def refresh(self) -> None:
        """Recompute the norms and redraw the figure for the current controls."""
        self.flow = gradient_flow(self.spectral_radius.value, self.activation.value, self.steps.value,
                                  d_hidden=self._d_hidden, seed=self._seed)
        T = self.steps.value
        self.summary.value = (f"<div>after T = {T} steps: ‖∂h_T/∂h_0‖ = {self.flow.norms[-1]:.3g} "
                              f"(ρ^T = {self.flow.linear_theory[-1]:.3g})</div>")
        self.image.value = _figure_png(gradient_flow_figure(self.flow))


def gradient_flow_explorer(*, spectral_radius: float = 1.0, activation: str = "tanh", T: int = 50,
                           d_hidden: int = 32, seed: int = 0) -> GradientFlowExplorer:
    """An explorer of the vanishing and exploding gradient: how ``‖∂h_T/∂h_k‖`` changes with the
    spectral radius of ``W_hh`` and the activation (see :func:`gradient_flow`)."""
    if isinstance(spectral_radius, bool) or not isinstance(spectral_radius, (int, float)) \
            or not 0.1 <= spectral_radius <= 3.0:
        raise ValueError(f"spectral_radius must be in the slider's range [0.1, 3.0], got {spectral_radius!r}")
    if activation not in GRADIENT_FLOW_ACTIVATIONS:
        raise ValueError(f"activation must be one of {GRADIENT_FLOW_ACTIVATIONS}, got {activation!r}")
    if isinstance(T, bool) or not isinstance(T, int) or not 5 <= T <= 100:
        raise ValueError(f"T must be an integer in the slider's range [5, 100], got {T!r}")
    return GradientFlowExplorer(float(spectral_radius), activation, T, d_hidden, seed)
