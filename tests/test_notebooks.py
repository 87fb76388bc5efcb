"""Executing notebooks in place: what a cell prints is stored as one output per stream."""
from __future__ import annotations

import nbformat

from course_lib.notebooks import merge_streams


def stream(name: str, text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_output("stream", name=name, text=text)


def test_consecutive_outputs_of_one_stream_become_one():
    figure = nbformat.v4.new_output("display_data", data={"text/plain": "<Figure>"})
    cell = nbformat.v4.new_code_cell("print(1)", outputs=[
        stream("stdout", "a\n"), stream("stdout", "b\n"), stream("stderr", "warning\n"), stream("stdout", "c\n"),
        stream("stdout", "d\n"), figure, stream("stdout", "e\n")])
    notebook = merge_streams(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("x"), cell]))
    outputs = notebook.cells[1].outputs
    assert [(o.output_type, o.get("name"), o.get("text")) for o in outputs] == [
        ("stream", "stdout", "a\nb\n"), ("stream", "stderr", "warning\n"), ("stream", "stdout", "c\nd\n"),
        ("display_data", None, None), ("stream", "stdout", "e\n")]
    nbformat.validate(notebook)
