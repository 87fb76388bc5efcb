"""Chapter 7: where each head of a Transformer language model looks, for a story prompt.

:func:`attention_maps` reads a prompt with a :class:`~course_lib.transformer.TransformerLM` and
keeps every layer's self-attention weights, ``α[l, h, i, j]`` (query position ``i``, key ``j``),
recorded by the layers themselves (their ``trace``); :func:`attention_figure` draws one head as a
heatmap and :func:`attention_heads_figure` all heads of a layer side by side, for the book;
:func:`attended_tokens` lists the keys one query looks at most. The explorer puts a text box and
sliders for the layer, the head and the query position on them.
"""
from __future__ import annotations

import html
import io
from collections.abc import Sequence
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.figure import Figure

from course_lib import checks
from course_lib.checks import ArgumentError
from course_lib.data.text import Vocabulary, word_tokenize
from course_lib.runtime import evaluation_mode
from course_lib.transformer import TransformerLM
from course_lib.viz import COLUMN_WIDTH, plot_heatmap
from course_lib.viz.style import new_figure
from course_lib.widgets._common import error_html

MAX_SHOWN_UNKNOWN = 8


@dataclass(frozen=True)
class AttentionMaps:
    """The tokens a model read (``<s>`` first when its vocabulary has it) and its self-attention
    weights ``(layers, heads, T, T)``: row ``i`` of a head is query ``i``'s distribution over keys."""

    tokens: tuple[str, ...]
    weights: np.ndarray

    @property
    def num_layers(self) -> int:
        return self.weights.shape[0]

    @property
    def num_heads(self) -> int:
        return self.weights.shape[1]

    def head(self, layer: int, head: int) -> np.ndarray:
        """``(T, T)``: the weights of one head of one layer (both counted from 0)."""
        layer = checks.integer("layer", layer, minimum=0, maximum=self.num_layers - 1)
        head = checks.integer("head", head, minimum=0, maximum=self.num_heads - 1)
        return self.weights[layer, head]


def prompt_tokens(prompt: str | Sequence[str], vocabulary: Vocabulary) -> list[str]:
    """The prompt's words (text is tokenised), after ``<s>`` when the vocabulary has it; words the
    vocabulary lacks are an error that names them all."""
    if not isinstance(vocabulary, Vocabulary):
        raise ArgumentError(f"vocabulary must be a course_lib.data.text.Vocabulary, got {type(vocabulary).__name__}")
    if isinstance(prompt, str):
        words = word_tokenize(prompt)
    elif isinstance(prompt, Sequence) and all(isinstance(word, str) for word in prompt):
        words = list(prompt)
    else:
        raise ArgumentError(f"prompt must be text (str) or a list of str words, got {type(prompt).__name__}")
    if not words:
        raise ArgumentError("the prompt is empty: type a few words of a story")
    unknown = list(dict.fromkeys(word for word in words if word not in vocabulary))
    if unknown:
        shown = ", ".join(repr(word) for word in unknown[:MAX_SHOWN_UNKNOWN])
        more = f" and {len(unknown) - MAX_SHOWN_UNKNOWN} more" if len(unknown) > MAX_SHOWN_UNKNOWN else ""
        raise ArgumentError(f"not in the model's vocabulary: {shown}{more}. The model knows only the words "
                            "of its training stories (case-sensitive); change them or pick an example")
    return ([Vocabulary.BOS] if Vocabulary.BOS in vocabulary else []) + words


