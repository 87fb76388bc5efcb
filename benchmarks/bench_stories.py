"""How fast the story corpus is generated, and what the default corpus looks like.

    .venv/bin/python benchmarks/bench_stories.py

Prints generation speed for about 1 MB and 5 MB of text, the default corpus's statistics and
entropy floors, how far back the questions reach, and the speed of parsing a story back.
"""
from __future__ import annotations

import math
import statistics
import time

from course_lib.data import (
    PROBE_KINDS,
    StoryProgram,
    chance_accuracy,
    derivations,
    generate_stories,
    make_probes,
    probe_answers,
    story_corpus,
    word_tokenize,
)


def generation_speed(megabytes: float) -> None:
    sample = generate_stories(500, seed=123)
    chars_per_story = statistics.fmean(len(story.text) + 1 for story in sample)
    n_stories = math.ceil(megabytes * 1e6 / chars_per_story)
    start = time.perf_counter()
    stories = generate_stories(n_stories, seed=0)
    seconds = time.perf_counter() - start
    size = sum(len(story.text) + 1 for story in stories) / 1e6
    print(f"{n_stories:>7} stories  {size:5.2f} MB  {seconds:6.2f} s  {size / seconds:5.2f} MB/s")


def question_distances(stories) -> list[int]:
    """Tokens from each fact's answer word to the end of the prompt of the question asking for it.

    An answer is a colour, landmark or pet name right after an answer sentence's opening ("It was",
    "She lived near the", ...); these words occur nowhere but in facts and answers, so the fact is
    the answer word's first occurrence.
    """
    openings = [form.split() for forms in StoryProgram.ANSWERS.values() for form in forms]
    answers = {word for kind in PROBE_KINDS for word in probe_answers(kind)}
    distances = []
    for story in stories:
        tokens = word_tokenize(story.text)
        for position in range(len(tokens)):
            if tokens[position] not in answers:
                continue
            for opening in openings:
                start = position - len(opening)
                if start >= 0 and all(
                    word.startswith("{") or word == token for word, token in zip(opening, tokens[start:position])
                ):
                    distances.append(position - 1 - tokens.index(tokens[position]))
    return distances


def main() -> None:
    print("generation speed (one core)")
    for megabytes in (1, 5):
        generation_speed(megabytes)

    start = time.perf_counter()
    corpus = story_corpus()
    print(f"\ndefault corpus: story_corpus() in {time.perf_counter() - start:.2f} s")
    print(corpus.describe())
    floor = corpus.entropy_floor("train")
    print(f"\ntrain floor: {floor}")
    print(f"train floor per char: {corpus.entropy_floor('train', unit='char')}")
    mean_tokens = statistics.fmean(len(tokens) for tokens in corpus.tokens("train"))
    mean_chars = len(corpus.text("train")) / len(corpus.train)
    print(f"mean story length: {mean_tokens:.1f} word tokens, {mean_chars:.0f} chars")

    distances = sorted(question_distances(corpus.train))
    quantiles = statistics.quantiles(distances, n=10)
    print(
        f"\nfact -> question distances in train ({len(distances)} questions): median "
        f"{statistics.median(distances):.0f}, 10% {quantiles[0]:.0f}, 90% {quantiles[-1]:.0f}, max {distances[-1]}"
    )
    for kind in PROBE_KINDS:
        print(f"chance accuracy of {kind!r} probes: {chance_accuracy(kind):.4f}")

    start = time.perf_counter()
    probes = make_probes(100, distances=(16, 32, 64, 128), seed=0)
    print(f"\n{len(probes)} probes in {time.perf_counter() - start:.2f} s")

    stories = generate_stories(20, seed=99)
    start = time.perf_counter()
    for story in stories:
        assert len(derivations(story.text)) == 1
    milliseconds = (time.perf_counter() - start) / len(stories) * 1e3
    print(f"parsing a story back (exact log-probability from text): {milliseconds:.0f} ms")


if __name__ == "__main__":
    main()
