"""Stories as the recurrent chapters read them, and back to text.

* Characters (Chapter 4): a story is ``"\\n" + text + "\\n"``; the first newline is the start symbol,
  the last one the end of the story, which the model predicts too (:func:`char_vocabulary`,
  :func:`encode_story`, :func:`sample_story`).
* Words (Chapters 3 and 5): a story is ``<s> w_1 ... w_n </s>`` (:func:`encode_stories`).

Either way a model predicts every unit of the story and its end: the units the corpus's entropy
floor counts (``unit="char"`` or ``"token"``).
"""
from __future__ import annotations

from collections.abc import Sequence

from course_lib.checks import positive_int, positive_number, text
from course_lib.data.text import Vocabulary, word_tokenize
from course_lib.evaluate import check_vocabulary
from course_lib.language_model import LanguageModel, sample

__all__ = ["BOUNDARY", "char_vocabulary", "encode_stories", "encode_story", "sample_story"]

BOUNDARY = "\n"  # starts every character-level story (as input) and ends it (as the last target)


def char_vocabulary(texts: Sequence[str]) -> Vocabulary:
    """Every character of ``texts`` and the story boundary ``"\\n"``, most frequent first, after ``<unk>``."""
    if isinstance(texts, str):
        raise TypeError("texts must be a list of stories, not a single str; wrap it in a list")
    return Vocabulary.build([list(story) for story in texts] + [[BOUNDARY]], specials=(Vocabulary.UNK,))


def encode_story(story: str, vocabulary: Vocabulary) -> list[int]:
    """``["\\n", c_1, ..., c_n, "\\n"]`` as ids; a character outside the vocabulary becomes ``<unk>``."""
    story = text("a story", story)
    if BOUNDARY in story:
        raise ValueError("a story must not contain a newline: the newline marks where stories start and end")
    boundary = vocabulary.token_to_id(BOUNDARY)
    return [boundary, *vocabulary.encode(list(story)), boundary]


def encode_stories(stories: Sequence[str] | Sequence[Sequence[str]], vocabulary: Vocabulary) -> list[list[int]]:
    """``[<s>, w_1, ..., w_n, </s>]`` ids for each story (given as text or as word tokens)."""
    if isinstance(stories, str):
        raise TypeError("stories must be a list of stories, not a single str; wrap it in a list")
    bos, eos = vocabulary.special_id("<s>"), vocabulary.special_id("</s>")
    encoded = []
    for story in stories:
        tokens = word_tokenize(story) if isinstance(story, str) else list(story)
        encoded.append([bos, *vocabulary.encode(tokens), eos])
    return encoded


def sample_story(model: LanguageModel, vocabulary: Vocabulary, prompt: str = "", *, seed: int = 0,
                 max_chars: int = 600, temperature: float = 1.0) -> str:
    """A character-level story drawn after ``"\\n" + prompt`` until the model writes ``"\\n"``
    (:func:`course_lib.language_model.sample`); returns the prompt and the continuation, at most
    ``max_chars`` new characters. Seeded: the same arguments give the same text."""
    check_vocabulary(model, vocabulary)
    prompt = text("prompt", prompt)
    drawn = sample(model, encode_story(prompt, vocabulary)[:-1], max_tokens=positive_int("max_chars", max_chars),
                   stop_id=vocabulary.token_to_id(BOUNDARY), temperature=positive_number("temperature", temperature),
                   seed=seed)
    return prompt + "".join(vocabulary.decode(drawn))
