"""Chapter 5's experiment helpers and explorer: whole-story batches, the per-token loss and the probe
scores, each checked against a plain one-story-at-a-time computation; the probe explorer's views."""
from __future__ import annotations

import math

import pytest
import torch

from course_lib.data.probes import Probe, make_probes, probe_answers
from course_lib.data.stories import StoryShape
from course_lib.data.text import Vocabulary, word_tokenize
from course_lib.evaluate import cross_entropy, score_probes
from course_lib.recipes import ch05_lstm_gru as ch05
from course_lib.story_text import encode_stories
from course_lib.lstm import recurrent_layer
from course_lib.rnn import RNN, RecurrentLM
from course_lib.train import IGNORE_INDEX
from course_lib.widgets import ProbeExplorer, candidate_table, probe_explorer, probe_fact_index, probe_html


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return ch05.story_vocabulary()


@pytest.fixture(scope="module", params=["rnn", "lstm", "gru"])
def model(request, vocabulary) -> RecurrentLM:
    torch.manual_seed(5)
    lm = RecurrentLM(len(vocabulary), recurrent_layer(request.param, 8, 12, fused=True))
    with torch.no_grad():
        lm.readout.weight.mul_(20)  # a peaked distribution, so that the probabilities differ visibly
    return lm.eval()


@pytest.fixture(scope="module")
def probes() -> list[Probe]:
    return make_probes(4, (8, 40), seed=3)


# ------------------------------------------------------------------ batches

def test_stage_batches_are_seeded_fresh_stories_of_the_stages_shape_grouped_by_length(vocabulary):
    stage = ch05.Stage(max_facts=1, max_fillers=0, steps=10)
    first = ch05.stage_batches(stage, vocabulary, batch_size=4, seed=7)
    again = ch05.stage_batches(stage, vocabulary, batch_size=4, seed=7)
    other = ch05.stage_batches(stage, vocabulary, batch_size=4, seed=8)
    batches = [next(first) for _ in range(20)]  # more than one pool of 16 batches
    for inputs, targets in batches:
        same_inputs, same_targets = next(again)
        assert torch.equal(inputs, same_inputs) and torch.equal(targets, same_targets)
    assert not torch.equal(batches[0][0], next(other)[0])
    rows = [tuple(row.tolist()) for inputs, _ in batches for row in inputs]
    assert len(set(rows)) == len(rows)  # fresh stories, no repeats
    bos, eos, pad = (vocabulary.special_id(token) for token in ("<s>", "</s>", "<pad>"))
    question = vocabulary.token_to_id("?")
    lengths = []
    for inputs, targets in batches[:16]:  # the first pool
        real = targets != IGNORE_INDEX
        assert (inputs[:, 0] == bos).all() and ((inputs == pad) == ~real).all()
        assert (targets[real] == eos).sum() == len(inputs)  # each row is one whole story
        assert ((inputs == question).sum(dim=1) == 1).all()  # one fact, so one question
        lengths.append(real.sum(dim=1).tolist())
    spans = sorted((min(batch), max(batch)) for batch in lengths)
    assert all(high <= next_low for (_, high), (next_low, _) in zip(spans, spans[1:]))  # sorted by length


def test_encode_stories_brackets_each_story_with_start_and_end(vocabulary):
    (ids,) = encode_stories(["Mia had a red ball."], vocabulary)
    assert vocabulary.decode(ids) == ["<s>", "Mia", "had", "a", "red", "ball", ".", "</s>"]
    assert encode_stories([["Mia", "smiled"]], vocabulary)[0][1:3] == vocabulary.encode(["Mia", "smiled"])
    with pytest.raises(TypeError, match="list of stories"):
        encode_stories("Mia had a red ball.", vocabulary)


# ------------------------------------------------------------------ evaluation

