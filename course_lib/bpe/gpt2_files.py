"""GPT-2's tokenizer files: ``vocab.json`` and ``merges.txt``, and the byte-to-symbol mapping they use.

GPT-2 writes every token as a string of *printable* characters, one per byte
(:func:`bytes_to_unicode`): the 188 bytes that already print as themselves keep their character,
the other 68 (space, control bytes, ...) are shifted to code points from 256 up, so a space is
``"Ġ"`` (U+0120) and a newline ``"Ċ"``. Then

- ``vocab.json`` maps each token's printable string to its id: ``{"!": 0, ..., "Ġthe": 262, ...}``;
- ``merges.txt`` has a ``#version`` line, then one merge per line, earliest first: ``Ġ t``.
"""
from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

from course_lib.checks import non_negative_int

MERGES_HEADER = "#version: 0.2"


@lru_cache(maxsize=1)
def _byte_symbols() -> tuple[str, ...]:
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    symbols: dict[int, str] = {byte: chr(byte) for byte in printable}
    shifted = 0
    for byte in range(256):
        if byte not in symbols:
            symbols[byte] = chr(256 + shifted)
            shifted += 1
    return tuple(symbols[byte] for byte in range(256))


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from each byte value to one printable character (as in its ``encoder.py``).

    Printable Latin-1 bytes map to themselves; the rest, in increasing order, to U+0100, U+0101, ...

    >>> mapping = bytes_to_unicode()
    >>> mapping[ord("A")], mapping[ord(" ")], mapping[ord("\\n")]
    ('A', 'Ġ', 'Ċ')
    """
    return dict(enumerate(_byte_symbols()))


@lru_cache(maxsize=1)
def _symbol_bytes() -> dict[str, int]:
    return {symbol: byte for byte, symbol in enumerate(_byte_symbols())}


def bytes_to_symbols(token: bytes) -> str:
    """A token's bytes written as GPT-2 writes them in ``vocab.json``: ``b" the"`` -> ``"Ġthe"``."""
    symbols = _byte_symbols()
    return "".join(symbols[byte] for byte in token)


def symbols_to_bytes(text: str) -> bytes | None:
    """The inverse of :func:`bytes_to_symbols`; ``None`` if a character is not one of the 256 symbols."""
    table = _symbol_bytes()
    try:
        return bytes(table[character] for character in text)
    except KeyError:
        return None


def read_vocab_json(path: str | os.PathLike) -> dict[str, int]:
    """``vocab.json`` as a dict, checked: string keys, distinct non-negative integer ids."""
    path = Path(path)
    try:
        vocab = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not a valid vocab.json (not UTF-8 JSON: {error})") from None
    return check_vocab(vocab, source=str(path))


def check_vocab(vocab: object, source: str = "vocab") -> dict[str, int]:
    if not isinstance(vocab, dict):
        raise ValueError(f"{source} must hold a JSON object mapping token strings to ids, got {type(vocab).__name__}")
    seen: dict[int, str] = {}
    for token, token_id in vocab.items():
        non_negative_int(f"{source}: the id of {token!r}", token_id)
        if token_id in seen:
            raise ValueError(f"{source}: id {token_id} is given to both {seen[token_id]!r} and {token!r}")
        seen[token_id] = token
    return vocab


def parse_merges(
    lines: list[str], source: str = "merges.txt", vocab: dict[str, int] | None = None
) -> list[tuple[str, str]]:
    """The merges of ``merges.txt``'s lines; a malformed line raises a ValueError naming its number.

    With ``vocab``, also check that both tokens of each merge and their concatenation are in it.
    """
    merges = []
    last = len(lines)
    while last > 0 and lines[last - 1].strip() == "":
        last -= 1  # trailing newline(s) at the end of the file
    for number, line in enumerate(lines[:last], start=1):
        line = line.rstrip("\r\n")
        if number == 1 and line.startswith("#version"):
            continue
        parts = line.split(" ")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise ValueError(
                f"{source}, line {number}: expected two tokens separated by one space (like 'Ġ t'), got {line!r}"
            )
        left, right = parts
        if vocab is not None:
            for token in (left, right, left + right):
                if token not in vocab:
                    raise ValueError(
                        f"{source}, line {number}: {token!r} (in the merge {line!r}) is not in the vocabulary"
                    )
        merges.append((left, right))
    return merges


def read_merges_txt(path: str | os.PathLike, vocab: dict[str, int] | None = None) -> list[tuple[str, str]]:
    """``merges.txt`` as a list of ``(left, right)`` pairs, checked line by line (see :func:`parse_merges`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not a valid merges.txt (not UTF-8: {error})") from None
    return parse_merges(text.split("\n"), source=str(path), vocab=vocab)


def write_gpt2_files(
    directory: str | os.PathLike, vocab: dict[str, int], merges: list[tuple[str, str]]
) -> tuple[Path, Path]:
    """Write ``vocab.json`` and ``merges.txt`` into ``directory`` (created if needed)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab_path, merges_path = directory / "vocab.json", directory / "merges.txt"
    ordered = dict(sorted(vocab.items(), key=lambda item: item[1]))
    vocab_path.write_text(json.dumps(ordered, ensure_ascii=False), encoding="utf-8")
    lines = [MERGES_HEADER, *(f"{left} {right}" for left, right in merges)]
    merges_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return vocab_path, merges_path
