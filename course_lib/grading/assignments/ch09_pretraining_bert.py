"""Chapter 9 exercises: pretraining objectives and the pieces of BERT.

Inputs are NumPy arrays (integer ids, float64 weights) from seeded generators, so the cases are the
same on every run. The random draws of the two objectives are given to the student as inputs: they
are the very draws :func:`course_lib.objectives.mask_tokens` and
:func:`course_lib.objectives.span_corruption` make from the case's seed, so the references are those
functions called with that seed. The other references are the chapter's modules:
:class:`course_lib.bert.BertPooler`, :class:`course_lib.bert.BertEmbeddings`,
:func:`course_lib.bert.best_answer_span` and :func:`course_lib.bert.parameter_count_formula`.
"""
from __future__ import annotations

import numpy as np
import torch

from course_lib import bert, objectives
from course_lib.grading.cases import Assignment, Case, graded_item
from course_lib.grading.policies import EXACT, FLOAT64_REORDERED, LAYER_NORM
from course_lib.grading.seeded import float64_tensor, normal_array, seeded_rng

MASK_ID = 4
SPECIAL_IDS = (0, 1, 2, 3, 4)  # [PAD] [UNK] [CLS] [SEP] [MASK]


# --------------------------------------------------------------------------- the objectives' draws


def masking_draws(shape: tuple[int, int], vocab_size: int, seed: int) -> dict[str, np.ndarray]:
    """The three draws :func:`objectives.mask_tokens` makes from ``seed``, in its order."""
    generator = torch.Generator().manual_seed(seed)
    ordinary = torch.tensor([i for i in range(vocab_size) if i not in SPECIAL_IDS])
    select_uniform = torch.rand(shape, generator=generator)
    fate_uniform = torch.rand(shape, generator=generator)
    random_tokens = ordinary[torch.randint(len(ordinary), shape, generator=generator)]
    return {"select_uniform": select_uniform.double().numpy(), "fate_uniform": fate_uniform.double().numpy(),
            "random_tokens": random_tokens.numpy()}


def mask_tokens_reference(ids, select_uniform, fate_uniform, random_tokens, special_ids, mask_id, seed,
                          vocab_size) -> tuple[np.ndarray, np.ndarray]:
    """``(inputs, labels)`` of :func:`objectives.mask_tokens` with the case's seed (whose draws are
    the case's ``select_uniform``, ``fate_uniform`` and ``random_tokens``)."""
    masked = objectives.mask_tokens(torch.as_tensor(ids), vocab_size=vocab_size, mask_id=mask_id,
                                    special_ids=list(special_ids), generator=seed)
    return masked.inputs.numpy(), masked.labels.numpy()


def span_corruption_reference(ids, span_starts, span_lengths, vocab_size, seed) -> tuple[np.ndarray, np.ndarray]:
    result = objectives.span_corruption(torch.as_tensor(ids), vocab_size=vocab_size, generator=seed,
                                        noise_density=_SPAN_SETTINGS[seed][0],
                                        mean_span_length=_SPAN_SETTINGS[seed][1])
    return result.inputs.numpy(), result.targets.numpy()


def pooler_reference(hidden, weight, bias) -> np.ndarray:
    """``tanh(W_p h_[CLS] + b_p)``: :class:`bert.BertPooler` holding ``weight`` and ``bias``."""
    size = np.shape(weight)[0]
    with torch.random.fork_rng(devices=[]):
        pooler = bert.BertPooler(bert.BertConfig(hidden_size=size, num_attention_heads=1)).double()
    pooler.load_state_dict({"dense.weight": float64_tensor(weight), "dense.bias": float64_tensor(bias)})
    with torch.no_grad():
        return pooler(float64_tensor(hidden)).numpy()