def test_story_cross_entropy_is_the_mean_over_every_token_of_stories_read_one_at_a_time(model, vocabulary):
    texts = ["Mia had a red ball. What colour was the ball that Mia had? It was red.", "Tom smiled.",
             "There was a king named Sam. He lived in a hut near the lake. The end."]
    sequences = encode_stories(texts, vocabulary)
    total, count = 0.0, 0
    with torch.no_grad():
        for ids in sequences:  # no padding at all: one story, its own length
            log_p = torch.log_softmax(model(torch.tensor([ids[:-1]]))[0].double(), dim=-1)
            total -= float(log_p[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].sum())
            count += len(ids) - 1
    assert count == sum(len(word_tokenize(text)) + 1 for text in texts)
    got = cross_entropy(model, sequences, batch_size=2)
    assert got == pytest.approx(total / count, rel=1e-5)


def test_score_probes_gives_the_softmax_at_the_end_of_each_prompt_for_the_candidates(model, vocabulary, probes):
    scores = score_probes(model, vocabulary, probes, batch_size=3)
    assert [score.probe for score in scores] == probes
    bos = vocabulary.special_id("<s>")
    for score in scores:
        ids = [bos, *vocabulary.encode(word_tokenize(score.probe.prompt))]
        with torch.no_grad():
            p = torch.softmax(model(torch.tensor([ids]))[0, -1].double(), dim=-1)
        candidates = probe_answers(score.probe.kind)
        assert score.candidates == candidates
        expected = [float(p[vocabulary.token_to_id(word)]) for word in candidates]
        assert score.probabilities == pytest.approx(expected, rel=1e-5)
        best = max(range(len(candidates)), key=expected.__getitem__)
        assert score.choice == candidates[best]
        assert score.correct == (candidates[best] == score.probe.answer)
        assert score.answer_probability == pytest.approx(expected[candidates.index(score.probe.answer)], rel=1e-5)


def test_score_probes_refuses_a_vocabulary_the_model_was_not_trained_with(probes):
    small = Vocabulary(["red"], specials=("<pad>", "<unk>", "<s>", "</s>"))
    with pytest.raises(ValueError, match="vocabulary"):
        score_probes(RecurrentLM(len(small) + 1, RNN(4, 4)), small, probes)
    with pytest.raises(ValueError, match="lacks the candidate answers"):
        score_probes(RecurrentLM(len(small), RNN(4, 4)), small, probes)


def test_the_three_models_have_the_same_number_of_parameters_within_a_fifth_of_a_percent():
    counts = {cell: sum(p.numel() for p in ch05.build_model(cell).parameters()) for cell in ch05.CELLS}
    assert max(counts.values()) / min(counts.values()) < 1.002
    assert ch05.build_model("lstm").rnn.d_hidden < ch05.build_model("gru").rnn.d_hidden < ch05.build_model("rnn").rnn.d_hidden
    with pytest.raises(ValueError, match="cell must be one of"):
        ch05.build_model("transformer")


# ------------------------------------------------------------------ the explorer

def test_the_fact_index_points_at_the_answer_word_distance_plus_one_tokens_back(probes):
    for probe in probes:
        tokens = word_tokenize(probe.prompt)
        index = probe_fact_index(probe)
        assert tokens[index] == probe.answer
        assert len(tokens) - index == probe.distance + 1
    broken = Probe(probes[0].prompt, probes[0].answer, probes[0].distance + 1, probes[0].kind)
    with pytest.raises(ValueError, match="not made by make_probes"):
        probe_fact_index(broken)
    with pytest.raises(TypeError, match="Probe"):
        probe_fact_index("Mia had a red ball.")


def test_probe_html_marks_the_fact_once_and_escapes_the_text(probes):
    shown = probe_html(probes[0])
    assert shown.count("<mark") == 1
    assert f"<b>{probes[0].answer}</b></mark>" in shown
    assert f"{probes[0].distance + 1} words before" in shown
    odd = Probe("Mia had a <b> ball named Coco", "Coco", 0, "pet")
    assert "&lt;" in probe_html(odd) and "<b> ball" not in probe_html(odd)


def test_candidate_table_ranks_the_candidates(probes):
    table = candidate_table(lambda model, probe: [("red", 0.1), ("blue", 0.3), ("pink", 0.1)], "lstm", probes[0])
    assert table.rows == (("blue", 0.3), ("pink", 0.1), ("red", 0.1))
    with pytest.raises(ValueError, match="no candidate"):
        candidate_table(lambda model, probe: [], "lstm", probes[0])


