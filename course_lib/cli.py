"""The ``course`` command: grading, exercise generation, notebook execution, training recipes."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _grade(args: argparse.Namespace) -> int:
    from course_lib.grading.cases import assignment_modules
    from course_lib.grading.runner import grade_notebook
    from course_lib.grading.report import format_submission

    if args.assignment is not None and args.assignment not in assignment_modules():
        known = ", ".join(sorted(assignment_modules()))
        print(f"course grade: unknown assignment {args.assignment!r}; the assignments are: {known}", file=sys.stderr)
        return 2
    missing = [path for path in args.notebooks if not Path(path).exists()]
    if missing:
        print(f"course grade: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    for path in args.notebooks:
        result = grade_notebook(path, args.assignment)
        print(format_submission(result))
    return 0


def _exercises(args: argparse.Namespace) -> int:
    from course_lib import exercises

    solutions, target = Path(args.solutions), Path(args.exercises)
    try:
        if args.action == "build":
            for path in exercises.build(solutions, target):
                print(f"wrote {path}")
            return 0
        problems = exercises.stale(solutions, target)
    except exercises.ExerciseError as error:
        print(f"course exercises: {error}", file=sys.stderr)
        return 1
    for problem in problems:
        print(problem)
    if problems:
        print("exercises/ is out of date: run `course exercises build` (or `make exercises`)")
        return 1
    print("exercises/ is up to date")
    return 0


def _notebooks(args: argparse.Namespace) -> int:
    from course_lib.notebooks import execute_in_place, notebook_paths

    try:
        paths = notebook_paths(args.targets)
    except FileNotFoundError as error:
        print(f"course notebooks: {error}", file=sys.stderr)
        return 2
    for path in paths:
        seconds = execute_in_place(path)
        print(f"{path}: {seconds:.1f} s")
    return 0


def _train(args: argparse.Namespace) -> int:
    import time

    from course_lib.checkpoint import save_checkpoint
    from course_lib.recipes import checkpoint_path, find_recipe

    try:
        recipe = find_recipe(args.recipe)
    except KeyError as error:
        print(f"course train: {error.args[0]}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    model, metadata = recipe.train(seed=args.seed)
    metadata = {**metadata, "recipe": recipe.name, "seed": args.seed,
                "train_seconds": round(time.perf_counter() - started, 1)}
    path = save_checkpoint(model, Path(args.out) if args.out else checkpoint_path(recipe.name), metadata)
    print(f"wrote {path} ({metadata['train_seconds']} s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="course", description="lm-course: grading, exercises, notebooks.")
    commands = parser.add_subparsers(dest="command", required=True)

    grade = commands.add_parser("grade", help="grade submitted notebooks")
    grade.add_argument("notebooks", nargs="+", help="submitted .ipynb files")
    grade.add_argument("--assignment", help="chNN (default: the notebook's metadata, else its file name)")
    grade.set_defaults(run=_grade)

    exercises = commands.add_parser("exercises", help="generate or check exercises/ from solutions/")
    exercises.add_argument("action", choices=["build", "check"])
    exercises.add_argument("--solutions", default=str(PROJECT_ROOT / "solutions"))
    exercises.add_argument("--exercises", default=str(PROJECT_ROOT / "exercises"))
    exercises.set_defaults(run=_exercises)

    notebooks = commands.add_parser("notebooks", help="execute notebooks in place, storing their outputs")
    notebooks.add_argument("action", choices=["run"])
    notebooks.add_argument("targets", nargs="+", help="notebooks or folders of notebooks")
    notebooks.set_defaults(run=_notebooks)

    train = commands.add_parser("train", help="run a training recipe and save its checkpoint for the book")
    train.add_argument("recipe", help="recipe name (see course_lib/recipes/)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", help="checkpoint path (default: book/checkpoints/RECIPE.safetensors)")
    train.set_defaults(run=_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
