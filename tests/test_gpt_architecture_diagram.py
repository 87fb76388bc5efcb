"""The GPT-2 diagram names the modules of transformers' GPT2Model and prints their shapes."""
import re

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from course_lib.viz.diagrams import plot_gpt_architecture

ARROW = re.compile(r"^(\S+)\s+([\d,]+) → ([\d,]+)")  # "mlp.c_fc  32 → 128": inputs → outputs
TABLE = re.compile(r"^(\S+)\s+([\d,]+) × ([\d,]+)$")  # "wte  50 × 32": rows × columns
NORM = re.compile(r"^(\S+)\s+LayerNorm\(([\d,]+)\)$")


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def _labelled_lines(figure) -> list[str]:
    labels = [text.get_text() for text in figure.axes[0].texts if text.get_fontfamily() == ["monospace"]]
    return [line for label in labels for line in label.split("\n")]


@pytest.mark.parametrize("sizes", [dict(vocab_size=50, max_context=16, d_model=32, num_layers=3),
                                   dict(vocab_size=50257, max_context=1024, d_model=768, num_layers=12, d_ff=3072),
                                   dict(vocab_size=7, max_context=9, d_model=12, num_layers=1, d_ff=20)])
def test_every_name_is_a_module_of_gpt2_with_the_shape_drawn(sizes):
    with torch.device("meta"):
        model = GPT2LMHeadModel(GPT2Config(vocab_size=sizes["vocab_size"], n_positions=sizes["max_context"],
                                           n_embd=sizes["d_model"], n_layer=sizes["num_layers"], n_head=1,
                                           n_inner=sizes.get("d_ff")))
    modules = dict(model.named_modules())

    def module(name: str):
        """lm_head at the top; wte, wpe, ln_f in transformer; the rest in block 0 (all blocks alike)."""
        return modules.get(name) or modules.get(f"transformer.{name}") or modules[f"transformer.h.0.{name}"]

    checked = set()
    for line in _labelled_lines(plot_gpt_architecture(**sizes)):
        if match := ARROW.match(line):
            name, inputs, outputs = match[1], _number(match[2]), _number(match[3])
            layer = module(name)
            if name == "lm_head":  # nn.Linear: (outputs, inputs), and it is the token embedding
                assert tuple(layer.weight.shape) == (outputs, inputs) and "(is wte)" in line
            else:  # Conv1D: (inputs, outputs)
                assert (layer.nx, layer.nf) == (inputs, outputs) == tuple(layer.weight.shape)
        elif match := TABLE.match(line):
            name = match[1]
            assert tuple(module(name).weight.shape) == (_number(match[2]), _number(match[3]))
        elif match := NORM.match(line):
            name = match[1]
            assert module(name).normalized_shape == (_number(match[2]),)
        elif line.startswith("h.0 … h."):
            name = "h"
            assert line == f"h.0 … h.{len(model.transformer.h) - 1}   {len(model.transformer.h)} × GPT2Block"
        elif line.startswith("mlp.act"):
            name = "mlp.act"
            assert type(module(name)).__name__ == "NewGELUActivation" and "GELU (tanh)" in line
        else:
            assert line == "softmax: the next token", line
            continue
        checked.add(name)
    assert checked == {"wte", "wpe", "h", "ln_1", "attn.c_attn", "attn.c_proj", "ln_2", "mlp.c_fc", "mlp.act",
                       "mlp.c_proj", "ln_f", "lm_head"}


def test_the_repeat_count_is_drawn_on_the_block():
    texts = [text.get_text() for text in plot_gpt_architecture(num_layers=48).axes[0].texts]
    assert "× 48" in texts and "masked multi-head\nself-attention" in texts


@pytest.mark.parametrize("arguments, message", [
    (dict(d_model=0), "d_model must be a positive integer, got 0"),
    (dict(num_layers=2.0), "num_layers must be a positive integer, got 2.0 of type float"),
    (dict(d_ff=-4), "d_ff must be a positive integer, got -4"),
    (dict(vocab_size=True), "vocab_size must be a positive integer, got True of type bool"),
])
def test_bad_sizes_are_refused_by_name(arguments, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        plot_gpt_architecture(**arguments)
