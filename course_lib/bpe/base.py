"""The tokenizer contract every BPE variant of the chapter follows: train, encode, decode, save, load.

Saved tokenizers are one JSON file (never a pickle): ``{"format": "course_lib.bpe", "version": 1,
"class": "CharBPE" | "ByteBPE", ...}``; :meth:`Tokenizer.load` rebuilds the class the file names.
"""
from __future__ import annotations

import json
import operator
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from course_lib import checks
from course_lib.checks import ArgumentError

FILE_FORMAT = "course_lib.bpe"
FILE_VERSION = 1
WORD_CACHE_LIMIT = 100_000  # distinct words whose ids a tokenizer remembers


class NotTrainedError(ValueError):
    """Raised when a tokenizer is used before it has a vocabulary."""


def check_text(text: object, name: str = "text") -> str:
    if isinstance(text, (bytes, bytearray)):
        raise ArgumentError(
            f"{name} must be a str, got {type(text).__name__}; decode it first, e.g. data.decode('utf-8')"
        )
    return checks.text(name, text)


def iter_training_texts(text: object) -> Iterator[str]:
    """A training corpus as a stream of strings: one ``str``, or an iterable of them (documents, lines)."""
    if isinstance(text, str):
        yield text
        return
    if isinstance(text, (bytes, bytearray)) or not isinstance(text, Iterable):
        check_text(text)  # raises the error that names the type
    for position, document in enumerate(text):  # type: ignore[union-attr]
        yield check_text(document, name=f"text[{position}]")


def check_vocab_size(vocab_size: object, minimum: int, base_description: str) -> int:
    return checks.integer(
        "vocab_size", vocab_size, minimum=minimum,
        what=f"an integer of at least {minimum}, the base alphabet ({base_description} = {minimum} tokens)",
    )


def check_ids(ids: object) -> list[int]:
    """``ids`` as a list of Python ints (accepts NumPy/PyTorch integer scalars); clear errors otherwise."""
    if isinstance(ids, (str, bytes)):
        raise ArgumentError(
            f"decode expects a sequence of integer ids, got {type(ids).__name__}; did you mean encode?"
        )
    if not isinstance(ids, Iterable):
        raise ArgumentError(f"decode expects a sequence of integer ids, got {type(ids).__name__}")
    checked = []
    for position, token_id in enumerate(ids):
        if isinstance(token_id, bool):
            raise ArgumentError(f"ids[{position}] is a bool; ids must be integers")
        try:
            checked.append(operator.index(token_id))
        except TypeError:
            raise ArgumentError(f"ids[{position}] = {token_id!r} is not an integer id") from None
    return checked


