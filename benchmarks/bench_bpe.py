"""Byte-level BPE training, naive against incremental, and encoding throughput.

Run: .venv/bin/python benchmarks/bench_bpe.py [--megabytes 1.0 --vocab-size 1000 --text FILE]
Trains ByteBPE on about ``--megabytes`` of the story corpus with both trainers, stops with an error
if their merges differ, and prints both times and their ratio: for the merge learning alone (the
part the two algorithms do differently) and for ``ByteBPE.train`` end to end (which adds the shared
regex pre-tokenization). Then the encoder's speed in MB/s (``encode`` on the whole text, and
``encode_iter`` over 64 KiB chunks), and the merge routine alone (``apply_ranks`` on every distinct
pre-token once, no cache: what a cold cache costs on text with many distinct words).
"""
from __future__ import annotations

import argparse
import time

from course_lib.bpe import ByteBPE, train_incremental, train_naive


def story_text(megabytes: float, seed: int = 0) -> str:
    """About ``megabytes`` MB of stories, one per line (batches of 500 stories, seeds seed, seed + 1, ...)."""
    from course_lib.data.stories import generate_stories

    target = int(megabytes * 1_000_000)
    lines: list[str] = []
    size = batch = 0
    while size < target:
        for story in generate_stories(500, seed=seed + batch):
            lines.append(story.text)
            size += len(story.text.encode("utf-8")) + 1
        batch += 1
    return "\n".join(lines)[:target]


def seconds(function, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=1.0)
    parser.add_argument("--vocab-size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--text", help="a UTF-8 text file to use instead of the story corpus")
    args = parser.parse_args()

    if args.text:
        with open(args.text, encoding="utf-8") as file:
            text, source = file.read(), args.text
    else:
        text, source = story_text(args.megabytes, args.seed), "stories"
    size_mb = len(text.encode("utf-8")) / 1e6
    print(f"text: {size_mb:.2f} MB of {source}, vocab_size {args.vocab_size}")

    # The trainers share the pre-tokenization; time it apart so the merge learning itself compares.
    pretokenize_s, word_counts = seconds(ByteBPE().word_counts, text)
    num_merges = args.vocab_size - 256
    naive_learn_s, naive_merges = seconds(train_naive, word_counts, num_merges)
    incremental_learn_s, incremental_merges = seconds(train_incremental, word_counts, num_merges)
    if naive_merges != incremental_merges:
        first = next(i for i, (a, b) in enumerate(zip(naive_merges, incremental_merges)) if a != b)
        raise SystemExit(f"the trainers disagree at merge {first}: {naive_merges[first]} vs {incremental_merges[first]}")
    print(f"pre-tokenization: {pretokenize_s:7.2f} s  ({len(word_counts)} distinct pre-tokens)")
    print(f"learn {len(naive_merges)} merges, naive:       {naive_learn_s:7.2f} s")
    print(f"learn {len(naive_merges)} merges, incremental: {incremental_learn_s:7.2f} s  (identical merges)")
    print(f"speed-up of merge learning: {naive_learn_s / incremental_learn_s:6.1f} x")

    naive_s, naive = seconds(ByteBPE().train, text, args.vocab_size, method="naive")
    incremental_s, incremental = seconds(ByteBPE().train, text, args.vocab_size, method="incremental")
    if naive.merges != incremental.merges:
        raise SystemExit("ByteBPE.train learns different merges with method='naive' and method='incremental'")
    print(f"ByteBPE.train end to end: naive {naive_s:.2f} s, incremental {incremental_s:.2f} s, "
          f"speed-up {naive_s / incremental_s:.1f} x")

    tokenizer = incremental
    cold_s, ids = seconds(tokenizer.encode, text)
    warm_s, _ = seconds(tokenizer.encode, text)
    chunk = 1 << 16
    stream_s, streamed = seconds(lambda: list(tokenizer.encode_iter(text[i : i + chunk] for i in range(0, len(text), chunk))))
    if streamed != ids:
        raise SystemExit("encode_iter disagrees with encode")
    print(f"encode (cold cache): {size_mb / cold_s:6.2f} MB/s")
    print(f"encode (warm cache): {size_mb / warm_s:6.2f} MB/s")
    print(f"encode_iter (64 KiB chunks): {size_mb / stream_s:6.2f} MB/s")
    pieces = sorted(set(tokenizer._pattern.findall(text)))
    pieces_mb = sum(len(piece.encode("utf-8")) for piece in pieces) / 1e6
    merge_s = min(seconds(lambda: [tokenizer._segment(piece) for piece in pieces])[0] for _ in range(5))
    print(f"merge routine alone ({len(pieces)} distinct pre-tokens, no cache, best of 5): "
          f"{pieces_mb / merge_s:6.2f} MB/s")
    print(f"tokens per character: {len(ids) / len(text):.3f}")
    started = time.perf_counter()
    decoded = tokenizer.decode(ids)
    decode_s = time.perf_counter() - started
    if decoded != text:
        raise SystemExit("decode(encode(text)) != text")
    print(f"decode: {size_mb / decode_s:6.2f} MB/s")


if __name__ == "__main__":
    main()
