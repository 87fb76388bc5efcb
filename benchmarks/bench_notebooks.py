"""Wall time of executing each book chapter and solution notebook, against the 90 s chapter budget.

Run: .venv/bin/python benchmarks/bench_notebooks.py [NOTEBOOK ...]
     (default: every book/*.ipynb and solutions/*.ipynb)

Each notebook runs top to bottom in a fresh ``python3`` kernel (nbclient, 300 s per cell, the
limit `make test` uses) inside a temporary copy of its folder, so the committed notebooks and
anything next to them are never modified. Prints one line per notebook and the total; notebooks
over budget are flagged. Exits with status 1 if a notebook fails to execute.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

REPO = Path(__file__).resolve().parents[1]
CHAPTER_BUDGET_SECONDS = 90.0
CELL_TIMEOUT_SECONDS = 300
KERNEL = "python3"


def default_notebooks() -> list[Path]:
    return sorted((REPO / "book").glob("*.ipynb")) + sorted((REPO / "solutions").glob("*.ipynb"))


def execute_seconds(notebook_path: Path) -> float:
    """Seconds to run ``notebook_path`` from a fresh kernel to its last cell, in a scratch copy of its folder."""
    with tempfile.TemporaryDirectory(prefix="bench-notebooks-") as scratch:
        folder = Path(scratch) / notebook_path.parent.name
        shutil.copytree(notebook_path.parent, folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "_build"))
        notebook = nbformat.read(folder / notebook_path.name, as_version=4)
        client = NotebookClient(notebook, timeout=CELL_TIMEOUT_SECONDS, kernel_name=KERNEL,
                                resources={"metadata": {"path": str(folder)}})
        start = time.perf_counter()
        client.execute()  # kernel start-up included: a reader pays for it too
        return time.perf_counter() - start


def resolve(arguments: list[str]) -> list[Path]:
    if not arguments:
        return default_notebooks()
    paths = []
    for argument in arguments:
        path = Path(argument).resolve()
        if path.suffix != ".ipynb":
            raise SystemExit(f"bench_notebooks: {argument} is not a notebook (.ipynb); pass notebook files")
        if not path.is_file():
            raise SystemExit(f"bench_notebooks: {argument} does not exist")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", help="notebooks to time (default: book/ and solutions/)")
    notebooks = resolve(parser.parse_args(argv).notebooks)
    if not notebooks:
        print("bench_notebooks: no notebooks in book/ or solutions/ yet")
        return 0

    width = max(len(display_name(path)) for path in notebooks)
    print(f"{'notebook':<{width}}  {'seconds':>8}  (budget {CHAPTER_BUDGET_SECONDS:.0f} s, kernel {KERNEL})")
    total, failures, over_budget = 0.0, [], []
    for path in notebooks:
        name = display_name(path)
        try:
            seconds = execute_seconds(path)
        except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:
            failures.append(name)
            summary = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
            print(f"{name:<{width}}  {'FAILED':>8}  {summary[:200]}")
            continue
        total += seconds
        flag = ""
        if seconds > CHAPTER_BUDGET_SECONDS:
            over_budget.append(name)
            flag = f"  OVER BUDGET by {seconds - CHAPTER_BUDGET_SECONDS:.1f} s"
        print(f"{name:<{width}}  {seconds:8.1f}{flag}", flush=True)
    print(f"{'total':<{width}}  {total:8.1f}  ({len(notebooks) - len(failures)} of {len(notebooks)} executed)")
    if over_budget:
        print(f"over the {CHAPTER_BUDGET_SECONDS:.0f} s budget: {', '.join(over_budget)}")
    if failures:
        print(f"failed to execute: {', '.join(failures)}")
    return 1 if failures else 0


def display_name(path: Path) -> str:
    return str(path.relative_to(REPO)) if REPO in path.parents else str(path)


if __name__ == "__main__":
    sys.exit(main())
