"""Training recipes: runs too long for a chapter's 90-second budget.

A recipe is a function that trains a model from a seed and returns it with metadata (the
figures it reached, the settings it used). ``course train NAME`` runs it and saves the model as
``book/checkpoints/NAME.safetensors``, a small file the chapter notebook loads. Recipes live in
``course_lib/recipes/chNN_topic.py`` modules, each with a ``RECIPES`` dict from name to
``Recipe``; they are discovered by file name.

A model that is not an ``nn.Module`` (Chapter 1's counts) gives its recipe a ``save`` and a
``load`` of its own; every other recipe saves and loads a state dict. A few recipes train nothing:
they **measure** something too slow for a chapter (Chapter 8's decoding sweep decodes and parses
thousands of stories), and store the numbers the same way (``measures=True``).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from torch import nn

from course_lib.checkpoint import load_checkpoint, save_checkpoint

CHECKPOINT_DIR = Path(__file__).resolve().parent.parent.parent / "book" / "checkpoints"


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    build_model: Callable[[], nn.Module] | None           # the untrained model, to load a checkpoint into
    train: Callable[..., tuple[Any, dict[str, Any]]]     # train(seed=0, steps=None) -> (model, metadata)
    seed: int = 0                                         # the seed its committed checkpoint was trained from
    save: Callable[[Any, Path, dict[str, Any]], Path] = save_checkpoint  # save(model, path, metadata)
    load: Callable[[Path], tuple[Any, dict[str, Any]]] | None = None    # load(path) -> (model, metadata)
    measures: bool = False                                # stores measured numbers, not a model


def all_recipes() -> dict[str, Recipe]:
    recipes: dict[str, Recipe] = {}
    for path in sorted(Path(__file__).resolve().parent.glob("ch[0-9][0-9]_*.py")):
        module = importlib.import_module(f"course_lib.recipes.{path.stem}")
        recipes.update(module.RECIPES)
    return recipes


def find_recipe(name: str) -> Recipe:
    recipes = all_recipes()
    if name not in recipes:
        known = ", ".join(sorted(recipes)) or "none yet"
        raise KeyError(f"unknown recipe {name!r}; the recipes are: {known}")
    return recipes[name]


def checkpoint_path(name: str) -> Path:
    return CHECKPOINT_DIR / f"{name}.safetensors"


def load_trained(name: str) -> tuple[Any, dict[str, Any]]:
    """The model a recipe trained, loaded from its committed checkpoint, and the checkpoint's metadata."""
    recipe = find_recipe(name)
    path = checkpoint_path(name)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: create it with `course train {name}`")
    if recipe.load is not None:
        return recipe.load(path)
    model = recipe.build_model()
    metadata = load_checkpoint(model, path)
    model.eval()
    return model, metadata
