"""Chapter 7's Transformer against PyTorch's modules with the same weights, in float64, and its laws."""
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from course_lib.attention import padding_mask
from course_lib.transformer import (DecoderLayer, EncoderLayer, LayerNorm, LearnedPositions, MultiHeadAttention,
                                    SinusoidalPositions, Transformer, TransformerConfig, TransformerLM,
                                    TransformerLMConfig, TransformerSeq2Seq, from_torch_state_dict,
                                    sinusoidal_positions, to_torch_state_dict)

D_MODEL, HEADS, D_FF = 8, 2, 16
SOURCE_LENGTHS, TARGET_LENGTHS = torch.tensor([5, 3, 1]), torch.tensor([4, 4, 2])
pytestmark = pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")  # nn.Transformer with norm_first


def _random(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _hidden(padding):
    """PyTorch's key_padding_mask: True where a key is hidden (ours: True at real tokens)."""
    return ~padding


def _future(T):
    """PyTorch's attn_mask for causal attention: True above the diagonal, where a key is in the future."""
    return torch.ones(T, T, dtype=torch.bool).triu(diagonal=1)


# ---------------------------------------------------------------------------------------------
# Attention and multi-head attention
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("masking", ["causal", "padding", "both"])
def test_written_out_and_fused_attention_agree_with_f_scaled_dot_product_attention(masking):
    torch.manual_seed(0)
    attention = MultiHeadAttention(D_MODEL, HEADS).double()
    x = _random(3, 5, D_MODEL, seed=1)
    q, k, v = attention.project(x)
    padding = padding_mask(SOURCE_LENGTHS)[:, None, None, :]  # (batch, 1, 1, T)
    mask = None if masking == "causal" else padding
    causal = masking != "padding"
    expected_mask = padding & torch.ones(5, 5, dtype=torch.bool).tril() if masking == "both" else mask
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=expected_mask, is_causal=masking == "causal")
    expected = attention.out_proj(expected.transpose(1, 2).reshape(3, 5, D_MODEL))
    for fused in (True, False):
        attention.fused = fused
        got = attention.attend_heads(q, k, v, mask, causal=causal)
        assert torch.allclose(got, expected, atol=1e-6, rtol=0), (masking, fused)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("cross", [False, True])
def test_multi_head_attention_equals_nn_multihead_attention(fused, cross):
    torch.manual_seed(1)
    reference = nn.MultiheadAttention(D_MODEL, HEADS, batch_first=True).double()
    for parameter in reference.parameters():  # PyTorch starts the biases at 0: make them count
        nn.init.normal_(parameter)
    ours = MultiHeadAttention(D_MODEL, HEADS, fused=fused).double()
    ours.load_state_dict(reference.state_dict())
    x = _random(3, 4, D_MODEL, seed=2)
    memory = _random(3, 5, D_MODEL, seed=3) if cross else x
    keys_padding = padding_mask(SOURCE_LENGTHS if cross else TARGET_LENGTHS)
    attn_hidden = _random(4, memory.shape[1], seed=4) > 0.8  # some (query, key) pairs hidden for all
    attn_hidden[:, 0] = False  # every query keeps a key
    expected, _ = reference(x, memory, memory, key_padding_mask=_hidden(keys_padding), attn_mask=attn_hidden)
    mask = keys_padding[:, None, None, :] & ~attn_hidden
    got = ours(x, memory if cross else None, mask)
    assert torch.allclose(got, expected, atol=1e-6, rtol=0)


