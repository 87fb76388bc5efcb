"""Chapter 6's encoder-decoder: padding, the context vector, attention by the formula, and a task it must learn."""
import pytest
import torch
import torch.nn.functional as F

from course_lib.attention import padding_mask
from course_lib.lstm import GRU, LSTM
from course_lib.rnn import RNN
from course_lib.seq2seq import Encoder, Seq2Seq, encode_padded, top_hidden

PAD, BOS, EOS = 0, 1, 2


def _model(attention=None, score="dot", layer=LSTM, seed=0, d=8, vocab=11, layers=1):
    torch.manual_seed(seed)
    d_dec_in = d + (d if attention == "bahdanau" else 0)
    encoder = Encoder(vocab, d, layer(d, d, layers), pad_id=PAD)
    model = Seq2Seq(encoder, layer(d_dec_in, d, layers), vocab, d, attention=attention, score=score, pad_id=PAD)
    return model.double()


def _batch():
    source = torch.tensor([[5, 6, 7, 8, EOS], [9, 4, EOS, PAD, PAD], [3, EOS, PAD, PAD, PAD]])
    lengths = torch.tensor([5, 3, 2])
    target_in = torch.tensor([[BOS, 8, 7, 6], [BOS, 4, 9, PAD], [BOS, 3, PAD, PAD]])
    return source, lengths, target_in


@pytest.mark.parametrize("layer", [RNN, LSTM, GRU])
def test_encoding_a_padded_batch_equals_each_sequence_alone_fused_or_not(layer):
    torch.manual_seed(0)
    rnn = layer(4, 6, 2).double()
    inputs = torch.randn(3, 5, 4, dtype=torch.float64)
    lengths = torch.tensor([5, 2, 3])
    outputs, state = encode_padded(rnn, inputs, lengths)
    rnn.fused = True
    fused_outputs, fused_state = encode_padded(rnn, inputs, lengths)
    assert torch.allclose(outputs, fused_outputs, atol=1e-10)
    for part, fused_part in zip(state if isinstance(state, tuple) else (state,),
                                fused_state if isinstance(fused_state, tuple) else (fused_state,)):
        assert torch.allclose(part, fused_part, atol=1e-10)
    rnn.fused = False
    for b, length in enumerate(lengths.tolist()):
        alone, alone_state = rnn(inputs[b:b + 1, :length])
        assert torch.allclose(outputs[b, :length], alone[0], atol=1e-12)
        assert torch.all(outputs[b, length:] == 0)
        assert torch.allclose(top_hidden(state)[b], top_hidden(alone_state)[0], atol=1e-12)


@pytest.mark.parametrize("attention, score", [(None, "dot"), ("bahdanau", "additive"), ("luong", "general"),
                                              ("luong", "dot"), ("bahdanau", "dot")])
def test_a_batch_equals_its_examples_one_by_one(attention, score):
    model = _model(attention, score)
    source, lengths, target_in = _batch()
    log_probs, weights = model(source, lengths, target_in)
    assert log_probs.shape == (3, 4, 11)
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(3, 4, dtype=torch.float64))
    for b in range(3):
        alone, alone_weights = model(source[b:b + 1, :lengths[b]], lengths[b:b + 1], target_in[b:b + 1])
        assert torch.allclose(log_probs[b], alone[0], atol=1e-10)
        if attention is not None:
            assert torch.allclose(weights[b, :, :lengths[b]], alone_weights[0], atol=1e-10)
            assert torch.all(weights[b, :, lengths[b]:] == 0)


def test_without_attention_the_decoder_starts_from_the_context_vector_only():
    model = _model(None)
    source, lengths, _ = _batch()
    state = model.start(source, lengths)
    _, final = model.encoder(source, lengths)
    assert all(torch.equal(a, b) for a, b in zip(state.layer_state, final))
    # two sources with the same context vector get the same translation: the bottleneck
    same = model.step(torch.tensor([BOS, BOS, BOS]), state)[0]
    again = model.step(torch.tensor([BOS, BOS, BOS]), model.start(source, lengths))[0]
    assert torch.equal(same, again)


