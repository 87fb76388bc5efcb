"""The ``course`` command: grading, exercise generation, notebook execution, training recipes."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _refuse(command: str, message: str, status: int = 2) -> int:
    """Say on stderr why ``course COMMAND`` stops, and give its exit status: 2 when the command was
    misused (nothing was done), 1 when it ran and found a problem."""
    print(f"course {command}: {message}", file=sys.stderr)
    return status


def _grade(args: argparse.Namespace) -> int:
    """Everything the instructor chose (paths, limits, hidden cases, output places) is checked before
    any grading starts: a mistake exits 2 with what to fix, and no result is lost to it."""
    import tempfile

    from course_lib.checks import ArgumentError
    from course_lib.grading.cases import assignment_modules
    from course_lib.grading.export import write_gradescope, write_reports
    from course_lib.grading.hidden import HiddenCasesError, load_hidden_case_sets
    from course_lib.grading.inputs import InputError, collect
    from course_lib.grading.report import format_protections, format_submission, format_summary
    from course_lib.grading.runner import Limits, PreparationError, SubmissionResult, grade_batch

    def misuse(message: str) -> int:
        return _refuse("grade", message)

    if args.assignment is not None and args.assignment not in assignment_modules():
        known = ", ".join(sorted(assignment_modules()))
        return misuse(f"unknown assignment {args.assignment!r}; the assignments are: {known}")
    if args.jobs is not None and args.jobs < 1:
        return misuse(f"--jobs must be at least 1, got {args.jobs}")
    for option in ("case_seconds", "item_seconds", "notebook_seconds", "memory_mb"):
        if getattr(args, option) is not None and getattr(args, option) <= 0:
            return misuse(f"--{option.replace('_', '-')} must be positive")
    chosen = {k: getattr(args, k) for k in ("case_seconds", "item_seconds", "notebook_seconds", "memory_mb")
              if getattr(args, k) is not None}
    try:
        limits = Limits(**chosen)
    except ArgumentError as error:
        return misuse(f"--{str(error).replace('_', '-')}")
    problem = _unwritable_output(args.out, args.gradescope)
    if problem:
        return misuse(problem)
    if args.hidden_cases is not None:
        try:
            load_hidden_case_sets(args.hidden_cases)
        except HiddenCasesError as error:
            return misuse(str(error))
    with tempfile.TemporaryDirectory(prefix="lm-course-inputs-") as workspace:
        try:
            submissions = collect(args.paths, Path(workspace))
        except InputError as error:
            if args.gradescope and "no notebooks" in str(error):  # the student's fault: tell them
                write_gradescope(SubmissionResult(None, args.assignment, error="no notebook (.ipynb) was submitted",
                                                  name="submission"), args.gradescope)
                print(f"course grade: {error}; wrote {args.gradescope}")
                return 0
            return misuse(str(error))
        if args.gradescope and len(submissions) != 1:
            message = f"{len(submissions)} notebooks were submitted; submit exactly one"
            write_gradescope(SubmissionResult(None, args.assignment, error=message, name="submission"), args.gradescope)
            print(f"course grade: {message}; wrote {args.gradescope}")
            return 0
        progress = _progress_bar(len(submissions), args.progress)
        try:
            results = grade_batch([(s.name, s.path, s.problem) for s in submissions], args.assignment, limits,
                                  jobs=args.jobs, hidden_cases=args.hidden_cases,
                                  on_result=lambda result: progress.update(1))
        except (PreparationError, HiddenCasesError) as error:
            return misuse(str(error))
        except KeyError as error:
            return misuse(str(error.args[0]) if error.args else str(error))
        finally:
            progress.close()
    if len(results) == 1:
        print(format_submission(results[0]))
        print()
    print(format_summary(results))
    print(format_protections(results))
    if args.out:
        for path in write_reports(results, args.out):
            print(f"wrote {path}")
    if args.gradescope:
        write_gradescope(results[0], args.gradescope)
        print(f"wrote {args.gradescope}")
    return 0


def _unwritable_output(out: str | None, gradescope: str | None) -> str | None:
    """Why ``--out`` or ``--gradescope`` cannot be written to, found before grading; None if they can."""
    import tempfile

    places = []
    if out is not None:
        folder = Path(out)
        if folder.exists() and not folder.is_dir():
            return f"--out {out}: this is a file; name a folder (it is created if missing)"
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            return f"--out {out}: cannot create this folder: {error.strerror or error}"
        places.append(("--out", out, folder))
    if gradescope is not None:
        target = Path(gradescope)
        if target.is_dir():
            return f"--gradescope {gradescope}: this is a folder; name the results.json file to write"
        if not target.parent.is_dir():
            return f"--gradescope {gradescope}: the folder {target.parent} does not exist; create it first"
        places.append(("--gradescope", gradescope, target.parent))
    for option, given, folder in places:
        try:
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as error:
            return f"{option} {given}: cannot write there: {error.strerror or error}"
    return None


def _progress_bar(total: int, wanted: bool | None):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="grading", unit="notebook", file=sys.stderr,
                disable=(None if wanted is None else not wanted) if total > 1 else True)


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
        return _refuse("exercises", str(error), status=1)
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
        return _refuse("notebooks", str(error))
    for path in paths:
        seconds = execute_in_place(path)
        print(f"{path}: {seconds:.1f} s")
    return 0


def _train(args: argparse.Namespace) -> int:
    """Under ``torchrun`` every process runs the recipe on its shard of each batch
    (:mod:`course_lib.distributed`) and process 0 writes the checkpoint."""
    import time

    from course_lib import distributed
    from course_lib.recipes import checkpoint_path, find_recipe

    try:
        recipe = find_recipe(args.recipe)
    except KeyError as error:
        return _refuse("train", error.args[0])
    if args.steps is not None and args.steps < 1:
        return _refuse("train", f"--steps must be at least 1, got {args.steps}")
    started = time.perf_counter()
    seed = recipe.seed if args.seed is None else args.seed
    with distributed.process_group():
        model, metadata = recipe.train(seed=seed, **({} if args.steps is None else {"steps": args.steps}))
        metadata = {**metadata, "recipe": recipe.name, "seed": seed,
                    "train_seconds": round(time.perf_counter() - started, 1)}
        if distributed.active():
            metadata["processes"] = distributed.world_size()
        if not distributed.is_main_process():
            return 0
    path = recipe.save(model, Path(args.out) if args.out else checkpoint_path(recipe.name), metadata)
    print(f"wrote {path} ({metadata['train_seconds']} s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="course", description="lm-course: grading, exercises, notebooks.")
    commands = parser.add_subparsers(dest="command", required=True)

    grade = commands.add_parser(
        "grade", help="grade submitted notebooks",
        description="Grade notebooks, folders of notebooks or zip archives of them. Each submission runs in "
                    "its own sandboxed worker; exits 0 once everything given was graded (even with zero scores).")
    grade.add_argument("paths", nargs="+", metavar="PATH", help="notebooks, folders of notebooks, .zip archives")
    grade.add_argument("--assignment", help="chNN (default: the notebook's metadata, else its file name)")
    grade.add_argument("--jobs", type=int, help="submissions graded in parallel (default: the number of cores)")
    grade.add_argument("--out", help="folder for the gradebook, feedback, Gradescope results and statistics")
    grade.add_argument("--hidden-cases", help="folder of instructor-only case sets (chNN*.py defining CASE_SETS)")
    grade.add_argument("--gradescope", metavar="FILE",
                       help="write Gradescope's results.json for a single submission to FILE")
    grade.add_argument("--case-seconds", type=float, help="time limit of one case (default 10)")
    grade.add_argument("--item-seconds", type=float, help="time limit of one item's cases (default 60)")
    grade.add_argument("--notebook-seconds", type=float, help="time limit of the notebook's cells (default 120)")
    grade.add_argument("--memory-mb", type=float, help="memory cap of each process (default 4096)")
    grade.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="show a progress bar (default: when stderr is a terminal)")
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
    train.add_argument("--seed", type=int, default=None, help="default: the recipe's own seed")
    train.add_argument("--out", help="checkpoint path (default: book/checkpoints/RECIPE.safetensors)")
    train.add_argument("--steps", type=int, default=None,
                       help="train only the first STEPS steps (a quick trial; default: the whole recipe)")
    train.set_defaults(run=_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