def embeddings_reference(input_ids, token_type_ids, token_table, position_table, segment_table, gamma, beta,
                         eps) -> np.ndarray:
    """``LayerNorm(E_token[x] + E_position[0..T-1] + E_segment[s])``: :class:`bert.BertEmbeddings`."""
    vocab, hidden = np.shape(token_table)
    config = bert.BertConfig(vocab_size=vocab, hidden_size=hidden, num_attention_heads=1,
                             max_position_embeddings=np.shape(position_table)[0],
                             type_vocab_size=np.shape(segment_table)[0], layer_norm_eps=eps, hidden_dropout_prob=0.0,
                             fused=False)
    with torch.random.fork_rng(devices=[]):
        embeddings = bert.BertEmbeddings(config).double().eval()
    embeddings.load_state_dict({"token.weight": float64_tensor(token_table),
                                "position.weight": float64_tensor(position_table),
                                "segment.weight": float64_tensor(segment_table),
                                "norm.weight": float64_tensor(gamma), "norm.bias": float64_tensor(beta)})
    with torch.no_grad():
        return embeddings(torch.as_tensor(input_ids), torch.as_tensor(token_type_ids)).numpy()


def best_span_reference(start_logits, end_logits, max_answer_length, allowed) -> np.ndarray:
    return bert.best_answer_span(float64_tensor(start_logits), float64_tensor(end_logits), max_answer_length,
                                 allowed=torch.as_tensor(np.asarray(allowed, dtype=bool))).numpy()


def parameter_count_reference(vocab_size, hidden_size, num_layers, intermediate_size, max_positions,
                              type_vocab_size, pooler) -> int:
    config = bert.BertConfig(vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=num_layers,
                             num_attention_heads=1, intermediate_size=intermediate_size,
                             max_position_embeddings=max_positions, type_vocab_size=type_vocab_size)
    return bert.parameter_count_formula(config, pooler=pooler).total


# --------------------------------------------------------------------------- cases


def _masking_case(label: str, seed: int, ids: np.ndarray, vocab_size: int) -> Case:
    return Case(label, {"ids": ids, **masking_draws(ids.shape, vocab_size, seed), "special_ids": SPECIAL_IDS,
                        "mask_id": MASK_ID, "seed": seed, "vocab_size": vocab_size})


def _sentences(seed: int, batch: int, length: int, vocab_size: int, pad_after: list[int]) -> np.ndarray:
    """``[CLS] w ... [SEP]`` rows of ordinary ids, padded with 0 after ``pad_after[b]`` tokens."""
    rng = seeded_rng(seed)
    ids = rng.integers(len(SPECIAL_IDS), vocab_size, (batch, length))
    ids[:, 0] = 2
    for row, end in enumerate(pad_after):
        ids[row, end - 1] = 3
        ids[row, end:] = 0
    return ids


def _masking_cases() -> list[Case]:
    # Seeds chosen so that in every case a special token or padding draws a select_uniform below
    # 0.15 (selecting it is wrong) and an ordinary token draws the random-token fate.
    return [
        _masking_case("one sentence of 12 tokens, vocabulary 30", 903, _sentences(903, 1, 12, 30, [12]), 30),
        _masking_case("a batch of 4 with padding (never selected)", 900, _sentences(900, 4, 20, 50, [20, 14, 9, 5]),
                      50),
        _masking_case("a long batch: every fate (mask, random, kept) occurs", 905,
                      _sentences(905, 3, 64, 100, [64, 64, 40]), 100),
        _masking_case("an input that already holds [MASK] ids: special, never selected", 904,
                      np.where(np.arange(30) % 5 == 1, MASK_ID, _sentences(904, 2, 30, 40, [30, 30])), 40),
    ]


_SPAN_SETTINGS = {910: (0.15, 3.0), 911: (0.3, 2.0), 912: (0.5, 1.0), 913: (0.2, 4.0)}


