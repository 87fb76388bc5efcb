"""Chapter 8: decode a story prompt with any method and see what the processors did.

:func:`decode_prompt` reads a prompt with a language model of the story vocabulary, applies the
chosen processors (temperature, top-k, top-p, the penalties) to the next-word distribution after
it, and continues the prompt with the chosen method (sampling, greedy, beam search) until the end
of the story. It returns a :class:`Decoded`: the processed distribution's most probable words,
the continuation, and what the story generator says about the whole story (whether it can write
it, and where it stops being a story it could write). :func:`decoding_figure` draws that for the
book; :func:`decoding_explorer` puts controls on it.
"""
from __future__ import annotations

import html
import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import ipywidgets as widgets
import torch
from matplotlib.figure import Figure

from course_lib import checks
from course_lib.data.text import Vocabulary, detokenize
from course_lib.decoding import beam_search, generate, process, sampling_processors, Stopping
from course_lib.generated_text import first_break, generator_log_prob
from course_lib.language_model import LanguageModel
from course_lib.runtime import evaluation_mode
from course_lib.viz import COLUMN_WIDTH
from course_lib.viz.bars import bar_colours
from course_lib.viz.style import new_figure
from course_lib.widgets._common import error_html
from course_lib.widgets.attention_maps import prompt_tokens

METHODS = ("sampling", "greedy", "beam search")
SHOWN_WORDS = 10
MAX_FIGURE_LINES = 6


@dataclass(frozen=True)
class Decoded:
    """A prompt, the processed next-word distribution after it (``top``: the most probable words
    and their probabilities, and ``kept``: how many words have any probability left), the
    continuation, and the generator's verdict on prompt + continuation."""

    prompt: tuple[str, ...]
    top: tuple[tuple[str, float], ...]
    kept: int
    continuation: tuple[str, ...]
    ended: bool
    writable: bool
    first_break: int | None      # index in prompt + continuation (without <s>), None if every prefix is possible

    @property
    def story(self) -> tuple[str, ...]:
        return self.prompt + self.continuation


def decode_prompt(model: LanguageModel, vocabulary: Vocabulary, prompt: str | Sequence[str], *,
                  method: str = "sampling", temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None, frequency_penalty: float = 0.0, presence_penalty: float = 0.0,
                  repetition_penalty: float = 1.0, beam_width: int = 4, seed: int = 0,
                  max_tokens: int = 300) -> Decoded:
    """Continue ``prompt`` to the end of the story (or ``max_tokens`` words) with ``method``.

    ``sampling`` draws from the processed distribution with a generator seeded by ``seed``;
    ``greedy`` takes its arg-max (the penalties still apply; the truncations change nothing);
    ``beam search`` keeps ``beam_width`` sequences and ignores the processors. The prompt is
    words of the vocabulary (unknown words are an error that names them).
    """
    checks.one_of("method", method, METHODS)
    if not isinstance(model, LanguageModel):
        raise checks.ArgumentError(f"model must be a language model of the course, got {type(model).__name__}")
    tokens = prompt_tokens(prompt, vocabulary)          # <s> first
    ids = [vocabulary.token_to_id(token) for token in tokens]
    eos = vocabulary.special_id("</s>")
    processors = sampling_processors(temperature=temperature if method == "sampling" else 1.0, top_k=top_k,
                                     top_p=top_p, frequency_penalty=frequency_penalty,
                                     presence_penalty=presence_penalty, repetition_penalty=repetition_penalty)
    with evaluation_mode(model), torch.no_grad():
        scores = process(model.next_token_log_probs(torch.tensor([ids])).double(),
                         torch.zeros(1, 0, dtype=torch.long), processors)
    probabilities = torch.softmax(scores[0], dim=-1)
    kept = int((probabilities > 0).sum())
    best = probabilities.topk(min(SHOWN_WORDS, kept))
    top = tuple((vocabulary.decode([i])[0], float(p)) for p, i in zip(best.values.tolist(), best.indices.tolist()))
    if method == "beam search":
        found = beam_search(model, ids, beam_width=checks.positive_int("beam_width", beam_width),
                            max_tokens=max_tokens, eos_id=eos)[0][0]
        continuation = [t for t in found.tokens if t != eos]
    else:
        generator = torch.Generator().manual_seed(checks.non_negative_int("seed", seed)) \
            if method == "sampling" else None
        continuation = generate(model, ids, Stopping(max_tokens, (eos,)), processors=processors,
                                generator=generator)[0]
    words = tuple(vocabulary.decode(continuation))
    story = list(tokens[1:]) + list(words)
    ended = len(continuation) < max_tokens
    writable = ended and generator_log_prob(story) > -math.inf
    return Decoded(tuple(tokens[1:]), top, kept, words, ended, writable, None if writable else first_break(story))


def verdict(decoded: Decoded) -> str:
    """One sentence: can the generator write this story, and if not, where it goes wrong."""
    if decoded.writable:
        return "The story generator can write this story."
    if not decoded.ended:
        return "The story did not end within the word limit."
    if decoded.first_break is None:
        return "Every beginning of it is possible, but the generator's stories do not end there."
    where = decoded.first_break
    before = detokenize(list(decoded.story[max(0, where - 4):where]))
    return f"The generator never writes '{decoded.story[where]}' after '... {before}' (word {where + 1})."


