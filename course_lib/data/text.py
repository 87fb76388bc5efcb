"""Text in, tokens out: word and character tokenizers, sentence splitting, file loading, vocabularies.

The word tokenizer is the unit every word-level chapter counts in: the n-gram chapter trains on
``word_tokenize(story.text)``, and the story corpus's entropy floor is measured per word token
of this tokenizer (see :func:`course_lib.data.program.entropy_floor`).
"""
from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from course_lib import checks

# A word is a run of letters/digits, possibly joined by internal apostrophes or hyphens
# ("don't", "well-known"); every other visible character is a token of its own.
_TOKEN = re.compile(r"\w+(?:['’-]\w+)*|[^\w\s]")
# Punctuation written flush against the word before it, and brackets flush against the word after.
_NO_SPACE_BEFORE = frozenset(".,!?;:)]}%")
_NO_SPACE_AFTER = frozenset("([{")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


def word_tokenize(text: str) -> list[str]:
    """Split ``text`` into words and punctuation marks, keeping case.

    >>> word_tokenize("Mia had a red ball. What colour was it?")
    ['Mia', 'had', 'a', 'red', 'ball', '.', 'What', 'colour', 'was', 'it', '?']

    Whitespace is dropped, so for arbitrary text :func:`detokenize` can only guess where it was;
    for every story the corpus generator writes, ``detokenize(word_tokenize(s)) == s`` holds.
    """
    return _TOKEN.findall(checks.text("text", text))


def detokenize(tokens: Sequence[str]) -> str:
    """Join word tokens back into text: one space between words, none before ``. , ? !`` etc.

    The exact inverse of :func:`word_tokenize` on the story corpus (single spaces, no quotes);
    on other text the spacing may differ from the original (``"a  b"`` comes back as ``"a b"``).
    """
    if isinstance(tokens, str):
        raise TypeError("detokenize expects a sequence of tokens, not a str; call word_tokenize first")
    pieces: list[str] = []
    previous = ""
    for token in tokens:
        if not isinstance(token, str):
            raise TypeError(f"tokens must be strings, got {type(token).__name__}: {token!r}")
        if pieces and token not in _NO_SPACE_BEFORE and previous not in _NO_SPACE_AFTER:
            pieces.append(" ")
        pieces.append(token)
        previous = token
    return "".join(pieces)


def char_tokenize(text: str) -> list[str]:
    """Every character is a token (spaces and newlines included)."""
    return list(checks.text("text", text))


def split_sentences(text: str) -> list[str]:
    """Split after ``.``, ``?`` or ``!`` followed by whitespace, and at line breaks.

    Made for the story corpus's punctuation (no abbreviations such as "Dr."); a question and
    its answer are two sentences: ``"Where did Mia live? She lived near the lake."``.
    """
    return [sentence.strip() for sentence in _SENTENCE_END.split(checks.text("text", text)) if sentence.strip()]


def load_text(path: str | Path, encoding: str = "utf-8") -> str:
    """Read a plain-text file, with line endings normalised to ``"\\n"``.

    Raises ``FileNotFoundError`` / ``IsADirectoryError`` naming the path, and ``ValueError``
    for an empty file, bytes that are not valid in ``encoding`` (with the byte offset), or
    content that looks binary (NUL bytes).
    """
    if not isinstance(path, (str, Path)):
        raise TypeError(f"path must be a str or pathlib.Path, got {type(path).__name__}")
    checks.text("encoding", encoding)
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"no such file: {str(path)!r} (resolved to {str(path.resolve())!r})")
    if path.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a directory; pass the path of a text file inside it")
    data = path.read_bytes()
    if not data:
        raise ValueError(f"{str(path)!r} is empty; there is no text to load")
    wide_encoding = encoding.lower().replace("_", "-").startswith(("utf-16", "utf16", "utf-32", "utf32"))
    if not wide_encoding and b"\x00" in data:
        raise ValueError(
            f"{str(path)!r} looks like a binary file (NUL byte at offset {data.index(0)}); "
            "load_text reads plain text only"
        )
    try:
        text = data.decode(encoding)
    except LookupError:
        raise ValueError(f"unknown encoding {encoding!r}; try 'utf-8' or 'latin-1'") from None
    except UnicodeDecodeError as error:
        bad = data[error.start : error.start + 4]
        raise ValueError(
            f"{str(path)!r} is not valid {encoding}: byte {bad[:1]!r} at offset {error.start} "
            f"({error.reason}); if the file uses another encoding, pass it, e.g. "
            f"load_text(path, encoding='latin-1') or encoding='cp1252'"
        ) from None
    if "\x00" in text:
        raise ValueError(f"{str(path)!r} decodes to text containing NUL characters; it looks binary")
    return text.replace("\r\n", "\n").replace("\r", "\n")


