"""The story corpus: train, validation and test splits drawn from the story grammar, with their floors.

    >>> corpus = story_corpus(train_stories=100, validation_stories=10, test_stories=10, seed=0)
    >>> corpus.tokens("train")[0][:4]               # one word-token list per story
    ['There', 'was', 'an', 'inventor']
    >>> floor = corpus.entropy_floor("validation")  # nats, bits and perplexity per token

Each split is drawn from its own seed, so the splits are independent streams of the same
program (:class:`course_lib.data.stories.StoryProgram`); :meth:`StoryCorpus.describe` tabulates
their sizes and entropy floors as the book shows them.
"""
from __future__ import annotations

from dataclasses import dataclass

from course_lib.checks import non_negative_int
from course_lib.data.program import EntropyFloor, derive_seed, entropy_floor
from course_lib.data.splits import SPLITS, Splits
from course_lib.data.stories import Story, StoryProgram, generate_stories
from course_lib.data.text import word_tokenize

DEFAULT_SPLIT_SIZES = {"train": 2000, "validation": 200, "test": 200}


@dataclass(frozen=True)
class SplitSummary:
    """Statistics of one split, as the book tabulates them."""

    split: str
    stories: int
    tokens: int  # word tokens, end-of-story tokens not included
    chars: int  # characters of the split's text, one "\n" between stories
    vocabulary: int  # distinct word types
    floor_token: EntropyFloor | None
    floor_char: EntropyFloor | None


@dataclass(frozen=True)
class StoryCorpus(Splits[Story]):
    """The three splits of the story corpus; each split is drawn from its own seed."""

    def text(self, split: str) -> str:
        """The split's stories joined by ``"\\n"`` (one story per line, no trailing newline)."""
        return "\n".join(story.text for story in self.split(split))

    def tokens(self, split: str) -> list[list[str]]:
        """One word-token list per story: the sequences the n-gram chapter trains on."""
        return [word_tokenize(story.text) for story in self.split(split)]

    def entropy_floor(self, split: str, unit: str = "token") -> EntropyFloor:
        return entropy_floor(self.split(split), unit)

    def summary(self, split: str) -> SplitSummary:
        stories = self.split(split)
        token_lists = [word_tokenize(story.text) for story in stories]
        return SplitSummary(
            split=split,
            stories=len(stories),
            tokens=sum(map(len, token_lists)),
            chars=len(self.text(split)),
            vocabulary=len({token for tokens in token_lists for token in tokens}),
            floor_token=entropy_floor(stories, "token") if stories else None,
            floor_char=entropy_floor(stories, "char") if stories else None,
        )

    def describe(self) -> str:
        """A plain-text table of every split: sizes, vocabulary and entropy floors."""
        header = (
            f"{'split':<11}{'stories':>8}{'tokens':>10}{'chars':>11}{'types':>7}"
            f"  {'floor nats/token':>16}{'bits/token':>11}{'bits/char':>10}"
        )
        lines = [header, "-" * len(header)]
        for split in SPLITS:
            s = self.summary(split)
            floors = (
                f"{s.floor_token.nats:>16.4f}{s.floor_token.bits:>11.4f}{s.floor_char.bits:>10.4f}"
                if s.floor_token and s.floor_char
                else f"{'-':>16}{'-':>11}{'-':>10}"
            )
            lines.append(f"{split:<11}{s.stories:>8}{s.tokens:>10}{s.chars:>11}{s.vocabulary:>7}  {floors}")
        return "\n".join(lines)


def story_corpus(
    train_stories: int = DEFAULT_SPLIT_SIZES["train"],
    validation_stories: int = DEFAULT_SPLIT_SIZES["validation"],
    test_stories: int = DEFAULT_SPLIT_SIZES["test"],
    seed: int = 0,
    program: StoryProgram | None = None,
) -> StoryCorpus:
    """Train/validation/test splits of the story corpus.

    Each split comes from its own seed, derived from ``seed`` and the split's name, so changing
    the size of one split leaves the others as they were (and a larger split extends a smaller).
    The defaults give about 0.8 MB of training text.
    """
    non_negative_int("seed", seed)
    sizes = {"train": train_stories, "validation": validation_stories, "test": test_stories}
    for name, size in sizes.items():
        non_negative_int(f"{name}_stories", size)
    splits = {name: generate_stories(size, derive_seed(seed, "stories", name), program) for name, size in sizes.items()}
    return StoryCorpus(seed=seed, **splits)
