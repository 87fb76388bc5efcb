"""course_lib.gpt against Hugging Face's GPT2LMHeadModel built from small random configurations."""
from __future__ import annotations

import math

import pytest
import torch

from course_lib.decoding import greedy
from course_lib.gpt import GPT, GPTConfig, from_hf_state_dict, to_hf_state_dict
from course_lib.transformer import TransformerLMConfig, gelu_tanh

transformers = pytest.importorskip("transformers")

SMALL = dict(vocab_size=97, max_context=32, num_layers=3, num_heads=4, d_model=32)
GPT2_SMALL_PARAMETERS = 124_439_808  # GPT-2 small, the tied matrix counted once


def _hf_model(config: GPTConfig, seed: int = 0):
    torch.manual_seed(seed)
    hf_config = transformers.GPT2Config(**config.hf_config_kwargs(), bos_token_id=None, eos_token_id=None,
                                        pad_token_id=0)
    return transformers.GPT2LMHeadModel(hf_config).eval()


def _ids(config: GPTConfig, batch: int = 3, time: int = 20, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, config.vocab_size, (batch, time), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "written-out"])
def test_logits_and_loss_equal_hugging_faces_on_the_same_random_weights(fused):
    config = GPTConfig(**SMALL)
    hf_model = _hf_model(config)
    model = GPT.from_hf(hf_model).eval()
    model.fused = fused
    ids = _ids(config)
    with torch.no_grad():
        expected = hf_model(input_ids=ids, labels=ids)  # Hugging Face shifts the labels itself
        logits, no_loss = model(ids)
        _, loss = model(ids[:, :-1], ids[:, 1:])
    assert no_loss is None
    assert logits.shape == (3, 20, config.vocab_size)
    assert (logits - expected.logits).abs().max() <= 1e-5
    assert abs(float(loss) - float(expected.loss)) <= 1e-5


def test_an_untied_model_loads_both_matrices_and_a_tied_one_refuses_two_different_ones():
    config = GPTConfig(**SMALL, tie_embeddings=False)
    hf_model = _hf_model(config)
    assert hf_model.lm_head.weight is not hf_model.transformer.wte.weight
    model = GPT.from_hf(hf_model).eval()
    ids = _ids(config)
    with torch.no_grad():
        assert torch.allclose(model(ids)[0], hf_model(ids).logits, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="tie_embeddings=False"):
        GPT(GPTConfig(**SMALL)).load_hf_state_dict(hf_model.state_dict())
    without_lm_head = {k: v for k, v in _hf_model(GPTConfig(**SMALL)).state_dict().items() if k != "lm_head.weight"}
    tied = GPT(GPTConfig(**SMALL)).load_hf_state_dict(without_lm_head)
    assert torch.equal(tied.readout.weight, without_lm_head["transformer.wte.weight"])


def test_the_fused_and_written_out_paths_give_the_same_logits_and_gradients():
    torch.manual_seed(0)
    model = GPT(GPTConfig(**SMALL))
    ids = _ids(model.config)
    results = []
    for fused in (True, False):
        model.fused = fused
        model.zero_grad()
        logits, loss = model(ids[:, :-1], ids[:, 1:])
        loss.backward()
        results.append((logits.detach(), model.blocks[0].self_attention.in_proj_weight.grad.clone()))
    assert torch.allclose(results[0][0], results[1][0], atol=1e-5, rtol=0)
    assert torch.allclose(results[0][1], results[1][1], atol=1e-6, rtol=1e-4)


def test_the_state_dict_goes_to_hugging_faces_names_and_back_unchanged():
    config = GPTConfig(**SMALL)
    hf_model = _hf_model(config)
    hf_state = {k: v for k, v in hf_model.state_dict().items() if not k.endswith((".attn.bias", ".attn.masked_bias"))}
    ours = from_hf_state_dict(hf_state)
    c_attn = hf_state["transformer.h.0.attn.c_attn.weight"]
    assert c_attn.shape == (32, 96) and ours["blocks.0.self_attention.in_proj_weight"].shape == (96, 32)
    back = to_hf_state_dict(ours)
    assert back.keys() == hf_state.keys()
    assert all(torch.equal(back[name], hf_state[name]) for name in hf_state)
    # and a GPT's own state dict, through Hugging Face's names, loads into a fresh GPT2LMHeadModel
    torch.manual_seed(5)
    model = GPT(config).eval()
    fresh = _hf_model(config, seed=6)
    fresh.load_state_dict(to_hf_state_dict(model.state_dict()), strict=False)
    ids = _ids(config)
    with torch.no_grad():
        assert torch.allclose(fresh(ids).logits, model(ids)[0], atol=1e-5, rtol=0)


def test_the_attention_mask_buffers_are_dropped_and_an_unknown_name_is_refused():
    config = GPTConfig(**SMALL)
    hf_state = dict(_hf_model(config).state_dict())
    hf_state["transformer.h.0.attn.bias"] = torch.ones(1, 1, 32, 32, dtype=torch.bool).tril()
    hf_state["transformer.h.0.attn.masked_bias"] = torch.tensor(-1e4)
    assert not any("bias" in name and name.endswith("attn.bias") for name in from_hf_state_dict(hf_state))
    GPT(config).load_hf_state_dict(hf_state)  # strict: nothing missing, nothing extra
    with pytest.raises(ValueError, match="transformer.h.0.attn.q_attn.weight"):
        from_hf_state_dict({"transformer.h.0.attn.q_attn.weight": torch.zeros(2, 2)})
    with pytest.raises(ValueError, match="is not a parameter of a GPT"):
        to_hf_state_dict({"blocks.0.cross_attention.out_proj.weight": torch.zeros(2, 2)})


