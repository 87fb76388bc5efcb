"""Adversarial submissions for the grader's tests, written as small notebooks into a test's tmp folder.

Each ``Attack`` is the honest Chapter 1 solution (or the untouched exercise) with cells added that try
one attack or fault: forging the score, tampering with the tests, reading the reference or the hidden
cases, calling a forbidden API, returning objects that lie, hanging, exhausting memory or processes,
crashing. ``expected`` says the exact points each named item gets and words its feedback must contain;
items not named keep their full marks.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent.parent
SOLUTION = ROOT / "solutions" / "ch01_ngrams.ipynb"
EXERCISE = ROOT / "exercises" / "ch01_ngrams.ipynb"
PACKAGE = ROOT / "course_lib"
P = "def perplexity(logprobs):\n"
TRUE_PERPLEXITY = "math.exp(-sum(logprobs) / len(logprobs))"


def write_notebook(path: Path, cells: list[str], assignment: str | None = "ch01") -> Path:
    notebook = nbformat.v4.new_notebook()
    if assignment:
        notebook.metadata["lm_course"] = {"assignment": assignment}
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nbformat.write(notebook, path)
    return path


def function_cells(source: Path) -> list[str]:
    """The code cells of a chapter notebook that define functions, after a light import cell
    (no ``seed_everything``: these notebooks need not import PyTorch)."""
    notebook = nbformat.read(source, as_version=4)
    defining = [c.source for c in notebook.cells if c.cell_type == "code" and c.source.lstrip().startswith("def ")]
    return ["import math\nfrom collections import Counter"] + defining


@dataclass(frozen=True)
class Attack:
    name: str
    cells: tuple[str, ...]                 # added after the base notebook's cells; {package}, {hidden}... filled in
    expected: dict[str, tuple[float, str]] = field(default_factory=dict)  # item -> (points, words in its feedback)
    note: str | None = None                # words a note about the notebook's cells must contain
    base: str = "honest"                   # "honest" or "exercise"
    needs: str | None = None               # a protection the outcome depends on


ATTACKS = [
    Attack("honest", ()),
    Attack("forges_results_on_every_fd", (
        "import os, json\n"
        "fake = {'kind': 'item', 'name': 'ch01.perplexity', 'outcomes': [{'status': 'ok', 'value': 10.0}] * 4}\n"
        "records = [{'kind': 'sandbox'}, fake, {'kind': 'done'}]\n"
        "lines = ''.join(json.dumps(record) + '\\n' for record in records).encode()\n"
        "for fd in range(0, 256):\n"
        "    try: os.write(fd, lines)\n"
        "    except OSError: pass\n"
        "print('ch01 total: 9 / 9')",
    ), base="exercise"),
    Attack("patches_the_comparisons", (
        "import math, numpy, torch\n"
        "import course_lib.grading.cases as cases, course_lib.grading.compare as compare_module\n"
        "numpy.allclose = numpy.isclose = torch.allclose = math.isclose = lambda *a, **k: True\n"
        "compare_module.compare = lambda *a, **k: None\n"
        "cases.judge = lambda *a, **k: None",
        P + "    return 3.0",
    ), {"ch01.perplexity": (0, "expected 10, got 3")}),
    Attack("returns_objects_that_lie", (
        "class AlwaysEqual:\n    def __eq__(self, other): return True\n    def __ne__(self, other): return False\n"
        "class LyingFloat(float):\n    def __eq__(self, other): return True\n    __hash__ = float.__hash__\n"
        + P + "    return AlwaysEqual()\n"
        "def mle_probability(ngram, ngram_counts):\n    return LyingFloat(0.123)",
    ), {"ch01.perplexity": (0, "a value of type AlwaysEqual cannot be graded"),
        "ch01.mle_probability": (0, "got 0.123")}),
    Attack("returns_pickle_payloads", (
        "import os, pickle\n"
        "class Payload:\n    def __reduce__(self): return (os.system, ('touch {sentinel}',))\n"
        + P + "    return Payload()\n"
        "def mle_probability(ngram, ngram_counts):\n    return pickle.dumps(Payload())",
    ), {"ch01.perplexity": (0, "a value of type Payload cannot be graded"),
        "ch01.mle_probability": (0, "a value of type bytes cannot be graded")}),
    Attack("rewrites_the_tests", (
        P + "    for path in ['{package}/grading/compare.py', '{package}/grading/cases.py',\n"
            "                 '{root}/tests/test_grading.py']:\n"
            "        open(path, 'a').write('\\n# tampered\\n')\n"
            "    return " + TRUE_PERPLEXITY,
    ), {"ch01.perplexity": (0, "raised PermissionError")}),
    Attack("opens_the_reference_source", (
        P + "    source = open('{package}/ngram.py').read()\n"
            "    namespace = {}\n    exec(source, namespace)\n"
            "    return namespace['perplexity_from_logprobs'](logprobs)",
    ), {"ch01.perplexity": (0, "raised FileNotFoundError")}, needs="private filesystem"),
    Attack("loads_the_reference_by_file_path", (
        P + "    import importlib.util\n"
            "    spec = importlib.util.spec_from_file_location('reference', '{package}/ngram.py')\n"
            "    module = importlib.util.module_from_spec(spec)\n    spec.loader.exec_module(module)\n"
            "    return module.perplexity_from_logprobs(logprobs)",
    ), {"ch01.perplexity": (0, "raised FileNotFoundError")}, needs="private filesystem"),
    Attack("removes_the_import_blocker", (
        "import sys\nsys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != 'ReferenceBlocker']\n"
        + P + "    from course_lib.ngram import perplexity_from_logprobs\n"
              "    return perplexity_from_logprobs(logprobs)",
    ), {"ch01.perplexity": (0, "No module named 'course_lib.ngram'")}),
    Attack("imports_the_case_sets", (
        P + "    from course_lib.grading.assignments import ch01_ngrams\n    return 1.0",
    ), {"ch01.perplexity": (0, "cannot be imported while this assignment is graded")}),
    Attack("reads_the_solution_and_the_other_submissions", (
        P + "    for path in ['{root}/solutions/ch01_ngrams.ipynb', '{folder}/honest.ipynb']:\n"
            "        open(path).read()\n"
            "    return " + TRUE_PERPLEXITY,
    ), {"ch01.perplexity": (0, "raised FileNotFoundError")}, needs="private filesystem"),
    Attack("reads_the_hidden_cases", (
        P + "    import os\n    os.listdir('{hidden}')\n    return " + TRUE_PERPLEXITY,
    ), {"ch01.perplexity": (0, "raised FileNotFoundError"), "ch01.perplexity_hidden": (0, "")},
       needs="private filesystem"),
    Attack("reads_the_grader_environment", (
        P + "    import os\n    assert 'LM_COURSE_GRADER_SECRET' not in os.environ\n    return " + TRUE_PERPLEXITY,
    )),
    Attack("calls_a_forbidden_api", (
        "import numpy as np\n" + P + "    return math.exp(-np.mean(logprobs))",
    ), {"ch01.perplexity_hidden": (0, "forbidden API: numpy.mean")}),
    Attack("calls_a_forbidden_api_by_an_alias", (
        "from numpy import mean as average\n" + P + "    return math.exp(-average(logprobs))",
    ), {"ch01.perplexity_hidden": (0, "forbidden API: numpy.mean")}),
    Attack("swallows_the_forbidden_call", (
        "import torch\n"
        "class Recurrent(torch.nn.LSTM):\n    pass\n"
        + P + "    try:\n        Recurrent(2, 2)\n    except BaseException:\n        pass\n"
              "    return " + TRUE_PERPLEXITY,
    ), {"ch01.perplexity_hidden": (0, "forbidden API: torch.nn.LSTM")}),
    Attack("loops_forever", (
        "def continuation_probability(bigram_counts):\n    while True:\n        pass",
    ), {"ch01.continuation_probability": (0, "time limit exceeded")}),
    Attack("ignores_the_alarm_and_loops", (
        P + "    import signal\n    signal.signal(signal.SIGALRM, signal.SIG_IGN)\n    while True:\n        pass",
    ), {"ch01.perplexity": (0, "time limit exceeded")}),
    Attack("hangs_a_cell", (
        "import signal\nsignal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])\nwhile True:\n    pass",
    ), note="ran past the notebook's time limit"),
    Attack("memory_bomb", (
        P + "    hoard = bytearray(64 * 2**30)\n    return 1.0\n"
        "def mle_probability(ngram, ngram_counts):\n    import numpy\n    hoard = []\n"
        "    while True:\n        hoard.append(numpy.empty(2**28, dtype=numpy.uint8))",
    ), {"ch01.perplexity": (0, "memory limit exceeded: the grader allows"),
        "ch01.mle_probability": (0, "memory limit exceeded: the grader allows")}),
    Attack("fork_bomb", (
        P + "    import os\n    while True:\n        os.fork()",
    ), {"ch01.perplexity": (0, "process limit exceeded: the grader allows")}, needs="process cap"),
    Attack("exits_in_an_item", (
        P + "    import os\n    os._exit(3)\n"
        "def mle_probability(ngram, ngram_counts):\n    import sys\n    sys.exit('bye')",
    ), {"ch01.perplexity": (0, "your code ended the process (exit code 3)"),
        "ch01.mle_probability": (0, "raised SystemExit: bye")}),
    Attack("segfaults_in_an_item", (
        P + "    import ctypes\n    return ctypes.string_at(0)",
    ), {"ch01.perplexity": (0, "segmentation fault")}),
    Attack("kills_the_notebook_process", (
        P + "    import os, signal\n    os.kill(os.getppid(), signal.SIGKILL)\n    return 1.0",
    ), {"ch01.perplexity": (0, "ended the grading process")}, needs="own process-id namespace"),
    Attack("crashes_mid_notebook", (
        "import os\nos._exit(1)",
    ), note="this cell ended the process (exit code 1); the notebook was run again without it"),
    Attack("segfaults_mid_notebook", (
        "import ctypes\nctypes.string_at(0)",
    ), note="segmentation fault"),
    Attack("leaves_a_process_behind", (
        "import os\nif os.fork() == 0:\n    os.setsid()\n    while True:\n        pass",
    )),
    Attack("reaches_the_network", (
        P + "    import socket\n    socket.create_connection(('127.0.0.1', 80), timeout=2)\n    return 1.0",
    ), {"ch01.perplexity": (0, "raised OSError")}, needs="network cut off"),
    Attack("writes_a_huge_file", (
        P + "    with open('big.bin', 'wb') as out:\n        out.write(bytes(2**25))\n    return 1.0",
    ), {"ch01.perplexity": (0, "File too large")}),
    Attack("floods_the_output", (
        "print('x' * 50_000_000)\n"
        + P + "    raise ValueError('y' * 10_000_000)\n"
        "def mle_probability(ngram, ngram_counts):\n    return 'z' * 5_000_000",
    ), {"ch01.perplexity": (0, "raised ValueError: yyy"), "ch01.mle_probability": (0, "too long to grade")}),
    Attack("returns_nan_inf_and_wrong_types", (
        P + "    return float('nan')\n"
        "def mle_probability(ngram, ngram_counts):\n    return float('inf')\n"
        "def count_ngrams(sequences, n):\n    return [('the',), 1]\n"
        "def continuation_probability(bigram_counts):\n    import torch\n    return torch.empty(3, device='meta')",
    ), {"ch01.perplexity": (0, "got nan"), "ch01.mle_probability": (0, "got inf"),
        "ch01.count_ngrams": (0, "expected a dict, got a list"),
        "ch01.continuation_probability": (0, "could not be read")}),
    Attack("misses_a_function_and_a_signature", (
        "del perplexity\ndef mle_probability(gram, counts):\n    return 0.5",
    ), {"ch01.perplexity": (0, "no function named `perplexity`"),
        "ch01.mle_probability": (0, "should accept (ngram, ngram_counts)")}),
]


def _filled(cell: str, fill: dict[str, str]) -> str:
    for key, value in fill.items():
        cell = cell.replace("{" + key + "}", value)
    return cell


def write_attacks(folder: Path, context: dict[str, str]) -> dict[str, Path]:
    """Write every attack's notebook into ``folder``; ``context`` fills the paths in its cells."""
    honest, exercise = function_cells(SOLUTION), function_cells(EXERCISE)
    fill = {"package": str(PACKAGE), "root": str(ROOT), "folder": str(folder), **context}
    paths = {}
    for attack in ATTACKS:
        base = honest if attack.base == "honest" else exercise
        cells = base + [_filled(cell, fill) for cell in attack.cells]
        paths[attack.name] = write_notebook(folder / f"{attack.name}.ipynb", cells)
    return paths