def attention_maps(model: TransformerLM, prompt: str | Sequence[str], vocabulary: Vocabulary) -> AttentionMaps:
    """Read ``prompt`` with ``model`` and keep each block's self-attention weights.

    The blocks run as the model runs them (``x_0 = s · E[w] + P``, then each causal block in
    turn), with a ``trace`` that records the weights ``softmax(Q Kᵀ / √d_k + mask)`` of every head.
    """
    if not isinstance(model, TransformerLM):
        raise ArgumentError(f"model must be a course_lib.transformer.TransformerLM, got {type(model).__name__}")
    if not isinstance(vocabulary, Vocabulary):
        raise ArgumentError(f"vocabulary must be a course_lib.data.text.Vocabulary, got {type(vocabulary).__name__}")
    if len(vocabulary) != model.vocab_size:
        raise ArgumentError(f"the vocabulary has {len(vocabulary)} tokens but the model reads {model.vocab_size}: "
                            "give the vocabulary the model was trained with")
    tokens = prompt_tokens(prompt, vocabulary)
    limit = model.config.max_context
    if limit is not None and len(tokens) > limit:
        raise ArgumentError(f"the prompt has {len(tokens)} tokens but the model reads at most {limit}; shorten it")
    ids = torch.tensor([vocabulary.encode(tokens)], device=model.embedding.weight.device)
    rows = []
    with evaluation_mode(model), torch.no_grad():
        positions = model.positions(0, len(tokens), dtype=model.embedding.weight.dtype, device=ids.device)
        x = model.embedding(ids) * model.embedding_scale + positions  # (1, T, d_model)
        for block in model.blocks:
            trace: dict = {}
            x = block(x, causal=True, trace=trace)
            rows.append(trace["self_attention"]["weights"][0].double().cpu().numpy())  # (heads, T, T)
    return AttentionMaps(tuple(tokens), np.stack(rows))


def attended_tokens(maps: AttentionMaps, layer: int, head: int, position: int, k: int = 3) -> list[tuple[str, float]]:
    """The ``k`` keys query ``position`` weighs most in one head, as ``(token, weight)``, largest first."""
    if not isinstance(maps, AttentionMaps):
        raise ArgumentError("maps must be an AttentionMaps (see attention_maps)")
    weights = maps.head(layer, head)
    position = checks.integer("position", position, minimum=0, maximum=len(maps.tokens) - 1)
    k = checks.positive_int("k", k)
    order = np.argsort(-weights[position], kind="stable")[:min(k, position + 1)]
    return [(maps.tokens[j], float(weights[position, j])) for j in order]


def attention_figure(maps: AttentionMaps, layer: int, head: int, *, title: str | None = None,
                     figsize: tuple[float, float] | None = None) -> Figure:
    """One head's weights as a heatmap: queries down, keys across (0 above the diagonal, the future)."""
    if not isinstance(maps, AttentionMaps):
        raise ArgumentError("maps must be an AttentionMaps (see attention_maps)")
    weights = maps.head(layer, head)
    size = figsize or (COLUMN_WIDTH, min(7.0, max(2.6, 1.4 + 0.3 * len(maps.tokens))))
    return plot_heatmap(weights, list(maps.tokens), list(maps.tokens),
                        title=f"Layer {layer}, head {head}" if title is None else title,
                        xlabel="key (looked at)", ylabel="query", annotate=len(maps.tokens) <= 10,
                        colorbar_label="attention weight α", figsize=size)