def _span_case(label: str, seed: int, length: int, vocab_size: int) -> Case:
    ids = seeded_rng(seed).integers(0, vocab_size - 20, length)
    density, mean = _SPAN_SETTINGS[seed]
    result = objectives.span_corruption(torch.as_tensor(ids), vocab_size=vocab_size, generator=seed,
                                        noise_density=density, mean_span_length=mean)
    return Case(label, {"ids": ids, "span_starts": result.span_starts.numpy(),
                        "span_lengths": result.span_lengths.numpy(), "vocab_size": vocab_size, "seed": seed})


def _span_cases() -> list[Case]:
    return [
        _span_case("T5's setting: 15% noise, mean span 3, 20 tokens", 910, 20, 100),
        _span_case("30% noise in spans of about 2, 30 tokens", 911, 30, 200),
        _span_case("spans of one token (mean span 1): one sentinel per token", 912, 12, 64),
        _span_case("a single long span", 913, 8, 50),
    ]


def _pooler_cases() -> list[Case]:
    cases = []
    for label, seed, batch, time, hidden in (("one sequence of 3 tokens, hidden 4", 920, 1, 3, 4),
                                             ("a batch of 3, 5 tokens, hidden 8", 921, 3, 5, 8),
                                             ("two tokens: [CLS] and one word, hidden 6", 922, 2, 2, 6),
                                             ("large entries: tanh saturates near ±1", 923, 2, 4, 5)):
        scale = 3.0 if seed == 923 else 1.0
        cases.append(Case(label, {"hidden": normal_array(seed, batch, time, hidden, scale=scale),
                                  "weight": normal_array(seed + 100, hidden, hidden, scale=0.5),
                                  "bias": normal_array(seed + 200, hidden, scale=0.5)}))
    return cases