def test_multi_head_attention_is_the_concatenation_of_its_heads_times_w_o():
    torch.manual_seed(2)
    attention = MultiHeadAttention(D_MODEL, HEADS, fused=False).double()
    x = _random(1, 3, D_MODEL, seed=5)
    output = attention(x)
    d_k = D_MODEL // HEADS
    W_Q, W_K, W_V = attention.in_proj_weight.chunk(3)
    b_Q, b_K, b_V = attention.in_proj_bias.chunk(3)
    heads = []
    for i in range(HEADS):
        rows = slice(i * d_k, (i + 1) * d_k)
        Q, K, V = (x[0] @ W[rows].T + b[rows] for W, b in ((W_Q, b_Q), (W_K, b_K), (W_V, b_V)))
        heads.append(torch.softmax(Q @ K.T / math.sqrt(d_k), dim=-1) @ V)
    expected = torch.cat(heads, dim=-1) @ attention.out_proj.weight.T + attention.out_proj.bias
    assert torch.allclose(output[0], expected, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# Positions and layer norm
# ---------------------------------------------------------------------------------------------
def test_sinusoidal_positions_are_the_formula():
    pe = sinusoidal_positions(50, 6, dtype=torch.float64)
    for pos in (0, 1, 17, 49):
        for i in range(3):
            angle = pos / 10000 ** (2 * i / 6)
            assert math.isclose(pe[pos, 2 * i], math.sin(angle), abs_tol=1e-12)
            assert math.isclose(pe[pos, 2 * i + 1], math.cos(angle), abs_tol=1e-12)
    assert torch.equal(sinusoidal_positions(4, 6, start=46, dtype=torch.float64), pe[46:])
    assert sinusoidal_positions(3, 5).shape == (3, 5)
    assert torch.equal(SinusoidalPositions(6)(10, 5, dtype=torch.float64), pe[10:15])


def test_positions_beyond_max_context_are_refused_clearly():
    with pytest.raises(ValueError, match="12 positions exceeds max_context=10 of learned positions"):
        LearnedPositions(10, 4)(8, 4)
    assert LearnedPositions(10, 4)(6, 4).shape == (4, 4)
    model = TransformerLM(TransformerLMConfig(7, d_model=8, num_heads=2, positions="learned", max_context=6))
    _, state = model.read(torch.zeros(1, 5, dtype=torch.long), model.initial_state(1))
    model.step(torch.tensor([1]), state)  # the sixth position fits
    with pytest.raises(ValueError, match="exceeds max_context=6"):
        model.read(torch.zeros(1, 2, dtype=torch.long), state)


@pytest.mark.parametrize("fused", [True, False])
def test_layer_norm_equals_nn_layer_norm(fused):
    reference = nn.LayerNorm(D_MODEL, eps=1e-3).double()
    nn.init.normal_(reference.weight), nn.init.normal_(reference.bias)
    ours = LayerNorm(D_MODEL, eps=1e-3, fused=fused).double()
    ours.load_state_dict(reference.state_dict())
    x = _random(2, 3, D_MODEL, seed=6) * 5 + 2
    assert torch.allclose(ours(x), reference(x), atol=1e-12)


# ---------------------------------------------------------------------------------------------
# Layers and the whole encoder-decoder against PyTorch
# ---------------------------------------------------------------------------------------------
def _randomise(module: nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype) * 0.5)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_equals_nn_transformer_encoder_layer(norm_first, fused):
    activation = "gelu" if norm_first else "relu"
    reference = nn.TransformerEncoderLayer(D_MODEL, HEADS, D_FF, dropout=0.0, activation=activation,
                                           batch_first=True, norm_first=norm_first).double()
    _randomise(reference, 7)
    ours = EncoderLayer(D_MODEL, HEADS, D_FF, activation=activation, norm_first=norm_first, fused=fused).double()
    ours.load_state_dict(from_torch_state_dict(reference.state_dict()))
    x, padding = _random(3, 5, D_MODEL, seed=8), padding_mask(SOURCE_LENGTHS)
    expected = reference(x, src_key_padding_mask=_hidden(padding))
    assert torch.allclose(ours(x, padding[:, None, None, :]), expected, atol=1e-6, rtol=0)
    assert torch.allclose(ours(x, causal=True), reference(x, src_mask=_future(5), is_causal=True), atol=1e-6, rtol=0)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_equals_nn_transformer_decoder_layer(norm_first, fused):
    reference = nn.TransformerDecoderLayer(D_MODEL, HEADS, D_FF, dropout=0.0, batch_first=True,
                                           norm_first=norm_first).double()
    _randomise(reference, 9)
    ours = DecoderLayer(D_MODEL, HEADS, D_FF, norm_first=norm_first, fused=fused).double()
    ours.load_state_dict(from_torch_state_dict(reference.state_dict()))
    x, memory = _random(3, 4, D_MODEL, seed=10), _random(3, 5, D_MODEL, seed=11)
    target_padding, source_padding = padding_mask(TARGET_LENGTHS), padding_mask(SOURCE_LENGTHS)
    expected = reference(x, memory, tgt_mask=_future(4), tgt_key_padding_mask=_hidden(target_padding),
                         memory_key_padding_mask=_hidden(source_padding), tgt_is_causal=True)
    got = ours(x, memory, target_padding[:, None, None, :], source_padding[:, None, None, :])
    assert torch.allclose(got, expected, atol=1e-6, rtol=0)


