"""Byte-level BPE, the tokenizer of GPT-2 (Radford et al., 2019).

Three ideas on top of character-level BPE:

1. **Bytes are the base alphabet.** Text is UTF-8 encoded, so the 256 byte values are the starting
   tokens and nothing is ever unknown: an emoji the training text never showed is still four bytes.
2. **Regex pre-tokenization.** Before BPE, text is cut with GPT-2's pattern :data:`GPT2_SPLIT_PATTERN`
   into contractions, words with their leading space (``" the"``), numbers, punctuation runs and
   whitespace runs. Merges happen only inside these pieces, so no token spans a word boundary and
   ``"dog."``, ``"dog!"`` and ``"dog?"`` share the token ``"dog"``.
3. **Special tokens** such as ``<|endoftext|>`` are matched in the raw text first, before
   pre-tokenization, and always become their own single id: never split, never merged.

Encoding a piece follows GPT-2's ``encoder.py``: start from its bytes, then repeatedly merge the
adjacent pair that was learned earliest, until no learned pair is left. That loop is
:func:`~course_lib.bpe.training.apply_ranks`, the same one character-level BPE uses.
"""
from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import regex

from course_lib import checks
from course_lib.bpe.base import Tokenizer, check_ids, check_text, check_vocab_size, iter_training_texts
from course_lib.bpe.gpt2_files import (
    bytes_to_symbols,
    check_vocab,
    read_merges_txt,
    read_vocab_json,
    symbols_to_bytes,
    write_gpt2_files,
)
from course_lib.bpe.training import apply_ranks, learn_merges

# GPT-2's pre-tokenization pattern, verbatim from its encoder.py.
GPT2_SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
ENDOFTEXT = "<|endoftext|>"
# The pattern decides a piece by looking at most this many characters past its start ('re, 've, 'll).
_PATTERN_LOOKAHEAD = 3
_SINGLE_BYTES = tuple(bytes([byte]) for byte in range(256))


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(
            f"text holds a lone surrogate {text[error.start]!r} at position {error.start}, which is not valid "
            "Unicode and has no UTF-8 bytes; remove or replace it, e.g. text.encode('utf-8', 'replace').decode()"
        ) from None


def _check_special_tokens(tokens: Iterable[str]) -> list[str]:
    if isinstance(tokens, str):
        raise checks.ArgumentError(
            f"special_tokens must be an iterable of strings, e.g. [{tokens!r}], not one str"
        )
    checked: list[str] = []
    for position, token in enumerate(tokens):
        checks.text(f"special_tokens[{position}]", token)
        if not token:
            raise checks.ArgumentError(f"special_tokens[{position}] is empty; a special token needs text")
        _utf8(token)
        if token in checked:
            raise checks.ArgumentError(f"special token {token!r} is listed twice")
        checked.append(token)
    return checked


