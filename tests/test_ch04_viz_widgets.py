"""Chapter 4's figures and explorer: curve panels, the unrolled network, and the norms of dh_T/dh_k for a
recurrent matrix of a chosen spectral radius, checked against matrix powers, autograd and Pascanu's bound."""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")  # no display: the figures must draw all the same

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure

from course_lib.viz import plot_curve_panels, plot_unrolled_rnn
from course_lib.widgets import (GradientFlow, GradientFlowExplorer, gradient_flow, gradient_flow_explorer,
                                gradient_flow_figure, random_recurrent_matrix)

# ------------------------------------------------------------------ plot_curve_panels


def test_curve_panels_draw_one_panel_per_dict_with_shared_y_and_one_legend():
    panels = {"linear": {"a": ([0, 1, 2], [1.0, 2.0, 4.0]), "b": ([0, 1, 2], [1.0, 0.5, 0.25])},
              "tanh": {"a": ([0, 1], [1.0, 0.5]), "b": ([0, 1], [1.0, 0.1])}}
    figure = plot_curve_panels(panels, title="norms", xlabel="T - k", ylabel="norm", logy=True)
    assert isinstance(figure, Figure)
    left, right = figure.axes
    assert [axes.get_title() for axes in figure.axes] == ["linear", "tanh"]
    assert [line.get_ydata().tolist() for line in left.lines] == [[1.0, 2.0, 4.0], [1.0, 0.5, 0.25]]
    assert [line.get_xdata().tolist() for line in right.lines] == [[0, 1], [0, 1]]
    assert left.get_yscale() == right.get_yscale() == "log"
    assert left.get_shared_y_axes().joined(left, right)
    assert left.get_legend() is None and [t.get_text() for t in right.get_legend().get_texts()] == ["a", "b"]
    assert left.lines[0].get_color() == right.lines[0].get_color() != left.lines[1].get_color()
    assert (left.get_xlabel(), left.get_ylabel(), figure._suptitle.get_text()) == ("T - k", "norm", "norms")


def test_curve_panels_with_different_series_get_a_legend_each_and_leave_nonpositive_values_out_of_a_log_plot():
    figure = plot_curve_panels({"one": {"a": ([0, 1], [1.0, 0.0])}, "two": {"b": ([0, 1], [2.0, 3.0])}},
                               logy=True, styles={"b": {"linestyle": "--"}})
    assert all(axes.get_legend() is not None for axes in figure.axes)
    assert np.isnan(figure.axes[0].lines[0].get_ydata()[1])
    assert figure.axes[1].lines[0].get_linestyle() == "--"
    linear = plot_curve_panels({"one": {"a": ([0, 1], [1.0, 0.0])}})
    assert linear.axes[0].lines[0].get_ydata().tolist() == [1.0, 0.0]


@pytest.mark.parametrize("panels, kwargs, error, words", [
    ({}, {}, ValueError, "non-empty"),
    ({"p": {}}, {}, ValueError, "non-empty"),
    ({"p": {"a": ([0, 1], [1.0])}}, {}, ValueError, "2 x values but 1 y values"),
    ({"p": {"a": [0, 1, 2]}}, {}, ValueError, "pair"),
    ({"p": {"a": ([0, 1], [1.0, math.nan])}}, {}, ValueError, "NaN"),
    ({"p": {"a": ([0], [1.0])}}, {"styles": {"b": {}}}, ValueError, "not plotted"),
    ({1: {"a": ([0], [1.0])}}, {}, TypeError, "panel titles"),
])
def test_curve_panels_reject_bad_input_with_a_clear_message(panels, kwargs, error, words):
    with pytest.raises(error, match=words):
        plot_curve_panels(panels, **kwargs)


# ------------------------------------------------------------------ plot_unrolled_rnn


def test_the_unrolled_network_shows_every_step_and_the_same_weights_on_every_arrow():
    figure = plot_unrolled_rnn(3, title="unrolled")
    texts = [text.get_text() for text in figure.axes[0].texts]
    for node in ("$i_t$", "$h_t$", "$o_t$", "$h_0$", "$i_{1}$", "$h_{3}$", "$o_{3}$"):
        assert node in texts
    assert texts.count("$W_{hh}$") == 1 + 3  # the loop, then one arrow per step
    assert texts.count("$W_{hi}$") == texts.count("$W_{oh}$") == 1 + 3
    assert "$h_{T}$" in [text.get_text() for text in plot_unrolled_rnn(6).axes[0].texts]


@pytest.mark.parametrize("steps", [0, 9, True, 2.0])
def test_the_unrolled_network_rejects_a_bad_number_of_steps(steps):
    with pytest.raises(ValueError, match="steps"):
        plot_unrolled_rnn(steps)


# ------------------------------------------------------------------ gradient_flow


def test_the_random_matrix_has_the_requested_spectral_radius_and_keeps_its_directions():
    W = random_recurrent_matrix(12, 1.7, seed=3)
    assert np.max(np.abs(np.linalg.eigvals(W))) == pytest.approx(1.7, rel=1e-10)
    np.testing.assert_allclose(random_recurrent_matrix(12, 0.5, seed=3) * 3.4, W, rtol=1e-12)
    assert not np.allclose(random_recurrent_matrix(12, 1.7, seed=4), W)
    for bad in (0, -1.0, math.inf, True):
        with pytest.raises(ValueError, match="spectral_radius"):
            random_recurrent_matrix(4, bad)
    with pytest.raises(ValueError, match="d_hidden"):
        random_recurrent_matrix(0, 1.0)


