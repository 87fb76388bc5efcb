"""Chapter 6: a translation written word by word, and where the decoder looked for each word.

:func:`translation_steps` decodes one source sentence greedily with any :class:`Seq2Seq` model
that has attention and returns, for every step, the word produced and the attention row
``α_{·,t}`` over the source tokens; :func:`translation_figure` draws all the rows as a heatmap
(source words across, produced words down) with the true word alignment of the Kelo translation
marked; the explorer puts a text box, a list of examples and a step slider on them, and shows the
true translation (:func:`course_lib.data.translation.translate`) beside the model's.
"""
from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.figure import Figure

from course_lib import checks
from course_lib.checks import ArgumentError
from course_lib.data.text import Vocabulary, detokenize, word_tokenize
from course_lib.data.translation import TranslationPair, translate
from course_lib.runtime import evaluation_mode
from course_lib.seq2seq import Seq2Seq
from course_lib.viz import COLUMN_WIDTH, HIGHLIGHT_COLOUR, plot_heatmap
from course_lib.widgets._common import ERROR_STYLE

EOS = Vocabulary.EOS
ATTENTION_RGB = (31, 119, 180)  # the palette's first colour (viz.BAR_COLOUR), as red, green, blue
MAX_SHOWN_UNKNOWN = 8


class UnknownWordsError(ArgumentError):
    """A source sentence holds words the model's source vocabulary does not have (``words``)."""

    def __init__(self, words: Sequence[str]):
        self.words = tuple(words)
        shown = ", ".join(repr(word) for word in self.words[:MAX_SHOWN_UNKNOWN])
        more = f" and {len(self.words) - MAX_SHOWN_UNKNOWN} more" if len(self.words) > MAX_SHOWN_UNKNOWN else ""
        noun = "word is" if len(self.words) == 1 else "words are"
        super().__init__(f"{len(self.words)} {noun} not in the model's source vocabulary: {shown}{more}. "
                         "The model knows only the words of its training sentences (names and words are "
                         "case-sensitive); change them or pick an example")


def unknown_words(tokens: Sequence[str], vocabulary: Vocabulary) -> list[str]:
    """The tokens that ``vocabulary`` does not hold, each once, in the order they first appear."""
    return list(dict.fromkeys(token for token in tokens if token not in vocabulary))


@dataclass(frozen=True)
class TranslationStep:
    """One decoder step: the word it produced (``"</s>"`` for the step that ended the
    translation) and its attention weights over the source tokens (they sum to 1)."""

    word: str
    weights: tuple[float, ...]


@dataclass(frozen=True)
class StepByStepTranslation:
    """A greedy translation: the source tokens the encoder read (``"</s>"`` last when the model
    reads one) and one :class:`TranslationStep` per decoder step."""

    source: tuple[str, ...]
    steps: tuple[TranslationStep, ...]

    @property
    def words(self) -> list[str]:
        """The translation: the words produced, without the final ``"</s>"``."""
        return [step.word for step in self.steps if step.word != EOS]

    @property
    def finished(self) -> bool:
        """Whether the model ended the translation itself (else it ran out of steps)."""
        return bool(self.steps) and self.steps[-1].word == EOS

    @property
    def weights(self) -> np.ndarray:
        """``(steps, S)``: row ``t`` is the attention of step ``t`` over the source tokens."""
        return np.array([step.weights for step in self.steps], dtype=float).reshape(len(self.steps),
                                                                                   len(self.source))


def source_tokens(source: str | Sequence[str]) -> list[str]:
    """A sentence given as text is tokenised; a list of tokens is taken as it is."""
    if isinstance(source, str):
        tokens = word_tokenize(source)
    elif isinstance(source, Sequence) and all(isinstance(token, str) for token in source):
        tokens = list(source)
    else:
        raise ArgumentError(f"source must be a sentence (str) or a list of str tokens, got {type(source).__name__}")
    if not tokens:
        raise ArgumentError("the source sentence is empty: type a sentence or pick an example")
    return tokens


