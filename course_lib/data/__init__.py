"""Data for the course: the generated story corpus, text helpers, and a checked download.

    >>> from course_lib.data import story_corpus, word_tokenize, entropy_floor
    >>> corpus = story_corpus(train_stories=100, validation_stories=10, test_stories=10, seed=0)
    >>> sequences = corpus.tokens("train")          # one word-token list per story
    >>> floor = corpus.entropy_floor("validation")  # nats, bits and perplexity per token

Nothing here reaches the network except :func:`download`, which users call by hand.
"""
from course_lib.data.download import DownloadError, default_cache_dir, download, sha256_of
from course_lib.data.lexicon import Lexicon
from course_lib.data.stories import (
    PROBE_KINDS,
    Categorical,
    Derivation,
    EntropyFloor,
    Probe,
    SamplingChooser,
    SplitSummary,
    Story,
    StoryCorpus,
    StoryProgram,
    StoryShape,
    chance_accuracy,
    derivations,
    entropy_floor,
    enumerate_stories,
    generate_stories,
    make_probes,
    predicted_units,
    prefix_logprob,
    probe_answers,
    story_corpus,
    story_logprob,
)
from course_lib.data.text import Vocabulary, char_tokenize, detokenize, load_text, split_sentences, word_tokenize

__all__ = [
    "PROBE_KINDS",
    "Categorical",
    "Derivation",
    "DownloadError",
    "EntropyFloor",
    "Lexicon",
    "Probe",
    "SamplingChooser",
    "SplitSummary",
    "Story",
    "StoryCorpus",
    "StoryProgram",
    "StoryShape",
    "Vocabulary",
    "chance_accuracy",
    "char_tokenize",
    "default_cache_dir",
    "derivations",
    "detokenize",
    "download",
    "entropy_floor",
    "enumerate_stories",
    "generate_stories",
    "load_text",
    "make_probes",
    "predicted_units",
    "prefix_logprob",
    "probe_answers",
    "sha256_of",
    "split_sentences",
    "story_corpus",
    "story_logprob",
    "word_tokenize",
]
