"""Chapter 4's character-level RNN recipe and its stories (course_lib.story_text): stories as characters,
padded batches, the exact story log-likelihood (checked against a step-by-step computation) and seeded
sampling."""
from __future__ import annotations

import math

import pytest
import torch

from course_lib.data.program import predicted_units
from course_lib.data.text import Vocabulary
from course_lib.recipes import checkpoint_path
from course_lib.evaluate import nats
from course_lib.recipes.ch04_rnn import build_model, corpus, story_batches
from course_lib.rnn import RNN, RecurrentLM
from course_lib.story_text import BOUNDARY, char_vocabulary, encode_story, sample_story
from course_lib.train import IGNORE_INDEX

STORIES = ["Mia had a red ball.", "Tom ran. The end.", "A cat sat?"]


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return char_vocabulary(STORIES)


@pytest.fixture(scope="module")
def model(vocabulary) -> RecurrentLM:
    torch.manual_seed(0)
    return RecurrentLM(len(vocabulary), RNN(4, 8))


def test_the_vocabulary_has_unk_first_then_every_character_and_the_newline(vocabulary):
    assert vocabulary.tokens[0] == "<unk>"
    assert set(vocabulary.tokens[1:]) == set("".join(STORIES)) | {BOUNDARY}
    with pytest.raises(TypeError, match="list of stories"):
        char_vocabulary("Mia had a ball.")


def test_a_story_is_framed_by_newlines_and_unknown_characters_become_unk(vocabulary):
    ids = encode_story("Mia!", vocabulary)
    assert vocabulary.decode(ids) == [BOUNDARY, "M", "i", "a", "<unk>", BOUNDARY]
    assert len(encode_story(STORIES[0], vocabulary)) - 1 == predicted_units(STORIES[0], unit="char")
    with pytest.raises(ValueError, match="newline"):
        encode_story("two\nstories", vocabulary)
    with pytest.raises(TypeError, match="str"):
        encode_story(["M", "i"], vocabulary)


def test_story_batches_are_seeded_and_hold_whole_stories(vocabulary):
    sequences = [encode_story(text, vocabulary) for text in STORIES * 4]
    first, second = story_batches(sequences, 2, 0, seed=5), story_batches(sequences, 2, 0, seed=5)
    for _ in range(6):
        (inputs, targets), (again_inputs, again_targets) = next(first), next(second)
        assert torch.equal(inputs, again_inputs) and torch.equal(targets, again_targets)
        assert inputs.shape == targets.shape and inputs.shape[0] == 2
        for row_inputs, row_targets in zip(inputs.tolist(), targets.tolist()):
            kept = [t for t in row_targets if t != IGNORE_INDEX]
            assert [row_inputs[0], *kept] in sequences  # a whole story, from its first newline to its last
    with pytest.raises(ValueError, match="batch_size"):
        next(story_batches(sequences, 0, 0, seed=0))


def test_story_nats_equal_the_sum_of_step_by_step_log_probabilities(model, vocabulary):
    expected, count = 0.0, 0
    with torch.no_grad():
        for text in STORIES:
            ids = encode_story(text, vocabulary)
            state = None
            for previous, following in zip(ids, ids[1:]):
                logits, state = model.forward_with_state(torch.tensor([[previous]]), state)
                expected -= torch.log_softmax(logits[0, -1].double(), dim=-1)[following].item()
                count += 1
    score = nats(model, [encode_story(text, vocabulary) for text in STORIES], batch_size=2)
    assert score.tokens == count == sum(predicted_units(text, unit="char") for text in STORIES)
    assert score.total_nats == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="non-empty list"):
        nats(model, "Mia had a red ball.")


def test_sampling_is_seeded_starts_from_the_prompt_and_stops_at_the_newline(model, vocabulary):
    first = sample_story(model, vocabulary, "Mia", seed=3, max_chars=40)
    assert first == sample_story(model, vocabulary, "Mia", seed=3, max_chars=40)
    assert first.startswith("Mia") and len(first) <= 3 + 40 and BOUNDARY not in first
    samples = {sample_story(model, vocabulary, "Mia", seed=seed, max_chars=40) for seed in range(5)}
    assert len(samples) > 1

    certain_end = RecurrentLM(len(vocabulary), RNN(4, 8))
    with torch.no_grad():
        certain_end.readout.bias.fill_(-50.0)
        certain_end.readout.bias[vocabulary.token_to_id(BOUNDARY)] = 50.0
    assert sample_story(certain_end, vocabulary, "Tom", seed=0) == "Tom"


@pytest.mark.parametrize("kwargs, error, words", [
    ({"temperature": 0.0}, ValueError, "temperature"),
    ({"max_chars": 0}, ValueError, "max_chars"),
    ({"prompt": 5}, TypeError, "prompt"),
])
def test_sampling_rejects_bad_settings(model, vocabulary, kwargs, error, words):
    with pytest.raises(error, match=words):
        sample_story(model, vocabulary, **kwargs)


def test_a_model_and_vocabulary_that_do_not_match_are_refused(vocabulary):
    with pytest.raises(ValueError, match="vocabulary the model was trained with"):
        sample_story(RecurrentLM(len(vocabulary) + 1, RNN(4, 8)), vocabulary, "Mia")
    with pytest.raises(TypeError, match="RecurrentLM"):
        sample_story(torch.nn.Linear(2, 2), vocabulary)


def test_the_recipe_model_reads_the_training_characters_and_the_checkpoint_stores_them():
    from course_lib.checkpoint import read_checkpoint_metadata

    vocabulary = char_vocabulary([story.text for story in corpus().train])
    model = build_model()
    assert model.vocab_size == len(vocabulary) and model.fused and type(model.rnn) is RNN
    metadata = read_checkpoint_metadata(checkpoint_path("ch04_char_rnn"))
    assert Vocabulary.from_json(metadata["vocabulary"]) == vocabulary
    assert metadata["val_loss"] and min(metadata["val_loss"]) < math.log(len(vocabulary))