class Tokenizer(ABC):
    """What every tokenizer offers. Subclasses fill in the vocabulary-specific parts.

    Attributes:
        merges: the learned merges, earliest first, as readable ``(left, right)`` pairs.
    """

    merges: list[tuple]
    _registry: ClassVar[dict[str, type[Tokenizer]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Tokenizer._registry[cls.__name__] = cls

    def __init__(self) -> None:
        self.merges = []
        self._trained = False
        self._word_cache: dict[str, tuple[int, ...]] = {}

    # ----------------------------------------------------------------------- the contract

    @abstractmethod
    def train(self, text: str | Iterable[str], vocab_size: int, *, verbose: bool = False) -> Tokenizer:
        """Learn merges from ``text`` until the vocabulary has ``vocab_size`` tokens; returns ``self``."""

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """The token ids of ``text``."""

    @abstractmethod
    def decode(self, ids: Sequence[int]) -> str:
        """The text of the token ids ``ids``."""

    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """How many tokens the vocabulary holds."""

    @abstractmethod
    def id_to_token(self, token_id: int) -> str:
        """The readable form of one token, as it appears in the vocabulary."""

    @abstractmethod
    def _segment(self, word: str) -> tuple[int, ...]:
        """The ids of one word (a pre-token): its base symbols merged by :func:`~course_lib.bpe.training.apply_ranks`."""

    @abstractmethod
    def _encode_settled(self, text: str) -> tuple[list[int], int]:
        """The ids of the longest prefix of ``text`` whose tokens no continuation can change, and its length."""

    @abstractmethod
    def _state(self) -> dict[str, Any]:
        """The JSON-serialisable vocabulary and merges (everything :meth:`_from_state` needs)."""

    @classmethod
    @abstractmethod
    def _from_state(cls, state: dict[str, Any]) -> Tokenizer:
        """A tokenizer rebuilt, and checked, from :meth:`_state`'s output."""

    # ----------------------------------------------------------------------- shared behaviour

    def _require_trained(self) -> None:
        if not self._trained:
            name = type(self).__name__
            raise NotTrainedError(
                f"this {name} has no vocabulary yet: call .train(text, vocab_size) first, "
                f"or load one with {name}.load(path)"
            )

    def _word_ids(self, word: str) -> tuple[int, ...]:
        """:meth:`_segment`, computed once per distinct word.

        Text repeats its words, so encoding looks each one up here first. The cache is emptied when
        it reaches ``WORD_CACHE_LIMIT`` entries (bounded memory on any corpus) and whenever the
        vocabulary changes (``_forget_segmentations``).
        """
        ids = self._word_cache.get(word)
        if ids is None:
            ids = self._segment(word)
            if len(self._word_cache) >= WORD_CACHE_LIMIT:
                self._word_cache.clear()
            self._word_cache[word] = ids
        return ids

    def _forget_segmentations(self) -> None:
        self._word_cache = {}

    def tokens(self, text: str) -> list[str]:
        """``text`` cut into readable tokens: ``[id_to_token(i) for i in encode(text)]``."""
        return [self.id_to_token(token_id) for token_id in self.encode(text)]

    def encode_iter(self, chunks: Iterable[str]) -> Iterator[int]:
        """Encode a stream of text chunks, yielding the same ids as ``encode("".join(chunks))``.

        Chunks may split the text anywhere, even inside a word or a special token: the encoder
        buffers the end of the text it has seen until the tokens there cannot change with what
        comes next, then encodes and forgets everything before that point. Memory stays bounded by
        the chunk size plus the longest word (pre-token) of the text.
        """
        self._require_trained()
        if isinstance(chunks, str):
            raise ArgumentError("encode_iter takes an iterable of str chunks, not a str; use encode(text) for one string")
        if not isinstance(chunks, Iterable):
            raise ArgumentError(f"encode_iter takes an iterable of str chunks, got {type(chunks).__name__}")
        return self._encode_stream(chunks)

    def _encode_stream(self, chunks: Iterable[str]) -> Iterator[int]:
        pending = ""
        for position, chunk in enumerate(chunks):
            pending += check_text(chunk, name=f"chunk {position}")
            ids, settled = self._encode_settled(pending)
            yield from ids
            pending = pending[settled:]
        if pending:
            yield from self.encode(pending)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the tokenizer to one JSON file at ``path``; returns the path."""
        self._require_trained()
        path = Path(path)
        document = {"format": FILE_FORMAT, "version": FILE_VERSION, "class": type(self).__name__, **self._state()}
        path.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Tokenizer:
        """Read a tokenizer written by :meth:`save`. ``Tokenizer.load`` returns whichever class was saved."""
        path = Path(path)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{path} is not a saved tokenizer (not valid UTF-8 JSON: {error})") from None
        if not isinstance(document, dict) or document.get("format") != FILE_FORMAT:
            raise ValueError(f"{path} is not a saved tokenizer: it lacks \"format\": \"{FILE_FORMAT}\"")
        if document.get("version") != FILE_VERSION:
            raise ValueError(f"{path}: unsupported version {document.get('version')!r} (expected {FILE_VERSION})")
        saved_class = Tokenizer._registry.get(document.get("class"))  # type: ignore[arg-type]
        if saved_class is None:
            raise ValueError(f"{path}: unknown tokenizer class {document.get('class')!r}")
        if cls is not Tokenizer and not issubclass(saved_class, cls):
            raise ValueError(f"{path} holds a {saved_class.__name__}, not a {cls.__name__}; load it with {saved_class.__name__}.load")
        try:
            return saved_class._from_state(document)
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"{path}: the saved {saved_class.__name__} is malformed ({error!r})") from None

    def __repr__(self) -> str:
        if not self._trained:
            return f"{type(self).__name__}(untrained)"
        return f"{type(self).__name__}(vocab_size={self.vocab_size}, merges={len(self.merges)})"