def _pair(norm_first: bool, fused: bool = True, d_model=D_MODEL, heads=HEADS, d_ff=D_FF, layers=2, dropout=0.0):
    torch.manual_seed(3)
    reference = nn.Transformer(d_model, heads, layers, layers, d_ff, dropout=dropout, batch_first=True,
                               norm_first=norm_first).double()
    _randomise(reference, 12)
    ours = Transformer(TransformerConfig(d_model, heads, layers, layers, d_ff, dropout=dropout, norm_first=norm_first,
                                         fused=fused)).double()
    ours.load_state_dict(from_torch_state_dict(reference.state_dict()))
    return ours, reference


def _reference_output(reference, source, target, source_padding, target_padding):
    return reference(source, target, tgt_mask=_future(target.shape[1]), src_key_padding_mask=_hidden(source_padding),
                     tgt_key_padding_mask=_hidden(target_padding), memory_key_padding_mask=_hidden(source_padding),
                     tgt_is_causal=True)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("norm_first", [False, True])
def test_the_encoder_decoder_equals_nn_transformer(norm_first, fused):
    ours, reference = _pair(norm_first, fused)
    source, target = _random(3, 5, D_MODEL, seed=13), _random(3, 4, D_MODEL, seed=14)
    source_padding, target_padding = padding_mask(SOURCE_LENGTHS), padding_mask(TARGET_LENGTHS)
    expected = _reference_output(reference, source, target, source_padding, target_padding)
    assert torch.allclose(ours(source, target, source_padding, target_padding), expected, atol=1e-6, rtol=0)


def test_state_dicts_translate_both_ways():
    ours, reference = _pair(norm_first=True)
    translated = to_torch_state_dict(ours.state_dict())
    assert set(translated) == set(reference.state_dict())
    assert all(torch.equal(translated[name], value) for name, value in reference.state_dict().items())
    assert from_torch_state_dict(translated).keys() == ours.state_dict().keys()
    assert "decoder.layers.1.cross_attention.in_proj_weight" in ours.state_dict()


def test_dropout_is_used_in_training_and_off_in_evaluation():
    ours, reference = _pair(norm_first=False, dropout=0.3)
    source, target = _random(3, 5, D_MODEL, seed=15), _random(3, 4, D_MODEL, seed=16)
    ours.eval(), reference.eval()
    with torch.no_grad():
        evaluated = ours(source, target)
        assert torch.allclose(evaluated, reference(source, target, tgt_mask=_future(4), tgt_is_causal=True), atol=1e-6)
    ours.train()
    torch.manual_seed(0)
    trained = ours(source, target)
    assert not torch.allclose(trained, evaluated, atol=1e-3) and not torch.allclose(trained, ours(source, target))


