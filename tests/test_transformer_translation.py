"""Greedy decoding of the translation Transformer, and Chapter 6's ``translate`` reading it."""
import pytest
import torch

from course_lib.data.text import Vocabulary
from course_lib.seq2seq import translate
from course_lib.transformer import TransformerConfig, TransformerSeq2Seq

BOS = 1
SOURCE_VOCAB, TARGET_VOCAB = 13, 11


def _model() -> TransformerSeq2Seq:
    torch.manual_seed(3)
    config = TransformerConfig(d_model=8, num_heads=2, num_encoder_layers=2, num_decoder_layers=2, d_ff=16,
                               norm_first=True)
    return TransformerSeq2Seq(SOURCE_VOCAB, TARGET_VOCAB, config).double().eval()


def _sources() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(4)
    source = torch.randint(3, SOURCE_VOCAB, (3, 6), generator=generator)
    lengths = torch.tensor([6, 4, 2])
    source[1, 4:] = source[2, 2:] = 0
    return source, lengths


def _arg_max_steps(model: TransformerSeq2Seq, source, lengths, steps: int) -> list[list[int]]:
    """``steps`` arg-max steps of the conditioned decoder, written out, with no end token."""
    decoder = model.conditioned_on(source, lengths)
    state = decoder.initial_state(source.shape[0])
    tokens, produced = torch.full((source.shape[0],), BOS), []
    with torch.no_grad():
        for _ in range(steps):
            log_probs, state = decoder.step(tokens, state)
            tokens = log_probs.argmax(dim=-1)
            produced.append(tokens)
    return torch.stack(produced, dim=1).tolist()


def _unused_token(rows: list[list[int]]) -> int:
    """A target id that no row produced: as EOS, it lets every row run to max_length."""
    produced = {token for row in rows for token in row}
    return next(token for token in range(2, TARGET_VOCAB) if token not in produced)


def test_greedy_is_the_arg_max_step_by_step_over_the_conditioned_decoder():
    model, (source, lengths) = _model(), _sources()
    expected = _arg_max_steps(model, source, lengths, 7)
    outputs, weights = model.greedy(source, lengths, BOS, _unused_token(expected), max_length=7)
    assert outputs == expected
    assert weights.shape == (3, 7, 6)


def test_greedy_stops_each_row_at_its_first_eos_and_leaves_it_out():
    model, (source, lengths) = _model(), _sources()
    full = _arg_max_steps(model, source, lengths, 8)
    eos = full[0][2]
    outputs, weights = model.greedy(source, lengths, BOS, eos, max_length=8)
    for row, whole in zip(outputs, full):
        assert row == (whole[:whole.index(eos)] if eos in whole else whole)
    assert len(outputs[0]) <= 2
    steps = max(whole.index(eos) + 1 if eos in whole else len(whole) for whole in full)
    assert weights.shape[1] == steps


def test_a_padded_batch_decodes_as_each_sentence_alone_and_its_weights_cover_the_real_source():
    model, (source, lengths) = _model(), _sources()
    outputs, weights = model.greedy(source, lengths, BOS, eos_id=2, max_length=6)
    for b, length in enumerate(lengths.tolist()):
        alone, alone_weights = model.greedy(source[b:b + 1, :length], lengths[b:b + 1], BOS, 2, 6)
        assert alone[0] == outputs[b], b
        steps = alone_weights.shape[1]
        assert torch.allclose(weights[b, :steps, :length], alone_weights[0], atol=1e-10), b
    assert torch.allclose(weights.sum(-1), torch.ones(weights.shape[:2], dtype=torch.float64))
    assert torch.all(weights[1, :, 4:] == 0) and torch.all(weights[2, :, 2:] == 0)  # padding gets no weight


def test_the_weights_are_the_last_layers_cross_attention_averaged_over_heads_in_teacher_forcing():
    model, (source, lengths) = _model(), _sources()
    expected = _arg_max_steps(model, source, lengths, 5)
    outputs, weights = model.greedy(source, lengths, BOS, eos_id=_unused_token(expected), max_length=5)
    target_in = torch.cat([torch.full((3, 1), BOS), torch.tensor(outputs)[:, :-1]], dim=1)
    trace: dict = {}
    model(source, lengths, target_in, trace=trace)
    heads = trace["decoder.layers.1"]["cross_attention"]["weights"]  # (batch, heads, T, S)
    assert torch.allclose(weights, heads.mean(dim=1), atol=1e-12)


def test_translate_reads_sentences_with_the_transformer_as_with_chapter_6s_models():
    source_vocabulary = Vocabulary(["a", "b", "c", "d", "."])
    target_vocabulary = Vocabulary(["x", "y", "z", "w", "."])
    torch.manual_seed(0)
    model = TransformerSeq2Seq(len(source_vocabulary), len(target_vocabulary),
                               TransformerConfig(8, 2, 1, 1, 16)).double().eval()
    sentences = [["a", "b", "."], ["c", "."], ["d", "d", "a", "b", "."]]
    results = translate(model, sentences, source_vocabulary, target_vocabulary, max_length=6)
    for sentence, result in zip(sentences, results):
        assert set(result.tokens) <= set(target_vocabulary.decode(list(range(len(target_vocabulary)))))
        assert result.weights.shape == (min(len(result.tokens) + 1, 6), len(sentence) + 1)
    alone = translate(model, sentences[2:], source_vocabulary, target_vocabulary, max_length=6)[0]
    assert alone.tokens == results[2].tokens and torch.allclose(alone.weights, results[2].weights)


def test_bad_decoding_settings_are_refused_with_what_is_expected():
    model, (source, lengths) = _model(), _sources()
    with pytest.raises(ValueError, match="max_length"):
        model.greedy(source, lengths, BOS, 2, max_length=0)
    with pytest.raises(ValueError, match="bos_id"):
        model.greedy(source, lengths, -1, 2, max_length=3)
