"""WordPiece tokenisation, as BERT reads text (Chapter 9; Wu et al., 2016; Devlin et al., 2019).

Three steps, each the one a ``tokenizer.json`` of type ``WordPiece`` names:

1. **normalise** (``BertNormalizer``): drop control characters, NUL and U+FFFD, turn every
   whitespace into a space; put spaces around CJK ideographs (each becomes its own word); strip
   accents (Unicode NFD, then drop the combining marks, category ``Mn``) and lower-case, when the
   file says so (``strip_accents: null`` follows ``lowercase``);
2. **pre-tokenise** (``BertPreTokenizer``): split on whitespace, and cut every punctuation
   character out as a word of its own (ASCII punctuation, including ``$ + < = > ^ ` | ~``, and
   Unicode's ``P*`` categories);
3. **WordPiece**: greedy longest-match-first inside each word. From position ``i``, take the
   longest ``w[i:j]`` in the vocabulary (written ``##w[i:j]`` when ``i > 0``), go on from ``j``.
   A word with no match at some position, or longer than ``max_input_chars_per_word``
   characters, becomes ``[UNK]`` as a whole::

       "unaffable" -> un ##aff ##able          "ŋŋŋ" -> [UNK]

The special tokens (``[CLS]``, ``[SEP]``, ``[MASK]``, ...) are found in the raw text before
normalising, so a sentence may contain ``[MASK]``. :meth:`WordPieceTokenizer.encode` adds
``[CLS] ... [SEP]`` (and ``[SEP]`` after a second segment, with segment ids 1).
"""
from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from course_lib import checks

__all__ = ["Encoding", "WordPieceTokenizer", "basic_tokenize", "normalize", "wordpiece_split"]


def _is_control(char: str) -> bool:
    """Control and format characters (categories C*) except tab, newline and carriage return."""
    return char not in "\t\n\r" and unicodedata.category(char).startswith("C")


def _is_whitespace(char: str) -> bool:
    return char in "\t\n\r " or char.isspace()


def _is_punctuation(char: str) -> bool:
    code = ord(char)
    ascii_punctuation = 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126
    return ascii_punctuation or unicodedata.category(char).startswith("P")


