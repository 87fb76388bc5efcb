"""The LSTM cell diagram draws the chapter's equations: the memory line, four gates, and h_t."""
import pytest

from course_lib.viz.diagrams import LSTM_DIAGRAM_GATES, plot_lstm_cell


def _texts(figure):
    return [text.get_text() for text in figure.axes[0].texts]


def test_the_memory_line_and_the_states_are_labelled():
    texts = _texts(plot_lstm_cell())
    for label in ("$C_{t-1}$", "$C_t$", "$h_{t-1}$", "$i_t$", "$h_t$", "$[h_{t-1}, i_t]$"):
        assert texts.count(label) == 1, label
    assert texts.count("$+$") == 1  # one addition: the write into the memory
    assert texts.count("$\\times$") == 3  # forget, write, show


def test_each_gate_is_drawn_with_its_activation_and_role():
    texts = _texts(plot_lstm_cell())
    assert [symbol for symbol, _, _ in LSTM_DIAGRAM_GATES] == ["A_t", "B_t", "\\hat C_t", "D_t"]
    for symbol, activation, role in LSTM_DIAGRAM_GATES:
        assert f"${symbol}$\n{role}" in texts
    assert texts.count("$\\sigma$") == 3 and texts.count("$\\tanh$") == 2  # the candidate and tanh(C_t)


def test_the_memory_line_carries_no_weight_matrix_and_the_title_is_drawn():
    figure = plot_lstm_cell(title="One LSTM step")
    assert figure.axes[0].get_title() == "One LSTM step"
    assert not any("W_" in text for text in _texts(figure))


def test_bad_title():
    with pytest.raises(TypeError, match="title"):
        plot_lstm_cell(title=3)
