"""The rules every assignment grades by: named groups of forbidden APIs and named tolerances.

A case set says *which* rule applies (``forbidden=AUTOGRAD``, ``tolerance=FLOAT32``); what the rule
contains is written once, here, so that "no autograd" or "float64 arithmetic" means the same thing
in every chapter.

**Forbidden-API groups** are tuples of dotted names that the grading worker guards
(:mod:`course_lib.grading.forbidden`). A group lists *every* public way to the forbidden result,
functional entry points included: ``nn.LSTMCell`` is one way to run an LSTM step, ``torch.lstm_cell``
(alias ``torch._VF.lstm_cell``) another. Groups add up with ``+``. A name that does not resolve in
the installed PyTorch would forbid nothing, and two names for one object would guard it twice;
``tests/test_assignments.py`` checks both for every group and case set.

**Tolerances** compare ``|actual - expected| <= atol + rtol * |expected|`` elementwise. The name
says what the comparison is for, not how tight it is.
"""
from __future__ import annotations

from course_lib.grading.compare import Tolerance

# --------------------------------------------------------------------------- forbidden-API groups

# Every way to have PyTorch compute a derivative: reverse mode, the Jacobian/Hessian helpers,
# torch.func's transforms and forward-mode dual numbers.
AUTOGRAD = (
    "torch.autograd.grad", "torch.autograd.backward", "torch.Tensor.backward",
    "torch.autograd.functional.jacobian", "torch.autograd.functional.hessian",
    "torch.autograd.functional.vjp", "torch.autograd.functional.jvp",
    "torch.autograd.functional.vhp", "torch.autograd.functional.hvp",
    "torch.func.grad", "torch.func.grad_and_value", "torch.func.jacrev", "torch.func.jacfwd",
    "torch.func.vjp", "torch.func.jvp", "torch.func.hessian", "torch.func.linearize",
    "torch.autograd.forward_ad.make_dual",
)

# The softmax and its logarithm, as functions, methods and modules (softmin(-z) is softmax(z)).
# The private kernels torch._softmax and torch._log_softmax are left out: torch's own modules
# reach them through torch.ops.aten (e.g. ``aten._softmax.default``), which a guard would break.
SOFTMAX = (
    "torch.softmax", "torch.nn.functional.softmax", "torch.Tensor.softmax", "torch.special.softmax",
    "torch.nn.Softmax", "torch.nn.functional.softmin",
    "torch.log_softmax", "torch.nn.functional.log_softmax", "torch.Tensor.log_softmax",
    "torch.special.log_softmax", "torch.nn.LogSoftmax",
)

# The cross-entropy loss, and the pieces that make it one call: a log-softmax, NLL, log-sum-exp.
CROSS_ENTROPY = SOFTMAX + (
    "torch.nn.functional.cross_entropy", "torch.nn.functional.nll_loss",
    "torch.nn.CrossEntropyLoss", "torch.nn.NLLLoss",
    "torch.logsumexp", "torch.Tensor.logsumexp", "torch.special.logsumexp",
)

# Recurrent layers: the modules (their base classes too, which build any of them from a mode
# string) and the functional entry points the modules call. Each operator is named once, by its
# torch._VF form: ``torch.lstm_cell`` is the same function object, and the worker guards every
# module attribute that holds it, so one name stops both spellings (two names for one object
# would put two guards on it).
RECURRENT_LAYERS = (
    "torch.nn.RNNBase", "torch.nn.RNNCellBase",
    "torch.nn.RNN", "torch.nn.RNNCell", "torch.nn.LSTM", "torch.nn.LSTMCell",
    "torch.nn.GRU", "torch.nn.GRUCell",
    "torch._VF.rnn_tanh", "torch._VF.rnn_relu", "torch._VF.lstm", "torch._VF.gru",
    "torch._VF.rnn_tanh_cell", "torch._VF.rnn_relu_cell", "torch._VF.lstm_cell", "torch._VF.gru_cell",
)

# Gradient clipping and the total norm it computes.
CLIPPING = (
    "torch.nn.utils.clip_grad_norm_", "torch.nn.utils.clip_grad_norm",
    "torch.nn.utils.clip_grads_with_norm_", "torch.nn.utils.get_total_norm",
)

# Attention in one call (for the chapters from seq2seq on).
ATTENTION = (
    "torch.nn.functional.scaled_dot_product_attention", "torch.nn.MultiheadAttention",
    "torch.nn.functional.multi_head_attention_forward", "torch._native_multi_head_attention",
)

# Layer normalisation in one call: the module, the functional form and the operators under it.
LAYER_NORM = (
    "torch.nn.LayerNorm", "torch.nn.functional.layer_norm", "torch.layer_norm", "torch.native_layer_norm",
)

# The GELU activation in one call (Chapter 10 asks for GPT-2's formula).
GELU = ("torch.nn.functional.gelu", "torch.nn.GELU")

FORBIDDEN_GROUPS = {
    "AUTOGRAD": AUTOGRAD,
    "SOFTMAX": SOFTMAX,
    "CROSS_ENTROPY": CROSS_ENTROPY,
    "RECURRENT_LAYERS": RECURRENT_LAYERS,
    "CLIPPING": CLIPPING,
    "ATTENTION": ATTENTION,
    "LAYER_NORM": LAYER_NORM,
    "GELU": GELU,
}

# --------------------------------------------------------------------------- tolerances

# Integers, counts, strings: equal or wrong.
EXACT = Tolerance(rtol=0.0, atol=0.0)

# float64, the same formula evaluated in about the same order (a sum, a product, one step of a
# recurrence): the answers differ in the last few bits only.
FLOAT64_SAME_ORDER = Tolerance(rtol=1e-9, atol=1e-12)

# float64 through a different route: PyTorch's fused kernels against NumPy, autograd against a
# hand-written gradient, an optimizer step, many steps of a recurrence. Rounding differences grow
# with the length of the computation.
FLOAT64_REORDERED = Tolerance(rtol=1e-6, atol=1e-9)

# float32 arithmetic done in a different order: about 7 significant digits.
FLOAT32 = Tolerance(rtol=1e-5, atol=1e-7)

# Quantities spanning many orders of magnitude (norms from 1e-10 to 1e10, gradients near 1e-30):
# only a relative error means anything, and any absolute slack would let 0 pass for 1e-30.
RELATIVE_ONLY = Tolerance(rtol=1e-7, atol=0.0)

TOLERANCES = {
    "EXACT": EXACT,
    "FLOAT64_SAME_ORDER": FLOAT64_SAME_ORDER,
    "FLOAT64_REORDERED": FLOAT64_REORDERED,
    "FLOAT32": FLOAT32,
    "RELATIVE_ONLY": RELATIVE_ONLY,
}