def test_the_tied_weights_are_one_tensor_that_a_gradient_step_moves_in_both_places():
    torch.manual_seed(0)
    model = GPT(GPTConfig(**SMALL))
    assert model.readout.weight is model.embedding.weight
    before = model.embedding.weight.detach().clone()
    ids = _ids(model.config)
    _, loss = model(ids[:, :-1], ids[:, 1:])
    loss.backward()
    torch.optim.SGD(model.parameters(), lr=1.0).step()
    assert not torch.equal(model.embedding.weight, before)
    assert torch.equal(model.readout.weight, model.embedding.weight)
    # a token that never appears as input still moves: its only gradient comes through the read-out
    unseen = sorted(set(range(97)) - set(ids[:, :-1].flatten().tolist()))[0]
    assert not torch.equal(model.embedding.weight[unseen], before[unseen])


def test_without_tying_the_read_out_is_its_own_matrix_and_counts_again():
    tied = GPT(GPTConfig(**SMALL))
    untied = GPT(GPTConfig(**SMALL, tie_embeddings=False))
    assert untied.readout.weight is not untied.embedding.weight
    assert untied.num_parameters() - tied.num_parameters() == 97 * 32
    formula = untied.config.parameter_count_formula()
    assert formula["total"] == formula["total counting lm_head"] == untied.num_parameters()


def test_the_parameter_count_of_gpt2_small_equals_the_formula_and_hugging_faces():
    config = GPTConfig.gpt2()
    formula = config.parameter_count_formula()
    with torch.device("meta"):
        ours = GPT(config).num_parameters()
        theirs = sum(p.numel() for p in transformers.GPT2LMHeadModel(transformers.GPT2Config()).parameters())
    assert ours == theirs == formula["total"] == GPT2_SMALL_PARAMETERS
    assert formula["total counting lm_head"] == GPT2_SMALL_PARAMETERS + 50257 * 768
    assert formula["wte"] == 50257 * 768 and formula["wpe"] == 1024 * 768
    d = 768
    per_block = sum(v for k, v in formula.items() if "blocks" in k) // 12
    assert per_block == 12 * d * d + 13 * d


def test_small_formula_rows_are_the_models_own_tensors():
    model = GPT(GPTConfig(**SMALL))
    formula = model.config.parameter_count_formula()
    sizes = {name: p.numel() for name, p in model.named_parameters()}
    assert formula["wte"] == sizes["embedding.weight"] and formula["wpe"] == sizes["positions.weight"]
    c_fc = sum(v for k, v in sizes.items() if "linear1" in k)
    assert formula["mlp.c_fc (x3 blocks)"] == c_fc
    assert formula["total"] == model.num_parameters()


def test_greedy_generation_of_20_tokens_equals_hugging_faces_generate():
    config = GPTConfig(**SMALL)
    hf_model = _hf_model(config, seed=3)
    model = GPT.from_hf(hf_model).eval()
    prompt = _ids(config, batch=1, time=5, seed=4)
    with torch.no_grad():
        expected = hf_model.generate(prompt, max_new_tokens=20, do_sample=False, min_new_tokens=20)
    ours = greedy(model, prompt, max_tokens=20)[0]
    assert len(ours) == 20
    assert ours == expected[0, 5:].tolist()


def test_the_weights_start_as_gpt2s():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=512, max_context=64, num_layers=4, num_heads=4, d_model=256))
    residual_std = 0.02 / math.sqrt(2 * 4)
    for name, parameter in model.named_parameters():
        if name.endswith("bias"):
            assert not parameter.any(), name
        elif ".norm" in name or name.startswith("norm"):
            assert torch.equal(parameter, torch.ones_like(parameter)), name
        elif name.endswith(("out_proj.weight", "linear2.weight")):
            assert parameter.std().item() == pytest.approx(residual_std, rel=0.05), name
        else:
            assert parameter.std().item() == pytest.approx(0.02, rel=0.05), name


def test_gpt2s_gelu_is_the_tanh_approximation_hugging_face_writes_out():
    x = torch.linspace(-6, 6, 1001, dtype=torch.float64)
    written_out = 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    assert torch.allclose(gelu_tanh(x), written_out, atol=1e-12)
    assert (gelu_tanh(x) - torch.nn.functional.gelu(x)).abs().max() > 1e-4  # not the exact GELU


def test_dropout_acts_only_while_training():
    torch.manual_seed(0)
    model = GPT(GPTConfig(**SMALL, dropout=0.1))
    ids = _ids(model.config)
    assert not torch.equal(model(ids)[0], model(ids)[0])
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(ids)[0], model(ids)[0])


def test_the_configuration_goes_to_hugging_faces_and_back():
    config = GPTConfig(**SMALL, tie_embeddings=False, dropout=0.1)
    assert GPTConfig.from_hf(transformers.GPT2Config(**config.hf_config_kwargs())) == config
    assert GPTConfig.gpt2() == GPTConfig()


@pytest.mark.parametrize("make, words", [
    (lambda: GPTConfig(**SMALL, positions="sinusoidal"), "learned"),
    (lambda: GPT(TransformerLMConfig(9, positions="learned", max_context=8)), "GPTConfig"),
    (lambda: GPTConfig(**{**SMALL, "num_heads": 5}), "divisible"),
    (lambda: GPT(GPTConfig(**SMALL))(torch.zeros(2, 4, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long)),
     "targets must have the shape of ids"),
    (lambda: GPT(GPTConfig(**SMALL))(torch.zeros(1, 33, dtype=torch.long)), "33"),
    (lambda: GPTConfig.from_hf(transformers.GPT2Config(attn_pdrop=0.2)), "one dropout"),
])
def test_bad_configurations_and_inputs_are_refused_with_what_to_do(make, words):
    with pytest.raises(ValueError, match=words):
        make()
