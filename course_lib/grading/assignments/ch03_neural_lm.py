"""Chapter 3 exercises: the fixed-window neural language model.

Every input is a torch tensor made from a seeded generator, so the cases are the same on every run;
the references are :mod:`course_lib.neural_lm` (and autograd / ``torch.optim.SGD`` around it).
Weights are float64 where an item's answer is a long computation, so that tolerances can be tight.
"""
from __future__ import annotations

import torch

from course_lib import neural_lm
from course_lib.grading.cases import Assignment, Case, graded_item
from course_lib.grading.policies import AUTOGRAD, CROSS_ENTROPY, FLOAT32, FLOAT64_REORDERED, SOFTMAX

PARAMETER_NAMES = ("C", "H", "d", "U", "b")  # the paper's names: C embeddings, H and d hidden, U and b output



def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_weights(vocab_size: int, context_size: int, m: int, h: int, seed: int,
                   dtype: torch.dtype = torch.float64) -> dict[str, torch.Tensor]:
    """Weights of a fixed-window model in the book's layout: C (V, m), H (h, (n-1) m), d (h,), U (V, h), b (V,)."""
    g = _generator(seed)
    shapes = {"C": (vocab_size, m), "H": (h, context_size * m), "d": (h,), "U": (vocab_size, h), "b": (vocab_size,)}
    return {name: torch.randn(*shape, generator=g, dtype=dtype) * 0.5 for name, shape in shapes.items()}


