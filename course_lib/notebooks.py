"""Executing notebooks in place, so that they are committed with their outputs.

``course notebooks run book solutions`` re-executes every chapter and solution notebook with
the kernel that nbval uses in the tests. Widget state is not stored: the book cannot run a live
widget offline, so each explorer cell is tagged ``remove-output`` and followed by a static figure.
What a cell prints is stored as one output per stream, however the kernel happened to send it:
otherwise one printed table can be cut into several boxes on the page.
"""
from __future__ import annotations

import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

CELL_TIMEOUT_SECONDS = 300


def notebook_paths(targets: list[str | Path]) -> list[Path]:
    paths = []
    for target in map(Path, targets):
        if target.is_dir():
            paths += sorted(target.glob("*.ipynb"))
        elif target.suffix == ".ipynb" and target.is_file():
            paths.append(target)
        else:
            raise FileNotFoundError(f"{target} is neither a folder nor a .ipynb file")
    return paths


def merge_streams(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Join consecutive ``stream`` outputs of the same stream (stdout, stderr) in every code cell."""
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        merged = []
        for output in cell.get("outputs", []):
            previous = merged[-1] if merged else None
            if (output.output_type == "stream" and previous is not None and previous.output_type == "stream"
                    and previous.name == output.name):
                previous.text = "".join(previous.text) + "".join(output.text)
            else:
                merged.append(output)
        cell.outputs = merged
    return notebook


def execute_in_place(path: Path) -> float:
    """Run ``path`` top to bottom in its own folder and save it with outputs; return seconds taken."""
    notebook = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    client = NotebookClient(
        notebook, timeout=CELL_TIMEOUT_SECONDS, kernel_name="python3",
        resources={"metadata": {"path": str(path.parent.resolve())}},
        store_widget_state=False, record_timing=False,
    )
    client.execute()
    notebook.metadata.pop("widgets", None)
    nbformat.write(merge_streams(notebook), path)
    return time.perf_counter() - started

