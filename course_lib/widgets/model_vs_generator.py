"""Chapter 10: a continuation word by word, the model's probability next to the generator's.

A language model of the stories is an estimate of the story generator's next-word distribution,
which this course knows exactly: after a prefix ``x_1..x_t`` the generator writes ``w`` with

    P_gen(w | x_1..x_t) = exp(log P_gen(x_1..x_t w ...) - log P_gen(x_1..x_t ...))

(the probabilities that a story *begins* with those words, :func:`~course_lib.data.stories.prefix_logprob`);
for the end of the story, ``</s>``, the numerator is the probability of the story itself.
:func:`compare_continuation` continues a prompt with a model (greedy, or sampling with a
temperature and top-p) or scores a continuation it is given, and returns both probabilities for
every word. Once the generator could not have written a word (probability 0), the story is no
longer one of its stories and its later probabilities are undefined (NaN).

:func:`comparison_figure` draws the two as bars for the book; :func:`continuation_explorer`
puts a model menu (e.g. the sizes of the scaling study), a prompt and the decoding settings on it.
"""
from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.figure import Figure

from course_lib import checks
from course_lib.data.program import prefix_logprob_of, text_logprob
from course_lib.data.stories import default_program
from course_lib.data.text import Vocabulary
from course_lib.decoding import Stopping, generate, sampling_processors
from course_lib.language_model import LanguageModel
from course_lib.runtime import evaluation_mode
from course_lib.viz import COLUMN_WIDTH
from course_lib.viz.style import colour, new_figure
from course_lib.widgets._common import error_html
from course_lib.widgets.attention_maps import prompt_tokens

__all__ = ["Comparison", "ContinuationExplorer", "METHODS", "compare_continuation", "comparison_figure",
           "comparison_html", "continuation_explorer", "generator_next_word_probabilities"]

METHODS = ("sampling", "greedy")
SHOWN_WORDS = 40  # the figure's bars; the explorer's table shows every word
END = "</s>"


@dataclass(frozen=True)
class Comparison:
    """A prompt (without ``<s>``), its continuation (``</s>`` last if the story ended), and per
    word of the continuation the model's probability and the generator's (0 where it could not
    write the word, NaN after that)."""

    prompt: tuple[str, ...]
    continuation: tuple[str, ...]
    model_probabilities: tuple[float, ...]
    generator_probabilities: tuple[float, ...]

    @property
    def first_impossible(self) -> int | None:
        """The index in ``continuation`` of the first word the generator could not write, or None."""
        for index, probability in enumerate(self.generator_probabilities):
            if probability == 0.0:
                return index
        return None


def generator_next_word_probabilities(prompt: Sequence[str], continuation: Sequence[str]) -> list[float]:
    """``P_gen(w_i | prompt, w_1..w_{i-1})`` for each word of ``continuation`` (module docstring);
    ``</s>`` is the end of the story. 0 for a word the generator cannot write there, NaN after it."""
    write = default_program().tell
    words = list(prompt)
    previous = prefix_logprob_of(write, words)
    if previous == -math.inf:
        raise checks.ArgumentError(f"the story generator never begins a story with {' '.join(words)!r}: "
                                   "start from the beginning of one of its stories")
    probabilities: list[float] = []
    for word in continuation:
        if probabilities and not probabilities[-1] > 0.0:  # 0 or NaN: no longer a generator's story
            probabilities.append(math.nan)
            continue
        if word == END:
            current = text_logprob(write, words)
        else:
            words = words + [word]
            current = prefix_logprob_of(write, words)
        probabilities.append(0.0 if current == -math.inf else math.exp(current - previous))
        previous = current
    return probabilities


def compare_continuation(model: LanguageModel, vocabulary: Vocabulary, prompt: str | Sequence[str], *,
                         method: str = "sampling", temperature: float = 1.0, top_p: float | None = None,
                         seed: int = 0, max_tokens: int = 120,
                         continuation: Sequence[str] | None = None) -> Comparison:
    """Continue ``prompt`` with ``model`` (``method`` sampling or greedy, up to ``max_tokens``
    words or ``</s>``), or score the given ``continuation`` (words, ``</s>`` to end the story).

    The model's probability of each word is its own, before temperature and top-p (what it
    believes, not what the decoder drew from)."""
    method = checks.one_of("method", method, METHODS)
    if not isinstance(model, LanguageModel):
        raise checks.ArgumentError(f"model must be a language model of the course, got {type(model).__name__}")
    tokens = prompt_tokens(prompt, vocabulary)          # <s> first
    ids = [vocabulary.token_to_id(token) for token in tokens]
    eos = vocabulary.special_id(END)
    if continuation is None:
        processors = sampling_processors(temperature=temperature, top_p=top_p) if method == "sampling" else []
        generator = torch.Generator().manual_seed(checks.non_negative_int("seed", seed)) \
            if method == "sampling" else None
        with evaluation_mode(model), torch.no_grad():
            new = generate(model, ids, Stopping(checks.positive_int("max_tokens", max_tokens), (eos,)),
                           processors=processors, generator=generator)[0]
        new = new + ([eos] if len(new) < max_tokens else [])   # generate leaves the stop id out
    else:
        new = [vocabulary.token_to_id(word) for word in prompt_tokens(list(continuation), vocabulary)[1:]]
    with evaluation_mode(model), torch.no_grad():
        log_probs = model.sequence_log_probs(torch.tensor([ids + new[:-1]]))[0]   # (time, vocab)
    model_probabilities = log_probs[len(ids) - 1:].gather(-1, torch.tensor(new)[:, None])[:, 0].exp()
    words = tuple(vocabulary.decode(new))
    return Comparison(tuple(tokens[1:]), words, tuple(float(p) for p in model_probabilities),
                      tuple(generator_next_word_probabilities(tokens[1:], words)))