def translation_steps(model: Seq2Seq, source: str | Sequence[str], source_vocabulary: Vocabulary,
                      target_vocabulary: Vocabulary, *, max_length: int = 100,
                      append_eos: bool = True) -> StepByStepTranslation:
    """Greedy decoding of one sentence by ``model`` (:meth:`Seq2Seq.greedy`), step by step.

    The source's ids are ``source_vocabulary``'s, followed by EOS when ``append_eos`` (as the
    model was trained to read them); the steps' words are ``target_vocabulary``'s. The step that
    produced EOS is kept (its word is ``"</s>"``): where the model looked when it decided to stop.
    Raises :class:`UnknownWordsError` naming every word not in the source vocabulary.
    """
    if not isinstance(model, Seq2Seq):
        raise ArgumentError(f"model must be a course_lib.seq2seq.Seq2Seq, got {type(model).__name__}")
    if model.attention is None:
        raise ArgumentError("the model has no attention, so its steps have no attention rows; give a model "
                            "built with attention='luong' or 'bahdanau'")
    for name, vocabulary in (("source_vocabulary", source_vocabulary), ("target_vocabulary", target_vocabulary)):
        if not isinstance(vocabulary, Vocabulary):
            raise ArgumentError(f"{name} must be a course_lib.data.text.Vocabulary, got {type(vocabulary).__name__}")
    if len(target_vocabulary) != model.vocab_size:
        raise ArgumentError(f"the target vocabulary has {len(target_vocabulary)} tokens but the model writes "
                            f"{model.vocab_size}: give the vocabulary the model was trained with")
    max_length = checks.positive_int("max_length", max_length)
    tokens = source_tokens(source)
    missing = unknown_words(tokens, source_vocabulary)
    if missing:
        raise UnknownWordsError(missing)
    read = tokens + ([EOS] if append_eos else [])
    ids = torch.tensor([source_vocabulary.encode(read)])
    bos_id, eos_id = target_vocabulary.special_id(Vocabulary.BOS), target_vocabulary.special_id(EOS)
    with evaluation_mode(model):
        (produced,), weights = model.greedy(ids, torch.tensor([len(read)]), bos_id, eos_id, max_length)
    words = target_vocabulary.decode(produced)
    rows = weights[0].double().tolist()
    if len(rows) > len(words):  # the last step produced EOS
        words.append(EOS)
    return StepByStepTranslation(tuple(read), tuple(TranslationStep(word, tuple(row))
                                                    for word, row in zip(words, rows)))


def true_translation(source: str | Sequence[str]) -> TranslationPair | None:
    """The Kelo translation of a source sentence with its alignment, or None when the translation
    program cannot write the sentence (then there is no true translation to compare with)."""
    try:
        return translate(source_tokens(source))
    except ArgumentError:
        return None


# ---------------------------------------------------------------------------------------------
# HTML for the explorer
# ---------------------------------------------------------------------------------------------


def _check_step(translation: StepByStepTranslation, step: int) -> int:
    if not isinstance(translation, StepByStepTranslation):
        raise ArgumentError(f"translation must be a StepByStepTranslation (see translation_steps), "
                            f"got {type(translation).__name__}")
    if not translation.steps:
        raise ArgumentError("the translation has no steps")
    return checks.integer("step", step, minimum=0, maximum=len(translation.steps) - 1)


def attention_html(translation: StepByStepTranslation, step: int) -> str:
    """The source words, each shaded by the attention step ``step`` gave it (the darkest is the
    row's largest weight; hover a word for its weight), and the most attended word named."""
    step = _check_step(translation, step)
    row = np.asarray(translation.steps[step].weights)
    top = float(row.max()) if row.size else 0.0
    words = []
    for word, weight in zip(translation.source, row):
        alpha = 0.0 if top == 0 else float(weight / top)
        red, green, blue = ATTENTION_RGB
        words.append(f"<span title='α = {weight:.3f}' style='background:rgba({red},{green},{blue},{alpha:.3f});"
                     f"color:{'white' if alpha > 0.6 else 'black'};padding:1px 3px;border-radius:3px'>"
                     f"{html.escape(word)}</span>")
    focus = int(row.argmax())
    return (f"<div style='line-height:2;max-width:60em'>{' '.join(words)}</div>"
            f"<div style='color:#555'>step {step + 1} writes <b>{html.escape(translation.steps[step].word)}</b> "
            f"looking most at <b>{html.escape(translation.source[focus])}</b> (α = {row[focus]:.2f})</div>")


