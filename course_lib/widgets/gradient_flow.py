"""Chapter 4: how the gradient through a recurrent network grows or fades with distance.

:func:`gradient_flow` computes the norms of dh_T/dh_k for a random recurrent matrix of a chosen
spectral radius; :func:`gradient_flow_figure` draws them; the explorer puts sliders on both.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field

import ipywidgets as widgets
import numpy as np

from course_lib import checks
from course_lib.checks import ArgumentError

GRADIENT_FLOW_ACTIVATIONS = ("tanh", "relu", "linear")


def random_recurrent_matrix(d_hidden: int, spectral_radius: float, seed: int = 0) -> np.ndarray:
    """A Gaussian ``(d_hidden, d_hidden)`` matrix rescaled so that its largest ``|eigenvalue|`` is ``spectral_radius``.

    The same seed gives the same matrix up to scale, so two radii compare the same directions.
    """
    checks.positive_int("d_hidden", d_hidden)
    checks.number("spectral_radius", spectral_radius, above=0.0, what="a positive finite number")
    matrix = np.random.default_rng(seed).standard_normal((d_hidden, d_hidden)) / np.sqrt(d_hidden)
    return matrix * (spectral_radius / np.max(np.abs(np.linalg.eigvals(matrix))))


@dataclass(frozen=True)
class GradientFlow:
    """The norms of ``dh_T/dh_k`` against the distance ``T - k`` for one recurrent matrix.

    ``steps_back[s] = s``; ``norms[s]`` is the spectral norm of ``dh_T/dh_{T-s}``;
    ``linear_theory[s] = spectral_radius ** s``, how a long product of the same matrix grows;
    ``bound[s] = (gamma * sigma_max) ** s``, Pascanu et al.'s upper bound with ``gamma`` the largest
    slope of the activation (1 for tanh, relu and linear) and ``sigma_max`` the largest singular
    value of ``W_hh``.
    """

    spectral_radius: float
    activation: str
    sigma_max: float
    steps_back: np.ndarray = field(repr=False)
    norms: np.ndarray = field(repr=False)
    linear_theory: np.ndarray = field(repr=False)
    bound: np.ndarray = field(repr=False)


def gradient_flow(spectral_radius: float, activation: str = "tanh", T: int = 50, *, d_hidden: int = 32,
                  seed: int = 0, input_scale: float = 0.5) -> GradientFlow:
    """Norms of ``dh_T/dh_k`` (k = T .. 0) of ``h_t = f(W_hh h_{t-1} + u_t)`` with a random ``W_hh``.

    ``W_hh`` is :func:`random_recurrent_matrix`; the start state and the input terms ``u_t`` are
    Gaussian with standard deviation ``input_scale`` (drawn from ``seed``), so the units are driven
    as an input sequence drives them and a relu network is not stuck at zero.
    """
    from course_lib.rnn import hidden_state_jacobian_norms

    checks.one_of("activation", activation, GRADIENT_FLOW_ACTIVATIONS)
    checks.integer("T", T, minimum=1, what="a positive integer (the number of steps)")
    checks.number("input_scale", input_scale, minimum=0.0)
    W_hh = random_recurrent_matrix(d_hidden, spectral_radius, seed)
    rng = np.random.default_rng([seed, 1])
    h0 = input_scale * rng.standard_normal(d_hidden)
    input_terms = input_scale * rng.standard_normal((T, d_hidden))
    norms = hidden_state_jacobian_norms(W_hh, T, activation, h0=h0, input_terms=input_terms)
    steps_back = np.arange(T + 1)
    sigma_max = float(np.linalg.norm(W_hh, 2))
    return GradientFlow(float(spectral_radius), activation, sigma_max, steps_back, norms,
                        float(spectral_radius) ** steps_back, sigma_max ** steps_back)


def gradient_flow_figure(flow: GradientFlow, *, figsize: tuple[float, float] | None = None):
    """The norms of a :class:`GradientFlow` on a log scale, with the linear theory and the bound dashed."""
    from course_lib.viz import plot_curves

    if not isinstance(flow, GradientFlow):
        raise ArgumentError(f"flow must be a GradientFlow (see gradient_flow), got {type(flow).__name__}")
    rho = flow.spectral_radius
    measured = f"{flow.activation}, $\\rho$ = {rho:.2f}"
    theory = f"$\\rho^{{T-k}}$ = ${rho:.2f}^{{T-k}}$"
    bound = f"bound $\\sigma_{{max}}^{{T-k}}$, $\\sigma_{{max}}$ = {flow.sigma_max:.2f}"
    return plot_curves(
        {measured: (flow.steps_back, flow.norms), theory: (flow.steps_back, flow.linear_theory),
         bound: (flow.steps_back, flow.bound)},
        styles={theory: {"linestyle": "--", "color": "tab:gray"},
                bound: {"linestyle": ":", "color": "tab:red"}},
        logy=True, title="How far back does the gradient reach?", xlabel="steps back, T - k",
        ylabel=r"$\|\partial h_T / \partial h_k\|$", figsize=figsize)


def _figure_png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


class GradientFlowExplorer(widgets.VBox):
    """Sliders for the spectral radius and the number of steps, a choice of activation, and the
    figure of :func:`gradient_flow_figure` (see :func:`gradient_flow_explorer`).

    Attributes for code and tests: ``spectral_radius`` (FloatSlider), ``activation`` (Dropdown),
    ``steps`` (IntSlider); ``flow`` is the last :class:`GradientFlow`, ``summary`` (HTML) states
    the norm after the longest distance and ``image`` shows the figure.
    """

    def __init__(self, spectral_radius: float, activation: str, T: int, d_hidden: int, seed: int):
        self._d_hidden, self._seed = d_hidden, seed
        self.flow: GradientFlow | None = None
        self.spectral_radius = widgets.FloatSlider(value=spectral_radius, min=0.1, max=3.0, step=0.05,
                                                   description="radius ρ", readout_format=".2f")
        self.activation = widgets.Dropdown(options=list(GRADIENT_FLOW_ACTIVATIONS), value=activation,
                                           description="activation")
        self.steps = widgets.IntSlider(value=T, min=5, max=100, step=5, description="steps T")
        self.summary = widgets.HTML()
        self.image = widgets.Image(format="png")
        super().__init__([widgets.HBox([self.spectral_radius, self.activation, self.steps]), self.summary,
                          self.image])
        for control in (self.spectral_radius, self.activation, self.steps):
            control.observe(lambda _change: self.refresh(), names="value")
        self.refresh()

    def refresh(self) -> None:
        """Recompute the norms and redraw the figure for the current controls."""
        self.flow = gradient_flow(self.spectral_radius.value, self.activation.value, self.steps.value,
                                  d_hidden=self._d_hidden, seed=self._seed)
        T = self.steps.value
        self.summary.value = (f"<div>after T = {T} steps: ‖∂h_T/∂h_0‖ = {self.flow.norms[-1]:.3g} "
                              f"(ρ^T = {self.flow.linear_theory[-1]:.3g})</div>")
        self.image.value = _figure_png(gradient_flow_figure(self.flow))


def gradient_flow_explorer(*, spectral_radius: float = 1.0, activation: str = "tanh", T: int = 50,
                           d_hidden: int = 32, seed: int = 0) -> GradientFlowExplorer:
    """An explorer of the vanishing and exploding gradient: how ``‖∂h_T/∂h_k‖`` changes with the
    spectral radius of ``W_hh`` and the activation (see :func:`gradient_flow`)."""
    checks.number("spectral_radius", spectral_radius, minimum=0.1, maximum=3.0,
                  what="a number in the slider's range [0.1, 3.0]")
    checks.one_of("activation", activation, GRADIENT_FLOW_ACTIVATIONS)
    checks.integer("T", T, minimum=5, maximum=100, what="an integer in the slider's range [5, 100]")
    return GradientFlowExplorer(float(spectral_radius), activation, T, d_hidden, seed)