def test_the_transformer_by_hand_a_tiny_model_traced_equals_nn_transformer():
    """d_model 4, 2 heads, a 3-word sentence: every intermediate matrix is there to print."""
    ours, reference = _pair(norm_first=False, d_model=4, heads=2, d_ff=8, layers=1)
    sentence, translation = _random(1, 3, 4, seed=17), _random(1, 3, 4, seed=18)
    trace = {}
    output = ours(sentence, translation, trace=trace)
    expected = reference(sentence, translation, tgt_mask=_future(3), tgt_is_causal=True)
    assert torch.allclose(output, expected, atol=1e-6, rtol=0)
    encoder_attention = trace["encoder.layers.0"]["self_attention"]
    for name in ("queries", "keys", "values", "heads"):
        assert encoder_attention[name].shape == (1, 2, 3, 2), name
    assert encoder_attention["scores"].shape == encoder_attention["weights"].shape == (1, 2, 3, 3)
    assert torch.allclose(encoder_attention["weights"], torch.softmax(encoder_attention["scores"], dim=-1))
    assert torch.allclose(encoder_attention["heads"], encoder_attention["weights"] @ encoder_attention["values"])
    assert torch.allclose(encoder_attention["output"], ours.encoder.layers[0].self_attention.out_proj(
        encoder_attention["concat"]))
    decoder = trace["decoder.layers.0"]
    assert torch.all(decoder["self_attention"]["weights"][0, :, 0, 1:] == 0)  # the first word sees only itself
    assert decoder["cross_attention"]["weights"].shape == (1, 2, 3, 3)
    assert decoder["feed_forward"]["hidden"].shape == (1, 3, 8) and (decoder["feed_forward"]["hidden"] >= 0).all()
    assert torch.equal(trace["output"], output.detach())
    assert torch.allclose(trace["memory"], reference.encoder(sentence), atol=1e-6)


def test_gradients_are_finite_and_equal_between_the_two_attention_paths():
    ours, _ = _pair(norm_first=True)
    source, target = _random(3, 5, D_MODEL, seed=19), _random(3, 4, D_MODEL, seed=20)
    source_padding, target_padding = padding_mask(SOURCE_LENGTHS), padding_mask(TARGET_LENGTHS)
    gradients = {}
    for fused in (True, False):
        ours.fused = fused
        ours.zero_grad()
        ours(source, target, source_padding, target_padding).pow(2).sum().backward()
        gradients[fused] = {name: p.grad.clone() for name, p in ours.named_parameters()}
    for name, gradient in gradients[True].items():
        assert torch.isfinite(gradient).all(), name
        assert torch.allclose(gradient, gradients[False][name], atol=1e-9, rtol=1e-7), name
    assert any(gradient.abs().sum() > 0 for gradient in gradients[True].values())


# ---------------------------------------------------------------------------------------------
# The decoder-only language model
# ---------------------------------------------------------------------------------------------
def _language_model(**settings) -> TransformerLM:
    torch.manual_seed(4)
    config = TransformerLMConfig(**{"vocab_size": 11, "d_model": D_MODEL, "num_heads": HEADS, "num_layers": 2,
                                    **settings})
    return TransformerLM(config).double()


@settings(max_examples=25, deadline=None)
@given(t=st.integers(0, 7), seed=st.integers(0, 1000), positions=st.sampled_from(["sinusoidal", "learned"]))
def test_the_output_at_t_does_not_depend_on_tokens_after_t(t, seed, positions):
    model = _language_model(positions=positions, max_context=16)
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 11, (2, 8), generator=generator)
    changed = ids.clone()
    changed[:, t + 1:] = torch.randint(0, 11, changed[:, t + 1:].shape, generator=generator)
    with torch.no_grad():
        assert torch.allclose(model(ids)[:, :t + 1], model(changed)[:, :t + 1], atol=1e-12)


