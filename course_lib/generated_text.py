"""Measures of generated stories: quality, diversity and faithfulness (Chapter 8).

Decoded text is usually judged by people or by another model. The story corpus knows better: its
generator gives the exact probability of any story it can write, so the quality of a decoded
story is a number, not an opinion.

* **Quality**: :func:`generator_log_prob`, ``log P_gen(story)``, ``-inf`` when the generator
  cannot write the story at all (a broken sentence, a wrong answer to a question, a story that
  never ends); :func:`first_break`, the first token after which no story of the generator
  begins like this one.
* **Diversity**: :func:`distinct_ngrams` (the share of n-grams that are new in a set of stories),
  :func:`first_sentence_entropy` (how varied the openings are), :func:`repetition_rate` (the
  share of sentences that repeat an earlier sentence of the same story).
* **Faithfulness**: :func:`ngram_kl`, ``KL(Q || P)`` between the n-gram distribution of decoded
  stories and that of the generator's own.

Stories are lists of word tokens, as :func:`course_lib.data.text.word_tokenize` gives them (the
end-of-story symbol not included).
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from course_lib import checks
from course_lib.data.program import longest_possible_prefix, text_logprob
from course_lib.data.stories import StoryProgram, default_program

__all__ = [
    "SENTENCE_ENDS", "distinct_ngrams", "first_break", "first_sentence_entropy", "generator_log_prob",
    "ngram_kl", "repetition_rate", "sentences",
]

SENTENCE_ENDS = frozenset({".", "?"})

Story = Sequence[str]


def _stories(name: str, stories: object) -> list[list[str]]:
    """A list of stories, each a list of str tokens; a single story (a list of str) is refused."""
    if isinstance(stories, str) or not isinstance(stories, Sequence):
        raise checks.ArgumentError(f"{name} must be a list of stories, each a list of word tokens; "
                                   f"got {type(stories).__name__}")
    checked = []
    for story in stories:
        if isinstance(story, str) or not isinstance(story, Sequence) or not all(isinstance(t, str) for t in story):
            raise checks.ArgumentError(f"{name} must be a list of stories, each a list of word tokens (str); "
                                       f"one of them is {story!r:.60}")
        checked.append(list(story))
    return checked


def sentences(story: Story) -> list[tuple[str, ...]]:
    """The sentences of a story, each ending with ``.`` or ``?`` (an unfinished last one kept as it is)."""
    found, current = [], []
    for token in story:
        current.append(token)
        if token in SENTENCE_ENDS:
            found.append(tuple(current))
            current = []
    if current:
        found.append(tuple(current))
    return found


# ---------------------------------------------------------------------------------------------
# Quality: what the generator says about a story
# ---------------------------------------------------------------------------------------------
def generator_log_prob(story: Story, program: StoryProgram | None = None) -> float:
    """``log P_gen(story)`` in nats, exact; ``-inf`` if the generator cannot write it."""
    story = _stories("story", [story])[0]
    program = default_program() if program is None else program
    return text_logprob(program.tell, story)


def first_break(story: Story, program: StoryProgram | None = None) -> int | None:
    """The number of tokens of the longest beginning of ``story`` that some story of the
    generator shares, if that is not the whole story: the index of the first token the generator
    could not have written there. ``None`` when every prefix is possible (the story may still be
    impossible as a whole: the generator would have gone on, or stopped earlier)."""
    story = _stories("story", [story])[0]
    program = default_program() if program is None else program
    reached = longest_possible_prefix(program.tell, story)
    return None if reached == len(story) else reached


# ---------------------------------------------------------------------------------------------
# Diversity
# ---------------------------------------------------------------------------------------------
def _ngrams(story: Story, n: int) -> list[tuple[str, ...]]:
    return [tuple(story[i:i + n]) for i in range(len(story) - n + 1)]


def distinct_ngrams(stories: Sequence[Story], n: int) -> float:
    """distinct-n: the number of different n-grams over the number of n-grams, pooled over the
    stories (n-grams do not cross a story's boundary). 1 when no n-gram repeats; near 0 when the
    stories say the same thing again and again. It falls as more text is pooled, so compare sets
    of similar size."""
    stories = _stories("stories", stories)
    n = checks.positive_int("n", n)
    grams = [gram for story in stories for gram in _ngrams(story, n)]
    if not grams:
        raise ValueError(f"the stories have no {n}-grams: give stories of at least {n} tokens")
    return len(set(grams)) / len(grams)


def first_sentence_entropy(stories: Sequence[Story]) -> float:
    """``H = -sum_s p(s) log2 p(s)`` over the first sentences of the stories, in bits, with ``p``
    their frequencies in this set (the plug-in estimate: at most ``log2(len(stories))``, and
    below the true entropy on average, so compare sets of the same size)."""
    stories = _stories("stories", stories)
    if not stories:
        raise ValueError("first_sentence_entropy needs at least one story")
    counts = Counter(sentences(story)[0] if story else () for story in stories)
    total = len(stories)
    return -sum(c / total * math.log2(c / total) for c in counts.values()) + 0.0


def repetition_rate(stories: Sequence[Story]) -> float:
    """The share of sentences, over all the stories, that are word for word an earlier sentence
    of the same story."""
    stories = _stories("stories", stories)
    repeated = total = 0
    for story in stories:
        seen: set[tuple[str, ...]] = set()
        for sentence in sentences(story):
            repeated += sentence in seen
            total += 1
            seen.add(sentence)
    if total == 0:
        raise ValueError("repetition_rate needs at least one non-empty story")
    return repeated / total


# ---------------------------------------------------------------------------------------------
# Faithfulness
# ---------------------------------------------------------------------------------------------
def ngram_kl(stories: Sequence[Story], reference: Sequence[Story], n: int = 2, *, smoothing: float = 0.5) -> float:
    """``KL(Q || P) = sum_g Q(g) log(Q(g) / P(g))`` in nats, where ``Q`` is the n-gram distribution
    of ``stories`` and ``P`` that of ``reference``, smoothed so that every n-gram of either set has
    some probability: ``P(g) = (c_ref(g) + smoothing) / (N_ref + smoothing * |G|)`` over the set
    ``G`` of n-grams seen in either. Each story is read as ``<s> w_1 .. w_m </s>``.

    0 for identical distributions; it grows when the stories use n-grams the reference makes
    rarely or never. A finite sample of the reference's own kind does not score 0 either: its
    own value is the level sampling noise alone gives.
    """
    stories, reference = _stories("stories", stories), _stories("reference", reference)
    n = checks.positive_int("n", n)
    smoothing = checks.positive_number("smoothing", smoothing)

    def counts(texts: list[list[str]]) -> Counter:
        return Counter(gram for story in texts for gram in _ngrams(["<s>", *story, "</s>"], n))

    sample, ref = counts(stories), counts(reference)
    if not sample or not ref:
        raise ValueError("ngram_kl needs stories and a reference with at least one n-gram each")
    grams = set(sample) | set(ref)
    sample_total, ref_total = sum(sample.values()), sum(ref.values()) + smoothing * len(grams)
    return sum(c / sample_total * math.log((c / sample_total) / ((ref[g] + smoothing) / ref_total))
               for g, c in sample.items())
