"""Chapter 2: a merge-by-merge explorer of byte-pair encoding.

Built on one pure function, :func:`segment_with_merges`: the tokens of a text when a trained BPE
tokenizer may use only its first k merges. Because merges are learned one after another, the first
k merges are exactly what training with k merges would have learned.
"""
from __future__ import annotations

import html
from dataclasses import dataclass

import ipywidgets as widgets
import regex

from course_lib import checks
from course_lib.bpe import GPT2_SPLIT_PATTERN, UNKNOWN, ByteBPE, CharBPE
from course_lib.bpe.base import NotTrainedError
from course_lib.bpe.gpt2_files import bytes_to_symbols
from course_lib.bpe.training import apply_ranks, merge_ranks
from course_lib.viz.style import TOKEN_COLOURS
from course_lib.viz.tokens import shown_token
from course_lib.widgets._common import error_html

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
    checks.text("text", text)
    if tokenizer.vocab_size == 0:
        name = type(tokenizer).__name__
        raise NotTrainedError(f"this {name} has no vocabulary yet: call .train(text, vocab_size) first, "
                              f"or load one with {name}.load(path)")
    total = len(tokenizer.merges)
    if num_merges is None:
        num_merges = total
    num_merges = checks.integer("num_merges", num_merges, minimum=0, maximum=total,
                                what=f"an integer from 0 to {total} (the merges this tokenizer learned)")
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
        shown = html.escape(shown_token(token))
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
            self.summary_view.value = error_html(str(error))
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