def decoding_figure(decoded: Decoded, *, title: str = "", figsize: tuple[float, float] | None = None) -> Figure:
    """The processed next-word distribution as bars, with the continuation and the verdict beneath."""
    checks.text("title", title)
    shown = textwrap.wrap(detokenize(list(decoded.continuation)), 100)
    if len(shown) > MAX_FIGURE_LINES:
        shown = shown[:MAX_FIGURE_LINES - 1] + [shown[MAX_FIGURE_LINES - 1] + " ..."]
    lines = len(shown) + 2
    figure = new_figure(figsize, (COLUMN_WIDTH, 3.0 + 0.16 * lines))
    bars, text = figure.subplots(2, 1, gridspec_kw={"height_ratios": [2.6, 0.16 * lines + 0.1]})
    labels = [word for word, _ in decoded.top][::-1]
    values = [p for _, p in decoded.top][::-1]
    bars.barh(range(len(labels)), values, color=bar_colours(labels, ("</s>",)))
    bars.set_yticks(range(len(labels)), labels)
    bars.set_xlim(0, 1)
    bars.set_xlabel(f"probability after the prompt ({decoded.kept} words keep some)")
    prompt = detokenize(list(decoded.prompt))
    bars.set_title(title or f"after '{textwrap.shorten(prompt, 60, placeholder=' ...')}'")
    text.axis("off")
    text.text(0, 1, "\n".join(shown), va="top", ha="left", fontsize=7.5, transform=text.transAxes)
    text.annotate(verdict(decoded), xy=(0, 1), xycoords="axes fraction", xytext=(0, -11 * (len(shown) + 0.6)),
                  textcoords="offset points", va="top", ha="left", fontsize=8.5,
                  color="#1a7f37" if decoded.writable else "#b00")
    return figure


class DecodingExplorer(widgets.VBox):
    """A prompt box, a method menu and the processors' sliders over :func:`decode_prompt`.

    Attributes for code and tests: ``prompt`` (Text), ``method`` (Dropdown), ``temperature``,
    ``top_p`` (FloatSlider), ``top_k``, ``beam_width``, ``seed`` (IntSlider; top-k 0 is off),
    ``frequency``, ``presence``, ``repetition`` (FloatSlider); ``view`` (HTML) shows the result,
    ``decoded`` is the last :class:`Decoded` and ``message`` the last error shown instead.
    """

    def __init__(self, model: LanguageModel, vocabulary: Vocabulary, prompt: str) -> None:
        self._model, self._vocabulary = model, vocabulary
        self.decoded: Decoded | None = None
        self.message = ""
        self.prompt = widgets.Text(value=prompt, description="prompt", layout=widgets.Layout(width="95%"))
        self.method = widgets.Dropdown(options=METHODS, value="sampling", description="method")
        self.temperature = widgets.FloatSlider(value=1.0, min=0.1, max=2.0, step=0.05, description="temperature")
        self.top_k = widgets.IntSlider(value=0, min=0, max=50, description="top-k (0: off)")
        self.top_p = widgets.FloatSlider(value=1.0, min=0.05, max=1.0, step=0.05, description="top-p")
        self.frequency = widgets.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.05, description="frequency")
        self.presence = widgets.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.05, description="presence")
        self.repetition = widgets.FloatSlider(value=1.0, min=1.0, max=2.0, step=0.05, description="repetition")
        self.beam_width = widgets.IntSlider(value=4, min=1, max=16, description="beam width")
        self.seed = widgets.IntSlider(value=0, min=0, max=99, description="seed")
        self.view = widgets.HTML()
        controls = (self.prompt, self.method, self.temperature, self.top_k, self.top_p, self.frequency,
                    self.presence, self.repetition, self.beam_width, self.seed)
        super().__init__([self.prompt, widgets.HBox([self.method, self.seed]),
                          widgets.HBox([self.temperature, self.top_k, self.top_p]),
                          widgets.HBox([self.frequency, self.presence, self.repetition]), self.beam_width,
                          self.view])
        for control in controls:
            control.observe(lambda _change: self.refresh(), names="value")
        self.refresh()

    def refresh(self) -> None:
        """Decode again with the current controls."""
        try:
            self.decoded = decode_prompt(
                self._model, self._vocabulary, self.prompt.value, method=self.method.value,
                temperature=self.temperature.value, top_k=self.top_k.value or None,
                top_p=None if self.top_p.value >= 1.0 else self.top_p.value,
                frequency_penalty=self.frequency.value, presence_penalty=self.presence.value,
                repetition_penalty=self.repetition.value, beam_width=self.beam_width.value, seed=self.seed.value)
            self.message = ""
            self.view.value = decoded_html(self.decoded)
        except ValueError as error:
            self.decoded, self.message = None, str(error)
            self.view.value = error_html(self.message)


def decoded_html(decoded: Decoded) -> str:
    """The explorer's view: the top words as a small table, the continuation, the verdict."""
    rows = "".join(f"<tr><td>{html.escape(word)}</td><td style='text-align:right'>{p:.3f}</td></tr>"
                   for word, p in decoded.top)
    colour = "#1a7f37" if decoded.writable else "#b00"
    return (f"<div>next word ({decoded.kept} keep some probability):</div><table>{rows}</table>"
            f"<p><b>{html.escape(' '.join(decoded.prompt))}</b> {html.escape(' '.join(decoded.continuation))}</p>"
            f"<p style='color:{colour}'>{html.escape(verdict(decoded))}</p>")


def decoding_explorer(model: LanguageModel, vocabulary: Vocabulary, *,
                      prompt: str = "Once upon a time , there was a girl named") -> DecodingExplorer:
    """An explorer of decoding methods on ``model`` (a language model of the story vocabulary)."""
    if not isinstance(vocabulary, Vocabulary):
        raise checks.ArgumentError(f"vocabulary must be a Vocabulary, got {type(vocabulary).__name__}")
    checks.text("prompt", prompt)
    return DecodingExplorer(model, vocabulary, prompt)