def test_with_a_linear_activation_the_norms_are_those_of_matrix_powers():
    flow = gradient_flow(1.3, "linear", T=20, d_hidden=8, seed=2)
    W = random_recurrent_matrix(8, 1.3, seed=2)
    expected = [np.linalg.norm(np.linalg.matrix_power(W, s), 2) for s in range(21)]
    np.testing.assert_allclose(flow.norms, expected, rtol=1e-10)
    np.testing.assert_allclose(flow.linear_theory, 1.3 ** np.arange(21), rtol=1e-12)
    assert flow.sigma_max == pytest.approx(np.linalg.norm(W, 2))
    assert flow.steps_back.tolist() == list(range(21))
    # the product of the same matrix grows, in the long run, like the spectral radius to the power s
    assert (flow.norms[20] / flow.norms[10]) ** (1 / 10) == pytest.approx(1.3, rel=0.1)


def test_with_tanh_the_norms_equal_those_of_autograds_jacobians():
    T, d, seed, scale = 6, 5, 1, 0.5
    flow = gradient_flow(1.2, "tanh", T=T, d_hidden=d, seed=seed, input_scale=scale)
    W = torch.from_numpy(random_recurrent_matrix(d, 1.2, seed=seed))
    rng = np.random.default_rng([seed, 1])
    h0 = torch.from_numpy(scale * rng.standard_normal(d))
    u = torch.from_numpy(scale * rng.standard_normal((T, d)))
    states = [h0]
    for u_t in u:
        states.append(torch.tanh(W @ states[-1] + u_t))

    def run_from(h_k, k):
        for t in range(k, T):
            h_k = torch.tanh(W @ h_k + u[t])
        return h_k

    expected = [torch.linalg.matrix_norm(torch.autograd.functional.jacobian(lambda h, k=k: run_from(h, k), states[k]),
                                         ord=2).item() for k in range(T, -1, -1)]
    np.testing.assert_allclose(flow.norms, expected, rtol=1e-9)


@settings(max_examples=25, deadline=None)
@given(radius=st.floats(0.1, 3.0), activation=st.sampled_from(["tanh", "relu", "linear"]),
       seed=st.integers(0, 1000))
def test_the_norms_never_exceed_pascanus_bound(radius, activation, seed):
    flow = gradient_flow(radius, activation, T=15, d_hidden=6, seed=seed)
    assert flow.norms[0] == pytest.approx(1.0)
    assert np.all(flow.norms <= flow.bound * (1 + 1e-9) + 1e-300)


@pytest.mark.parametrize("kwargs, words", [
    ({"activation": "sigmoid"}, "activation"),
    ({"T": 0}, "T must be"),
    ({"input_scale": -1.0}, "input_scale"),
])
def test_gradient_flow_rejects_bad_settings(kwargs, words):
    with pytest.raises(ValueError, match=words):
        gradient_flow(1.0, **kwargs)


def test_the_flow_figure_draws_the_norms_the_theory_and_the_bound_on_a_log_scale():
    flow = gradient_flow(0.8, "tanh", T=10)
    axes = gradient_flow_figure(flow).axes[0]
    assert axes.get_yscale() == "log"
    assert len(axes.lines) == 3
    np.testing.assert_allclose(axes.lines[0].get_ydata(), flow.norms)
    np.testing.assert_allclose(axes.lines[1].get_ydata(), flow.linear_theory)
    np.testing.assert_allclose(axes.lines[2].get_ydata(), flow.bound)
    with pytest.raises(TypeError, match="GradientFlow"):
        gradient_flow_figure(flow.norms)


# ------------------------------------------------------------------ the explorer


def test_the_explorer_recomputes_when_its_controls_change():
    explorer = gradient_flow_explorer(spectral_radius=0.5, activation="linear", T=20, d_hidden=8)
    assert isinstance(explorer, GradientFlowExplorer) and isinstance(explorer.flow, GradientFlow)
    assert explorer.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    small = explorer.flow.norms[-1]
    assert "T = 20" in explorer.summary.value
    explorer.spectral_radius.value = 1.5
    assert explorer.flow.spectral_radius == 1.5 and explorer.flow.norms[-1] > 1e3 * small
    explorer.activation.value = "tanh"
    assert explorer.flow.activation == "tanh"
    explorer.steps.value = 40
    assert len(explorer.flow.norms) == 41 and "T = 40" in explorer.summary.value


@pytest.mark.parametrize("kwargs, words", [
    ({"spectral_radius": 5.0}, "spectral_radius"),
    ({"spectral_radius": "big"}, "spectral_radius"),
    ({"activation": "gelu"}, "activation"),
    ({"T": 500}, "T must be"),
])
def test_the_explorer_rejects_settings_outside_its_controls(kwargs, words):
    with pytest.raises(ValueError, match=words):
        gradient_flow_explorer(**kwargs)