def test_bahdanau_step_is_the_formula():
    model = _model("bahdanau", "dot", layer=GRU)
    source, lengths, _ = _batch()
    state = model.start(source, lengths)
    log_probs, _, weights = model.step(torch.tensor([BOS, BOS, BOS]), state)
    H, s_prev = state.memory, state.layer_state[-1]                      # (3, S, d), (3, d)
    scores = torch.einsum("bd,bsd->bs", s_prev, H).masked_fill(~padding_mask(lengths, 5), float("-inf"))
    alpha = torch.softmax(scores, dim=-1)
    c = torch.einsum("bs,bsd->bd", alpha, H)
    x = torch.cat([model.embedding(torch.tensor([BOS] * 3)), c], dim=-1)
    cell = torch.nn.GRUCell(16, 8).double()
    cell.load_state_dict({k.replace("_l0", ""): v for k, v in model.decoder_layer.state_dict().items()})
    s_t = cell(x, s_prev)
    expected = F.log_softmax(model.readout(torch.cat([s_t, c], dim=-1)), dim=-1)
    assert torch.allclose(weights, alpha, atol=1e-12)
    assert torch.allclose(log_probs, expected, atol=1e-10)


def test_luong_step_queries_the_current_state():
    model = _model("luong", "dot", layer=GRU)
    source, lengths, _ = _batch()
    state = model.start(source, lengths)
    _, next_state, weights = model.step(torch.tensor([BOS] * 3), state)
    s_t = next_state.layer_state[-1]
    scores = torch.einsum("bd,bsd->bs", s_t, state.memory).masked_fill(~padding_mask(lengths, 5), float("-inf"))
    assert torch.allclose(weights, torch.softmax(scores, dim=-1), atol=1e-12)


def test_selecting_states_equals_running_the_sub_batch():
    model = _model("bahdanau", "additive")
    source, lengths, _ = _batch()
    state = model.start(source, lengths)
    index = torch.tensor([2, 0])
    picked, _, _ = model.step(torch.tensor([BOS, BOS]), state.select(index))
    full, _, _ = model.step(torch.tensor([BOS] * 3), state)
    assert torch.allclose(picked, full[index], atol=1e-12)


def test_learns_to_reverse_short_sequences_and_greedy_stops_at_eos():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = _model("luong", "dot", d=32, vocab=8).float()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    def batch(size):
        lengths = torch.randint(2, 6, (size,), generator=generator)
        rows = [torch.randint(3, 8, (int(n),), generator=generator).tolist() for n in lengths]
        source = torch.full((size, 6), PAD)
        target_in, target_out = torch.full((size, 6), PAD), torch.full((size, 6), -100)
        for b, row in enumerate(rows):
            source[b, :len(row) + 1] = torch.tensor(row + [EOS])
            target = row[::-1]
            target_in[b, :len(row) + 1] = torch.tensor([BOS] + target)
            target_out[b, :len(row) + 1] = torch.tensor(target + [EOS])
        return source, lengths + 1, target_in, target_out, rows
    for _ in range(300):
        source, lengths, target_in, target_out, _ = batch(32)
        optimizer.zero_grad()
        model.loss(source, lengths, target_in, target_out).backward()
        optimizer.step()
    source, lengths, _, _, rows = batch(50)
    outputs, weights = model.greedy(source, lengths, BOS, EOS, max_length=10)
    accuracy = sum(out == row[::-1] for out, row in zip(outputs, rows)) / len(rows)
    assert accuracy >= 0.9, accuracy
    assert weights.shape[0] == 50 and weights.shape[2] == 6


def test_bad_arguments_get_clear_errors():
    with pytest.raises(ValueError, match="attention must be one of"):
        _model("soft")
    torch.manual_seed(0)
    encoder = Encoder(11, 8, LSTM(8, 8))
    with pytest.raises(ValueError, match="kind, depth and width"):
        Seq2Seq(encoder, GRU(8, 8), 11, 8)
    with pytest.raises(ValueError, match="reads d_in = 8 features, but it is fed 16"):
        Seq2Seq(encoder, LSTM(8, 8), 11, 8, attention="bahdanau")
    model = _model()
    source, lengths, target_in = _batch()
    with pytest.raises(ValueError, match="every source length must be from 1 to 5"):
        model(source, torch.tensor([5, 0, 2]), target_in)
    with pytest.raises(TypeError, match="tensor of token ids"):
        model(source.float(), lengths, target_in)


@pytest.mark.parametrize("attention, score", [(None, "dot"), ("luong", "dot"), ("luong", "general"),
                                              ("luong", "additive")])