def translation_html(translation: StepByStepTranslation, step: int, reference: TranslationPair | None) -> str:
    """The model's words up to ``step`` (the current one highlighted) above the true Kelo
    translation (the word at the same position highlighted), and whether they agree."""
    step = _check_step(translation, step)
    written = [html.escape(step_.word) for step_ in translation.steps[:step + 1]]
    written[-1] = f"<b style='background:{HIGHLIGHT_COLOUR};padding:1px 3px'>{written[-1]}</b>"
    rest = len(translation.steps) - step - 1
    if rest:
        written.append(f"<span style='color:#999'>(+{rest} more)</span>")
    lines = [f"<tr><td style='padding-right:1em;color:#555'>model</td><td>{' '.join(written)}</td></tr>"]
    if reference is None:
        lines.append("<tr><td style='padding-right:1em;color:#555'>true</td><td style='color:#555'>none: the "
                     "translation program cannot write this sentence, so there is no true Kelo to compare "
                     "with</td></tr>")
        verdict = ""
    else:
        true_words = [html.escape(word) for word in (*reference.target, EOS)]
        if step < len(true_words):
            true_words[step] = f"<b style='outline:2px solid {HIGHLIGHT_COLOUR}'>{true_words[step]}</b>"
        lines.append(f"<tr><td style='padding-right:1em;color:#555'>true</td><td>{' '.join(true_words)}</td></tr>")
        right = translation.words == list(reference.target) and translation.finished
        verdict = ("<div style='color:#2ca02c'>the model's translation is the true one</div>" if right else
                   f"<div style='{ERROR_STYLE}'>the model's translation differs from the true one</div>")
    return f"<table style='font-family:monospace'>{''.join(lines)}</table>{verdict}"


# ---------------------------------------------------------------------------------------------
# The static figure
# ---------------------------------------------------------------------------------------------


def true_links(translation: StepByStepTranslation, reference: TranslationPair) -> list[tuple[int, int]]:
    """The true alignment's links ``(step, source position)`` at the steps where the model wrote the
    true word at the true position (elsewhere the true links say nothing about the model's word)."""
    links = []
    for t, (step, word, aligned) in enumerate(zip(translation.steps, reference.target, reference.alignment)):
        if step.word == word:
            links.extend((t, i) for i in aligned if i < len(translation.source))
    return links


def translation_figure(translation: StepByStepTranslation, reference: TranslationPair | None = None, *,
                       title: str = "Where the decoder looks", figsize: tuple[float, float] | None = None) -> Figure:
    """The attention weights as a heatmap: produced words down, source tokens across; with a
    ``reference`` (:func:`true_translation`), its alignment links (:func:`true_links`) drawn as
    outlined squares."""
    if not isinstance(translation, StepByStepTranslation) or not translation.steps:
        raise ArgumentError("translation must be a StepByStepTranslation with at least one step "
                            "(see translation_steps)")
    if reference is not None and not isinstance(reference, TranslationPair):
        raise ArgumentError(f"reference must be a TranslationPair (see true_translation) or None, "
                            f"got {type(reference).__name__}")
    rows = len(translation.steps)
    if figsize is None:  # a row a fifth of an inch high, within the page
        figsize = (COLUMN_WIDTH, min(9.0, max(2.6, 1.6 + 0.2 * rows)))
    links = [] if reference is None else true_links(translation, reference)
    xlabel = "source" + (" (outlined: the true alignment)" if links else "")
    figure = plot_heatmap(translation.weights, [step.word for step in translation.steps], list(translation.source),
                          title=title, xlabel=xlabel, ylabel="produced", annotate=False,
                          colorbar_label="attention weight α", figsize=figsize)
    if links:
        steps, positions = zip(*links)
        figure.axes[0].scatter(positions, steps, marker="s", s=50, facecolors="none",
                               edgecolors=HIGHLIGHT_COLOUR, linewidths=1.5)
    return figure


