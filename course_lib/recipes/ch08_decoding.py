"""Chapter 8's decoding sweep: every method and setting, judged by the story generator.

Not a training run but a measurement too long for the chapter's budget (parsing some ten
thousand decoded stories takes minutes). For one of Chapter 7's Transformer LMs, each
:data:`SETTINGS` entry decodes stories from ``<s>`` alone (sampling methods: ``SAMPLES`` stories
from a generator seeded with the model's seed; greedy and beam search: the one story they give),
and each story is scored: its length, its log-probability under the model, under the generator
(``-inf`` when the generator cannot write it) and where it first leaves the generator's stories.
Each setting's stories as a set are measured too (:func:`text_measures`: distinct n-grams,
first-sentence entropy, repetition, bigram KL from ``REFERENCE_STORIES`` of the generator's own).
The generator's own stories are scored the same way, as the target. The numbers are stored with a
few example texts; the chapter summarises them and re-decodes one setting to show that the stored
numbers are what the code gives.
"""
from __future__ import annotations

import functools
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from course_lib.checkpoint import load_arrays, save_arrays
from course_lib.data.stories import generate_stories
from course_lib.data.text import Vocabulary
from course_lib.decoding import beam_search, sample
from course_lib.generated_text import (distinct_ngrams, first_break, first_sentence_entropy, generator_log_prob,
                                       ngram_kl, repetition_rate)
from course_lib.recipes import Recipe, load_trained
from course_lib.recipes.ch05_lstm_gru import story_vocabulary
from course_lib.recipes.ch07_transformer import recipe_name as chapter7_recipe
from course_lib.runtime import evaluation_mode

__all__ = ["GENERATOR", "MAX_TOKENS", "RECIPES", "REFERENCE_STORIES", "SAMPLES", "SEEDS", "SETTINGS", "Setting",
           "StoryScores", "decode_setting", "recipe_name", "reference_stories", "score_stories", "text_measures"]

SAMPLES = 200          # stories per sampling setting
MAX_TOKENS = 300       # the corpus's longest stories are about 250 tokens
SEEDS = (0, 1, 2)      # one sweep per Chapter 7 Transformer seed; the sampling seed is the same number
GENERATOR = "generator"
REFERENCE_STORIES = 4000  # the generator's own, for the n-gram statistics decoded text is compared with


@dataclass(frozen=True)
class Setting:
    """One decoding method with its settings: ``method`` is ``"sample"`` (keyword arguments of
    :func:`course_lib.decoding.sample`; ``temperature=0`` is greedy) or ``"beam"``."""

    name: str
    group: str
    method: str = "sample"
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def deterministic(self) -> bool:
        return self.method == "beam" or self.options.get("temperature") == 0


def _settings() -> tuple[Setting, ...]:
    sampling = [Setting("pure sampling", "pure sampling")]
    sampling += [Setting(f"temperature {t}", "temperature", options={"temperature": t})
                 for t in (0.5, 0.7, 0.85, 1.2, 1.5)]
    sampling += [Setting(f"top-k {k}", "top-k", options={"top_k": k}) for k in (2, 5, 10, 40)]
    sampling += [Setting(f"top-p {p}", "top-p", options={"top_p": p}) for p in (0.5, 0.7, 0.8, 0.9, 0.95)]
    sampling += [Setting("frequency 0.3", "penalty", options={"frequency_penalty": 0.3}),
                 Setting("presence 0.3", "penalty", options={"presence_penalty": 0.3}),
                 Setting("repetition 1.3", "penalty", options={"repetition_penalty": 1.3})]
    searching = [Setting("greedy", "greedy", options={"temperature": 0})]
    searching += [Setting(f"greedy, {label}", "penalty", options={"temperature": 0, **options})
                  for label, options in (("frequency 0.3", {"frequency_penalty": 0.3}),
                                         ("presence 0.3", {"presence_penalty": 0.3}),
                                         ("repetition 1.3", {"repetition_penalty": 1.3}))]
    searching += [Setting(f"beam {b}", "beam", "beam", {"beam_width": b}) for b in (2, 4, 8, 16)]
    return tuple(sampling + searching)


SETTINGS = _settings()


@dataclass
class StoryScores:
    """Per-story numbers of one setting: ``(n,)`` arrays."""

    tokens: np.ndarray            # words, end of story not counted
    ended: np.ndarray             # wrote </s> within MAX_TOKENS
    model_log_prob: np.ndarray    # log P_model(w_1 .. w_m </s>) (or without </s> if it did not end)
    generator_log_prob: np.ndarray  # log P_gen(story); -inf if the generator cannot write it
    first_break: np.ndarray       # tokens before the first the generator could not write there; -1: none


def decode_setting(model, vocabulary: Vocabulary, setting: Setting, seed: int,
                   samples: int = SAMPLES) -> list[list[int]]:
    """The stories (word ids, ``</s>`` not included) that ``setting`` decodes from ``<s>``."""
    bos, eos = vocabulary.special_id("<s>"), vocabulary.special_id("</s>")
    if setting.method == "beam":
        best = beam_search(model, [bos], max_tokens=MAX_TOKENS, eos_id=eos, **setting.options)[0][0]
        return [[t for t in best.tokens if t != eos]]
    rows = 1 if setting.deterministic else samples
    return sample(model, torch.full((rows, 1), bos), max_tokens=MAX_TOKENS, stop_ids=[eos], seed=seed,
                  **setting.options)


