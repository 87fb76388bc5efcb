"""Chapter 9's BERT and RoBERTa against Hugging Face ``transformers`` with the same random weights.

The ``transformers`` models are built from small configurations (no hub, no download), their
weights redrawn with a large spread (so that a wrong layer, order or scale shows), copied into the
course's models by name, and both run in eval mode in float32 on a batch with padding and two
segments. Agreement: 1e-5 in absolute value (float32; the differences measured are about 1e-6).
"""
import pytest
import torch
import transformers

from course_lib import checks
from course_lib.bert import (BertConfig, BertForMaskedLM, BertForPreTraining, BertForQuestionAnswering, BertModel,
                             best_answer_span, count_parameters, from_hf_state_dict, mean_pooling,
                             parameter_count_formula, parameter_memory_bytes, position_ids, question_answering_loss,
                             to_hf_state_dict)
from course_lib.transformer import set_fused

TOLERANCE = 1e-5
SIZES = dict(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
             max_position_embeddings=40)
HF_BERT = transformers.BertConfig(**SIZES)
HF_ROBERTA = transformers.RobertaConfig(**SIZES, type_vocab_size=1, pad_token_id=1)


def _hf_model(hf_class, hf_config, seed=0):
    """A ``transformers`` model in eval mode with every parameter redrawn from N(0, 0.2²) (layer-norm
    scales around 1), so that every tensor matters."""
    torch.manual_seed(seed)
    model = hf_class(hf_config).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator) * 0.2
            parameter.copy_(1 + noise if "LayerNorm.weight" in name or "layer_norm.weight" in name else noise)
    return model