# ---------------------------------------------------------------------------------------------
# The explorer
# ---------------------------------------------------------------------------------------------


class TranslationExplorer(widgets.VBox):
    """A list of example sentences, a text box, a step slider, the attention of the step over the
    source words and the translation so far beside the true one (see :func:`translation_explorer`).

    Attributes for code and tests: ``example`` (Dropdown), ``text`` (Text), ``step`` (IntSlider);
    ``message`` (HTML) says what is wrong with a typed sentence, ``attention_view`` and
    ``translation_view`` (HTML) show the step; ``translation`` and ``reference`` are the last
    :class:`StepByStepTranslation` and true pair shown (None after a rejected sentence).
    """

    def __init__(self, model: Seq2Seq, source_vocabulary: Vocabulary, target_vocabulary: Vocabulary,
                 examples: Sequence[str], max_length: int, append_eos: bool):
        self._model, self._vocabularies = model, (source_vocabulary, target_vocabulary)
        self._max_length, self._append_eos = max_length, append_eos
        self.translation: StepByStepTranslation | None = None
        self.reference: TranslationPair | None = None
        self.example = widgets.Dropdown(options=list(examples), description="example",
                                        layout=widgets.Layout(width="100%"))
        self.text = widgets.Text(value=examples[0], description="sentence", continuous_update=False,
                                 layout=widgets.Layout(width="100%"))
        self.step = widgets.IntSlider(value=0, min=0, max=0, description="step")
        self.message = widgets.HTML()
        self.attention_view = widgets.HTML()
        self.translation_view = widgets.HTML()
        super().__init__([self.example, self.text, self.step, self.message, self.attention_view,
                          self.translation_view])
        self.example.observe(lambda change: setattr(self.text, "value", change["new"]), names="value")
        self.text.observe(lambda _change: self.translate(), names="value")
        self.step.observe(lambda _change: self.show_step(), names="value")
        self.translate()

    def translate(self) -> None:
        """Decode the sentence in the text box; a sentence the model cannot read gets a message."""
        try:
            tokens = source_tokens(self.text.value)
            self.translation = translation_steps(self._model, tokens, *self._vocabularies,
                                                 max_length=self._max_length, append_eos=self._append_eos)
        except ArgumentError as problem:  # unknown words, an empty box: say so, never a traceback
            self.translation = self.reference = None
            self.message.value = f"<div style='{ERROR_STYLE}'>{html.escape(str(problem))}</div>"
            self.attention_view.value = self.translation_view.value = ""
            self.step.max = 0
            return
        self.reference = true_translation(tokens)
        self.message.value = ("" if self.translation.finished else
                              f"<div style='color:#555'>the model did not end the translation within "
                              f"{self._max_length} words</div>")
        with self.step.hold_trait_notifications():
            self.step.max = len(self.translation.steps) - 1
            self.step.value = 0
        self.show_step()

    def show_step(self) -> None:
        """Show the attention and the words of the slider's step."""
        if self.translation is None:
            return
        step = min(self.step.value, len(self.translation.steps) - 1)
        self.attention_view.value = attention_html(self.translation, step)
        self.translation_view.value = translation_html(self.translation, step, self.reference)


def translation_explorer(model: Seq2Seq, source_vocabulary: Vocabulary, target_vocabulary: Vocabulary,
                         examples: Sequence[str | Sequence[str]], *, max_length: int = 100,
                         append_eos: bool = True) -> TranslationExplorer:
    """An explorer of a translation model's attention: pick an example or type a sentence, then
    move through the steps of its greedy translation (see :func:`translation_steps`).

    examples : source sentences (text, or token lists) for the drop-down; the first is shown first.
    """
    if not isinstance(model, Seq2Seq) or model.attention is None:
        raise ArgumentError("model must be a course_lib.seq2seq.Seq2Seq with attention")
    if isinstance(examples, str) or not examples:
        raise ArgumentError("examples must be a non-empty list of source sentences")
    texts = [example if isinstance(example, str) else detokenize(source_tokens(example)) for example in examples]
    return TranslationExplorer(model, source_vocabulary, target_vocabulary, texts,
                               checks.positive_int("max_length", max_length), bool(append_eos))
