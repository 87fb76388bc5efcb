"""Character-level BPE, as Sennrich, Haddow and Birch (2016) introduced it for translation.

Text is cut into words at whitespace; each word becomes its characters followed by the
end-of-word marker ``</w>``, so that ``est</w>`` (a word ending) and ``est`` (inside a word) are
different tokens and decoding knows where the spaces were. Training counts the words
(the word-frequency dictionary) and repeatedly merges the most frequent adjacent pair
(:mod:`course_lib.bpe.training`). A character never seen in training encodes as ``[UNK]``.

**Round trip.** ``decode(encode(s)) == " ".join(s.split())`` whenever every character of ``s``
was seen in training: words come back exactly, whitespace comes back normalised to single
spaces (tabs, newlines and runs of spaces are not tokens here; byte-level BPE keeps them).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from course_lib.bpe.base import Tokenizer, check_ids, check_text, check_vocab_size, iter_training_texts
from course_lib.bpe.training import apply_ranks, learn_merges, merge_ranks

END_OF_WORD = "</w>"
UNKNOWN = "[UNK]"
_MARKERS = (UNKNOWN, END_OF_WORD)


def word_counts_from_text(text: str | Iterable[str]) -> dict[tuple[str, ...], int]:
    """The word-frequency dictionary of ``text``: each whitespace-separated word as characters + ``</w>``.

    >>> word_counts_from_text("low low lower")
    {('l', 'o', 'w', '</w>'): 2, ('l', 'o', 'w', 'e', 'r', '</w>'): 1}
    """
    words: Counter[str] = Counter()
    for document in iter_training_texts(text):
        words.update(document.split())
    for word in words:
        for marker in _MARKERS:
            if marker in word:
                raise ValueError(
                    f"the training text contains {marker!r} (in the word {word!r}), which CharBPE reserves as a "
                    "marker; replace it before training"
                )
    return {tuple(word) + (END_OF_WORD,): count for word, count in words.items()}


class CharBPE(Tokenizer):
    """Sennrich et al.'s BPE over characters with an end-of-word marker.

    Ids: ``0`` is ``[UNK]``, ``1`` is ``</w>``, then the training text's characters in code-point
    order, then one id per merge in the order learned.

    >>> tok = CharBPE().train("low " * 5 + "lower " * 2 + "newest " * 6 + "widest " * 3, vocab_size=20)
    >>> tok.merges[:3]
    [('e', 's'), ('es', 't'), ('est', '</w>')]
    >>> tok.decode(tok.encode("lowest"))
    'lowest'
    """

    def __init__(self) -> None:
        super().__init__()
        self.vocab: list[str] = []  # id -> symbol
        self._ids: dict[str, int] = {}
        self._ranks: dict[tuple[str, str], int] = {}
        self._base_size = 0

    # ----------------------------------------------------------------------- training

    def train(
        self,
        text: str | Iterable[str],
        vocab_size: int,
        *,
        verbose: bool = False,
        method: str = "incremental",
    ) -> CharBPE:
        """Learn ``vocab_size - (2 + number of distinct characters)`` merges from ``text``.

        ``text`` is one string or an iterable of strings (lines, documents). Training stops early,
        with a smaller vocabulary, when every word has become a single token. ``method`` is
        ``"incremental"`` (fast) or ``"naive"`` (recount everything each step); both learn the
        same merges.
        """
        word_counts = self.word_counts(text)
        if not word_counts:
            raise ValueError("the training text has no words (it is empty or only whitespace)")
        alphabet = sorted({symbol for word in word_counts for symbol in word[:-1]})
        base = [UNKNOWN, END_OF_WORD, *alphabet]
        check_vocab_size(vocab_size, len(base), f"[UNK] + </w> + {len(alphabet)} characters")
        merges = learn_merges(word_counts, vocab_size - len(base), method=method, verbose=verbose)
        self._install(base, merges)
        return self

    def word_counts(self, text: str | Iterable[str]) -> dict[tuple[str, ...], int]:
        """The word-frequency dictionary training starts from (see :func:`word_counts_from_text`)."""
        return word_counts_from_text(text)

    def _install(self, base: list[str], merges: Sequence[tuple[str, str]]) -> None:
        vocab = list(base)
        ids = {symbol: index for index, symbol in enumerate(vocab)}
        if len(ids) != len(vocab):
            raise ValueError("the base vocabulary lists a symbol twice")
        unique_merges = list(dict.fromkeys(tuple(pair) for pair in merges))
        for position, (left, right) in enumerate(unique_merges):
            for part in (left, right):
                if part not in ids:
                    raise ValueError(f"merge {position} ({left!r}, {right!r}): {part!r} is not in the vocabulary")
            # Two different merges may spell the same symbol (a+bc, ab+c); it keeps one id.
            if left + right not in ids:
                ids[left + right] = len(vocab)
                vocab.append(left + right)
        self.vocab, self._ids, self._base_size = vocab, ids, len(base)
        self.merges = unique_merges
        self._ranks = merge_ranks(unique_merges)
        self._forget_segmentations()
        self._trained = True

    # ----------------------------------------------------------------------- encoding

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def unknown_id(self) -> int:
        return self._ids[UNKNOWN]

    def id_to_token(self, token_id: int) -> str:
        self._require_trained()
        (token_id,) = check_ids([token_id])
        if not 0 <= token_id < len(self.vocab):
            raise ValueError(f"id {token_id} is not in the vocabulary (ids run from 0 to {len(self.vocab) - 1})")
        return self.vocab[token_id]

    def segment(self, word: str) -> tuple[str, ...]:
        """The symbols of one word after the learned merges, e.g. ``('low', 'est</w>')``."""
        self._require_trained()
        return apply_ranks(tuple(check_text(word, "word")) + (END_OF_WORD,), self._ranks)

    def _segment(self, word: str) -> tuple[int, ...]:
        """The ids of one word: its characters and ``</w>``, merged earliest-learned pair first."""
        unknown = self._ids[UNKNOWN]
        symbols = apply_ranks(tuple(word) + (END_OF_WORD,), self._ranks)
        return tuple(self._ids.get(symbol, unknown) for symbol in symbols)

    def encode(self, text: str) -> list[int]:
        """Ids of the words of ``text`` (split at whitespace); unseen characters become ``[UNK]``."""
        self._require_trained()
        ids: list[int] = []
        for word in check_text(text).split():
            ids.extend(self._word_ids(word))
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """Join the tokens, turning each end-of-word marker into a space (the last one dropped)."""
        self._require_trained()
        pieces = []
        for token_id in check_ids(ids):
            if not 0 <= token_id < len(self.vocab):
                raise ValueError(f"id {token_id} is not in the vocabulary (ids run from 0 to {len(self.vocab) - 1})")
            symbol = self.vocab[token_id]
            if symbol != UNKNOWN and symbol.endswith(END_OF_WORD):
                symbol = symbol[: -len(END_OF_WORD)] + " "
            pieces.append(symbol)
        text = "".join(pieces)
        return text[:-1] if text.endswith(" ") and pieces[-1].endswith(" ") else text

    def _encode_settled(self, text: str) -> tuple[list[int], int]:
        # Words end at whitespace: everything up to the last whitespace character is settled.
        for index in range(len(text) - 1, -1, -1):
            if text[index].isspace():
                return self.encode(text[: index + 1]), index + 1
        return [], 0

    # ----------------------------------------------------------------------- saving

    def _state(self) -> dict[str, Any]:
        return {"base": self.vocab[: self._base_size], "merges": [list(pair) for pair in self.merges]}

    @classmethod
    def _from_state(cls, state: dict[str, Any]) -> CharBPE:
        base, merges = state["base"], state["merges"]
        if not isinstance(base, list) or base[:2] != [UNKNOWN, END_OF_WORD]:
            raise ValueError(f"a saved CharBPE's base vocabulary must start with {UNKNOWN!r}, {END_OF_WORD!r}")
        if not all(isinstance(symbol, str) and len(symbol) == 1 for symbol in base[2:]):
            raise ValueError("a saved CharBPE's base vocabulary must list single characters after the markers")
        pairs = []
        for position, pair in enumerate(merges):
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(s, str) and s for s in pair)):
                raise ValueError(f"saved merge {position} is {pair!r}; expected two non-empty strings")
            pairs.append((pair[0], pair[1]))
        tokenizer = cls()
        tokenizer._install(base, pairs)
        return tokenizer
