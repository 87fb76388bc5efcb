"""Chapter 9's recipes: one small Transformer trained under three objectives at equal compute, and
the question-answering fine-tuning; the story tasks (cloze probes both ways, extractive QA)."""
from __future__ import annotations

from itertools import islice

import pytest
import torch

from course_lib.bert import BertForMaskedLM, BertForQuestionAnswering
from course_lib.data.lexicon import Lexicon
from course_lib.data.story_qa import cloze_probes, fact_positions, qa_examples
from course_lib.objectives import IGNORE_INDEX
from course_lib.recipes import all_recipes
from course_lib.recipes import ch09_objectives as objectives
from course_lib.recipes import ch09_qa as qa
from course_lib.recipes.ch05_lstm_gru import story_vocabulary


def test_one_network_for_the_three_objectives_with_a_mask_id_after_the_story_words():
    model = objectives.build_model()
    assert isinstance(model, BertForMaskedLM)
    assert model.config.vocab_size == len(story_vocabulary()) + 1
    assert (model.config.hidden_size, model.config.num_hidden_layers, model.config.num_attention_heads) == (64, 3, 4)
    assert 200_000 < sum(p.numel() for p in model.parameters()) < 220_000
    assert model.mlm_head.decoder.weight is model.bert.embeddings.token.weight


def test_the_attention_patterns_are_what_each_objective_sees():
    ids = torch.tensor([[2, 7, 8, 9, 3, 0]])
    full, causal = objectives.attention_for("mlm", ids)[0], objectives.attention_for("clm", ids)[0]
    assert full[:, :5].all() and not full[:, 5].any()  # every real token, never the padding
    assert torch.equal(causal, torch.ones(6, 6, dtype=torch.bool).tril())
    prefix = objectives.attention_for("prefix", ids, torch.tensor([3]))[0]
    assert prefix[0, :3].all() and not prefix[0, 3:].any() and prefix[4, :5].all() and not prefix[4, 5]


def test_the_causal_model_cannot_see_the_future():
    model = objectives.build_model().eval()
    ids = torch.tensor([[2, 7, 8, 9, 10, 3]])
    changed = ids.clone()
    changed[0, 4] = 11
    with torch.no_grad():
        a = objectives.logits(model, ids, objectives.attention_for("clm", ids))
        b = objectives.logits(model, changed, objectives.attention_for("clm", changed))
    assert torch.allclose(a[0, :4], b[0, :4], atol=1e-6) and not torch.allclose(a[0, 4], b[0, 4])


def test_the_two_masked_objectives_select_their_share_of_the_story_tokens(monkeypatch):
    """The loss of ``mlm`` and ``mlm40`` is over about 15% and 40% of the non-special tokens."""
    batch = next(objectives.story_batches(objectives.SCHEDULE[-1], seed=3))
    real = ~torch.isin(batch, torch.tensor(objectives.special_ids()))
    seen = {}

    def recording_cross_entropy(scores, targets, ignore_index):
        seen["targets"] = int((targets != ignore_index).sum())
        return torch.zeros(())

    monkeypatch.setattr(torch.nn.functional, "cross_entropy", recording_cross_entropy)
    model = objectives.build_model().eval()
    for objective, rate in (("mlm", 0.15), ("mlm40", 0.40)):
        with torch.no_grad():
            objectives.objective_loss(model, batch, objective, torch.Generator().manual_seed(0))
        n = int(real.sum())
        assert abs(seen["targets"] - rate * n) < 5 * (rate * (1 - rate) * n) ** 0.5, (objective, seen, n)
    assert torch.equal(objectives.attention_for("mlm40", batch), objectives.attention_for("mlm", batch))


@pytest.mark.parametrize("objective", objectives.OBJECTIVES)
def test_a_few_training_steps_lower_the_loss_of_each_objective(objective):
    model, metadata = objectives.train_model(objective, seed=0, steps=8)
    assert metadata["objective"] == objective and len(metadata["train_loss"]) == 8
    assert metadata["val_loss"] and all(loss == loss for loss in metadata["val_loss"])
    assert not model.training


def test_the_probes_of_each_direction_blank_the_fact_the_other_occurrence_fixes():
    lexicon = Lexicon()
    for direction in ("right", "left"):
        for probe in cloze_probes(30, direction, seed=1):
            positions = fact_positions(list(probe.tokens), lexicon)[probe.kind]
            assert len(positions) == 2 and probe.answer in probe.candidates
            assert probe.position == positions[0 if direction == "right" else 1]
            assert probe.tokens[positions[0]] == probe.tokens[positions[1]] == probe.answer