_CJK_BLOCKS = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
               (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


def _is_cjk(char: str) -> bool:
    """A CJK Unified Ideograph (the blocks BERT splits character by character)."""
    code = ord(char)
    return any(low <= code <= high for low, high in _CJK_BLOCKS)


def normalize(text: str, *, lowercase: bool = True, strip_accents: bool | None = None,
              clean_text: bool = True, handle_chinese_chars: bool = True) -> str:
    """BERT's normaliser: clean, space out CJK ideographs, strip accents, lower-case (in that
    order). ``strip_accents=None`` strips them exactly when ``lowercase`` is on."""
    checks.text("text", text)
    if clean_text:
        text = "".join(" " if _is_whitespace(c) else c for c in text
                       if not (c in "\x00\ufffd" or _is_control(c)))
    if handle_chinese_chars:
        text = "".join(f" {c} " if _is_cjk(c) else c for c in text)
    if lowercase if strip_accents is None else strip_accents:
        text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    if lowercase:  # character by character, as the Rust normaliser (no final-sigma rule: Σ -> σ)
        text = "".join(c.lower() for c in text)
    return text


def basic_tokenize(normalized: str) -> list[str]:
    """Split on whitespace, then cut every punctuation character out as its own word."""
    words: list[str] = []
    for chunk in normalized.split():
        current = ""
        for char in chunk:
            if _is_punctuation(char):
                words += [current, char] if current else [char]
                current = ""
            else:
                current += char
        if current:
            words.append(current)
    return words


def wordpiece_split(word: str, vocabulary: set[str] | dict[str, int], *, unk_token: str = "[UNK]",
                    prefix: str = "##", max_chars: int = 100) -> list[str]:
    """Greedy longest-match-first: the pieces of one word, or ``[unk_token]``."""
    if len(word) > max_chars:
        return [unk_token]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = word[start:end] if start == 0 else prefix + word[start:end]
            if piece in vocabulary:
                break
            end -= 1
        if end == start:  # nothing in the vocabulary starts here: the whole word is unknown
            return [unk_token]
        pieces.append(piece)
        start = end
    return pieces


@dataclass
class Encoding:
    """``ids``, ``tokens`` and ``token_type_ids`` (segment 0 or 1), one per token."""

    ids: list[int]
    tokens: list[str]
    token_type_ids: list[int]


class WordPieceTokenizer:
    """A WordPiece tokenizer from a ``vocabulary`` (token -> id) and BERT's normaliser settings."""

    def __init__(self, vocabulary: dict[str, int], *, lowercase: bool = True, strip_accents: bool | None = None,
                 clean_text: bool = True, handle_chinese_chars: bool = True, unk_token: str = "[UNK]",
                 prefix: str = "##", max_input_chars_per_word: int = 100,
                 special_tokens: tuple[str, ...] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")) -> None:
        missing = [token for token in (unk_token, *special_tokens) if token not in vocabulary]
        if missing:
            raise checks.ArgumentError(f"the vocabulary lacks the special tokens {missing}")
        self.vocabulary = dict(vocabulary)
        self.id_to_token = {index: token for token, index in self.vocabulary.items()}
        self.normalizer_settings = dict(lowercase=lowercase, strip_accents=strip_accents, clean_text=clean_text,
                                        handle_chinese_chars=handle_chinese_chars)
        self.unk_token, self.prefix = unk_token, prefix
        self.max_input_chars_per_word = checks.positive_int("max_input_chars_per_word", max_input_chars_per_word)
        self.special_tokens = tuple(special_tokens)
        longest_first = sorted(self.special_tokens, key=len, reverse=True)
        self._special = re.compile("(" + "|".join(map(re.escape, longest_first)) + ")")

    @classmethod
    def from_tokenizer_json(cls, source: str | PathLike | bytes | dict) -> "WordPieceTokenizer":
        """From a Hugging Face ``tokenizer.json`` (a path, its bytes, or the parsed dictionary)."""
        if isinstance(source, (str, PathLike)):
            source = Path(source).read_bytes()
        spec = json.loads(source) if isinstance(source, bytes) else source
        model, normalizer = spec.get("model", {}), spec.get("normalizer") or {}
        if model.get("type") != "WordPiece" or normalizer.get("type") != "BertNormalizer":
            raise checks.ArgumentError(f"this tokenizer.json holds a {model.get('type')} model with a "
                                       f"{normalizer.get('type')} normaliser; WordPieceTokenizer reads "
                                       "WordPiece with BertNormalizer (BERT's tokenizers)")
        special = tuple(token["content"] for token in spec.get("added_tokens", []) if token.get("special"))
        return cls(model["vocab"], lowercase=normalizer.get("lowercase", True),
                   strip_accents=normalizer.get("strip_accents"), clean_text=normalizer.get("clean_text", True),
                   handle_chinese_chars=normalizer.get("handle_chinese_chars", True),
                   unk_token=model.get("unk_token", "[UNK]"), prefix=model.get("continuing_subword_prefix", "##"),
                   max_input_chars_per_word=model.get("max_input_chars_per_word", 100), special_tokens=special)

    def tokenize(self, text: str) -> list[str]:
        """The WordPiece tokens of ``text``, without ``[CLS]``/``[SEP]``."""
        tokens: list[str] = []
        for part in self._special.split(checks.text("text", text)):
            if part in self.special_tokens:
                tokens.append(part)
                continue
            for word in basic_tokenize(normalize(part, **self.normalizer_settings)):
                tokens += wordpiece_split(word, self.vocabulary, unk_token=self.unk_token, prefix=self.prefix,
                                          max_chars=self.max_input_chars_per_word)
        return tokens

    def encode(self, text: str, pair: str | None = None, *, add_special_tokens: bool = True) -> Encoding:
        """``[CLS] text [SEP]`` (segment 0), then ``pair [SEP]`` (segment 1) if given."""
        first, second = self.tokenize(text), [] if pair is None else self.tokenize(pair)
        if add_special_tokens:
            first = ["[CLS]", *first, "[SEP]"]
            second = [*second, "[SEP]"] if pair is not None else []
        tokens = first + second
        return Encoding([self.vocabulary[token] for token in tokens], tokens, [0] * len(first) + [1] * len(second))

    def decode(self, ids: list[int]) -> str:
        """Tokens joined back into words (``##`` pieces glued to the previous one)."""
        text = " ".join(self.id_to_token[int(index)] for index in ids)
        return text.replace(" " + self.prefix, "")
