"""Exercise notebooks are generated from the solutions and kept in sync."""
from __future__ import annotations

import json

import nbformat
import pytest

from course_lib import exercises
from course_lib.cli import main


def test_solution_region_becomes_a_stub_at_its_indentation():
    source = "def f(x):\n    '''doc'''\n    ### BEGIN SOLUTION\n    y = x + 1\n    return y\n    ### END SOLUTION\n"
    assert exercises.strip_solution(source) == (
        "def f(x):\n    '''doc'''\n    raise NotImplementedError(\"Replace this line with your code\")"
    )


def test_code_outside_regions_is_kept_and_several_regions_work():
    source = "a = 1\n### BEGIN SOLUTION\nb = 2\n### END SOLUTION\nc = 3\n### BEGIN SOLUTION\nd = 4\n### END SOLUTION"
    stripped = exercises.strip_solution(source)
    assert "a = 1" in stripped and "c = 3" in stripped
    assert "b = 2" not in stripped and "d = 4" not in stripped
    assert stripped.count("NotImplementedError") == 2


@pytest.mark.parametrize("source, words", [
    ("### BEGIN SOLUTION\nx = 1\n", "never closed"),
    ("x = 1\n### END SOLUTION\n", "without a"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "inside another"),
])
def test_malformed_regions_name_the_line(source, words):
    with pytest.raises(exercises.ExerciseError, match=words):
        exercises.strip_solution(source, where="cell 3")


def test_exercises_folder_is_in_sync_with_solutions(project_root, capsys):
    code = main(["exercises", "check", "--solutions", str(project_root / "solutions"),
                 "--exercises", str(project_root / "exercises")])
    assert code == 0, capsys.readouterr().out


def test_check_reports_a_stale_or_missing_exercise(project_root, tmp_path, capsys):
    solutions = project_root / "solutions"
    assert main(["exercises", "check", "--solutions", str(solutions), "--exercises", str(tmp_path)]) == 1
    assert "is missing" in capsys.readouterr().out
    exercises.build(solutions, tmp_path)
    assert main(["exercises", "check", "--solutions", str(solutions), "--exercises", str(tmp_path)]) == 0
    target = next(tmp_path.glob("*.ipynb"))
    target.write_text(target.read_text().replace("NotImplementedError", "NotImplementedErrorX", 1))
    assert main(["exercises", "check", "--solutions", str(solutions), "--exercises", str(tmp_path)]) == 1
    assert "differs" in capsys.readouterr().out


def test_generated_exercises_hide_every_solution_line_and_clear_outputs(project_root):
    for solution_path in sorted((project_root / "solutions").glob("ch*.ipynb")):
        solution = nbformat.read(solution_path, as_version=4)
        exercise = json.loads((project_root / "exercises" / solution_path.name).read_text())
        exercise_code = "\n".join("".join(c["source"]) for c in exercise["cells"] if c["cell_type"] == "code")
        for cell in solution.cells:
            if cell.cell_type != "code" or exercises.BEGIN not in cell.source:
                continue
            region = cell.source.split(exercises.BEGIN)[1].split(exercises.END)[0]
            for line in region.strip().splitlines():
                if len(line.strip()) > 12:  # short lines like `return x` may legitimately recur
                    assert line.strip() not in exercise_code, f"{solution_path.name} leaks {line.strip()!r}"
        code_cells = [c for c in exercise["cells"] if c["cell_type"] == "code"]
        assert all(c["outputs"] == [] and c["execution_count"] is None for c in code_cells)
        assert exercise["metadata"]["lm_course"]["assignment"] == solution_path.name[:4]