class Vocabulary:
    """A two-way table between tokens and integer ids, with special tokens first.

    Ids ``0 .. len(specials) - 1`` are the special tokens (by default ``<pad>``, ``<unk>``,
    ``<s>``, ``</s>``), then the tokens seen at least ``min_count`` times, most frequent first
    (ties in alphabetical order, so the table does not depend on the order of the input).
    Tokens not in the table encode to the ``<unk>`` id.
    """

    PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
    DEFAULT_SPECIALS = (PAD, UNK, BOS, EOS)

    def __init__(self, tokens: Iterable[str], specials: Sequence[str] = DEFAULT_SPECIALS):
        specials = tuple(specials)
        if self.UNK not in specials:
            raise ValueError(f"specials must include the unknown token {self.UNK!r}, got {specials!r}")
        self._id_to_token: list[str] = []
        self._token_to_id: dict[str, int] = {}
        for token in (*specials, *tokens):
            if not isinstance(token, str) or not token:
                raise TypeError(f"vocabulary entries must be non-empty strings, got {token!r}")
            if token in self._token_to_id:
                raise ValueError(f"token {token!r} appears twice in the vocabulary")
            self._token_to_id[token] = len(self._id_to_token)
            self._id_to_token.append(token)
        self.specials = specials

    @classmethod
    def build(
        cls,
        token_streams: Iterable[Iterable[str]],
        min_count: int = 1,
        specials: Sequence[str] = DEFAULT_SPECIALS,
    ) -> Vocabulary:
        """Count tokens over ``token_streams`` (e.g. one token list per story) and keep the frequent ones."""
        checks.positive_int("min_count", min_count)
        if isinstance(token_streams, str):
            raise TypeError("token_streams must be an iterable of token lists, not a str")
        counts: Counter[str] = Counter()
        for stream in token_streams:
            if isinstance(stream, str):
                raise TypeError(
                    "each element of token_streams must be a list of tokens, got a str; "
                    "wrap a single token list in a list: Vocabulary.build([tokens])"
                )
            counts.update(stream)
        reserved = set(specials)
        kept = sorted(
            (token for token, count in counts.items() if count >= min_count and token not in reserved),
            key=lambda token: (-counts[token], token),
        )
        return cls(kept, specials)

    def __len__(self) -> int:
        return len(self._id_to_token)

    def __contains__(self, token: object) -> bool:
        return token in self._token_to_id

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Vocabulary)
            and self._id_to_token == other._id_to_token
            and self.specials == other.specials
        )

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens, specials={self.specials!r})"

    @property
    def tokens(self) -> list[str]:
        """All tokens in id order."""
        return list(self._id_to_token)

    @property
    def unk_id(self) -> int:
        return self._token_to_id[self.UNK]

    def token_to_id(self, token: str) -> int:
        """The id of ``token`` (the ``<unk>`` id if absent)."""
        return self._token_to_id.get(token, self.unk_id)

    def id_to_token(self, index: int) -> str:
        index = checks.integer("token id", index, what="one of the integers that index the vocabulary")
        if not 0 <= index < len(self._id_to_token):
            raise ValueError(f"token id {index} is out of range for a vocabulary of {len(self)} tokens")
        return self._id_to_token[index]

    def special_id(self, token: str) -> int:
        """The id of a special token such as ``"<s>"``."""
        if token not in self.specials:
            raise ValueError(f"{token!r} is not a special token of this vocabulary; specials are {self.specials!r}")
        return self._token_to_id[token]

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Token strings to ids; unknown tokens become the ``<unk>`` id."""
        if isinstance(tokens, str):
            raise TypeError("encode expects a list of tokens, not a str; tokenize the text first")
        unk = self.unk_id
        return [self._token_to_id.get(token, unk) for token in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Ids to token strings (use :func:`detokenize` to get text back)."""
        return [self.id_to_token(index.__index__() if _is_integer_like(index) else index) for index in ids]

    def to_json(self) -> str:
        return json.dumps({"specials": list(self.specials), "tokens": self._id_to_token[len(self.specials) :]})

    @classmethod
    def from_json(cls, text: str) -> Vocabulary:
        try:
            data = json.loads(text)
            specials, tokens = data["specials"], data["tokens"]
        except (json.JSONDecodeError, TypeError, KeyError) as error:
            raise ValueError(
                f"not a Vocabulary JSON document ({error}); expected keys 'specials' and 'tokens'"
            ) from None
        return cls(tokens, specials)


def _is_integer_like(value: object) -> bool:
    """Python ints and NumPy/PyTorch integer scalars (which support ``__index__``), but not bools."""
    if isinstance(value, bool):
        return False
    try:
        value.__index__()  # type: ignore[attr-defined]
    except (AttributeError, TypeError):
        return False
    return True
