"""Training recipes: every committed checkpoint loads into its model, and every recipe runs."""
from __future__ import annotations

import pytest
import torch

from course_lib.cli import main
from course_lib.language_model import LanguageModel
from course_lib.recipes import all_recipes, checkpoint_path, find_recipe, load_trained

RECIPES = sorted(all_recipes())


@pytest.mark.parametrize("name", RECIPES)
def test_the_committed_checkpoint_loads_and_gives_finite_outputs(name):
    assert checkpoint_path(name).exists(), f"run `course train {name}` and commit the checkpoint"
    model, metadata = load_trained(name)
    assert metadata["recipe"] == name
    assert metadata["seed"] == find_recipe(name).seed
    if isinstance(model, torch.nn.Module):
        assert all(torch.isfinite(p).all() for p in model.parameters())
    if isinstance(model, LanguageModel):
        with torch.no_grad():
            assert torch.isfinite(model.sequence_log_probs(torch.tensor([[1, 2, 3]]))).all()


@pytest.mark.parametrize("name", [name for name in RECIPES if find_recipe(name).seed == 0
                                  and find_recipe(name).build_model is not None])
def test_a_few_steps_of_the_recipe_run_and_change_the_weights(name):
    recipe = find_recipe(name)
    torch.manual_seed(0)
    untrained = recipe.build_model().state_dict()
    model, metadata = recipe.train(seed=0, steps=3)
    assert isinstance(metadata, dict)
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, untrained[k])]
    assert changed, "three training steps left every weight as it was"


# A measuring recipe (Chapter 8's sweep: minutes per seed) is checked piece by piece in its chapter's
# tests, and its notebook measures one setting again and compares it with the stored numbers.
@pytest.mark.parametrize("name", [name for name in RECIPES if find_recipe(name).build_model is None
                                  and not find_recipe(name).measures])
def test_a_recipe_without_weights_reproduces_its_committed_model(name):
    model, _ = find_recipe(name).train(seed=0)
    committed, _ = load_trained(name)
    assert committed.vocabulary == model.vocabulary
    assert all((committed.to_arrays()[0][k] == v).all() for k, v in model.to_arrays()[0].items())


def test_course_train_uses_the_recipes_own_seed_unless_told_otherwise(tmp_path, monkeypatch):
    import course_lib.recipes as recipes

    seeds = []

    def train(seed=0, steps=None):
        seeds.append(seed)
        return torch.nn.Linear(2, 2), {}

    recipe = recipes.Recipe("fake", "a recipe that records its seed", lambda: torch.nn.Linear(2, 2), train, seed=7)
    monkeypatch.setattr(recipes, "find_recipe", lambda name: recipe)
    assert main(["train", "fake", "--out", str(tmp_path / "a.safetensors")]) == 0
    assert main(["train", "fake", "--seed", "3", "--out", str(tmp_path / "b.safetensors")]) == 0
    assert seeds == [7, 3]


def test_an_unknown_recipe_is_a_clear_error(capsys):
    assert main(["train", "no-such-recipe"]) == 2
    assert "unknown recipe 'no-such-recipe'" in capsys.readouterr().err
    with pytest.raises(KeyError, match="unknown recipe"):
        load_trained("no-such-recipe")


@pytest.mark.parametrize("name", RECIPES[:1])
def test_a_missing_checkpoint_says_how_to_make_it(name, tmp_path, monkeypatch):
    import course_lib.recipes as recipes

    monkeypatch.setattr(recipes, "CHECKPOINT_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match=f"course train {name}"):
        load_trained(name)