def _embedding_case(label: str, seed: int, batch: int, time: int, vocab: int, hidden: int, segments: int,
                    eps: float) -> Case:
    rng = seeded_rng(seed)
    types = np.zeros((batch, time), dtype=np.int64)
    types[:, time // 2 :] = segments - 1
    return Case(label, {"input_ids": rng.integers(0, vocab, (batch, time)), "token_type_ids": types,
                        "token_table": rng.normal(0, 1, (vocab, hidden)),
                        "position_table": rng.normal(0, 1, (time + 3, hidden)),
                        "segment_table": rng.normal(0, 1, (segments, hidden)),
                        "gamma": rng.normal(1, 0.3, hidden), "beta": rng.normal(0, 0.3, hidden), "eps": eps})


def _embedding_cases() -> list[Case]:
    return [
        _embedding_case("one pair of 6 tokens, segments 0 then 1, hidden 4", 930, 1, 6, 10, 4, 2, 1e-12),
        _embedding_case("a batch of 3, 8 tokens, hidden 8", 931, 3, 8, 20, 8, 2, 1e-12),
        _embedding_case("one segment only (RoBERTa-like), eps 1e-5", 932, 2, 5, 7, 6, 1, 1e-5),
        _embedding_case("more positions than tokens: positions 0 .. T-1 only", 933, 2, 3, 9, 4, 2, 1e-3),
    ]


def _span_logits_case(label: str, seed: int, batch: int, time: int, max_length: int, allowed=None) -> Case:
    rng = seeded_rng(seed)
    if allowed is None:
        allowed = np.ones((batch, time), dtype=bool)
    start_logits, end_logits = rng.normal(0, 2, (batch, time)), rng.normal(0, 2, (batch, time))
    for row in range(batch):  # a trap in every row: the best start alone lies after the best end alone
        positions = np.flatnonzero(allowed[row])
        start_logits[row, positions[-2]] += 6.0
        end_logits[row, positions[1]] += 6.0
    return Case(label, {"start_logits": start_logits, "end_logits": end_logits, "max_answer_length": max_length,
                        "allowed": allowed})


def _best_span_cases() -> list[Case]:
    context = np.zeros((3, 12), dtype=bool)
    context[:, 5:11] = True  # [CLS] question [SEP] | context | [SEP]
    return [
        _span_logits_case("one row of 6 tokens, any span up to 6 long", 941, 1, 6, 6),
        _span_logits_case("one row of 8 tokens, up to 8 long", 940, 1, 8, 8),
        _span_logits_case("a batch of 4 with a maximum length of 2", 942, 4, 10, 2),
        _span_logits_case("answers only inside the context (positions 5 to 10)", 943, 3, 12, 4, context),
        _span_logits_case("maximum length 1: start = end", 944, 2, 7, 1),
    ]


def _count_case(label: str, **config) -> Case:
    return Case(label, config)


def _count_cases() -> list[Case]:
    return [
        _count_case("BERT-base", vocab_size=30522, hidden_size=768, num_layers=12, intermediate_size=3072,
                    max_positions=512, type_vocab_size=2, pooler=True),
        _count_case("BERT-large", vocab_size=30522, hidden_size=1024, num_layers=24, intermediate_size=4096,
                    max_positions=512, type_vocab_size=2, pooler=True),
        _count_case("a question-answering encoder: no pooler", vocab_size=30522, hidden_size=768, num_layers=12,
                    intermediate_size=3072, max_positions=512, type_vocab_size=2, pooler=False),
        _count_case("all-MiniLM-L6-v2's shape", vocab_size=30522, hidden_size=384, num_layers=6,
                    intermediate_size=1536, max_positions=512, type_vocab_size=2, pooler=True),
        _count_case("a tiny one: vocabulary 10, hidden 4, 2 layers, FFN 8, 6 positions, 1 segment", vocab_size=10,
                    hidden_size=4, num_layers=2, intermediate_size=8, max_positions=6, type_vocab_size=1,
                    pooler=True),
    ]


ASSIGNMENT = Assignment(
    name="ch09", title="Chapter 9: pretraining objectives and BERT",
    case_sets=(
        graded_item("ch09.mask_tokens", points=2, make_cases=_masking_cases, reference=mask_tokens_reference,
                    tolerance=EXACT,
                    hint="""Special tokens and padding are never chosen; a chosen token's second draw
                            decides [MASK], random or unchanged; no label where nothing was chosen. See
                            "Masked language modelling" in Chapter 9."""),
        graded_item("ch09.span_corruption", points=2, make_cases=_span_cases, reference=span_corruption_reference,
                    tolerance=EXACT,
                    hint="""Each span becomes one sentinel in the input; the target lists each sentinel then
                            its span, and ends with one more; sentinels count down from the top id. See
                            "Span corruption" in Chapter 9."""),
        graded_item("ch09.pooler", points=1, make_cases=_pooler_cases, reference=pooler_reference,
                    tolerance=FLOAT64_REORDERED,
                    hint="""The pooler reads one position only, the first ([CLS]), through a linear layer
                            stored as (out, in) and a tanh. See "The pooler and the heads" in Chapter 9."""),
        graded_item("ch09.bert_embeddings", points=1, make_cases=_embedding_cases, reference=embeddings_reference,
                    tolerance=FLOAT64_REORDERED, forbidden=LAYER_NORM,
                    hint="""Three tables are looked up and added: tokens by id, positions by index 0 .. T-1,
                            segments by token type; then a layer norm over the features. See "BERT's
                            input" in Chapter 9."""),
        graded_item("ch09.best_answer_span", points=2, make_cases=_best_span_cases, reference=best_span_reference,
                    tolerance=EXACT,
                    hint="""Score every pair (start, end) by the sum of the two logits and keep the best
                            pair with start <= end, at most the maximum length, both allowed. See
                            "Extractive question answering" in Chapter 9."""),
        graded_item("ch09.parameter_count", points=2, make_cases=_count_cases, reference=parameter_count_reference,
                    tolerance=EXACT,
                    hint="""Count weights and biases of every linear layer, both vectors of every layer norm,
                            the three embedding tables, and one pooler, not one per layer. See "Counting
                            BERT's parameters" in Chapter 9."""),
    ),
    reference_modules=("course_lib.objectives", "course_lib.bert"),
)
