"""Data for the course: the generated story corpus and translation pair, text helpers, a checked download.

Modules: ``program`` (distributions, choosers, exact log-probabilities, derivation search, the
entropy floor), ``stories`` (the story grammar), ``corpus`` (its train/validation/test splits),
``probes`` (long-range memory probes), ``translation`` (Chapter 6's English-Kelo pair with its
alignment), ``parallel`` (its length-controlled pairs and splits), ``lexicon``, ``text`` and
``download``.

    >>> from course_lib.data import story_corpus, word_tokenize, entropy_floor
    >>> corpus = story_corpus(train_stories=100, validation_stories=10, test_stories=10, seed=0)
    >>> sequences = corpus.tokens("train")          # one word-token list per story
    >>> floor = corpus.entropy_floor("validation")  # nats, bits and perplexity per token

Nothing here reaches the network except :func:`download`, which users call by hand.
"""
from course_lib.data.corpus import SplitSummary, StoryCorpus, story_corpus
from course_lib.data.download import DownloadError, default_cache_dir, download, sha256_of
from course_lib.data.lexicon import Lexicon
from course_lib.data.parallel import ParallelCorpus, length_buckets, parallel_corpus, sentence_pairs
from course_lib.data.probes import PROBE_KINDS, Probe, chance_accuracy, make_probes, probe_answers
from course_lib.data.program import (
    Categorical,
    Derivation,
    EntropyFloor,
    SamplingChooser,
    entropy_floor,
    predicted_units,
)
from course_lib.data.stories import (
    Story,
    StoryProgram,
    StoryShape,
    derivations,
    enumerate_stories,
    generate_stories,
    prefix_logprob,
    story_logprob,
)
from course_lib.data.text import Vocabulary, char_tokenize, detokenize, load_text, split_sentences, word_tokenize
from course_lib.data.translation import (
    SentenceShape,
    TranslationPair,
    TranslationProgram,
    detranslate,
    target_lexicon,
    translate,
)

__all__ = [
    "PROBE_KINDS",
    "Categorical",
    "Derivation",
    "DownloadError",
    "EntropyFloor",
    "Lexicon",
    "ParallelCorpus",
    "Probe",
    "SamplingChooser",
    "SentenceShape",
    "SplitSummary",
    "Story",
    "StoryCorpus",
    "StoryProgram",
    "StoryShape",
    "TranslationPair",
    "TranslationProgram",
    "Vocabulary",
    "chance_accuracy",
    "char_tokenize",
    "default_cache_dir",
    "derivations",
    "detokenize",
    "detranslate",
    "download",
    "entropy_floor",
    "enumerate_stories",
    "generate_stories",
    "length_buckets",
    "load_text",
    "make_probes",
    "parallel_corpus",
    "predicted_units",
    "prefix_logprob",
    "probe_answers",
    "sentence_pairs",
    "sha256_of",
    "split_sentences",
    "story_corpus",
    "story_logprob",
    "target_lexicon",
    "translate",
    "word_tokenize",
]