def attention_heads_figure(maps: AttentionMaps, layer: int, *, title: str | None = None,
                           figsize: tuple[float, float] | None = None) -> Figure:
    """Every head of one layer as a small heatmap, side by side (tokens on the first one only)."""
    if not isinstance(maps, AttentionMaps):
        raise ArgumentError("maps must be an AttentionMaps (see attention_maps)")
    layer = checks.integer("layer", layer, minimum=0, maximum=maps.num_layers - 1)
    columns = min(4, maps.num_heads)
    rows = -(-maps.num_heads // columns)
    figure = new_figure(figsize, (COLUMN_WIDTH, 0.3 + 1.9 * rows))
    T = len(maps.tokens)
    for head in range(maps.num_heads):
        axes = figure.add_subplot(rows, columns, head + 1)
        axes.imshow(maps.weights[layer, head], cmap="Blues", vmin=0.0, vmax=1.0)
        axes.set_title(f"head {head}", fontsize=9)
        axes.set_xticks([]), axes.set_yticks([])
        if head == 0 and T <= 12:
            axes.set_yticks(range(T), maps.tokens, fontsize=7)
    figure.suptitle(f"Layer {layer}: every head" if title is None else title, fontsize=10)
    return figure


def _attended_html(maps: AttentionMaps, layer: int, head: int, position: int) -> str:
    pairs = attended_tokens(maps, layer, head, position)
    items = ", ".join(f"<b>{html.escape(token)}</b> {weight:.2f}" for token, weight in pairs)
    return f"<div>query <b>{html.escape(maps.tokens[position])}</b> (position {position}) looks at: {items}</div>"


class AttentionExplorer(widgets.VBox):
    """A prompt box, sliders for layer, head and query position, the head's heatmap and the keys
    the query looks at most. Attributes for tests: ``text``, ``layer``, ``head``, ``position``,
    ``message`` (what is wrong with a prompt), ``attended`` (HTML), ``figure_view`` (an Image: the
    head's heatmap as PNG, so the widget needs no output capture) and
    ``maps`` (the last :class:`AttentionMaps`, None after a rejected prompt)."""

    def __init__(self, model: TransformerLM, vocabulary: Vocabulary, examples: Sequence[str]):
        self._model, self._vocabulary = model, vocabulary
        self.maps: AttentionMaps | None = None
        self.example = widgets.Dropdown(options=list(examples), description="example",
                                        layout=widgets.Layout(width="100%"))
        self.text = widgets.Text(value=examples[0], description="prompt", continuous_update=False,
                                 layout=widgets.Layout(width="100%"))
        self.layer = widgets.IntSlider(value=0, min=0, max=model.config.num_layers - 1, description="layer")
        self.head = widgets.IntSlider(value=0, min=0, max=model.config.num_heads - 1, description="head")
        self.position = widgets.IntSlider(value=0, min=0, max=0, description="query")
        self.message, self.attended = widgets.HTML(), widgets.HTML()
        self.figure_view = widgets.Image(format="png")
        super().__init__([self.example, self.text, widgets.HBox([self.layer, self.head, self.position]),
                          self.message, self.attended, self.figure_view])
        self.example.observe(lambda change: setattr(self.text, "value", change["new"]), names="value")
        self.text.observe(lambda _change: self.read(), names="value")
        for slider in (self.layer, self.head, self.position):
            slider.observe(lambda _change: self.show(), names="value")
        self.read()

    def read(self) -> None:
        """Read the prompt; one the model cannot read gets a message, never a traceback."""
        try:
            self.maps = attention_maps(self._model, self.text.value, self._vocabulary)
        except ArgumentError as problem:
            self.maps = None
            self.message.value, self.attended.value = error_html(str(problem)), ""
            self.figure_view.value = b""
            return
        self.message.value = ""
        with self.position.hold_trait_notifications():
            self.position.max = len(self.maps.tokens) - 1
            self.position.value = self.position.max
        self.show()

    def show(self) -> None:
        if self.maps is None:
            return
        layer, head, position = self.layer.value, self.head.value, min(self.position.value, len(self.maps.tokens) - 1)
        self.attended.value = _attended_html(self.maps, layer, head, position)
        self.figure_view.value = _png(attention_figure(self.maps, layer, head))


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def attention_explorer(model: TransformerLM, vocabulary: Vocabulary, examples: Sequence[str]) -> AttentionExplorer:
    """An explorer of a Transformer LM's attention: pick a story prompt, a layer, a head and a query."""
    if not isinstance(model, TransformerLM):
        raise ArgumentError(f"model must be a course_lib.transformer.TransformerLM, got {type(model).__name__}")
    if isinstance(examples, str) or not examples or not all(isinstance(e, str) for e in examples):
        raise ArgumentError("examples must be a non-empty list of prompts (str)")
    return AttentionExplorer(model, vocabulary, list(examples))