@pytest.mark.parametrize("fused", [True, False])
def test_reading_in_chunks_after_the_cache_equals_one_pass(fused):
    model = _language_model(fused=fused, positions="learned", max_context=12)
    ids = torch.randint(0, 11, (3, 10), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        whole = model.sequence_log_probs(ids)
        first, state = model.read(ids[:, :4], model.initial_state(3))
        second, state = model.read(ids[:, 4:], state)
    assert torch.allclose(torch.cat([first, second], dim=1), whole, atol=1e-12)
    assert len(state) == 4 and state[0].shape == (3, HEADS, 10, D_MODEL // HEADS)


def test_lm_gradients_are_finite_and_equal_between_the_two_attention_paths_and_embeddings_are_tied():
    model = _language_model(dropout=0.0)
    assert model.readout.weight is model.embedding.weight
    assert _language_model(tie_embeddings=False).readout.weight is not _language_model().embedding.weight
    ids = torch.randint(0, 11, (2, 6), generator=torch.Generator().manual_seed(6))
    gradients = {}
    for fused in (True, False):
        model.fused = fused
        assert all(block.self_attention.fused == fused for block in model.blocks) and model.norm.fused == fused
        model.zero_grad()
        model.token_log_probs(ids).sum().backward()
        gradients[fused] = {name: p.grad.clone() for name, p in model.named_parameters()}
    for name, gradient in gradients[True].items():
        assert torch.isfinite(gradient).all() and gradient.abs().sum() > 0, name
        assert torch.allclose(gradient, gradients[False][name], atol=1e-10, rtol=1e-7), name


def test_the_lm_is_a_stack_of_pre_norm_encoder_layers_with_a_causal_mask_as_in_pytorch():
    model = _language_model(tie_embeddings=False)
    reference = nn.TransformerEncoder(nn.TransformerEncoderLayer(D_MODEL, HEADS, 4 * D_MODEL, dropout=0.0,
                                                                 batch_first=True, norm_first=True), 2,
                                      enable_nested_tensor=False).double()
    for n, block in enumerate(model.blocks):
        reference.layers[n].load_state_dict(to_torch_state_dict(block.state_dict()))
    ids = torch.randint(0, 11, (2, 6), generator=torch.Generator().manual_seed(7))
    x = model.embedding(ids) * math.sqrt(D_MODEL) + sinusoidal_positions(6, D_MODEL, dtype=torch.float64)
    hidden = reference(x, mask=_future(6), is_causal=True)
    expected = torch.log_softmax(model.readout(F.layer_norm(hidden, (D_MODEL,), model.norm.weight, model.norm.bias)),
                                 dim=-1)
    assert torch.allclose(model.sequence_log_probs(ids), expected, atol=1e-10)


def test_the_lm_starts_as_gpt_2_with_tokens_on_the_scale_of_the_positions():
    def std(parameter):
        return float(parameter.detach().std())

    learned = TransformerLM(TransformerLMConfig(2000, d_model=64, num_layers=4, positions="learned", max_context=500))
    assert learned.embedding_scale == 1.0
    assert math.isclose(std(learned.embedding.weight), 0.02, rel_tol=0.05)
    assert math.isclose(std(learned.positions.weight), 0.02, rel_tol=0.05)
    block = learned.blocks[0]
    assert math.isclose(std(block.self_attention.in_proj_weight), 0.02, rel_tol=0.05)
    assert math.isclose(std(block.feed_forward.linear2.weight), 0.02 / math.sqrt(8), rel_tol=0.05)
    assert torch.all(block.norm1.weight == 1) and torch.all(block.self_attention.in_proj_bias == 0)
    sinusoidal = TransformerLM(TransformerLMConfig(2000, d_model=64, num_layers=4))
    token_norm = float((sinusoidal.embedding.weight.detach() * sinusoidal.embedding_scale).norm(dim=-1).mean())
    position_norm = float(sinusoidal_positions(500, 64).norm(dim=-1).mean())  # √(d_model / 2): sin² + cos² = 1
    assert 1.0 < token_norm / position_norm < 1.6  # the paper's √d_model E[w] has norm √d_model


def test_the_lm_learns_to_continue_a_period_and_generates_it_from_its_cache():
    """Next token = the token three back: attention to a relative position, learned in 150 steps."""
    torch.manual_seed(0)
    model = TransformerLM(TransformerLMConfig(8, d_model=32, num_heads=2, num_layers=2, positions="learned",
                                              max_context=16))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    for _ in range(150):
        periods = torch.randint(2, 8, (16, 3), generator=generator)
        ids = torch.cat([torch.ones(16, 1, dtype=torch.long), periods.repeat(1, 4)], dim=1)
        loss = -model.token_log_probs(ids)[:, 3:].mean()  # from the 4th token on, the past decides
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1
    model.eval()
    with torch.no_grad():
        log_probs, state = model.read(torch.tensor([[1, 5, 2, 7]]), model.initial_state(1))
        token, generated = log_probs[:, -1].argmax(-1), []
        for _ in range(8):
            generated.append(int(token))
            log_probs, state = model.step(token, state)
            token = log_probs.argmax(-1)
    assert generated == [5, 2, 7, 5, 2, 7, 5, 2]


# ---------------------------------------------------------------------------------------------
# The translation model
# ---------------------------------------------------------------------------------------------
def _translation_model(norm_first=False) -> TransformerSeq2Seq:
    torch.manual_seed(5)
    config = TransformerConfig(D_MODEL, HEADS, 2, 2, D_FF, norm_first=norm_first)
    return TransformerSeq2Seq(13, 11, config).double()


def _translation_batch():
    generator = torch.Generator().manual_seed(8)
    source = torch.randint(1, 13, (3, 5), generator=generator)
    source[1, 3:] = source[2, 1:] = 0  # padding after lengths 3 and 1
    target_in = torch.randint(1, 11, (3, 4), generator=generator)
    return source, SOURCE_LENGTHS, target_in


@pytest.mark.parametrize("norm_first", [False, True])
def test_the_translation_model_is_scaled_embeddings_and_positions_into_nn_transformer(norm_first):
    model = _translation_model(norm_first)
    assert model.readout.weight is model.target_embedding.weight
    reference = nn.Transformer(D_MODEL, HEADS, 2, 2, D_FF, dropout=0.0, batch_first=True,
                               norm_first=norm_first).double()
    reference.load_state_dict(to_torch_state_dict(model.transformer.state_dict()))
    source, lengths, target_in = _translation_batch()
    pe = sinusoidal_positions(5, D_MODEL, dtype=torch.float64)
    x = model.source_embedding(source) * math.sqrt(D_MODEL) + pe
    y = model.target_embedding(target_in) * math.sqrt(D_MODEL) + pe[:4]
    padding = padding_mask(lengths)
    hidden = reference(x, y, tgt_mask=_future(4), src_key_padding_mask=_hidden(padding),
                       memory_key_padding_mask=_hidden(padding), tgt_is_causal=True)
    expected = torch.log_softmax(hidden @ model.target_embedding.weight.T, dim=-1)
    assert torch.allclose(model(source, lengths, target_in), expected, atol=1e-6, rtol=0)


def test_a_padded_batch_translates_as_each_sentence_alone_and_the_loss_is_the_mean_nll():
    model = _translation_model()
    source, lengths, target_in = _translation_batch()
    with torch.no_grad():
        batch = model(source, lengths, target_in)
        for b, length in enumerate(lengths.tolist()):
            alone = model(source[b:b + 1, :length], lengths[b:b + 1], target_in[b:b + 1])
            assert torch.allclose(batch[b], alone[0], atol=1e-10), b
        target_out = torch.randint(1, 11, (3, 4), generator=torch.Generator().manual_seed(9))
        target_out[2, 2:] = -100
        picked = batch.gather(-1, target_out.clamp(min=0)[..., None])[..., 0]
        expected = -picked[target_out != -100].mean()
        assert torch.allclose(model.loss(source, lengths, target_in, target_out), expected, atol=1e-12)


def test_a_tiny_translation_model_traced_from_the_words_to_the_log_probabilities():
    torch.manual_seed(6)
    model = TransformerSeq2Seq(5, 6, TransformerConfig(d_model=4, num_heads=2, num_encoder_layers=1,
                                                       num_decoder_layers=1, d_ff=8)).double()
    sentence, lengths, target_in = torch.tensor([[1, 2, 3]]), torch.tensor([3]), torch.tensor([[0, 4, 5]])
    trace = {}
    log_probs = model(sentence, lengths, target_in, trace=trace)
    assert torch.allclose(log_probs, model(sentence, lengths, target_in), atol=1e-12)  # fused, untraced
    pe = sinusoidal_positions(3, 4, dtype=torch.float64)
    assert torch.allclose(trace["source_embedded"], model.source_embedding.weight[[1, 2, 3]] * 2 + pe)
    assert torch.allclose(trace["target_embedded"], model.target_embedding.weight[[0, 4, 5]] * 2 + pe)
    assert trace["encoder.layers.0"]["self_attention"]["weights"].shape == (1, 2, 3, 3)
    assert torch.equal(trace["log_probs"], log_probs.detach())


def test_the_conditioned_decoder_keeps_the_protocol():
    model = _translation_model(norm_first=True)
    source, lengths, target_in = _translation_batch()
    decoder = model.conditioned_on(source, lengths)
    with torch.no_grad():
        teacher_forced = model(source, lengths, target_in)
        state = decoder.initial_state(3)
        steps = []
        for tokens in target_in.unbind(dim=1):
            log_probs, state = decoder.step(tokens, state)
            steps.append(log_probs)
        assert torch.allclose(torch.stack(steps, dim=1), teacher_forced, atol=1e-10)
        index = torch.tensor([2, 0, 2])
        _, state = decoder.read(target_in[:, :2], decoder.initial_state(3))
        continued, _ = decoder.read(target_in[index, 2:], decoder.select_state(state, index))
        assert torch.allclose(continued, teacher_forced[index, 2:], atol=1e-10)
    with pytest.raises(ValueError, match="conditioned on 3 sources"):
        decoder.initial_state(2)
    with pytest.raises(ValueError, match=r"target_in must lie in \[0, 11\)"):
        model(source, lengths, target_in + 10)


# ---------------------------------------------------------------------------------------------
# Bad arguments
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, error, words", [
    (lambda: MultiHeadAttention(10, 4), ValueError, r"d_model \(10\) must be divisible by num_heads \(4\)"),
    (lambda: TransformerConfig(d_model=6, num_heads=4), ValueError, "divisible by num_heads"),
    (lambda: TransformerLMConfig(5, d_model=6, num_heads=4), ValueError, "divisible by num_heads"),
    (lambda: TransformerConfig(dropout=1.0), ValueError, "dropout"),
    (lambda: TransformerConfig(num_encoder_layers=0), ValueError, "num_encoder_layers"),
    (lambda: TransformerConfig(activation="tanh"), ValueError, "activation must be one of"),
    (lambda: TransformerLMConfig(5, positions="learned"), ValueError, "need max_context"),
    (lambda: TransformerLMConfig(5, positions="rotary"), ValueError, "positions must be one of"),
    (lambda: TransformerLMConfig(0), ValueError, "vocab_size"),
    (lambda: TransformerLM({"vocab_size": 5}), TypeError, "TransformerLMConfig"),
    (lambda: LayerNorm(4, eps=0), ValueError, "eps"),
])
def test_bad_settings_are_refused_with_what_is_wrong(make, error, words):
    with pytest.raises(error, match=words):
        make()


def test_bad_inputs_are_refused_with_what_is_expected():
    attention = MultiHeadAttention(D_MODEL, HEADS)
    x = torch.randn(2, 3, D_MODEL)
    with pytest.raises(TypeError, match="mask must be a boolean tensor"):
        attention(x, mask=torch.ones(2, 1, 1, 3))
    with pytest.raises(ValueError, match=r"\(batch, time, d_model=8\)"):
        attention(torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match="memory must be"):
        attention(x, torch.randn(3, 5, D_MODEL))
    model = Transformer(TransformerConfig(D_MODEL, HEADS, 1, 1, D_FF))
    with pytest.raises(ValueError, match=r"source_padding must be a boolean \(batch, time\) = \(2, 3\)"):
        model(x, x, torch.ones(2, 4, dtype=torch.bool))
    lm = _language_model()
    with pytest.raises(ValueError, match="key-value cache"):
        lm.step(torch.tensor([1, 2]), lm.initial_state(3))