def comparison_figure(comparison: Comparison, *, title: str = "",
                      figsize: tuple[float, float] | None = None) -> Figure:
    """Bars of the model's and the generator's probability of each word (the first
    :data:`SHOWN_WORDS`), the words beneath; a line where the generator could not follow."""
    checks.text("title", title)
    words = comparison.continuation[:SHOWN_WORDS]
    figure = new_figure(figsize, (COLUMN_WIDTH, 3.4))
    axes = figure.subplots()
    x = np.arange(len(words))
    axes.bar(x - 0.2, comparison.model_probabilities[:len(words)], width=0.4, color=colour(0), label="model")
    generator = np.nan_to_num(comparison.generator_probabilities[:len(words)], nan=0.0)
    axes.bar(x + 0.2, generator, width=0.4, color=colour(1), label="story generator")
    axes.set_xticks(x, words, rotation=90, fontsize=7)
    axes.set_ylim(0, 1.3)  # room above the bars for the legend
    axes.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    axes.set_ylabel("P(word | the words before)")
    broken = comparison.first_impossible
    if broken is not None and broken < len(words):
        axes.axvline(broken - 0.5, color="0.4", linestyle="--", linewidth=1)
    axes.legend(loc="upper right", ncol=2, fontsize=7)
    prompt = " ".join(comparison.prompt)
    axes.set_title(title or f"after '{prompt[:60]}'", fontsize=9)
    return figure


def comparison_html(comparison: Comparison) -> str:
    """The explorer's view: the story, then a table of the words and the two probabilities."""
    rows = []
    for word, mine, true in zip(comparison.continuation, comparison.model_probabilities,
                                comparison.generator_probabilities):
        shown = "—" if math.isnan(true) else f"{true:.3f}"
        style = " style='color:#b00'" if true == 0.0 else ""
        rows.append(f"<tr{style}><td>{html.escape(word)}</td><td style='text-align:right'>{mine:.3f}</td>"
                    f"<td style='text-align:right'>{shown}</td></tr>")
    broken = comparison.first_impossible
    verdict = ("The generator could write every word." if broken is None else
               f"The generator could not write word {broken + 1}, '{comparison.continuation[broken]}'.")
    return (f"<p><b>{html.escape(' '.join(comparison.prompt))}</b> "
            f"{html.escape(' '.join(comparison.continuation))}</p><p>{html.escape(verdict)}</p>"
            "<table><tr><th>word</th><th>model</th><th>generator</th></tr>" + "".join(rows) + "</table>")


class ContinuationExplorer(widgets.VBox):
    """A model menu, a prompt box, the method, temperature, top-p and seed over
    :func:`compare_continuation`. Attributes for code and tests: ``model`` (Dropdown of names),
    ``prompt`` (Text), ``method`` (Dropdown), ``temperature``, ``top_p`` (FloatSlider), ``seed``
    (IntSlider), ``view`` (HTML); ``comparison`` is the last result, ``message`` the last error."""

    def __init__(self, models: Mapping[str, LanguageModel], vocabulary: Vocabulary, prompt: str) -> None:
        if not isinstance(models, Mapping) or not models:
            raise checks.ArgumentError("models must be a non-empty dict {name: language model}")
        self._models, self._vocabulary = dict(models), vocabulary
        self.comparison: Comparison | None = None
        self.message = ""
        self.model = widgets.Dropdown(options=list(models), description="model")
        self.prompt = widgets.Text(value=prompt, description="prompt", layout=widgets.Layout(width="95%"))
        self.method = widgets.Dropdown(options=METHODS, value="sampling", description="method")
        self.temperature = widgets.FloatSlider(value=1.0, min=0.1, max=2.0, step=0.05, description="temperature")
        self.top_p = widgets.FloatSlider(value=1.0, min=0.05, max=1.0, step=0.05, description="top-p")
        self.seed = widgets.IntSlider(value=0, min=0, max=99, description="seed")
        self.view = widgets.HTML()
        super().__init__([widgets.HBox([self.model, self.method]), self.prompt,
                          widgets.HBox([self.temperature, self.top_p, self.seed]), self.view])
        for control in (self.model, self.prompt, self.method, self.temperature, self.top_p, self.seed):
            control.observe(lambda _change: self.refresh(), names="value")
        self.refresh()

    def refresh(self) -> None:
        """Continue the prompt again with the current controls."""
        try:
            self.comparison = compare_continuation(
                self._models[self.model.value], self._vocabulary, self.prompt.value, method=self.method.value,
                temperature=self.temperature.value, top_p=None if self.top_p.value >= 1.0 else self.top_p.value,
                seed=self.seed.value)
            self.message = ""
            self.view.value = comparison_html(self.comparison)
        except ValueError as error:
            self.comparison, self.message = None, str(error)
            self.view.value = error_html(self.message)


def continuation_explorer(models: Mapping[str, LanguageModel], vocabulary: Vocabulary, *,
                          prompt: str = "Once upon a time") -> ContinuationExplorer:
    """An explorer of continuations by each of ``models`` (language models of the story vocabulary)."""
    if not isinstance(vocabulary, Vocabulary):
        raise checks.ArgumentError(f"vocabulary must be a Vocabulary, got {type(vocabulary).__name__}")
    return ContinuationExplorer(models, vocabulary, prompt)
