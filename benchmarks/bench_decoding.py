"""Speed of course_lib.decoding: tokens per second of greedy search, sampling with top-p and beam
search (width 4) on a small TransformerLM with random weights, and the logits processors alone
against transformers' on the same tensors.

Decoding runs through the protocol's ``step`` with the Transformer's key-value cache; a beam of
width 4 reads 4 sequences per prompt, so its tokens per second count the tokens of the returned
sequence (what the user gets), not the 4 x as many the model read.

    .venv/bin/python benchmarks/bench_decoding.py [--tokens 64] [--batch 8] [--vocab 1000] [--threads 1]
"""
from __future__ import annotations

import argparse
import time

import torch
from transformers import (RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper,
                          TopPLogitsWarper)

from course_lib.decoding import RepetitionPenalty, Stopping, Temperature, TopK, TopP, beam_search, generate
from course_lib.transformer import TransformerLM, TransformerLMConfig


def best_time(work, repeats: int) -> float:
    """The fastest of ``repeats`` runs, in seconds (the least disturbed by other processes)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def decoding_speeds(args) -> None:
    torch.manual_seed(0)
    model = TransformerLM(TransformerLMConfig(vocab_size=args.vocab, d_model=128, num_heads=4, num_layers=2)).eval()
    prompts = torch.randint(args.vocab, (args.batch, 8), generator=torch.Generator().manual_seed(1))
    stopping = Stopping(args.tokens)
    strategies = {
        "greedy": lambda: generate(model, prompts, stopping),
        "sampling, top-p 0.9": lambda: generate(model, prompts, stopping, processors=[TopP(0.9)],
                                                generator=torch.Generator().manual_seed(0)),
        "beam search, width 4": lambda: beam_search(model, prompts, beam_width=4, max_tokens=args.tokens),
    }
    print(f"TransformerLM d_model 128, 2 layers, vocab {args.vocab}; batch {args.batch}, prompt 8, "
          f"{args.tokens} new tokens")
    for name, work in strategies.items():
        seconds = best_time(work, args.repeats)
        print(f"  {name:<22} {args.batch * args.tokens / seconds:9.0f} tokens/s   ({seconds * 1e3:7.1f} ms)")


def processor_speeds(args) -> None:
    generator = torch.Generator().manual_seed(2)
    logits = torch.randn(args.batch, args.processor_vocab, generator=generator) * 3
    generated = torch.randint(args.processor_vocab, (args.batch, 64), generator=generator)
    pairs = {
        "temperature 0.7": (Temperature(0.7), TemperatureLogitsWarper(0.7)),
        "top-k 50": (TopK(50), TopKLogitsWarper(50)),
        "top-p 0.9": (TopP(0.9), TopPLogitsWarper(0.9)),
        "repetition 1.2": (RepetitionPenalty(1.2), RepetitionPenaltyLogitsProcessor(1.2)),
    }
    calls = 20
    print(f"logits processors alone: batch {args.batch} x vocab {args.processor_vocab}, 64 generated ids, "
          f"best of {args.repeats} rounds of {calls} calls, ours and theirs alternating")
    print(f"  {'processor':<18} {'ours (us)':>10} {'transformers (us)':>18} {'ratio':>7} {'same output':>12}")
    for name, (ours, theirs) in pairs.items():
        same = torch.equal(ours(logits, generated), theirs(generated, logits))
        ours_times, theirs_times = [], []
        for _ in range(args.repeats):     # alternate, so that a busy moment of the machine hits both
            ours_times.append(best_time(lambda: [ours(logits, generated) for _ in range(calls)], 1) / calls)
            theirs_times.append(best_time(lambda: [theirs(generated, logits) for _ in range(calls)], 1) / calls)
        ours_time, theirs_time = min(ours_times), min(theirs_times)
        print(f"  {name:<18} {ours_time * 1e6:10.0f} {theirs_time * 1e6:18.0f} {ours_time / theirs_time:7.2f}"
              f" {'yes' if same else 'NO':>12}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=1000)
    parser.add_argument("--processor-vocab", type=int, default=50257)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    decoding_speeds(args)
    processor_speeds(args)


if __name__ == "__main__":
    main()
