"""Conventions every committed notebook follows, so that the book and CI stay trustworthy.

Book chapters and solution notebooks are committed with their outputs: the book shows those
outputs and ``make test`` re-executes each notebook with nbval and compares. So every notebook must
be valid nbformat 4 for the ``python3`` kernel, fully executed (no cell left unrun, no error output,
no huge output), and seeded in its first code cell. A book chapter ``book/NN_topic.ipynb`` also has
a title, a summary, exercises, references, at least one figure, and uses ``course_lib``.

Each check returns the list of problems it finds, so a failure says what to fix and where; the
checks are tested here too, on small notebooks built to break each rule.
"""
from __future__ import annotations

import ast
import base64
import json
import struct
import re
from functools import lru_cache
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from markdown_it import MarkdownIt

from course_lib import viz

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "book").glob("*.ipynb")) + sorted((REPO / "solutions").glob("*.ipynb"))
CHAPTER_NAME = re.compile(r"\d{2}_\w+\.ipynb")
CHAPTERS = [path for path in NOTEBOOKS if path.parent.name == "book" and CHAPTER_NAME.fullmatch(path.name)]
MAX_OUTPUT_BYTES = 200_000  # images excepted: a figure may be bigger than any text output should be
IMAGE_MIME_TYPES = ("image/png", "image/jpeg", "image/svg+xml", "image/gif")
MAX_LINE_CHARS = 88  # what the book's column shows of code and printed text without scrolling sideways
# What the book shows of a cell's output, richest first (as myst-nb chooses): text/plain is
# only on the page when the output has none of the others.
RICHER_THAN_TEXT = ("application/vnd.jupyter.widget-view+json", "text/html", "text/markdown",
                    "text/latex", *IMAGE_MIME_TYPES)
FIGURE_MARGIN_INCHES = 0.3  # what a tight bounding box may add around a figure of the column's width
CODE_FENCE = re.compile(r"^(```|~~~)")
CITATION = re.compile(r"\{cite(:\w+)?\}`|```\{bibliography\}")


def notebook_id(path: Path) -> str:
    return str(path.relative_to(REPO))


@lru_cache(maxsize=None)
def load(path: Path) -> nbformat.NotebookNode:
    try:
        return nbformat.read(path, as_version=nbformat.NO_CONVERT)
    except Exception as error:  # unreadable JSON, not a notebook at all, ...
        pytest.fail(f"{notebook_id(path)} cannot be read as a notebook: {type(error).__name__}: {error}")


def code_cells(notebook: nbformat.NotebookNode) -> list[tuple[int, nbformat.NotebookNode]]:
    """The non-empty code cells, with their 1-based position among all cells (as Jupyter shows it)."""
    return [(number, cell) for number, cell in enumerate(notebook.cells, start=1)
            if cell.cell_type == "code" and cell.source.strip()]


def python_syntax(source: str) -> ast.Module | None:
    """The cell parsed as Python once IPython magics are turned into calls; None if it does not parse."""
    try:
        return ast.parse(TransformerManager().transform_cell(source))
    except SyntaxError:
        return None


# ------------------------------------------------------------------ every notebook

def format_problems(notebook: nbformat.NotebookNode) -> list[str]:
    problems = []
    if notebook.get("nbformat") != 4:
        problems.append(f"nbformat {notebook.get('nbformat')}: save it as nbformat 4 (any current Jupyter does)")
    try:
        nbformat.validate(notebook)
    except nbformat.ValidationError as error:
        problems.append(f"not a valid notebook: {error.message}")
    kernel = notebook.get("metadata", {}).get("kernelspec", {}).get("name")
    if kernel != "python3":
        problems.append(f"kernelspec is {kernel!r}; it must be 'python3' (Kernel > Change kernel > Python 3)")
    return problems


def output_expected(source: str) -> str | None:
    """Why this code must have produced output (a reason to quote), or None if it may be silent.

    Deliberately cautious: only a top-level ``print(...)``/``display(...)`` call, or a final bare
    expression that is not a call (a call may return None) and is not silenced with ``;``.
    """
    if source.lstrip().startswith("%%"):  # a cell magic (%%capture, %%time, ...) decides for itself
        return None
    tree = python_syntax(source)
    if tree is None or not tree.body:
        return None
    for statement in tree.body:
        if (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)
                and isinstance(statement.value.func, ast.Name) and statement.value.func.id in ("print", "display")):
            return f"it calls {statement.value.func.id}() at line {statement.lineno}"
    last = tree.body[-1]
    silenced = source.rstrip().split("\n")[-1].split("#")[0].rstrip().endswith(";")
    if (isinstance(last, ast.Expr) and not silenced
            and not isinstance(last.value, (ast.Call, ast.Await, ast.Yield, ast.YieldFrom))
            and not (isinstance(last.value, ast.Constant) and last.value.value in (None, Ellipsis))):
        return "it ends with an expression whose value Jupyter displays"
    return None


