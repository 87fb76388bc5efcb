"""Throughput of `course grade` on a batch of Chapter 1 submissions, with 1 and with 2 workers.

Run: .venv/bin/python benchmarks/bench_grading.py [--copies 100] [--jobs 1 2]

The batch is ``copies`` notebooks in all: the solution, the untouched exercise, and two broken
variants (a wrong answer, an endless loop in one item), in turn. The solution's first cell calls
``seed_everything``, which imports PyTorch; the grader's fork server has imported it once already.
Prints, for each worker count: the wall time of the batch, the mean and largest time per submission
(from reading the notebook to its verdicts) and the throughput; then the speed-up, and the start-up
cost paid once (the fork server importing PyTorch).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import nbformat

from course_lib.grading.runner import Limits, grade_batch

REPO = Path(__file__).resolve().parents[1]
SOLUTION = REPO / "solutions" / "ch01_ngrams.ipynb"
EXERCISE = REPO / "exercises" / "ch01_ngrams.ipynb"
LIMITS = Limits(case_seconds=0.5, item_seconds=1)  # the endless loop costs 1 s


def variant(folder: Path, name: str, old: str, new: str) -> Path:
    notebook = nbformat.read(SOLUTION, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code" and old in cell.source:
            cell.source = cell.source.replace(old, new)
    path = folder / f"{name}.ipynb"
    nbformat.write(notebook, path)
    return path


def batch(folder: Path, copies: int) -> list[tuple[str, Path, None]]:
    kinds = {
        "solution": SOLUTION,
        "untouched": EXERCISE,
        "wrong": variant(folder, "wrong_ch01", "+ k * vocab_size)", "+ vocab_size)"),
        "endless": variant(folder, "endless_ch01", "def continuation_probability(bigram_counts):\n",
                           "def continuation_probability(bigram_counts):\n    while True: pass\n"),
    }
    labels = list(kinds)
    return [(f"{i:03d}-{labels[i % 4]}", kinds[labels[i % 4]], None) for i in range(copies)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=100)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as scratch:
        folder = Path(scratch)
        first = time.perf_counter()  # the fork server starts and imports PyTorch before its first fork
        grade_batch(batch(folder, 1), "ch01", LIMITS, jobs=1)
        cold = time.perf_counter() - first
        submissions = batch(folder, args.copies)
        print(f"{len(submissions)} submissions of ch01 (solution, untouched, wrong answer, endless loop in turn)")
        print(f"first submission, fork server cold: {cold:.2f} s")
        throughput = {}
        for jobs in args.jobs:
            start = time.perf_counter()
            results = grade_batch(submissions, "ch01", LIMITS, jobs=jobs)
            wall = time.perf_counter() - start
            seconds = [r.seconds for r in results]
            throughput[jobs] = len(results) / wall
            by_kind = {}
            for result in results:
                by_kind.setdefault(result.name.split("-", 1)[1], []).append(result.seconds)
            kinds = ", ".join(f"{kind} {statistics.mean(s):.2f}" for kind, s in by_kind.items())
            print(f"--jobs {jobs}: {wall:6.1f} s wall, {statistics.mean(seconds):.2f} s mean per submission "
                  f"(max {max(seconds):.2f}), {throughput[jobs]:.1f} submissions/s")
            print(f"          mean seconds by kind: {kinds}")
        if 1 in throughput:
            for jobs in throughput:
                if jobs != 1:
                    print(f"speed-up with {jobs} jobs: {throughput[jobs] / throughput[1]:.2f}x")
    print(f"total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
