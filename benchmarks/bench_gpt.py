"""The course's GPT against Hugging Face's ``GPT2LMHeadModel``: time of one training step, tokens/s.

One training step is forward, backward and an AdamW update (the same optimizer settings for both
models) on a batch of 12 windows of 64 tokens, at the classic CPU settings of a character-level
GPT: 4 blocks of 4 heads, width 128, 65 characters. Both models are built from the same
configuration in the same run, with the same weights (the course's GPT is loaded from Hugging
Face's state dict), and timed alternately, so that both see the same machine load; the figure is
the median over rounds. Then tokens per second of greedy generation, each model reading one token
per step against its key-value cache (the course's generation loop against ``generate``).

    .venv/bin/python benchmarks/bench_gpt.py [--threads N] [--rounds R] [--steps S]

Prints figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from course_lib.decoding import greedy
from course_lib.gpt import GPT, GPTConfig

CONFIG = dict(vocab_size=65, max_context=64, num_layers=4, num_heads=4, d_model=128)
BATCH, CONTEXT = 12, 64


def training_step(model, optimizer, ids, targets, hugging_face: bool) -> None:
    if hugging_face:
        loss = model(input_ids=ids, labels=ids).loss  # labels shifted inside
    else:
        loss = model(ids, targets)[1]
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def seconds_per_step(model, optimizer, ids, targets, hugging_face: bool, steps: int) -> float:
    started = time.perf_counter()
    for _ in range(steps):
        training_step(model, optimizer, ids, targets, hugging_face)
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20, help="steps per timed round")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPTConfig(**CONFIG)
    hf_model = GPT2LMHeadModel(GPT2Config(**config.hf_config_kwargs(), bos_token_id=None, eos_token_id=None))
    ours = GPT.from_hf(hf_model)
    window = torch.randint(0, config.vocab_size, (BATCH, CONTEXT + 1))
    ids, targets = window[:, :-1], window[:, 1:]
    hf_ids = window[:, :-1]  # Hugging Face predicts ids[1:] from ids[:-1] itself
    models = {"course_lib GPT": (ours, ids, targets, False),
              "transformers GPT2LMHeadModel": (hf_model, hf_ids, None, True)}
    optimizers = {name: torch.optim.AdamW(model.parameters(), lr=1e-3) for name, (model, *_) in models.items()}
    for name, (model, x, y, hf) in models.items():  # warm-up
        model.train()
        seconds_per_step(model, optimizers[name], x, y, hf, 3)
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, (model, x, y, hf) in models.items():
            times[name].append(seconds_per_step(model, optimizers[name], x, y, hf, args.steps))
    median = {name: statistics.median(values) for name, values in times.items()}

    tokens = BATCH * CONTEXT
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); config: {config.num_layers} layers, "
          f"{config.num_heads} heads, width {config.d_model}, context {CONTEXT}, batch {BATCH}, "
          f"vocabulary {config.vocab_size}; {ours.num_parameters():,} parameters")
    print(f"forward + backward + AdamW, median of {args.rounds} rounds of {args.steps} steps:")
    for name, seconds in median.items():
        print(f"  {name:30s} {seconds * 1e3:7.2f} ms/step   {tokens / seconds:9,.0f} tokens/s")
    ratio = median["course_lib GPT"] / median["transformers GPT2LMHeadModel"]
    print(f"  ratio course_lib / transformers: {ratio:.2f}")

    ours.eval()
    hf_model.eval()
    prompt = torch.randint(0, config.vocab_size, (1, 8))
    new_tokens = CONTEXT - prompt.shape[1]
    generators = {
        "course_lib GPT (decoding.greedy)": lambda: greedy(ours, prompt, max_tokens=new_tokens)[0],
        "transformers generate": lambda: hf_model.generate(prompt, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                                           do_sample=False, pad_token_id=0)[0, 8:].tolist(),
    }
    print(f"greedy generation with a key-value cache, batch 1, {new_tokens} new tokens after 8, "
          f"median of {args.rounds} runs:")
    for name, generate in generators.items():  # (the trained weights differ by rounding by now)
        with torch.no_grad():
            generate()  # warm-up
            runs = []
            for _ in range(args.rounds):
                started = time.perf_counter()
                generate()
                runs.append(time.perf_counter() - started)
        print(f"  {name:34s} {new_tokens / statistics.median(runs):9,.0f} tokens/s")


if __name__ == "__main__":
    main()
