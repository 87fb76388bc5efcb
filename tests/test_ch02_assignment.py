"""Chapter 2's exercises: a wrong answer loses its own item's points (full marks and zero:
test_assignments.py), and every case set's reference agrees with an independent answer."""
from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from course_lib.grading import codec
from course_lib.grading.cases import load_assignment
from course_lib.grading.runner import grade_notebook

from assignment_notebooks import assert_only_item_lost, points, solution_variant

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solutions" / "ch02_tokenization.ipynb"
ASSIGNMENT = load_assignment("ch02")

# Sennrich et al. (2016)'s dictionary and its first ten merges, worked out by hand with the
# tie-break "most frequent, then lexicographically smallest pair".
PAPER_MERGES = [("e", "s"), ("es", "t"), ("est", "</w>"), ("l", "o"), ("lo", "w"), ("e", "w"),
                ("ew", "est</w>"), ("n", "ewest</w>"), ("low", "</w>"), ("d", "est</w>")]


variant = partial(solution_variant, SOLUTION)


# ------------------------------------------------------------------ grading the notebooks

def test_forgetting_the_end_of_word_marker_loses_exactly_the_encode_word_points(tmp_path):
    path = variant(tmp_path, "no_marker", 'symbols = list(word) + ["</w>"]', "symbols = list(word)")
    assert_only_item_lost(grade_notebook(path), ASSIGNMENT, "ch02.encode_word", "expected")


def test_the_papers_tie_break_by_dict_order_loses_train_bpe_points_only(tmp_path):
    path = variant(tmp_path, "max_tie_break", "best = min(pair_counts, key=lambda pair: (-pair_counts[pair], pair))",
                   "best = max(pair_counts, key=pair_counts.get)")
    result = grade_notebook(path)
    lost = {name: ASSIGNMENT.case_set(name).points - got for name, got in points(result).items()}
    assert {name for name, value in lost.items() if value} == {"ch02.train_bpe"}
    item = next(i for i in result.items if i.name == "ch02.train_bpe")
    assert 0 < item.passed < len(item.verdicts)  # "no merges" and tie-free cases still pass


def test_a_shifted_byte_table_loses_exactly_its_points(tmp_path):
    path = variant(tmp_path, "off_by_one", "chr(256 + shifted)", "chr(255 + shifted)")
    result = grade_notebook(path)
    assert points(result)["ch02.bytes_to_unicode"] == 0
    assert result.score == ASSIGNMENT.max_points - 2


def test_importing_the_reference_module_is_refused(tmp_path):
    path = variant(tmp_path, "imports_reference", "    ### BEGIN SOLUTION\n    pair_counts = Counter()",
                   "    from course_lib.bpe import get_pair_counts as reference\n    return reference(word_counts)\n"
                   "    ### BEGIN SOLUTION\n    pair_counts = Counter()")
    result = grade_notebook(path)
    item = next(i for i in result.items if i.name == "ch02.get_pair_counts")
    assert item.points == 0
    assert "cannot be imported while this assignment is graded" in item.summary


# ------------------------------------------------------------------ the case sets themselves

@pytest.mark.parametrize("case_set", ASSIGNMENT.case_sets, ids=lambda cs: cs.name)
def test_cases_are_deterministic_and_travel_to_a_worker_unchanged(case_set):
    first, second = case_set.cases(), case_set.cases()
    assert [c.kwargs for c in first] == [c.kwargs for c in second]
    for case in first:
        assert codec.decode(codec.encode(case.kwargs)) == case.kwargs


def count_pairs_by_hand(word_counts):
    counts = {}
    for word, count in word_counts.items():
        for i in range(len(word) - 1):
            counts[word[i], word[i + 1]] = counts.get((word[i], word[i + 1]), 0) + count
    return counts


def test_pair_count_references_equal_counting_by_hand():
    item = ASSIGNMENT.case_set("get_pair_counts")
    for case in item.cases():
        assert item.reference(**case.kwargs) == count_pairs_by_hand(case.kwargs["word_counts"])
    paper = item.cases()[0].kwargs["word_counts"]
    assert item.reference(paper)[("e", "s")] == 9 and item.reference(paper)[("l", "o")] == 7


def test_train_reference_learns_the_hand_worked_merges_of_the_paper():
    item = ASSIGNMENT.case_set("train_bpe")
    paper_case = item.cases()[0]
    assert paper_case.kwargs["num_merges"] == 10
    assert item.reference(**paper_case.kwargs) == PAPER_MERGES


def apply_in_learned_order(word: str, merges) -> tuple[str, ...]:
    """What the exercise describes: each merge once, in order, left to right without overlap."""
    symbols = list(word) + ["</w>"]
    for left, right in merges:
        merged, i = [], 0
        while i < len(symbols):
            if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == (left, right):
                merged.append(left + right)
                i += 2
            else:
                merged.append(symbols[i])
                i += 1
        symbols = merged
    return tuple(symbols)


def test_encode_reference_equals_applying_merges_in_learned_order():
    item = ASSIGNMENT.case_set("encode_word")
    for case in item.cases():
        assert item.reference(**case.kwargs) == apply_in_learned_order(**case.kwargs), case.label
    assert item.reference("lowest", PAPER_MERGES) == ("low", "est</w>")


def test_bytes_table_reference_is_gpt2s_mapping():
    table = ASSIGNMENT.case_set("bytes_to_unicode").reference()
    assert sorted(table) == list(range(256)) and len(set(table.values())) == 256
    assert (table[ord("A")], table[ord(" ")], table[ord("\n")], table[0], table[255]) == ("A", "Ġ", "Ċ", "Ā", "ÿ")
    assert sum(table[byte] == chr(byte) for byte in range(256)) == 188