def test_the_parallel_teacher_forced_pass_equals_step_by_step(attention, score):
    model = _model(attention, score, layers=2)
    source, lengths, target_in = _batch()
    log_probs, weights = model(source, lengths, target_in)
    stepped, stepped_weights = model._forward_step_by_step(target_in, model.start(source, lengths))
    assert torch.allclose(log_probs, stepped, atol=1e-12)
    if attention is not None:
        assert torch.allclose(weights, stepped_weights, atol=1e-12)


def test_make_batch_appends_eos_and_shifts_the_target():
    from course_lib.seq2seq import IGNORE_INDEX, make_batch
    source, lengths, target_in, target_out = make_batch([[5, 6, 7], [8]], [[9, 10], [11, 12, 13]],
                                                        pad_id=PAD, bos_id=BOS, eos_id=EOS)
    assert source.tolist() == [[5, 6, 7, EOS], [8, EOS, PAD, PAD]] and lengths.tolist() == [4, 2]
    assert target_in.tolist() == [[BOS, 9, 10, PAD], [BOS, 11, 12, 13]]
    assert target_out.tolist() == [[9, 10, EOS, IGNORE_INDEX], [11, 12, 13, EOS]]
    with pytest.raises(ValueError, match="one target per source"):
        make_batch([[1]], [], pad_id=PAD, bos_id=BOS, eos_id=EOS)


def _vocabularies():
    from course_lib.data.text import Vocabulary
    return Vocabulary(["a", "b", "c", "d", "."]), Vocabulary(["x", "y", "z", "w", "."])


def test_translate_and_forced_attention_read_sentences_and_give_matrices_of_their_sizes():
    from course_lib.seq2seq import forced_attention, translate
    source_vocabulary, target_vocabulary = _vocabularies()
    model = _model("luong", "dot", vocab=len(target_vocabulary))
    model.encoder.embedding = torch.nn.Embedding(len(source_vocabulary), 8, padding_idx=0).double()
    sentences = [["a", "b", "."], ["c", "."], ["d", "d", "a", "b", "."]]
    results = translate(model, sentences, source_vocabulary, target_vocabulary, max_length=6)
    for sentence, result in zip(sentences, results):
        assert result.weights.shape[1] == len(sentence) + 1  # the source's EOS is a column too
        assert result.weights.shape[0] == min(len(result.tokens) + 1, 6)
        assert torch.allclose(result.weights.sum(-1), torch.ones(result.weights.shape[0], dtype=torch.float64))
    # one sentence alone is translated as in the batch
    alone = translate(model, sentences[2:], source_vocabulary, target_vocabulary, max_length=6)[0]
    assert alone.tokens == results[2].tokens and torch.allclose(alone.weights, results[2].weights)
    matrices = forced_attention(model, sentences, [["x", "."], ["y", "z", "."], ["w", "."]],
                                source_vocabulary, target_vocabulary)
    assert [tuple(m.shape) for m in matrices] == [(2, 3), (3, 2), (2, 5)]
    with pytest.raises(ValueError, match=r"words the model does not know: \['q'\]"):
        translate(model, [["a", "q", "."]], source_vocabulary, target_vocabulary)
    with pytest.raises(ValueError, match="has no attention"):
        forced_attention(_model(None), sentences, sentences, source_vocabulary, target_vocabulary)


def test_vocabularies_must_agree_on_the_special_ids():
    from course_lib.data.text import Vocabulary
    from course_lib.seq2seq import special_ids
    assert special_ids(*_vocabularies()) == (0, 2, 3)
    other = Vocabulary(["x"], specials=("<unk>", "<pad>", "<s>", "</s>"))
    with pytest.raises(ValueError, match="different ids"):
        special_ids(_vocabularies()[0], other)


@pytest.mark.parametrize("attention", [None, "bahdanau", "luong"])
def test_the_conditioned_decoder_is_a_language_model_of_the_protocol(attention):
    model = _model(attention, "additive" if attention else "dot")
    source, lengths, target_in = _batch()
    decoder = model.conditioned_on(source, lengths)
    # the protocol's whole-sequence form (a loop over step) equals teacher forcing
    assert torch.allclose(decoder.sequence_log_probs(target_in), model(source, lengths, target_in)[0], atol=1e-12)
    state = decoder.initial_state(3)
    picked = decoder.select_state(state, torch.tensor([1]))
    log_probs, _ = decoder.step(torch.tensor([BOS]), picked)
    assert torch.allclose(log_probs[0], decoder.step(torch.tensor([BOS] * 3), state)[0][1], atol=1e-12)
    with pytest.raises(ValueError, match="conditioned on 3 sources"):
        decoder.initial_state(2)