def test_blank_scores_of_the_causal_model_ignore_the_right_hand_side():
    model = objectives.build_model().eval()
    probe = cloze_probes(1, "right", seed=2)[0]
    other = type(probe)(probe.tokens[: probe.position + 1] + ("Tom",) * 3, probe.position, probe.answer,
                        probe.kind, probe.direction, probe.candidates)
    a, b = objectives.blank_scores(model, "clm", [probe, other])
    assert torch.allclose(a, b)
    masked = objectives.blank_scores(model, "mlm", [probe, other])
    assert not torch.allclose(*masked)


def test_qa_examples_point_at_their_answer_in_a_two_story_context():
    names = set(Lexicon().female_names) | set(Lexicon().male_names)
    for example in qa_examples(50, seed=0):
        assert example.answer[0] in example.context and example.start == example.end
        assert len({token for token in example.context if token in names}) >= 2
    assert qa_examples(5, split="train") != qa_examples(5, split="test")


def test_qa_encoding_puts_the_answer_positions_on_the_answer_tokens():
    examples = qa_examples(20, seed=3)
    data = qa.encode_examples(examples)
    vocabulary = story_vocabulary()
    for row, example in enumerate(examples):
        assert vocabulary.id_to_token(int(data["input_ids"][row, data["start_positions"][row]])) == example.answer[0]
        assert data["context_mask"][row, data["start_positions"][row]]
        assert data["token_type_ids"][row, data["start_positions"][row]] == 1


def test_f1_gives_partial_credit_and_exact_match_none():
    assert qa.token_f1(("red", "ball"), ("red",)) == pytest.approx(2 / 3)
    assert qa.exact_match(("red", "ball"), ("red",)) == 0.0 and qa.token_f1(("blue",), ("red",)) == 0.0


def test_fine_tuning_from_scratch_runs_and_predicts_spans_inside_the_context():
    model = qa.fine_tune("scratch", 40, seed=0, steps=3)
    assert isinstance(model, BertForQuestionAnswering)
    examples = qa_examples(10, seed=0, split="test")
    for example, answer in zip(examples, qa.predict(model, examples)):
        assert 1 <= len(answer) <= qa.MAX_ANSWER_TOKENS
        assert any(example.context[i : i + len(answer)] == answer for i in range(len(example.context)))


def test_recipes_are_registered_for_the_trained_seeds_only():
    names = {objectives.recipe_name(o, s) for o in objectives.OBJECTIVES for s in objectives.TRAINED_SEEDS[o]}
    assert set(objectives.RECIPES) == names and set(objectives.RECIPES) <= set(all_recipes())
    assert objectives.recipe_name("prefix", 2) == "ch09_prefix_seed2"
    assert sum(stage.steps for stage in objectives.SCHEDULE) == 3500


def test_each_qa_recipe_fine_tunes_from_its_own_starts_and_all_seeds_are_registered():
    assert qa.RECIPE_STARTS == {"ch09_qa": ("mlm", "scratch"), "ch09_qa_mlm40": ("mlm40",)}
    names = {qa.qa_recipe_name(seed, recipe) for recipe in qa.RECIPE_STARTS for seed in qa.SEEDS}
    assert names == {"ch09_qa", "ch09_qa_seed1", "ch09_qa_seed2",
                     "ch09_qa_mlm40", "ch09_qa_mlm40_seed1", "ch09_qa_mlm40_seed2"}
    assert names <= set(all_recipes())
    assert "from ch09_mlm40_seed2 on" in qa.RECIPES["ch09_qa_mlm40_seed2"].description
    with pytest.raises(ValueError, match="recipe"):
        qa.qa_recipe_name(0, "ch09_qa_mlm15")


def test_fine_tuning_from_the_40_percent_masked_lm_starts_from_its_encoder():
    model = qa._starting_model("mlm40", 1)
    pretrained = objectives.build_model()
    from course_lib.checkpoint import load_checkpoint
    from course_lib.recipes import checkpoint_path
    load_checkpoint(pretrained, checkpoint_path("ch09_mlm40_seed1"))
    for name, tensor in pretrained.bert.state_dict().items():
        assert torch.equal(model.bert.state_dict()[name], tensor), name