def execution_problems(notebook: nbformat.NotebookNode) -> list[str]:
    problems = []
    never_run = [str(number) for number, cell in code_cells(notebook) if cell.get("execution_count") is None]
    if never_run:
        which = f"cell {never_run[0]} was" if len(never_run) == 1 else f"cells {', '.join(never_run)} were"
        problems.append(f"{which} never run (no execution_count): run the whole notebook "
                        "(`make notebooks`) and save it with its outputs")
    for number, cell in code_cells(notebook):
        if cell.get("execution_count") is None:
            continue
        outputs = cell.get("outputs", [])
        for output in outputs:
            if output.get("output_type") == "error":
                problems.append(f"cell {number} has an error output ({output.get('ename')}: "
                                f"{str(output.get('evalue'))[:120]})")
        reason = output_expected(cell.source)
        if not outputs and reason:
            problems.append(f"cell {number} has no stored output although {reason}: save the notebook after running it")
    return problems


def output_size_problems(notebook: nbformat.NotebookNode) -> list[str]:
    problems = []
    for number, cell in code_cells(notebook):
        for output in cell.get("outputs", []):
            text_part = dict(output)
            if "data" in output:
                text_part["data"] = {mime: value for mime, value in output["data"].items() if mime not in IMAGE_MIME_TYPES}
            size = len(json.dumps(text_part).encode())
            if size > MAX_OUTPUT_BYTES:
                problems.append(f"cell {number} stores a {output.get('output_type')} output of {size / 1000:.0f} KB "
                                f"(limit {MAX_OUTPUT_BYTES // 1000} KB): print a summary, not the whole object")
    return problems


def split_stream_problems(notebook: nbformat.NotebookNode) -> list[str]:
    """A cell's printed text split into several outputs of one stream shows as several boxes on the page."""
    problems = []
    for number, cell in code_cells(notebook):
        outputs = cell.get("outputs", [])
        split = [a.get("name") for a, b in zip(outputs, outputs[1:])
                 if a.get("output_type") == b.get("output_type") == "stream" and a.get("name") == b.get("name")]
        if split:
            problems.append(f"cell {number} stores its {split[0]} output in pieces: "
                            "run the notebook with `course notebooks run`, which joins them")
    return problems


def shown_text_lines(output: dict) -> list[str]:
    """The lines of text an output puts on the book's page (none for a figure or a widget)."""
    if output.get("output_type") == "stream":
        text = output.get("text", "")
    elif output.get("output_type") in ("execute_result", "display_data"):
        data = output.get("data", {})
        text = "" if any(mime in data for mime in RICHER_THAN_TEXT) else data.get("text/plain", "")
    else:
        return []
    return ("".join(text) if isinstance(text, list) else text).splitlines()


def fenced_code_lines(markdown: str) -> list[str]:
    """The lines inside the code blocks (``` or ~~~ fences) of a markdown cell."""
    lines, inside = [], False
    for line in markdown.splitlines():
        if CODE_FENCE.match(line.strip()):
            inside = not inside
        elif inside:
            lines.append(line)
    return lines


def line_width_problems(notebook: nbformat.NotebookNode, limit: int = MAX_LINE_CHARS) -> list[str]:
    """Lines of code, of code blocks in the text, or of printed output longer than ``limit``."""
    problems = []

    def report(number: int, where: str, lines: list[str]) -> None:
        for line in lines:
            if len(line) > limit:
                problems.append(f"cell {number}: {where} line of {len(line)} characters (at most {limit} "
                                f"fit the book's column): {line[:60]!r}...")

    for number, cell in enumerate(notebook.cells, start=1):
        if cell.cell_type == "code":
            report(number, "code", cell.source.splitlines())
            for output in cell.get("outputs", []):
                report(number, "output", shown_text_lines(output))
        elif cell.cell_type == "markdown":
            report(number, "code-block", fenced_code_lines(cell.source))
    return problems