class ByteBPE(Tokenizer):
    """GPT-2 style byte-level BPE with special tokens.

    Ids of a trained tokenizer: ``0..255`` are the bytes, then one id per merge in the order
    learned, then the special tokens. Tokenizers read from GPT-2 files keep those files' ids.

    >>> tok = ByteBPE(special_tokens=[ENDOFTEXT]).train("the cat sat on the mat. " * 20, vocab_size=270)
    >>> tok.tokens("the cat<|endoftext|>")
    ['the', 'Ġcat', '<|endoftext|>']
    >>> tok.decode(tok.encode("naïve 🦜")) == "naïve 🦜"
    True

    Attributes:
        merges: learned merges as readable byte pairs, earliest first: ``[(b' ', b't'), (b'h', b'e'), ...]``.
    """

    def __init__(self, special_tokens: Iterable[str] = ()) -> None:
        super().__init__()
        self._declared_specials = _check_special_tokens(special_tokens)
        self.special_tokens: dict[str, int] = {}
        self._token_bytes: dict[int, bytes] = {}  # id -> bytes, special tokens excluded
        self._byte_ids: list[int] = []  # byte value -> id
        self._ranks: dict[tuple[int, int], int] = {}  # (left id, right id) -> rank of the merge
        self._merged: dict[tuple[int, int], int] = {}  # (left id, right id) -> id of the merge
        self._decoder: dict[int, bytes] = {}  # id -> bytes, special tokens included
        self._pattern = regex.compile(GPT2_SPLIT_PATTERN)
        self._special_pattern: regex.Pattern | None = None

    # ----------------------------------------------------------------------- training

    def train(
        self,
        text: str | Iterable[str],
        vocab_size: int,
        *,
        verbose: bool = False,
        method: str = "incremental",
    ) -> ByteBPE:
        """Learn ``vocab_size - 256 - len(special_tokens)`` merges from ``text``.

        ``text`` is one string or an iterable of documents (each pre-tokenized on its own).
        Special tokens in the text are cut out and learn nothing. Training stops early, with a
        smaller vocabulary, when no pair is left. ``method`` is ``"incremental"`` (fast) or
        ``"naive"`` (recount everything each step); both learn the same merges.
        """
        specials = self._declared_specials
        minimum = 256 + len(specials)
        check_vocab_size(vocab_size, minimum, f"256 bytes + {len(specials)} special tokens")
        word_counts = self.word_counts(text)
        merges = learn_merges(word_counts, vocab_size - minimum, method=method, verbose=verbose)

        token_bytes = {byte: _SINGLE_BYTES[byte] for byte in range(256)}
        known = set(token_bytes.values())
        for left, right in merges:
            # Two different merges may spell the same bytes (a+bc, ab+c); the token keeps one id.
            if left + right not in known:
                known.add(left + right)
                token_bytes[len(token_bytes)] = left + right
        first_special = len(token_bytes)
        self._install(token_bytes, merges, {token: first_special + i for i, token in enumerate(specials)})
        return self

    def word_counts(self, text: str | Iterable[str]) -> dict[tuple[bytes, ...], int]:
        """The word-frequency dictionary training starts from: each pre-token of ``text`` as its bytes.

        >>> ByteBPE().word_counts("hi hi!")
        {(b'h', b'i'): 1, (b' ', b'h', b'i'): 1, (b'!',): 1}
        """
        special_pattern = self._compile_specials(self._declared_specials)
        pieces: Counter[str] = Counter()
        for document in iter_training_texts(text):
            for segment in special_pattern.split(document) if special_pattern else [document]:
                pieces.update(self._pattern.findall(segment))
        return {tuple(_SINGLE_BYTES[byte] for byte in _utf8(piece)): count for piece, count in pieces.items()}

    @staticmethod
    def _compile_specials(specials: Iterable[str]) -> regex.Pattern | None:
        # Longest first, so that of two special tokens starting at the same place the longer wins.
        ordered = sorted(specials, key=len, reverse=True)
        return regex.compile("|".join(regex.escape(token) for token in ordered)) if ordered else None

    def _install(
        self, token_bytes: dict[int, bytes], merges: Sequence[tuple[bytes, bytes]], special_tokens: dict[str, int]
    ) -> None:
        """Adopt a vocabulary, checking that it is one: all 256 bytes, every merge's parts and result."""
        ids_of = {token: token_id for token_id, token in token_bytes.items()}
        if len(ids_of) != len(token_bytes):
            raise ValueError("the vocabulary gives two ids to the same bytes")
        missing = [byte for byte in range(256) if _SINGLE_BYTES[byte] not in ids_of]
        if missing:
            raise ValueError(f"the vocabulary lacks {len(missing)} of the 256 single bytes, e.g. byte {missing[0]}")
        # Merges are applied to ids (integer pairs hash and compare faster than bytes pairs).
        ranks: dict[tuple[int, int], int] = {}
        merged: dict[tuple[int, int], int] = {}
        unique_merges = list(dict.fromkeys(merges))
        for rank, (left, right) in enumerate(unique_merges):
            for part in (left, right, left + right):
                if part not in ids_of:
                    raise ValueError(
                        f"merge {rank} ({bytes_to_symbols(left)} {bytes_to_symbols(right)}): "
                        f"{bytes_to_symbols(part)!r} is not in the vocabulary"
                    )
            pair = (ids_of[left], ids_of[right])
            ranks[pair] = rank
            merged[pair] = ids_of[left + right]
        for token, token_id in special_tokens.items():
            if token_id in token_bytes:
                raise ValueError(f"special token {token!r} has id {token_id}, which an ordinary token already has")
        if len(set(special_tokens.values())) != len(special_tokens):
            raise ValueError("two special tokens share an id")

        self._token_bytes = dict(token_bytes)
        self._byte_ids = [ids_of[_SINGLE_BYTES[byte]] for byte in range(256)]
        self._ranks, self._merged = ranks, merged
        self.merges = unique_merges
        self.special_tokens = dict(special_tokens)
        self._declared_specials = list(special_tokens)
        self._special_pattern = self._compile_specials(special_tokens)
        self._decoder = {**self._token_bytes, **{i: token.encode("utf-8") for token, i in special_tokens.items()}}
        self._forget_segmentations()
        self._trained = True

    def add_special_tokens(self, tokens: Iterable[str]) -> dict[str, int]:
        """Register more special tokens (new ids after the largest one); returns the new tokens' ids."""
        new = [token for token in _check_special_tokens(tokens) if token not in self._declared_specials]
        if not self._trained:
            self._declared_specials.extend(new)
            return {}
        next_id = max(self._decoder) + 1
        added = {token: next_id + i for i, token in enumerate(new)}
        self._install(self._token_bytes, self.merges, {**self.special_tokens, **added})
        return added

    # ----------------------------------------------------------------------- encoding

    @property
    def vocab_size(self) -> int:
        """Ordinary tokens plus special tokens."""
        return len(self._decoder)

    @property
    def vocab(self) -> Mapping[int, bytes]:
        """Every id and the bytes it stands for (special tokens as their UTF-8 text); read-only."""
        return MappingProxyType(self._decoder)

    def id_to_token(self, token_id: int) -> str:
        """The token as GPT-2's ``vocab.json`` writes it: ``"Ġthe"`` for ``b" the"``."""
        self._require_trained()
        (token_id,) = check_ids([token_id])
        special = {i: token for token, i in self.special_tokens.items()}
        if token_id in special:
            return special[token_id]
        if token_id not in self._token_bytes:
            raise ValueError(self._unknown_id_message(token_id))
        return bytes_to_symbols(self._token_bytes[token_id])

    def _segment(self, piece: str) -> tuple[int, ...]:
        """The ids of one pre-token: its bytes, merged earliest-learned pair first."""
        byte_ids = self._byte_ids
        return apply_ranks([byte_ids[byte] for byte in _utf8(piece)], self._ranks, self._merged)

    def _encode_upto(self, text: str, limit: int) -> tuple[list[int], int]:
        """The ids of the pieces of ``text`` that end at or before ``limit``, and where the last one ends.

        Special tokens are cut out first; the text between them is pre-tokenized with the GPT-2
        pattern, whose pieces cover it without gaps (so their lengths add up to positions).
        """
        ids: list[int] = []
        settled = start = 0
        specials = self._special_pattern.finditer(text) if self._special_pattern else ()
        for special in [*specials, None]:
            end = special.start() if special else len(text)
            position = start
            for piece in self._pattern.findall(text, start, end):
                position += len(piece)
                if position > limit:
                    return ids, settled
                ids.extend(self._word_ids(piece))
                settled = position
            if special is None or special.end() > limit:
                return ids, settled
            ids.append(self.special_tokens[special.group()])
            settled = start = special.end()
        return ids, settled

    def encode(self, text: str) -> list[int]:
        """The ids of ``text``: special tokens first, then GPT-2 pre-tokenization, then the merges."""
        self._require_trained()
        check_text(text)
        return self._encode_upto(text, len(text))[0]

    def _encode_settled(self, text: str) -> tuple[list[int], int]:
        # A piece is settled once enough text follows it. The pattern decides a piece by looking at
        # most _PATTERN_LOOKAHEAD characters past its start ('re), or one character past its end
        # (\s+(?!\S) gives back the last space of a run when a word follows). A special token that
        # starts there ends the text the pattern sees, so it must be fully visible too.
        longest_special = max(map(len, self.special_tokens), default=0)
        reach = max(_PATTERN_LOOKAHEAD, longest_special + 1 if longest_special else 0)
        return self._encode_upto(text, len(text) - reach)

    def _unknown_id_message(self, token_id: int) -> str:
        return (
            f"id {token_id} is not in the vocabulary ({len(self._decoder)} tokens, "
            f"ids from {min(self._decoder)} to {max(self._decoder)})"
        )

    def decode_bytes(self, ids: Sequence[int]) -> bytes:
        """The raw bytes of ``ids`` (a token may hold part of a character, so these need not be UTF-8)."""
        self._require_trained()
        decoder = self._decoder
        checked = check_ids(ids)
        try:
            return b"".join(decoder[token_id] for token_id in checked)
        except KeyError as error:
            raise ValueError(self._unknown_id_message(error.args[0])) from None

    def decode(self, ids: Sequence[int], errors: str = "replace") -> str:
        """The text of ``ids``. Bytes that do not form UTF-8 become U+FFFD (``errors="replace"``, as GPT-2)."""
        return self.decode_bytes(ids).decode("utf-8", errors=errors)

    # ----------------------------------------------------------------------- files

    def _symbol_vocab(self) -> tuple[dict[str, int], list[tuple[str, str]]]:
        vocab = {bytes_to_symbols(token): token_id for token_id, token in self._token_bytes.items()}
        for token, token_id in self.special_tokens.items():
            if token in vocab:
                raise ValueError(f"special token {token!r} is spelled like the ordinary token with id {vocab[token]}")
            vocab[token] = token_id
        merges = [(bytes_to_symbols(left), bytes_to_symbols(right)) for left, right in self.merges]
        return vocab, merges

    @classmethod
    def _from_symbol_vocab(
        cls,
        vocab: dict[str, int],
        merges: list[tuple[str, str]],
        special_tokens: Iterable[str] | None,
        source: str,
    ) -> ByteBPE:
        vocab = check_vocab(vocab, source)
        if special_tokens is None:
            specials = [ENDOFTEXT] if ENDOFTEXT in vocab else []
        else:
            specials = _check_special_tokens(special_tokens)
            absent = [token for token in specials if token not in vocab]
            if absent:
                raise ValueError(f"{source}: the special tokens {absent} are not in the vocabulary")
        token_bytes: dict[int, bytes] = {}
        strays = []
        for token, token_id in vocab.items():
            if token in specials:
                continue
            as_bytes = symbols_to_bytes(token)
            if as_bytes is None:
                strays.append(token)
            else:
                token_bytes[token_id] = as_bytes
        if strays:
            raise ValueError(
                f"{source}: {len(strays)} entries, e.g. {strays[:3]}, are written with characters outside GPT-2's "
                "256 byte symbols; if they are special tokens, pass them as special_tokens=[...]"
            )
        byte_merges = []
        for number, (left, right) in enumerate(merges, start=1):
            left_bytes, right_bytes = symbols_to_bytes(left), symbols_to_bytes(right)
            if left_bytes is None or right_bytes is None:
                raise ValueError(f"{source}: merge {number} ({left} {right}) uses characters outside GPT-2's byte symbols")
            byte_merges.append((left_bytes, right_bytes))
        tokenizer = cls()
        tokenizer._install(token_bytes, byte_merges, {token: vocab[token] for token in specials})
        return tokenizer

    @classmethod
    def from_gpt2_files(
        cls,
        vocab_json: str | os.PathLike,
        merges_txt: str | os.PathLike,
        special_tokens: Iterable[str] | None = None,
    ) -> ByteBPE:
        """A tokenizer from GPT-2's ``vocab.json`` and ``merges.txt`` that encodes as GPT-2 does.

        ``special_tokens`` defaults to ``<|endoftext|>`` if the vocabulary has it. Every other entry
        must be a byte or the result of a merge.
        """
        vocab = read_vocab_json(vocab_json)
        merges = read_merges_txt(merges_txt, vocab)
        return cls._from_symbol_vocab(vocab, merges, special_tokens, source=f"{vocab_json} + {merges_txt}")

    def save_gpt2_files(self, directory: str | os.PathLike) -> tuple[Path, Path]:
        """Write ``vocab.json`` and ``merges.txt`` into ``directory``; returns their paths."""
        self._require_trained()
        vocab, merges = self._symbol_vocab()
        return write_gpt2_files(directory, vocab, merges)

    def _state(self) -> dict[str, Any]:
        vocab, merges = self._symbol_vocab()
        return {
            "vocab": vocab,
            "merges": [list(pair) for pair in merges],
            "special_tokens": list(self.special_tokens),
        }

    @classmethod
    def _from_state(cls, state: dict[str, Any]) -> ByteBPE:
        merges = []
        for position, pair in enumerate(state["merges"]):
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(s, str) and s for s in pair)):
                raise ValueError(f"saved merge {position} is {pair!r}; expected two non-empty strings")
            merges.append((pair[0], pair[1]))
        return cls._from_symbol_vocab(state["vocab"], merges, state["special_tokens"], source="saved ByteBPE")

    def __repr__(self) -> str:
        if not self._trained:
            return f"ByteBPE(untrained, special_tokens={self._declared_specials})"
        return f"ByteBPE(vocab_size={self.vocab_size}, merges={len(self.merges)}, special_tokens={list(self.special_tokens)})"
