"""Chapter 7's attention explorer on a small seeded, untrained TransformerLM: the weights shown are
the ones the model computes in its own forward pass, each row is a distribution over the past,
the figures draw, and a prompt the model cannot read gets a message instead of a traceback."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from matplotlib import pyplot as plt

from course_lib.checks import ArgumentError
from course_lib.data.text import Vocabulary
from course_lib.transformer import TransformerLM, TransformerLMConfig
from course_lib.widgets import (AttentionMaps, attended_tokens, attention_explorer, attention_figure,
                                attention_heads_figure, attention_maps)

VOCABULARY = Vocabulary.build([["Mia", "found", "a", "red", "kite", "in", "the", "park", ".",
                                "Tom", "lost", "his", "ball"]])
PROMPT = "Mia found a red kite in the park ."


def small_model(seed: int = 0, **sizes) -> TransformerLM:
    torch.manual_seed(seed)
    config = TransformerLMConfig(len(VOCABULARY), **{"d_model": 16, "num_heads": 4, "num_layers": 2,
                                                     "max_context": 12, **sizes})
    model = TransformerLM(config)
    with torch.no_grad():  # sharper than GPT-2's 0.02 start, so that the heads differ from uniform
        for block in model.blocks:
            block.self_attention.in_proj_weight.mul_(25.0)
    return model.eval()


def weights_from_the_models_own_pass(model: TransformerLM, ids: torch.Tensor) -> np.ndarray:
    """``(layers, heads, T, T)`` from the attention inputs the model's forward computes (its
    ``norm1`` outputs, caught by hooks), written out here: softmax(Q Kᵀ / √d_k) under the causal mask."""
    inputs = []
    hooks = [block.norm1.register_forward_hook(lambda _m, _i, output: inputs.append(output.detach()))
             for block in model.blocks]
    try:
        with torch.no_grad():
            model(ids)
    finally:
        for hook in hooks:
            hook.remove()
    layers = []
    for block, x in zip(model.blocks, inputs):
        attention = block.self_attention
        q, k, _ = (x @ attention.in_proj_weight.T + attention.in_proj_bias).chunk(3, dim=-1)
        T, h, d_k = x.shape[1], attention.num_heads, attention.d_k
        q, k = (part.reshape(1, T, h, d_k).transpose(1, 2) for part in (q, k))
        scores = (q @ k.transpose(-2, -1)) / d_k ** 0.5
        scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
        layers.append(torch.softmax(scores, dim=-1)[0].detach().double().numpy())
    return np.stack(layers)


def test_the_weights_shown_are_the_models_own():
    model = small_model()
    maps = attention_maps(model, PROMPT, VOCABULARY)
    assert maps.tokens == ("<s>", *PROMPT.split())
    ids = torch.tensor([VOCABULARY.encode(list(maps.tokens))])
    expected = weights_from_the_models_own_pass(model, ids)
    assert maps.weights.shape == (2, 4, 10, 10)
    np.testing.assert_allclose(maps.weights, expected, rtol=1e-5, atol=1e-6)
    assert np.abs(maps.weights[:, :, -1] - 1 / 10).max() > 0.05  # not uniform: a test that can fail


def test_every_row_is_a_distribution_over_the_past_only():
    maps = attention_maps(small_model(seed=3, num_layers=3, num_heads=2), PROMPT, VOCABULARY)
    np.testing.assert_allclose(maps.weights.sum(axis=-1), 1.0, rtol=1e-6)
    T = len(maps.tokens)
    assert np.all(maps.weights[..., np.triu_indices(T, k=1)[0], np.triu_indices(T, k=1)[1]] == 0.0)
    assert np.all(maps.weights[..., 0, 0] == 1.0)  # the first token can only look at itself


def test_attended_tokens_are_the_largest_weights_of_the_past():
    maps = attention_maps(small_model(), PROMPT, VOCABULARY)
    pairs = attended_tokens(maps, layer=1, head=2, position=5, k=3)
    row = maps.head(1, 2)[5]
    assert [weight for _, weight in pairs] == pytest.approx(sorted(row, reverse=True)[:3])
    assert all(token in maps.tokens[:6] for token, _ in pairs)
    assert len(attended_tokens(maps, 0, 0, position=1, k=5)) == 2  # only two keys to look at


def test_the_figures_draw_one_head_and_every_head_of_a_layer():
    maps = attention_maps(small_model(), PROMPT, VOCABULARY)
    figure = attention_figure(maps, layer=1, head=3)
    image = figure.axes[0].images[0].get_array()
    np.testing.assert_allclose(image, maps.head(1, 3))
    assert [label.get_text() for label in figure.axes[0].get_yticklabels()] == list(maps.tokens)
    grid = attention_heads_figure(maps, layer=0)
    heatmaps = [axes for axes in grid.axes if axes.images]
    assert len(heatmaps) == 4
    for head, axes in enumerate(heatmaps):
        np.testing.assert_allclose(axes.images[0].get_array(), maps.head(0, head))
    plt.close("all")


def test_bad_requests_are_clear_errors():
    model = small_model()
    with pytest.raises(ArgumentError, match="not in the model's vocabulary: 'dragon', 'Zed'"):
        attention_maps(model, "Mia found a dragon in the Zed", VOCABULARY)
    with pytest.raises(ArgumentError, match="at most 12"):
        attention_maps(model, " ".join(["Mia"] * 12), VOCABULARY)
    with pytest.raises(ArgumentError, match="prompt is empty"):
        attention_maps(model, "  ", VOCABULARY)
    with pytest.raises(ArgumentError, match="TransformerLM"):
        attention_maps(torch.nn.Linear(2, 2), PROMPT, VOCABULARY)
    maps = attention_maps(model, PROMPT, VOCABULARY)
    with pytest.raises(ArgumentError, match="layer"):
        maps.head(2, 0)
    with pytest.raises(ArgumentError, match="head"):
        attention_figure(maps, 0, 4)
    smaller = Vocabulary.build([["Mia"]])
    with pytest.raises(ArgumentError, match="vocabulary has"):
        attention_maps(model, "Mia", smaller)


def test_the_explorer_follows_its_controls_and_explains_a_prompt_it_cannot_read():
    model = small_model()
    explorer = attention_explorer(model, VOCABULARY, [PROMPT, "Tom lost his ball ."])
    assert isinstance(explorer.maps, AttentionMaps) and explorer.position.max == 9 == explorer.position.value
    assert "looks at" in explorer.attended.value and explorer.message.value == ""
    assert bytes(explorer.figure_view.value).startswith(b"\x89PNG")  # the head's heatmap, as a PNG
    explorer.layer.value, explorer.head.value, explorer.position.value = 1, 2, 4
    top_token, top_weight = attended_tokens(explorer.maps, 1, 2, 4, k=1)[0]
    assert f"{top_weight:.2f}" in explorer.attended.value and top_token in explorer.attended.value
    explorer.text.value = "Mia found a dragon"
    assert explorer.maps is None and "dragon" in explorer.message.value and explorer.attended.value == ""
    assert bytes(explorer.figure_view.value) == b""
    explorer.example.value = "Tom lost his ball ."
    assert explorer.maps.tokens == ("<s>", "Tom", "lost", "his", "ball", ".") and explorer.message.value == ""
    assert explorer.position.max == 5
    plt.close("all")
