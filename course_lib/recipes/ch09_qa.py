"""Chapter 9's fine-tuning experiment: extractive question answering on the stories.

The questions come from :func:`course_lib.data.story_qa.qa_examples` (the answer span is known
exactly). Each example is read as BERT reads a pair::

    <s> question </s> context </s>         segments 0 ... 0 1 ... 1      (<s>, </s> as [CLS], [SEP])

and :class:`~course_lib.bert.BertForQuestionAnswering` (Chapter 9's small encoder plus a linear
layer to a start and an end logit per token) is trained with the mean of the start and end
cross-entropies. The answer is the best span inside the context (start ≤ end, at most
:data:`MAX_ANSWER_TOKENS` tokens; :func:`~course_lib.bert.best_answer_span`).

The encoder starts from a masked-LM checkpoint (``ch09_mlm``, or ``ch09_mlm40`` masked at 40%; its
encoder only) or from random weights (:data:`STARTS`), and is fine-tuned on :data:`TRAIN_SIZES`
labelled examples for the same number of steps (:data:`STEPS` of :data:`BATCH_SIZE`, AdamW at
:data:`LEARNING_RATE`); exact match and token F1 are measured on :data:`TEST_SIZE` held-out
questions. ``ch09_qa`` runs both sizes from ``ch09_mlm`` and from scratch for its seed,
``ch09_qa_mlm40`` both sizes from ``ch09_mlm40``; each stores its table in its metadata and saves
the model fine-tuned from its masked LM on the largest training set.
"""
from __future__ import annotations

import time
from collections import Counter
from typing import Any

import torch
from torch import Tensor

from course_lib.bert import BertForQuestionAnswering, best_answer_span
from course_lib.checks import one_of
from course_lib.data.story_qa import QAExample, qa_examples
from course_lib.checkpoint import load_checkpoint
from course_lib.recipes import Recipe, checkpoint_path
from course_lib.recipes.ch05_lstm_gru import story_vocabulary
from course_lib.recipes.ch09_objectives import build_model as objectives_model
from course_lib.recipes.ch09_objectives import model_config, pad_batch, recipe_name
from course_lib.runtime import seed_everything

__all__ = ["BATCH_SIZE", "LEARNING_RATE", "MAX_ANSWER_TOKENS", "RECIPES", "STARTS", "STEPS", "TEST_SIZE",
           "TRAIN_SIZES", "build_model", "encode_examples", "evaluate", "exact_match", "fine_tune", "predict",
           "token_f1"]

TRAIN_SIZES = (300, 3000)
TEST_SIZE = 500
STEPS = 500
BATCH_SIZE = 32
LEARNING_RATE = 1e-3
MAX_ANSWER_TOKENS = 5
RECIPE_STARTS = {"ch09_qa": ("mlm", "scratch"), "ch09_qa_mlm40": ("mlm40",)}  # what each recipe fine-tunes from
STARTS = tuple(start for starts in RECIPE_STARTS.values() for start in starts)  # mlm, scratch, mlm40


def encode_examples(examples: list[QAExample]) -> dict[str, Tensor]:
    """``input_ids``, ``token_type_ids``, ``attention_mask`` ``(n, T)``; ``start_positions``,
    ``end_positions`` ``(n,)`` (indices in the pair); ``context_mask`` ``(n, T)``, True on the
    context's tokens, where an answer may lie."""
    vocabulary = story_vocabulary()
    bos, eos = vocabulary.special_id("<s>"), vocabulary.special_id("</s>")
    rows, types, starts, ends, contexts = [], [], [], [], []
    for example in examples:
        question = [bos, *vocabulary.encode(list(example.question)), eos]
        context = vocabulary.encode(list(example.context)) + [eos]
        rows.append(question + context)
        types.append([0] * len(question) + [1] * len(context))
        starts.append(len(question) + example.start)
        ends.append(len(question) + example.end)
        contexts.append([False] * len(question) + [True] * (len(context) - 1) + [False])
    input_ids = pad_batch(rows)
    width = input_ids.shape[1]
    token_type_ids = torch.tensor([t + [0] * (width - len(t)) for t in types])
    context_mask = torch.tensor([c + [False] * (width - len(c)) for c in contexts])
    return {"input_ids": input_ids, "token_type_ids": token_type_ids,
            "attention_mask": (input_ids != model_config().pad_token_id).long(),
            "start_positions": torch.tensor(starts), "end_positions": torch.tensor(ends),
            "context_mask": context_mask}


def build_model() -> BertForQuestionAnswering:
    return BertForQuestionAnswering(model_config())


def _starting_model(start: str, pretraining_seed: int) -> BertForQuestionAnswering:
    model = build_model()
    if start != "scratch":
        path = checkpoint_path(recipe_name(start, pretraining_seed))
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist: train the masked LM first with "
                                    f"`course train {recipe_name(start, pretraining_seed)}`")
        pretrained = objectives_model()
        load_checkpoint(pretrained, path)
        model.bert.load_state_dict(pretrained.bert.state_dict())  # the encoder; the QA layer stays new
    return model


