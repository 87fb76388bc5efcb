"""Chapter 6's recipes: the models they build, the batches they train on, and a few steps of training."""
import pytest
import torch

from course_lib.data.parallel import sentence_pairs
from course_lib.recipes import all_recipes
from course_lib.recipes.ch06_seq2seq import (VARIANTS, build_model, pair_batch, train_variant, training_batches,
                                             vocabularies)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_has_about_the_same_number_of_parameters(variant):
    parameters = sum(p.numel() for p in build_model(variant).parameters())
    assert 180_000 <= parameters <= 195_000, parameters


def test_three_seeds_of_every_variant_are_recipes():
    names = set(all_recipes())
    for variant in VARIANTS:
        assert {f"ch06_{variant}", f"ch06_{variant}_seed1", f"ch06_{variant}_seed2"} <= names


def test_a_batch_reads_the_source_backwards_only_for_the_reversed_model():
    source_vocabulary, target_vocabulary = vocabularies()
    pair = sentence_pairs(1, 5, 12, seed=3)[0]
    forward = pair_batch([pair], VARIANTS["plain"], source_vocabulary, target_vocabulary)
    backward = pair_batch([pair], VARIANTS["reversed"], source_vocabulary, target_vocabulary)
    n = len(pair.source)
    assert source_vocabulary.decode(forward[0][0, :n].tolist()) == list(pair.source)
    assert source_vocabulary.decode(backward[0][0, :n].tolist()) == list(pair.source)[::-1]
    assert torch.equal(forward[2], backward[2]) and torch.equal(forward[3], backward[3])
    assert target_vocabulary.decode(forward[3][0, :-1].tolist()) == list(pair.target)


def test_training_batches_are_deterministic_and_sorted_by_length_within_a_batch():
    first = [batch[1] for _, batch in zip(range(5), training_batches(VARIANTS["dot"], seed=0))]
    again = [batch[1] for _, batch in zip(range(5), training_batches(VARIANTS["dot"], seed=0))]
    other = [batch[1] for _, batch in zip(range(5), training_batches(VARIANTS["dot"], seed=1))]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))
    assert all(int(lengths.max() - lengths.min()) <= 3 for lengths in first)


def test_a_few_steps_of_training_run_and_record_their_figures():
    model, metadata = train_variant("dot", seed=0, steps=10, progress=False)
    assert metadata["parameters"] == sum(p.numel() for p in model.parameters())
    assert len(metadata["train_loss_every_50"]) == 1 and metadata["val_loss"]