def test_the_explorer_follows_its_controls(probes):
    calls = []

    def candidates(model, probe):
        calls.append((model, probe))
        bet = 0.9 if model == "LSTM" else 0.01
        others = len(probe_answers(probe.kind)) - 1
        return [(word, bet if word == probe.answer else (1 - bet) / others) for word in probe_answers(probe.kind)]

    groups = {8: probes[:4], 40: probes[4:]}
    explorer = probe_explorer(candidates, ["RNN", "LSTM"], groups)
    assert isinstance(explorer, ProbeExplorer)
    assert explorer.probe == probes[0] and explorer.table.rows[0][0] != probes[0].answer
    assert "wrong" in explorer.table_view.value
    explorer.model.value = "LSTM"
    assert explorer.table.rows[0] == (probes[0].answer, 0.9) and "right" in explorer.table_view.value
    explorer.number.value = 3
    explorer.distance.value = 40
    assert explorer.probe == probes[7] and explorer.number.max == 3
    assert "<mark" in explorer.prompt_view.value
    assert calls[-1] == ("LSTM", probes[7])


@pytest.mark.parametrize("arguments, error, words", [
    (("not a function", ["LSTM"], {8: []}), TypeError, "function"),
    ((lambda m, p: [], [], {8: []}), ValueError, "model names"),
    ((lambda m, p: [], "LSTM", {8: []}), ValueError, "model names"),
    ((lambda m, p: [], ["LSTM"], {}), ValueError, "non-empty dict"),
    ((lambda m, p: [], ["LSTM"], {8: []}), ValueError, "non-empty list of Probe"),
])
def test_the_explorer_rejects_bad_arguments(arguments, error, words):
    with pytest.raises(error, match=words):
        probe_explorer(*arguments)


def test_chance_is_what_a_uniform_bet_scores(vocabulary, probes):
    """A model whose logits ignore the prompt picks one fixed colour: right for 1/12 of colour facts."""
    uniform = RecurrentLM(len(vocabulary), RNN(4, 4))
    with torch.no_grad():
        for parameter in uniform.parameters():
            parameter.zero_()
        uniform.readout.bias[vocabulary.token_to_id("blue")] = 1.0
    colour = [probe for probe in make_probes(120, (8,), seed=9, kinds=("colour",))]
    accuracy = sum(score.correct for score in score_probes(uniform, vocabulary, colour)) / len(colour)
    assert accuracy == pytest.approx(sum(probe.answer == "blue" for probe in colour) / len(colour))
    assert abs(accuracy - 1 / 12) < 3 * math.sqrt(1 / 12 * 11 / 12 / len(colour))


def test_each_model_has_one_recipe_per_seed_named_after_both():
    assert ch05.recipe_name("lstm") == "ch05_lstm"
    assert ch05.recipe_name("gru", 2) == "ch05_gru_seed2"
    with pytest.raises(ValueError, match="cell must be one of"):
        ch05.recipe_name("transformer")
    expected = {ch05.recipe_name(cell, seed): seed for cell in ch05.CELLS for seed in ch05.SEEDS}
    expected["ch05_gru_no_curriculum"] = 0
    assert {name: recipe.seed for name, recipe in ch05.RECIPES.items()} == expected


def test_the_ablation_changes_only_the_shape_of_the_stories():
    corpus_shape = StoryShape()
    assert len(ch05.WITHOUT_CURRICULUM) == len(ch05.CURRICULUM)
    for plain, staged in zip(ch05.WITHOUT_CURRICULUM, ch05.CURRICULUM):
        assert (plain.steps, plain.learning_rate_factor) == (staged.steps, staged.learning_rate_factor)
        assert (plain.max_facts, plain.max_fillers) == (corpus_shape.max_facts, corpus_shape.max_fillers)
    last = ch05.CURRICULUM[-1]  # the curriculum ends on the corpus's own shape
    assert (last.max_facts, last.max_fillers) == (corpus_shape.max_facts, corpus_shape.max_fillers)
