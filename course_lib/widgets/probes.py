"""Chapter 5: long-range probes.

A story is cut right before the answer to a question about a fact stated many words earlier; the
explorer shows which answer each model bets on.
"""
from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence

import ipywidgets as widgets

from course_lib.checks import ArgumentError
from course_lib.data import detokenize as detokenize_words
from course_lib.data import word_tokenize
from course_lib.data.probes import Probe
from course_lib.viz.style import MARK_COLOUR, PALETTE
from course_lib.widgets._common import NextTokenTable, table_html

CandidateFunction = Callable[[str, Probe], Sequence[tuple[str, float]]]
FACT_COLOUR = MARK_COLOUR
ANSWER_COLOUR = PALETTE[2]


def probe_fact_index(probe: Probe) -> int:
    """The position, among the prompt's word tokens, of the fact the question asks for.

    ``Probe.distance`` counts the tokens after the fact's word up to the end of the prompt, so the
    fact is ``distance + 1`` tokens from the end.
    """
    if not isinstance(probe, Probe):
        raise ArgumentError(f"probe must be a course_lib.data.stories.Probe, got {type(probe).__name__}")
    tokens = word_tokenize(probe.prompt)
    index = len(tokens) - 1 - probe.distance
    if not 0 <= index < len(tokens) or tokens[index] != probe.answer:
        raise ValueError(f"the probe's prompt does not hold its answer {probe.answer!r} {probe.distance + 1} "
                         "tokens from the end; it was not made by make_probes")
    return index


def probe_html(probe: Probe) -> str:
    """The prompt as HTML, the fact's word highlighted, followed by the expected answer."""
    tokens = word_tokenize(probe.prompt)
    fact = probe_fact_index(probe)
    shown = [html.escape(token) for token in tokens]
    shown[fact] = f"<mark style='background:{FACT_COLOUR}'><b>{shown[fact]}</b></mark>"
    text = detokenize_words(shown)
    return (f"<div style='max-width:60em;line-height:1.5'>{text} "
            f"<span style='color:{ANSWER_COLOUR}'><b>[{html.escape(probe.answer)}]</b></span></div>"
            f"<div style='color:#555'>the {probe.kind} fact is {probe.distance + 1} words before the answer</div>")


def candidate_table(candidate_probabilities: CandidateFunction, model: str, probe: Probe) -> NextTokenTable:
    """The candidate answers of ``probe`` under ``model``, most probable first (ties alphabetical)."""
    if not callable(candidate_probabilities):
        raise ArgumentError("candidate_probabilities must be a function (model name, probe) -> [(answer, P), ...]")
    rows = [(str(answer), float(p)) for answer, p in candidate_probabilities(model, probe)]
    if not rows:
        raise ValueError(f"no candidate answers for the probe under model {model!r}")
    ranked = sorted(rows, key=lambda item: (-item[1], item[0]))
    return NextTokenTable(tuple(word_tokenize(probe.prompt)[-4:]), tuple(ranked))


class ProbeExplorer(widgets.VBox):
    """Buttons for the model, a slider for how far back the fact is, a slider for the probe
    (see :func:`probe_explorer`).

    Attributes for code and tests: ``model`` (ToggleButtons), ``distance`` (SelectionSlider),
    ``number`` (IntSlider); ``prompt_view`` and ``table_view`` (HTML) show the result; ``probe``
    and ``table`` are the last probe and :class:`NextTokenTable` shown.
    """

    def __init__(self, candidate_probabilities: CandidateFunction, models: Sequence[str],
                 probes: Mapping[int, Sequence[Probe]]):
        self._candidates = candidate_probabilities
        self._probes = {distance: list(group) for distance, group in probes.items()}
        self.probe: Probe | None = None
        self.table: NextTokenTable | None = None
        self.model = widgets.ToggleButtons(options=list(models), description="model")
        self.distance = widgets.SelectionSlider(options=list(self._probes), description="words back ≥")
        self.number = widgets.IntSlider(value=0, min=0, max=len(self._probes[self.distance.value]) - 1,
                                        description="probe")
        self.prompt_view = widgets.HTML()
        self.table_view = widgets.HTML()
        super().__init__([self.model, widgets.HBox([self.distance, self.number]), self.prompt_view,
                          self.table_view])
        self.distance.observe(self._on_distance, names="value")
        for control in (self.model, self.number):
            control.observe(lambda _change: self.refresh(), names="value")
        self.refresh()

    def _on_distance(self, _change) -> None:
        group = self._probes[self.distance.value]
        self.number.value = min(self.number.value, len(group) - 1)
        self.number.max = len(group) - 1
        self.refresh()

    def refresh(self) -> None:
        """Show the current probe and the chosen model's bets on its candidate answers."""
        self.probe = self._probes[self.distance.value][self.number.value]
        self.table = candidate_table(self._candidates, self.model.value, self.probe)
        self.prompt_view.value = probe_html(self.probe)
        right = sum(p for answer, p in self.table.rows if answer == self.probe.answer)
        verdict = "right" if self.table.rows[0][0] == self.probe.answer else "wrong"
        self.table_view.value = (f"<div>{html.escape(self.model.value)}: best guess "
                                 f"<b>{html.escape(self.table.rows[0][0])}</b> ({verdict}); "
                                 f"P(answer) = {right:.3f}</div>" + table_html(self.table))


def probe_explorer(candidate_probabilities: CandidateFunction, models: Sequence[str],
                   probes: Mapping[int, Sequence[Probe]]) -> ProbeExplorer:
    """An explorer of long-range probes: pick a model, how far back the fact is, and a probe.

    candidate_probabilities : ``f(model_name, probe) -> [(answer, P(answer | prompt)), ...]`` over
        the candidate answers of the probe's kind.
    models : the model names, as ``candidate_probabilities`` knows them.
    probes : ``{target distance: [Probe, ...]}``, e.g. grouped from :func:`make_probes`.
    """
    if not callable(candidate_probabilities):
        raise ArgumentError("candidate_probabilities must be a function (model name, probe) -> [(answer, P), ...]")
    if isinstance(models, str) or not models or not all(isinstance(name, str) for name in models):
        raise ArgumentError(f"models must be a non-empty list of model names, got {models!r}")
    if not isinstance(probes, Mapping) or not probes:
        raise ArgumentError("probes must be a non-empty dict {distance: [Probe, ...]}")
    for distance, group in probes.items():
        if not group or not all(isinstance(probe, Probe) for probe in group):
            raise ArgumentError(f"probes[{distance!r}] must be a non-empty list of Probe")
    return ProbeExplorer(candidate_probabilities, list(models), probes)