def png_size_and_dpi(png: bytes) -> tuple[int, int, float | None]:
    """Width and height in pixels of a PNG, and its resolution in dots per inch (None if unstated)."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", png[16:24])
    at = png.find(b"pHYs")
    if at < 0:
        return width, height, None
    per_unit, _, unit = struct.unpack(">IIB", png[at + 4:at + 13])
    return width, height, (round(per_unit * 0.0254, 1) if unit == 1 else None)


def figure_size_problems(notebook: nbformat.NotebookNode) -> list[str]:
    """Figures drawn wider than the book's column (they are shrunk and their labels with them) or
    at less than the shared resolution (soft on high-resolution screens)."""
    problems = []
    for number, cell in code_cells(notebook):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" not in data:
                continue
            width, _, dpi = png_size_and_dpi(base64.b64decode(data["image/png"]))
            if dpi is None or dpi < viz.DPI - 1:
                shown = "an unknown resolution" if dpi is None else f"{dpi:g} dpi"
                problems.append(f"cell {number}: a figure at {shown}; the book's figures are drawn "
                                f"at {viz.DPI} dpi (course_lib.viz): re-run the notebook")
            elif width / dpi > viz.COLUMN_WIDTH + FIGURE_MARGIN_INCHES:
                problems.append(f"cell {number}: a figure {width / dpi:.1f} inches wide; at most "
                                f"{viz.COLUMN_WIDTH} fit the column: leave figsize to course_lib.viz")
    return problems


def calls(tree: ast.AST, name: str) -> bool:
    return any(isinstance(node, ast.Call)
               and ((isinstance(node.func, ast.Name) and node.func.id == name)
                    or (isinstance(node.func, ast.Attribute) and node.func.attr == name))
               for node in ast.walk(tree))


def seeding_problems(notebook: nbformat.NotebookNode) -> list[str]:
    cells = code_cells(notebook)
    if not cells:
        return ["the notebook has no code cell; its first code cell must call seed_everything(...)"]
    number, first = cells[0]
    tree = python_syntax(first.source)
    seeded = calls(tree, "seed_everything") if tree is not None else "seed_everything(" in first.source
    if not seeded:
        return [f"the first code cell (cell {number}) does not call seed_everything(...): add "
                "`from course_lib import seed_everything` and `seed_everything(0)` so every run gives the same numbers"]
    return []


# ------------------------------------------------------------------ book chapters

def headings(notebook: nbformat.NotebookNode) -> list[tuple[int, str]]:
    """(level, text) of every Markdown heading, in order; headings inside code blocks do not count."""
    parser = MarkdownIt("commonmark")
    found = []
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            continue
        tokens = parser.parse(cell.source)
        for opening, inline in zip(tokens, tokens[1:]):
            if opening.type == "heading_open":
                found.append((int(opening.tag[1:]), inline.content.strip()))
    return found


def structure_problems(notebook: nbformat.NotebookNode) -> list[str]:
    problems = []
    found = headings(notebook)
    titles = [text for level, text in found if level == 1]
    if not titles:
        problems.append("no level-1 title: start the chapter with a Markdown cell `# N. Title`")
    elif found[0][0] != 1:
        problems.append(f"the first heading ({found[0][1]!r}) is not the level-1 title")
    if len(titles) > 1:
        problems.append(f"{len(titles)} level-1 headings {titles}: the chapter has one title; use ## for its sections")
    sections = [text.lower() for level, text in found if level > 1]
    for wanted in ("summary", "exercises"):
        if not any(wanted in text for text in sections):
            problems.append(f"no '{wanted.capitalize()}' section heading (## {wanted.capitalize()})")
    markdown = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    if not any("references" in text for text in sections) and not CITATION.search(markdown):
        problems.append("no '## References' section and no {cite}`key` citation of the original papers")
    return problems


def figure_problems(notebook: nbformat.NotebookNode) -> list[str]:
    for _, cell in code_cells(notebook):
        for output in cell.get("outputs", []):
            if any(mime in output.get("data", {}) for mime in IMAGE_MIME_TYPES):
                return []
    return ["no figure among the stored outputs: a chapter shows at least one plot (and the static "
            "fallback of its explorer)"]


def imports_course_lib(source: str) -> bool:
    tree = python_syntax(source)
    if tree is None:
        return re.search(r"^\s*(from|import)\s+course_lib\b", source, re.MULTILINE) is not None
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "course_lib":
            return True
        if isinstance(node, ast.Import) and any(alias.name.split(".")[0] == "course_lib" for alias in node.names):
            return True
    return False


def course_lib_problems(notebook: nbformat.NotebookNode) -> list[str]:
    if any(imports_course_lib(cell.source) for _, cell in code_cells(notebook)):
        return []
    return ["the chapter never imports course_lib: its code should use the tested implementations"]


# What every notebook keeps, and what every book chapter keeps besides: (convention, check, notebooks).
CONVENTIONS = [
    ("is nbformat 4 for Python 3", format_problems, NOTEBOOKS),
    ("is stored fully executed, without errors", execution_problems, NOTEBOOKS),
    ("has small outputs", output_size_problems, NOTEBOOKS),
    ("stores each cell's printed text in one piece", split_stream_problems, NOTEBOOKS),
    ("seeds everything first", seeding_problems, NOTEBOOKS),
    ("has figures that fit the column and are sharp", figure_size_problems, CHAPTERS),
    ("has code and printed lines that fit the column (wrap or shorten these)", line_width_problems, CHAPTERS),
    ("has a title, a summary, exercises and references", structure_problems, CHAPTERS),
    ("has a figure", figure_problems, CHAPTERS),
    ("uses course_lib", course_lib_problems, CHAPTERS),
]


@pytest.mark.parametrize("convention, problems_of, path", [
    pytest.param(convention, problems_of, path, id=f"{notebook_id(path)}: {convention.split(' (')[0]}")
    for convention, problems_of, paths in CONVENTIONS for path in paths])
def test_notebook_keeps_the_convention(convention: str, problems_of, path: Path):
    problems = problems_of(load(path))
    assert not problems, f"{notebook_id(path)} {convention}? No:\n" + "\n".join(problems)


def test_every_book_notebook_is_a_numbered_chapter():
    strays = [notebook_id(path) for path in NOTEBOOKS if path.parent.name == "book" and path not in CHAPTERS]
    assert not strays, f"book notebooks must be named NN_topic.ipynb (two digits, underscore, topic): {strays}"


# ------------------------------------------------------------------ the checks themselves

def good_chapter() -> nbformat.NotebookNode:
    """A small notebook that follows every convention; the tests below break one rule at a time."""
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    figure = nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"})
    notebook = nbformat.v4.new_notebook(cells=[
        md("# 1. n-gram models\n\n```text\n# not a heading\n```"),
        code("from course_lib import seed_everything\nseed_everything(0)", execution_count=1),
        code("x = 2\nprint(x)", execution_count=2,
             outputs=[nbformat.v4.new_output("stream", name="stdout", text="2\n")]),
        code("plot(x);", execution_count=3, outputs=[figure]),
        md("## Summary\n\nCounting works.\n\n## Exercises\n\nSee the exercises.\n\n"
           "## References\n\n{cite}`shannon1948mathematical`"),
    ])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return notebook


def test_a_notebook_following_every_convention_passes_every_check():
    notebook = good_chapter()
    for check in (format_problems, execution_problems, output_size_problems, seeding_problems,
                  structure_problems, figure_problems, course_lib_problems):
        assert check(notebook) == [], check.__name__


def test_checks_report_lines_wider_than_the_column_but_not_what_the_page_does_not_show():
    notebook = good_chapter()
    assert line_width_problems(notebook) == []
    long = "x" * (MAX_LINE_CHARS + 1)
    notebook.cells[2].source = f"print('{long}')"
    notebook.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"ok\n{long}\n")]
    notebook.cells[0].source += f"\n\n```python\n{long}\n```\n\n{long} (prose wraps)"
    figure_with_long_repr = nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=",
                                                                        "text/plain": long})
    notebook.cells[3].outputs = [figure_with_long_repr]
    problems = line_width_problems(notebook)
    assert [problem.split(" line")[0] for problem in problems] == ["cell 1: code-block", "cell 3: code",
                                                                  "cell 3: output"]
    assert line_width_problems(notebook, limit=len(long) + 10) == []


def test_checks_report_a_figure_too_wide_or_too_soft_for_the_column():
    import io

    from matplotlib.figure import Figure

    def png(width_inches: float, dpi: int) -> str:
        buffer = io.BytesIO()
        Figure(figsize=(width_inches, 1.0), dpi=dpi).savefig(buffer, format="png")
        return base64.b64encode(buffer.getvalue()).decode()

    notebook = good_chapter()
    figure = notebook.cells[3].outputs[0]
    for width_inches, dpi, expected in [(viz.COLUMN_WIDTH, viz.DPI, []), (9.0, viz.DPI, ["inches wide"]),
                                        (6.0, 100, ["100 dpi"])]:
        figure.data["image/png"] = png(width_inches, dpi)
        problems = figure_size_problems(notebook)
        assert len(problems) == len(expected) and all(w in p for w, p in zip(expected, problems)), problems


def test_checks_report_a_wrong_kernel_and_an_invalid_notebook():
    notebook = good_chapter()
    notebook.metadata.kernelspec.name = "ir"
    notebook.cells[1]["execution_count"] = "one"
    problems = format_problems(notebook)
    assert any("kernelspec is 'ir'" in problem for problem in problems)
    assert any("not a valid notebook" in problem for problem in problems)


def test_checks_report_unexecuted_failed_and_unsaved_cells():
    notebook = good_chapter()
    notebook.cells[0] = nbformat.v4.new_code_cell("import numpy")  # never run
    notebook.cells[1]["execution_count"] = None
    notebook.cells[2]["outputs"] = []  # print(x) ran but its output was not saved
    notebook.cells[3]["outputs"].append(nbformat.v4.new_output("error", ename="KeyError", evalue="'w'", traceback=[]))
    problems = execution_problems(notebook)
    assert [problem.split(" ")[1] for problem in problems] == ["1,", "3", "4"]
    assert "never run" in problems[0] and "print()" in problems[1] and "KeyError" in problems[2]


@pytest.mark.parametrize("source, expected", [
    ("x = 1", False),
    ("model(x)", False),  # a call may return None
    ("losses[-1];", False),
    ("%%capture\nprint(1)", False),
    ("def show():\n    print(1)", False),
    ("losses[-1]", True),
    ("%matplotlib inline\nprint('ready')", True),
    ("for step in range(3):\n    pass\nprint(step)", True),
])
def test_output_expected_only_when_the_code_surely_displays_something(source: str, expected: bool):
    assert (output_expected(source) is not None) == expected


def test_checks_report_a_huge_text_output_but_not_a_big_image():
    notebook = good_chapter()
    notebook.cells[3].outputs[0]["data"]["image/png"] = "A" * (2 * MAX_OUTPUT_BYTES)
    assert output_size_problems(notebook) == []
    notebook.cells[2].outputs[0]["text"] = "0.5\n" * MAX_OUTPUT_BYTES
    assert "cell 3" in output_size_problems(notebook)[0]


def test_checks_report_printed_text_stored_in_pieces():
    notebook = good_chapter()
    assert split_stream_problems(notebook) == []
    printed = notebook.cells[2]
    printed.outputs = [nbformat.v4.new_output("stream", name="stdout", text="0.5\n"),
                       nbformat.v4.new_output("stream", name="stdout", text="0.25\n")]
    assert "cell 3 stores its stdout output in pieces" in split_stream_problems(notebook)[0]
    printed.outputs = [nbformat.v4.new_output("stream", name="stdout", text="0.5\n"),
                       nbformat.v4.new_output("stream", name="stderr", text="warning\n")]
    assert split_stream_problems(notebook) == []


def test_checks_report_a_notebook_that_does_not_seed_first():
    notebook = good_chapter()
    notebook.cells[1], notebook.cells[2] = notebook.cells[2], notebook.cells[1]
    assert "does not call seed_everything" in seeding_problems(notebook)[0]
    notebook.cells[1].source = "# seed_everything(0) is commented out"
    assert seeding_problems(notebook)
    notebook.cells[1].source = "import course_lib\ncourse_lib.seed_everything(1)"
    assert seeding_problems(notebook) == []


def test_checks_report_missing_chapter_parts():
    notebook = good_chapter()
    notebook.cells[0].source = "## Introduction"
    notebook.cells[-1].source = "## Exercises\n\nSee the exercises."
    notebook.cells[1].source = "import numpy as np\nseed_everything(0)"
    notebook.cells[3].outputs = []
    problems = structure_problems(notebook)
    assert any("no level-1 title" in problem for problem in problems)
    assert any("'Summary'" in problem for problem in problems)
    assert any("References" in problem for problem in problems)
    assert not any("'Exercises'" in problem for problem in problems)
    assert figure_problems(notebook) and course_lib_problems(notebook)


def test_a_citation_can_stand_in_for_a_references_heading():
    notebook = good_chapter()
    notebook.cells[-1].source = "## Summary\n\nAs {cite:t}`kneser1995improved` showed.\n\n## Exercises\n"
    assert structure_problems(notebook) == []
    notebook.cells[0].source = "# Title\n\n# Second title"
    assert "2 level-1 headings" in structure_problems(notebook)[0]