def _batch(pad_id, seed=0):
    """Three rows of 11 tokens: full, padded after 7, padded after 3; segments 0 then 1."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(2, SIZES["vocab_size"], (3, 11), generator=generator)
    attention_mask = torch.ones(3, 11, dtype=torch.long)
    attention_mask[1, 7:] = attention_mask[2, 3:] = 0
    input_ids[attention_mask == 0] = pad_id
    token_type_ids = torch.zeros(3, 11, dtype=torch.long)
    token_type_ids[:, 5:] = 1
    return input_ids, attention_mask, token_type_ids


def _max_difference(expected, actual):
    return (expected - actual).abs().max().item()


CASES = [  # (transformers class, course class, config, [(transformers field, course field)])
    (transformers.BertModel, BertModel, HF_BERT,
     [("last_hidden_state", "last_hidden_state"), ("pooler_output", "pooler_output")]),
    (transformers.BertForMaskedLM, BertForMaskedLM, HF_BERT, [("logits", "logits")]),
    (transformers.BertForQuestionAnswering, BertForQuestionAnswering, HF_BERT,
     [("start_logits", "start_logits"), ("end_logits", "end_logits")]),
    (transformers.BertForPreTraining, BertForPreTraining, HF_BERT,
     [("prediction_logits", "prediction_logits"), ("seq_relationship_logits", "seq_relationship_logits")]),
    (transformers.RobertaModel, BertModel, HF_ROBERTA,
     [("last_hidden_state", "last_hidden_state"), ("pooler_output", "pooler_output")]),
    (transformers.RobertaForMaskedLM, BertForMaskedLM, HF_ROBERTA, [("logits", "logits")]),
]


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "written_out"])
@pytest.mark.parametrize("hf_class, course_class, hf_config, fields", CASES, ids=lambda c: getattr(c, "__name__", ""))
def test_outputs_equal_transformers_with_padding_and_segments(hf_class, course_class, hf_config, fields, fused):
    hf_model = _hf_model(hf_class, hf_config)
    config = BertConfig.from_hf(hf_config)
    model = course_class.from_hf_state_dict(hf_model.state_dict(), config).eval()
    set_fused(model, fused)
    input_ids, attention_mask, token_type_ids = _batch(config.pad_token_id)
    if config.type_vocab_size == 1:
        token_type_ids = torch.zeros_like(token_type_ids)
    with torch.no_grad():
        expected = hf_model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        actual = model(input_ids, attention_mask, token_type_ids)
    for hf_field, course_field in fields:
        assert getattr(actual, course_field).shape == getattr(expected, hf_field).shape
        assert _max_difference(getattr(expected, hf_field), getattr(actual, course_field)) < TOLERANCE, course_field
    assert actual.__dict__.get("loss") is None


def test_output_shapes_and_the_pooler_reads_the_first_token():
    model = BertModel(BertConfig.from_hf(HF_BERT)).eval()
    input_ids, attention_mask, token_type_ids = _batch(0)
    output = model(input_ids, attention_mask, token_type_ids)
    assert output.last_hidden_state.shape == (3, 11, 32) and output.pooler_output.shape == (3, 32)
    expected = torch.tanh(output.last_hidden_state[:, 0] @ model.pooler.dense.weight.T + model.pooler.dense.bias)
    assert torch.allclose(output.pooler_output, expected, atol=1e-6)


def test_dropout_is_berts_attention_weights_and_sublayer_outputs_not_ffn_hidden_units():
    config = BertConfig.from_hf(HF_BERT, attention_probs_dropout_prob=0.2, hidden_dropout_prob=0.3)
    layer = BertModel(config).encoder.layers[0]
    assert layer.self_attention.dropout == 0.2
    assert layer.dropout1.p == layer.dropout2.p == 0.3
    assert isinstance(layer.feed_forward.dropout, torch.nn.Identity)
    without_dropout = BertModel(BertConfig.from_hf(HF_BERT, attention_probs_dropout_prob=0.0,
                                                   hidden_dropout_prob=0.0))
    batch = _batch(0)
    assert torch.equal(without_dropout.train()(*batch).last_hidden_state,
                       without_dropout.eval()(*batch).last_hidden_state)


def test_written_out_and_fused_paths_agree_on_a_random_model():
    model = BertForMaskedLM(BertConfig.from_hf(HF_BERT)).eval()
    batch = _batch(0)
    with torch.no_grad():
        fused = model(*batch).logits
        set_fused(model, False)
        written_out = model(*batch).logits
    assert _max_difference(fused, written_out) < TOLERANCE


def test_masked_lm_and_question_answering_losses_equal_transformers():
    input_ids, attention_mask, token_type_ids = _batch(0)
    labels = torch.full_like(input_ids, -100)
    labels[0, 2], labels[1, 4], labels[2, 1] = 5, 17, 90
    hf_mlm = _hf_model(transformers.BertForMaskedLM, HF_BERT, seed=1)
    mlm = BertForMaskedLM.from_hf_state_dict(hf_mlm.state_dict(), BertConfig.from_hf(HF_BERT)).eval()
    hf_qa = _hf_model(transformers.BertForQuestionAnswering, HF_BERT, seed=2)
    qa = BertForQuestionAnswering.from_hf_state_dict(hf_qa.state_dict(), BertConfig.from_hf(HF_BERT)).eval()
    start, end = torch.tensor([1, 30, -4]), torch.tensor([3, 5, 11])  # 30 and 11: outside, clamped and ignored
    with torch.no_grad():
        expected_mlm = hf_mlm(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                              labels=labels).loss
        actual_mlm = mlm(input_ids, attention_mask, token_type_ids, labels=labels).loss
        expected_qa = hf_qa(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                            start_positions=start, end_positions=end).loss
        actual_qa = qa(input_ids, attention_mask, token_type_ids, start_positions=start, end_positions=end)
    assert abs(expected_mlm.item() - actual_mlm.item()) < TOLERANCE
    assert abs(expected_qa.item() - actual_qa.loss.item()) < TOLERANCE
    by_hand = (torch.nn.functional.cross_entropy(actual_qa.start_logits[[0, 2]], torch.tensor([1, 0]))
               + torch.nn.functional.cross_entropy(actual_qa.end_logits[[0, 1]], torch.tensor([3, 5]))) / 2
    assert abs(by_hand.item() - actual_qa.loss.item()) < 1e-6


def test_pretraining_loss_is_the_sum_of_masked_lm_and_next_sentence_losses():
    hf_model = _hf_model(transformers.BertForPreTraining, HF_BERT)
    model = BertForPreTraining.from_hf_state_dict(hf_model.state_dict(), BertConfig.from_hf(HF_BERT)).eval()
    input_ids, attention_mask, token_type_ids = _batch(0)
    labels = torch.where(torch.rand(input_ids.shape, generator=torch.Generator().manual_seed(0)) < 0.3, input_ids,
                         torch.full_like(input_ids, -100))
    next_sentence = torch.tensor([0, 1, 1])
    with torch.no_grad():
        expected = hf_model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                            labels=labels, next_sentence_label=next_sentence).loss
        actual = model(input_ids, attention_mask, token_type_ids, labels=labels, next_sentence_label=next_sentence)
    assert abs(expected.item() - actual.loss.item()) < TOLERANCE


def test_roberta_positions_start_after_padding_and_skip_it():
    config = BertConfig.from_hf(HF_ROBERTA)
    assert config.position_offset == 1 and config.max_sequence_length == SIZES["max_position_embeddings"] - 2
    ids = torch.tensor([[0, 5, 6, 2, 1, 1], [0, 1, 7, 2, 1, 9]])
    expected = transformers.models.roberta.modeling_roberta.RobertaEmbeddings.create_position_ids_from_input_ids(
        ids, padding_idx=1)
    assert torch.equal(position_ids(ids, config), expected)
    assert position_ids(ids, config)[0].tolist() == [2, 3, 4, 5, 1, 1]
    assert position_ids(ids, BertConfig.from_hf(HF_BERT))[0].tolist() == list(range(6))


def test_best_answer_span_equals_a_brute_force_search():
    generator = torch.Generator().manual_seed(0)
    start_logits, end_logits = torch.randn(50, 9, generator=generator), torch.randn(50, 9, generator=generator)
    allowed = torch.rand(50, 9, generator=generator) < 0.7
    allowed[:, 4] = True
    spans = best_answer_span(start_logits, end_logits, 3, allowed)
    for row in range(50):
        candidates = [(float(start_logits[row, s] + end_logits[row, e]), s, e)
                      for s in range(9) for e in range(s, min(s + 3, 9)) if allowed[row, s] and allowed[row, e]]
        _, s, e = max(candidates)
        assert spans[row].tolist() == [s, e]
    unconstrained = best_answer_span(start_logits, end_logits, 9)
    assert (unconstrained[:, 0] <= unconstrained[:, 1]).all()
    with pytest.raises(checks.ArgumentError, match="at least one position"):
        best_answer_span(start_logits[:1], end_logits[:1], 3, torch.zeros(1, 9, dtype=torch.bool))


def test_mean_pooling_averages_the_real_tokens_only():
    hidden = torch.randn(2, 4, 3, generator=torch.Generator().manual_seed(0))
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    pooled = mean_pooling(hidden, mask)
    assert torch.allclose(pooled[0], hidden[0, :2].mean(0)) and torch.allclose(pooled[1], hidden[1].mean(0))
    with pytest.raises(checks.ArgumentError, match="attention_mask"):
        mean_pooling(hidden, mask[:, :3])


# ---------------------------------------------------------------------------------------------
# Tied decoder and state dicts
# ---------------------------------------------------------------------------------------------
def test_masked_lm_decoder_is_the_word_embedding_matrix():
    model = BertForMaskedLM(BertConfig.from_hf(HF_BERT))
    embedding, decoder = model.bert.embeddings.token.weight, model.mlm_head.decoder.weight
    assert decoder is embedding and decoder.data_ptr() == embedding.data_ptr()
    assert model.mlm_head.decoder.bias.shape == (SIZES["vocab_size"],)
    assert not model.bert.embeddings.token.weight[0].any()  # the padding row starts at 0
    before = embedding.detach().clone()
    input_ids, attention_mask, token_type_ids = _batch(0)
    labels = input_ids.clone()
    model(input_ids, attention_mask, token_type_ids, labels=labels).loss.backward()
    torch.optim.SGD(model.parameters(), lr=1.0).step()
    assert not torch.equal(before, embedding.detach())
    assert torch.equal(model.mlm_head.decoder.weight, model.bert.embeddings.token.weight)
    assert count_parameters(model) == count_parameters(transformers.BertForMaskedLM(HF_BERT))


@pytest.mark.parametrize("hf_class, course_class, hf_config, fields", CASES, ids=lambda c: getattr(c, "__name__", ""))
def test_hf_state_dicts_round_trip(hf_class, course_class, hf_config, fields):
    hf_state = _hf_model(hf_class, hf_config).state_dict()
    config = BertConfig.from_hf(hf_config)
    assert _equal_state_dicts(to_hf_state_dict(from_hf_state_dict(hf_state), config.model_type), hf_state)
    model = course_class.from_hf_state_dict(hf_state, config)
    assert _equal_state_dicts(model.to_hf_state_dict(), hf_state)
    # and the other way: the course's own state dict through Hugging Face's names and back
    own = course_class(config).state_dict()
    assert _equal_state_dicts(from_hf_state_dict(to_hf_state_dict(own, config.model_type)), own)


def _equal_state_dicts(first, second):
    return set(first) == set(second) and all(torch.equal(first[name], second[name]) for name in first)


def test_loading_refuses_missing_and_unexpected_tensors_clearly():
    config = BertConfig.from_hf(HF_BERT)
    pretraining = _hf_model(transformers.BertForPreTraining, HF_BERT).state_dict()
    with pytest.raises(checks.ArgumentError, match="no place for.*strict=False"):
        BertModel.from_hf_state_dict(pretraining, config)
    bare = BertModel.from_hf_state_dict(pretraining, config, strict=False)  # the encoder of a pretraining checkpoint
    assert torch.equal(bare.pooler.dense.weight, pretraining["bert.pooler.dense.weight"])
    incomplete = dict(pretraining)
    del incomplete["bert.encoder.layer.1.attention.self.key.weight"]
    with pytest.raises(checks.ArgumentError, match="query, key, value"):
        BertForPreTraining.from_hf_state_dict(incomplete, config)
    without_pooler = {name: t for name, t in pretraining.items() if "pooler" not in name}
    with pytest.raises(checks.ArgumentError, match="lacks.*pooler"):
        BertModel.from_hf_state_dict(without_pooler, config, strict=False)
    with pytest.raises(checks.ArgumentError, match="not a BERT or RoBERTa tensor"):
        from_hf_state_dict({"transformer.h.0.ln_1.weight": torch.ones(3)})
    # a checkpoint saved without the tied decoder matrix (as save_pretrained does) still loads
    masked_lm = _hf_model(transformers.BertForMaskedLM, HF_BERT).state_dict()
    del masked_lm["cls.predictions.decoder.weight"]
    model = BertForMaskedLM.from_hf_state_dict(masked_lm, config)
    assert torch.equal(model.mlm_head.decoder.weight, masked_lm["bert.embeddings.word_embeddings.weight"])


# ---------------------------------------------------------------------------------------------
# Parameter counts
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, hf_sizes, expected", [
    ("base", {}, 109_482_240),
    ("large", dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
     335_141_888),
])
def test_parameter_counts_of_bert_base_and_large_three_ways(name, hf_sizes, expected):
    config = getattr(BertConfig, name)()
    with torch.device("meta"):  # no memory: shapes only
        hf_count = transformers.BertModel(transformers.BertConfig(**hf_sizes)).num_parameters()
        course_count = count_parameters(BertModel(config))
    table = parameter_count_formula(config)
    assert hf_count == course_count == table.total == expected
    assert parameter_memory_bytes(expected) == 4 * expected
    assert parameter_memory_bytes(expected, torch.bfloat16) == 2 * expected
    assert str(table).splitlines()[-1].endswith(f"{expected:,}")
    assert max(len(line) for line in str(table).splitlines()) <= 88


def test_formula_table_rows_match_the_model_part_by_part():
    config = BertConfig(vocab_size=101, hidden_size=24, num_hidden_layers=3, num_attention_heads=2,
                        intermediate_size=40, max_position_embeddings=30, type_vocab_size=3)
    model = BertModel(config)
    table = parameter_count_formula(config)
    by_part = {}
    for row in table.rows:
        by_part[row.part] = by_part.get(row.part, 0) + row.count
    assert by_part == {"embeddings": count_parameters(model.embeddings),
                       "layers (x 3)": count_parameters(model.encoder), "pooler": count_parameters(model.pooler)}
    pooler_row = table.rows[-1]
    assert pooler_row.count == 24 * 24 + 24  # one dense layer, not one per encoder layer
    assert parameter_count_formula(config, pooler=False).total == count_parameters(BertModel(config, False))


def test_roberta_base_count_equals_transformers():
    with torch.device("meta"):
        hf_config = transformers.RobertaConfig(vocab_size=50265, max_position_embeddings=514, type_vocab_size=1)
        hf_count = transformers.RobertaModel(hf_config).num_parameters()
        course_count = count_parameters(BertModel(BertConfig.roberta_base()))
    assert hf_count == course_count == parameter_count_formula(BertConfig.roberta_base()).total == 124_645_632


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("change, message", [
    (lambda ids, mask, types: (ids.clone().fill_(97), mask, types), r"\[0, vocab_size=97\)"),
    (lambda ids, mask, types: (ids.repeat(1, 4), mask.repeat(1, 4), types.repeat(1, 4)), "longer than the 40"),
    (lambda ids, mask, types: (ids, mask[:, :5], types), "attention_mask must have input_ids' shape"),
    (lambda ids, mask, types: (ids, mask * 2, types), "only 1"),
    (lambda ids, mask, types: (ids, mask * torch.tensor([[1], [1], [0]]), types), r"rows \[2\]"),
    (lambda ids, mask, types: (ids, mask, types + 1), r"type_vocab_size=2"),
    (lambda ids, mask, types: (ids, mask, types[:2]), "token_type_ids must be"),
    (lambda ids, mask, types: (ids.float(), mask, types), "integer token ids"),
    (lambda ids, mask, types: (ids[:, :0], mask[:, :0], types[:, :0]), "empty"),
])
def test_bad_inputs_get_clear_errors(change, message):
    model = BertModel(BertConfig.from_hf(HF_BERT))
    with pytest.raises(checks.ArgumentError, match=message):
        model(*change(*_batch(0)))


def test_bad_configurations_get_clear_errors():
    with pytest.raises(checks.ArgumentError, match="divisible"):
        BertConfig(hidden_size=30, num_attention_heads=4)
    with pytest.raises(checks.ArgumentError, match="hidden_act"):
        BertConfig(hidden_act="swish")
    with pytest.raises(checks.ArgumentError, match="relative positions"):
        BertConfig.from_hf(transformers.BertConfig(position_embedding_type="relative_key"))
    with pytest.raises(checks.ArgumentError, match="one start and one end"):
        question_answering_loss(torch.zeros(2, 5), torch.zeros(2, 5), torch.tensor([1]), torch.tensor([1]))