def score_stories(model, vocabulary: Vocabulary, stories: list[list[str]], ended: list[bool]) -> StoryScores:
    """Score word-token stories under the model and the generator (see :class:`StoryScores`)."""
    bos, eos = vocabulary.special_id("<s>"), vocabulary.special_id("</s>")
    model_log_prob = []
    with evaluation_mode(model), torch.no_grad():
        for story, finished in zip(stories, ended):
            ids = torch.tensor([[bos, *vocabulary.encode(story), *([eos] if finished else [])]])
            model_log_prob.append(float(model.token_log_probs(ids).double().sum()) if ids.shape[1] > 1 else 0.0)
    generator = [generator_log_prob(story) if finished else -math.inf for story, finished in zip(stories, ended)]
    breaks = [-1 if lp > -math.inf else _first_break_or_end(story) for story, lp in zip(stories, generator)]
    return StoryScores(np.array([len(s) for s in stories]), np.array(ended), np.array(model_log_prob),
                       np.array(generator), np.array(breaks))


@functools.cache
def reference_stories() -> tuple[tuple[str, ...], ...]:
    """``REFERENCE_STORIES`` stories of the generator (seed 99, apart from every other draw), as tokens."""
    return tuple(tuple(story.tokens) for story in generate_stories(REFERENCE_STORIES, seed=99))


def text_measures(stories: list[list[str]]) -> dict[str, float]:
    """Diversity and faithfulness of a set of stories (:mod:`course_lib.generated_text`)."""
    return {"distinct_2": distinct_ngrams(stories, 2), "distinct_4": distinct_ngrams(stories, 4),
            "first_sentence_entropy": first_sentence_entropy(stories),
            "repetition_rate": repetition_rate(stories),
            "bigram_kl": ngram_kl(stories, [list(story) for story in reference_stories()], 2)}


def _first_break_or_end(story: list[str]) -> int:
    """Where a story the generator cannot write leaves its stories: at a token, or at the end
    (every prefix possible, yet no story ends there)."""
    found = first_break(story)
    return len(story) if found is None else found


def run_sweep(seed: int = 0, samples: int | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Decode and score every setting with Chapter 7's Transformer of ``seed``; also the generator's
    own ``samples`` stories (drawn with seed ``1000 + seed``)."""
    samples = SAMPLES if samples is None else samples
    model, _ = load_trained(chapter7_recipe("transformer", seed))
    vocabulary = story_vocabulary()
    results: dict[str, StoryScores] = {}
    examples: dict[str, list[str]] = {}
    measures: dict[str, dict[str, float]] = {}
    seconds: dict[str, float] = {}
    for setting in SETTINGS:
        started = time.perf_counter()
        decoded = decode_setting(model, vocabulary, setting, seed, samples)
        stories = [vocabulary.decode(ids) for ids in decoded]
        ended = [len(ids) < MAX_TOKENS for ids in decoded]   # the end token is not returned
        seconds[setting.name] = time.perf_counter() - started
        results[setting.name] = score_stories(model, vocabulary, stories, ended)
        examples[setting.name] = [" ".join(story) for story in stories[:3]]
        measures[setting.name] = text_measures(stories)
        print(f"{setting.name:28} {seconds[setting.name]:6.1f} s to decode; generator writes "
              f"{np.isfinite(results[setting.name].generator_log_prob).mean():.2f} of them", flush=True)
    own = [story.tokens for story in generate_stories(samples, seed=1000 + seed)]
    results[GENERATOR] = score_stories(model, vocabulary, own, [True] * len(own))
    examples[GENERATOR] = [" ".join(story) for story in own[:3]]
    measures[GENERATOR] = text_measures(own)
    metadata = {"model": chapter7_recipe("transformer", seed), "seed": seed, "samples": samples,
                "max_tokens": MAX_TOKENS, "settings": [asdict(s) for s in SETTINGS], "examples": examples, "measures": measures,
                "decode_seconds": seconds}
    return results, metadata


def save_sweep(results: dict[str, StoryScores], path: Path, metadata: dict[str, Any]) -> Path:
    arrays = {f"{name}/{key}": np.asarray(value, dtype=np.float64)
              for name, scores in results.items() for key, value in asdict(scores).items()}
    return save_arrays(arrays, path, metadata)


def load_sweep(path: Path) -> tuple[dict[str, StoryScores], dict[str, Any]]:
    arrays, metadata = load_arrays(path)
    names = [s["name"] for s in metadata["settings"]] + [GENERATOR]
    results = {}
    for name in names:
        values = {key: arrays[f"{name}/{key}"].numpy() for key in StoryScores.__dataclass_fields__}
        results[name] = StoryScores(values["tokens"].astype(int), values["ended"].astype(bool),
                                    values["model_log_prob"], values["generator_log_prob"],
                                    values["first_break"].astype(int))
    return results, metadata


def recipe_name(seed: int = 0) -> str:
    return "ch08_decoding_sweep" if seed == 0 else f"ch08_decoding_sweep_seed{seed}"


RECIPES = {
    recipe_name(seed): Recipe(
        name=recipe_name(seed),
        description=(f"decode {len(SETTINGS)} settings from {chapter7_recipe('transformer', seed)} "
                     f"({SAMPLES} stories per sampling setting) and score every story under the model and "
                     "the story generator; about 5 minutes"),
        build_model=None,
        train=lambda seed=seed, steps=None: run_sweep(seed, steps),
        seed=seed,
        save=save_sweep,
        load=load_sweep,
        measures=True,
    )
    for seed in SEEDS
}
