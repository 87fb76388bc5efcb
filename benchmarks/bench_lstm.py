"""The from-scratch LSTM and GRU layers against PyTorch's fused modules, forward + backward on CPU.

Run: .venv/bin/python benchmarks/bench_lstm.py [--batch 32 --time 64 --d-in 64 --d-hidden 128]
Prints the median time of one forward + backward pass for each and the ratio (from scratch / PyTorch).
On CPU, ``nn.LSTM`` in float32 runs oneDNN's fused LSTM kernel; the last row compares with PyTorch's
own loop over time (oneDNN switched off), which is what the from-scratch layer does step by step.
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch
from torch import nn

from course_lib import seed_everything
from course_lib.lstm import GRU, LSTM
from course_lib.rnn import RNN


class WithoutOneDNN(nn.Module):
    """Runs ``module`` with oneDNN disabled, so PyTorch takes its native per-step RNN path."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, inputs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a note about Intel GPUs that does not concern us
            with torch.backends.mkldnn.flags(enabled=False):
                return self.module(inputs)


def forward_backward_seconds(module: nn.Module, inputs: torch.Tensor) -> float:
    """Wall time of ``module(inputs)`` followed by a backward pass of the outputs' sum."""
    module.zero_grad(set_to_none=True)
    start = time.perf_counter()
    outputs, _ = module(inputs)
    outputs.sum().backward()
    return time.perf_counter() - start


def median_seconds(first: nn.Module, second: nn.Module, inputs: torch.Tensor, repeats: int, warmup: int):
    """Median times of both modules, measured alternately so that other load on the machine
    slows both alike and the ratio stays meaningful."""
    times: tuple[list[float], list[float]] = ([], [])
    for run in range(warmup + repeats):
        for module, record in zip((first, second), times):
            seconds = forward_backward_seconds(module, inputs)
            if run >= warmup:
                record.append(seconds)
    return statistics.median(times[0]), statistics.median(times[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--time", type=int, default=64)
    parser.add_argument("--d-in", type=int, default=64)
    parser.add_argument("--d-hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    seed_everything(0, threads=args.threads)
    inputs = torch.randn(args.batch, args.time, args.d_in, requires_grad=True)
    print(
        f"batch={args.batch} time={args.time} d_in={args.d_in} d_hidden={args.d_hidden} layers={args.layers}"
        f" threads={torch.get_num_threads()} torch={torch.__version__}"
    )
    print(f"{'layer':6s} {'from scratch':>14s} {'PyTorch':>10s} {'ratio':>7s}")
    rows = (("RNN", RNN, nn.RNN, False), ("LSTM", LSTM, nn.LSTM, False), ("GRU", GRU, nn.GRU, False),
            ("LSTM*", LSTM, nn.LSTM, True))
    for name, ours_class, torch_class, native_loop in rows:
        ours = ours_class(args.d_in, args.d_hidden, args.layers)
        reference = torch_class(args.d_in, args.d_hidden, args.layers, batch_first=True)
        reference.load_state_dict(ours.state_dict())
        if native_loop:
            reference = WithoutOneDNN(reference)
        ours_seconds, torch_seconds = median_seconds(ours, reference, inputs, args.repeats, args.warmup)
        print(
            f"{name:6s} {ours_seconds * 1e3:11.1f} ms {torch_seconds * 1e3:7.1f} ms"
            f" {ours_seconds / torch_seconds:6.2f}x"
        )
    print("LSTM*: against nn.LSTM with oneDNN off (PyTorch's native loop over time)")


if __name__ == "__main__":
    main()
