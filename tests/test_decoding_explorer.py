"""Chapter 8's decoding explorer: the distribution it shows is the processed one, its continuation
is what the decoding functions give, the generator's verdict is right, and bad prompts get a
message instead of a traceback."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import math

import pytest
import torch
from matplotlib import pyplot as plt

from course_lib.decoding import beam_search, greedy, sample
from course_lib.generated_text import generator_log_prob
from course_lib.recipes import load_trained
from course_lib.recipes.ch05_lstm_gru import story_vocabulary
from course_lib.widgets.decoding import Decoded, decode_prompt, decoding_explorer, decoding_figure, verdict

PROMPT = "Once upon a time , there was a girl named"


@pytest.fixture(scope="module")
def trained():
    model, _ = load_trained("ch07_transformer")
    return model, story_vocabulary()


def prompt_ids(vocabulary):
    return [vocabulary.special_id("<s>"), *vocabulary.encode(PROMPT.split())]


def test_the_distribution_shown_is_the_processed_one(trained):
    model, vocabulary = trained
    with torch.no_grad():
        plain = model.next_token_log_probs(torch.tensor([prompt_ids(vocabulary)]))[0].double().exp()
    decoded = decode_prompt(model, vocabulary, PROMPT, top_k=3, temperature=0.5, max_tokens=5)
    assert decoded.kept == 3
    best = plain.topk(3)
    expected = (best.values ** 2) / (best.values ** 2).sum()     # temperature 0.5 squares, then renormalise
    assert [p for _, p in decoded.top] == pytest.approx(expected.tolist(), rel=1e-9)
    assert [w for w, _ in decoded.top] == vocabulary.decode(best.indices.tolist())


def test_the_continuation_is_what_the_decoders_give(trained):
    model, vocabulary = trained
    ids, eos = prompt_ids(vocabulary), vocabulary.special_id("</s>")
    drawn = decode_prompt(model, vocabulary, PROMPT, top_p=0.9, seed=4)
    assert list(drawn.continuation) == vocabulary.decode(
        sample(model, ids, max_tokens=300, stop_ids=[eos], top_p=0.9, seed=4)[0])
    greedy_story = decode_prompt(model, vocabulary, PROMPT, method="greedy", repetition_penalty=1.3)
    assert list(greedy_story.continuation) == vocabulary.decode(
        sample(model, ids, max_tokens=300, stop_ids=[eos], temperature=0, repetition_penalty=1.3)[0])
    beam = decode_prompt(model, vocabulary, PROMPT, method="beam search", beam_width=3)
    best = beam_search(model, ids, beam_width=3, max_tokens=300, eos_id=eos)[0][0]
    assert list(beam.continuation) == vocabulary.decode([t for t in best.tokens if t != eos])
    plain_greedy = decode_prompt(model, vocabulary, PROMPT, method="greedy", temperature=0.3)
    assert list(plain_greedy.continuation) == vocabulary.decode(greedy(model, ids, max_tokens=300,
                                                                       stop_ids=[eos])[0])


def test_the_verdict_agrees_with_the_generator(trained):
    model, vocabulary = trained
    seen = set()
    for seed in range(6):
        decoded = decode_prompt(model, vocabulary, PROMPT, seed=seed)
        possible = decoded.ended and generator_log_prob(list(decoded.story)) > -math.inf
        assert decoded.writable == possible
        seen.add(decoded.writable)
        if not decoded.writable and decoded.first_break is not None:
            assert decoded.story[decoded.first_break] in verdict(decoded)
    cut = decode_prompt(model, vocabulary, PROMPT, max_tokens=3)
    assert not cut.ended and not cut.writable and "did not end" in verdict(cut)
    assert seen == {True, False}, "six samples should show both verdicts"


def test_the_figure_and_the_explorer(trained):
    model, vocabulary = trained
    figure = decoding_figure(decode_prompt(model, vocabulary, PROMPT, method="greedy"))
    assert len(figure.axes) == 2
    plt.close(figure)
    explorer = decoding_explorer(model, vocabulary)
    assert isinstance(explorer.decoded, Decoded) and explorer.message == ""
    explorer.method.value = "beam search"
    assert "generator" in explorer.view.value
    explorer.prompt.value = "Once upon a zebra"
    assert explorer.decoded is None and "zebra" in explorer.message and "zebra" in explorer.view.value
    explorer.prompt.value = PROMPT
    assert explorer.decoded is not None


def test_bad_arguments_get_clear_errors(trained):
    model, vocabulary = trained
    with pytest.raises(ValueError, match="method"):
        decode_prompt(model, vocabulary, PROMPT, method="magic")
    with pytest.raises(ValueError, match="top_p"):
        decode_prompt(model, vocabulary, PROMPT, top_p=1.5)
    with pytest.raises(TypeError, match="language model"):
        decode_prompt("gpt", vocabulary, PROMPT)