def fine_tune(start: str, train_size: int, seed: int = 0, steps: int = STEPS) -> BertForQuestionAnswering:
    """Fine-tune from ``start`` (``"mlm"``, ``"mlm40"`` or ``"scratch"``) on the first ``train_size`` training
    questions: ``steps`` AdamW steps on batches drawn at random from them."""
    one_of("start", start, STARTS)
    seed_everything(seed)
    model = _starting_model(start, seed).train()
    data = encode_examples(qa_examples(train_size, seed=0, split="train"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        rows = torch.randint(train_size, (BATCH_SIZE,), generator=generator)
        width = int(data["attention_mask"][rows].sum(dim=1).max())
        batch = {name: (value[rows, :width] if value.dim() == 2 else value[rows]) for name, value in data.items()}
        output = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"],
                       start_positions=batch["start_positions"], end_positions=batch["end_positions"])
        optimizer.zero_grad()
        output.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return model.eval()


@torch.no_grad()
def predict(model: BertForQuestionAnswering, examples: list[QAExample]) -> list[tuple[str, ...]]:
    """The predicted answer of each example: the best span of at most ``MAX_ANSWER_TOKENS`` in the context."""
    data = encode_examples(examples)
    output = model(data["input_ids"], data["attention_mask"], data["token_type_ids"])
    spans = best_answer_span(output.start_logits, output.end_logits, MAX_ANSWER_TOKENS, allowed=data["context_mask"])
    offsets = data["context_mask"].long().argmax(dim=1)  # where each context starts in the pair
    return [example.context[int(s - o) : int(e - o) + 1] for example, (s, e), o in zip(examples, spans, offsets)]


def exact_match(predicted: tuple[str, ...], gold: tuple[str, ...]) -> float:
    return float(tuple(predicted) == tuple(gold))


def token_f1(predicted: tuple[str, ...], gold: tuple[str, ...]) -> float:
    """SQuAD's F1: the harmonic mean of the precision and recall of the shared tokens."""
    shared = sum((Counter(predicted) & Counter(gold)).values())
    if shared == 0:
        return 0.0
    precision, recall = shared / len(predicted), shared / len(gold)
    return 2 * precision * recall / (precision + recall)


def evaluate(model: BertForQuestionAnswering, examples: list[QAExample]) -> dict[str, float]:
    """Exact match and F1 (in %) over ``examples``."""
    predictions = predict(model, examples)
    golds = [example.answer for example in examples]
    return {"exact_match": 100 * sum(map(exact_match, predictions, golds)) / len(examples),
            "f1": 100 * sum(map(token_f1, predictions, golds)) / len(examples)}


def test_examples() -> list[QAExample]:
    return qa_examples(TEST_SIZE, seed=0, split="test")


def train_all(seed: int = 0, steps: int | None = None,
              starts: tuple[str, ...] = RECIPE_STARTS["ch09_qa"]) -> tuple[BertForQuestionAnswering, dict[str, Any]]:
    """Every start of ``starts`` and training size from ``seed``; the table goes into the metadata,
    and the model fine-tuned from the first start on the most examples is returned."""
    steps = STEPS if steps is None else steps
    test = test_examples()
    table, kept = [], None
    for start in starts:
        for size in TRAIN_SIZES:
            began = time.perf_counter()
            model = fine_tune(start, size, seed, steps)
            table.append({"start": start, "train_size": size, **evaluate(model, test),
                          "seconds": round(time.perf_counter() - began, 1)})
            if start == starts[0] and size == max(TRAIN_SIZES):
                kept = model
    return kept, {"seed": seed, "steps": steps, "batch_size": BATCH_SIZE, "learning_rate": LEARNING_RATE,
                  "test_size": TEST_SIZE, "table": table}


SEEDS = (0, 1, 2)
TRAINED_SEEDS: dict[str, tuple[int, ...]] = {"ch09_qa": (0, 1, 2), "ch09_qa_mlm40": (0, 1, 2)}


def qa_recipe_name(seed: int = 0, recipe: str = "ch09_qa") -> str:
    """``ch09_qa``, ``ch09_qa_seed1``, ``ch09_qa_mlm40_seed2``, ..."""
    one_of("recipe", recipe, RECIPE_STARTS)
    return recipe if seed == 0 else f"{recipe}_seed{seed}"


def _recipe(recipe: str, seed: int) -> Recipe:
    starts = RECIPE_STARTS[recipe]
    pretrained = [recipe_name(start, seed) for start in starts if start != "scratch"]
    origins = " and ".join([*pretrained, *(["scratch"] if "scratch" in starts else [])])
    return Recipe(
        name=qa_recipe_name(seed, recipe),
        description=(f"extractive QA fine-tuned from {origins} on {' and '.join(map(str, TRAIN_SIZES))} story "
                     f"questions, {STEPS} steps each, seed {seed}; the table in its metadata, the model from "
                     f"{pretrained[0]} on the most examples"),
        build_model=build_model,
        train=lambda seed=seed, steps=None: train_all(seed, steps, starts),
        seed=seed)


ALL_RECIPES = {qa_recipe_name(seed, recipe): _recipe(recipe, seed) for recipe in RECIPE_STARTS for seed in SEEDS}
RECIPES = {qa_recipe_name(seed, recipe): ALL_RECIPES[qa_recipe_name(seed, recipe)]
           for recipe, seeds in TRAINED_SEEDS.items() for seed in seeds}