def random_ids(vocab_size: int, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randint(0, vocab_size, shape, generator=_generator(seed))


# --------------------------------------------------------------------------- references


def softmax_reference(z: torch.Tensor) -> torch.Tensor:
    return neural_lm.softmax(z, dim=-1)


def cross_entropy_reference(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return neural_lm.cross_entropy(logits, targets)


def _model_with(params: dict[str, torch.Tensor]) -> neural_lm.FixedWindowLM:
    """A FixedWindowLM holding exactly ``params`` (its own random initialisation is overwritten)."""
    V, m = params["C"].shape
    h, window = params["H"].shape
    with torch.random.fork_rng(devices=[]):  # leave the caller's generator as it was (check runs in a kernel)
        model = neural_lm.FixedWindowLM(V, window // m, m, h).to(params["C"].dtype)
    with torch.no_grad():
        model.C.weight.copy_(params["C"])
        model.H.weight.copy_(params["H"])
        model.H.bias.copy_(params["d"])
        model.U.weight.copy_(params["U"])
        model.U.bias.copy_(params["b"])
    return model


def fixed_window_forward_reference(context_ids: torch.Tensor, C: torch.Tensor, H: torch.Tensor, d: torch.Tensor,
                                   U: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    model = _model_with({"C": C, "H": H, "d": d, "U": U, "b": b})
    with torch.no_grad():
        return model(context_ids)


def logits_gradient_reference(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """d(mean cross-entropy)/d(logits), by autograd."""
    logits = logits.detach().clone().requires_grad_(True)
    neural_lm.cross_entropy(logits, targets).backward()
    return logits.grad


def training_step_reference(context_ids: torch.Tensor, targets: torch.Tensor, params: dict[str, torch.Tensor],
                            lr: float) -> dict:
    """The loss before the step, and the parameters after one step of plain SGD on the mean cross-entropy."""
    model = _model_with(params)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loss = neural_lm.cross_entropy(model(context_ids), targets)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    updated = {"C": model.C.weight, "H": model.H.weight, "d": model.H.bias, "U": model.U.weight, "b": model.U.bias}
    return {"loss": float(loss.detach()), "params": {name: tensor.detach().clone() for name, tensor in updated.items()}}


# --------------------------------------------------------------------------- cases


def _softmax_cases() -> list[Case]:
    g = _generator(30)
    return [
        Case("three small logits", {"z": torch.tensor([1.0, 2.0, 3.0])}),
        Case("a batch of random logits (4, 10): one distribution per row", {"z": torch.randn(4, 10, generator=g)}),
        Case("logits around 1e4: exp overflows unless the max is subtracted",
             {"z": torch.tensor([10_000.0, 9_999.0, 9_998.0])}),
        Case("logits around -1e4: exp underflows to 0 unless the max is subtracted",
             {"z": torch.tensor([[-10_000.0, -10_001.0, -10_002.0], [-10_000.0, 0.0, 10_000.0]])}),
        Case("float64 logits of shape (2, 3, 5): softmax over the last dimension",
             {"z": torch.randn(2, 3, 5, generator=g, dtype=torch.float64) * 20}),
        Case("equal logits give the uniform distribution", {"z": torch.zeros(2, 8)}),
    ]


def _cross_entropy_cases() -> list[Case]:
    g = _generator(31)
    return [
        Case("one example, three words", {"logits": torch.tensor([[1.0, 2.0, 3.0]]), "targets": torch.tensor([0])}),
        Case("8 random examples over 10 words",
             {"logits": torch.randn(8, 10, generator=g), "targets": torch.randint(0, 10, (8,), generator=g)}),
        Case("logits around 1e4",
             {"logits": torch.tensor([[10_000.0, 9_999.0, 9_998.0], [9_998.0, 10_000.0, 9_999.0]]),
              "targets": torch.tensor([2, 1])}),
        Case("a target 400 below the best logit: log(softmax) would be log(0) = -inf",
             {"logits": torch.tensor([[0.0, 200.0, -200.0]]), "targets": torch.tensor([2])}),
        Case("a confident right answer costs almost nothing",
             {"logits": torch.tensor([[0.0, 50.0, 0.0]]), "targets": torch.tensor([1])}),
        Case("float64, 64 examples over 546 words",
             {"logits": torch.randn(64, 546, generator=g, dtype=torch.float64) * 3,
              "targets": torch.randint(0, 546, (64,), generator=g)}),
    ]


def _forward_cases() -> list[Case]:
    return [
        Case("one context of 2 tokens; V = 5, m = 3, h = 4",
             {"context_ids": torch.tensor([[1, 4]]), **random_weights(5, 2, 3, 4, seed=32)}),
        Case("a batch of 6 contexts of 3 tokens; V = 12, m = 4, h = 8",
             {"context_ids": random_ids(12, (6, 3), seed=33), **random_weights(12, 3, 4, 8, seed=34)}),
        Case("the same word twice in a context, and the order of the words matters",
             {"context_ids": torch.tensor([[2, 2, 7], [7, 2, 2]]), **random_weights(9, 3, 2, 5, seed=35)}),
        Case("float32 weights: a batch of 16 contexts of 5 tokens; V = 30, m = 8, h = 16",
             {"context_ids": random_ids(30, (16, 5), seed=36),
              **random_weights(30, 5, 8, 16, seed=37, dtype=torch.float32)}),
    ]


def _gradient_cases() -> list[Case]:
    g = _generator(38)
    return [
        Case("one example, three words", {"logits": torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64),
                                         "targets": torch.tensor([0])}),
        Case("5 random examples over 7 words: the mean divides by 5",
             {"logits": torch.randn(5, 7, generator=g, dtype=torch.float64),
              "targets": torch.randint(0, 7, (5,), generator=g)}),
        Case("logits around 1e4", {"logits": torch.tensor([[10_000.0, 9_999.0, 9_998.0]], dtype=torch.float64),
                                   "targets": torch.tensor([1])}),
        Case("float32, 32 examples over 100 words",
             {"logits": torch.randn(32, 100, generator=g) * 4, "targets": torch.randint(0, 100, (32,), generator=g)}),
    ]


def _training_step_cases() -> list[Case]:
    return [
        Case("lr = 0.5 on one context; V = 6, m = 2, h = 3",
             {"context_ids": torch.tensor([[1, 3]]), "targets": torch.tensor([4]),
              "params": random_weights(6, 2, 2, 3, seed=39), "lr": 0.5}),
        Case("lr = 0.1 on a batch of 8 contexts of 3 tokens; V = 10, m = 4, h = 6",
             {"context_ids": random_ids(10, (8, 3), seed=40), "targets": random_ids(10, (8,), seed=41),
              "params": random_weights(10, 3, 4, 6, seed=42), "lr": 0.1}),
        Case("a word twice in a context: its row of C gets both gradients",
             {"context_ids": torch.tensor([[5, 5], [0, 5]]), "targets": torch.tensor([0, 2]),
              "params": random_weights(7, 2, 3, 4, seed=43), "lr": 1.0}),
        Case("lr = 0 changes nothing, but the loss is still reported",
             {"context_ids": random_ids(8, (4, 2), seed=44), "targets": random_ids(8, (4,), seed=45),
              "params": random_weights(8, 2, 2, 2, seed=46), "lr": 0.0}),
    ]


ASSIGNMENT = Assignment(
    name="ch03", title="Chapter 3: neural language models",
    case_sets=(
        graded_item("ch03.stable_softmax", points=2, make_cases=_softmax_cases, reference=softmax_reference,
                    tolerance=FLOAT32, forbidden=SOFTMAX,
                    hint="""Shifting a row's logits by a constant leaves its softmax unchanged and can keep
                            exp from overflowing; normalise over the last dimension. See "Softmax without
                            overflow" in Chapter 3."""),
        graded_item("ch03.cross_entropy", points=2, make_cases=_cross_entropy_cases,
                    reference=cross_entropy_reference, tolerance=FLOAT32, forbidden=CROSS_ENTROPY,
                    hint="""Taking the log of a softmax can give log(0); write the log-probability itself
                            from the shifted logits, and average over the examples. See "Cross-entropy is
                            the negative log-likelihood" in Chapter 3."""),
        graded_item("ch03.fixed_window_forward", points=2, make_cases=_forward_cases,
                    reference=fixed_window_forward_reference, tolerance=FLOAT32,
                    hint="""Look up the context's embeddings and lay them side by side, oldest word first,
                            one row per example, before the hidden layer. See "The fixed-window model" in
                            Chapter 3."""),
        graded_item("ch03.logits_gradient", points=2, make_cases=_gradient_cases,
                    reference=logits_gradient_reference, tolerance=FLOAT32, forbidden=AUTOGRAD,
                    hint="""Differentiate the loss of one row by its logits first; the mean over the batch
                            then scales every row. See "Cross-entropy is the negative log-likelihood" in
                            Chapter 3."""),
        graded_item("ch03.training_step", points=2, make_cases=_training_step_cases,
                    reference=training_step_reference, tolerance=FLOAT64_REORDERED,
                    hint="""Take the gradient with respect to copies of the parameters that autograd tracks,
                            step against it, and report the loss before the step. See "Training with
                            mini-batches and a held-out set" in Chapter 3."""),
    ),
    reference_modules=("course_lib.neural_lm", "course_lib.train"),
)
