"""Byte-pair encoding (Chapter 2): from Sennrich et al.'s character-level BPE to GPT-2's byte-level BPE.

- :mod:`~course_lib.bpe.training`: the algorithm on a word-frequency dictionary, one step at a
  time (:func:`merge_step`), naively (:func:`train_naive`) and incrementally (:func:`train_incremental`);
- :mod:`~course_lib.bpe.base`: the contract every tokenizer follows (train, encode, decode, save, load);
- :mod:`~course_lib.bpe.char_bpe`: :class:`CharBPE`, characters plus an end-of-word marker;
- :mod:`~course_lib.bpe.byte_bpe`: :class:`ByteBPE`, bytes, regex pre-tokenization, special tokens;
- :mod:`~course_lib.bpe.gpt2_files`: GPT-2's ``vocab.json`` / ``merges.txt`` and :func:`bytes_to_unicode`.
"""
from course_lib.bpe.base import NotTrainedError, Tokenizer
from course_lib.bpe.byte_bpe import ENDOFTEXT, GPT2_SPLIT_PATTERN, ByteBPE
from course_lib.bpe.char_bpe import END_OF_WORD, UNKNOWN, CharBPE, word_counts_from_text
from course_lib.bpe.gpt2_files import bytes_to_unicode
from course_lib.bpe.training import (
    apply_merges,
    best_pair,
    get_pair_counts,
    merge_pair,
    merge_step,
    merge_word,
    train_char_bpe,
    train_incremental,
    train_naive,
)

__all__ = [
    "END_OF_WORD",
    "ENDOFTEXT",
    "GPT2_SPLIT_PATTERN",
    "UNKNOWN",
    "ByteBPE",
    "CharBPE",
    "NotTrainedError",
    "Tokenizer",
    "apply_merges",
    "best_pair",
    "bytes_to_unicode",
    "get_pair_counts",
    "merge_pair",
    "merge_step",
    "merge_word",
    "train_char_bpe",
    "train_incremental",
    "train_naive",
    "word_counts_from_text",
]
