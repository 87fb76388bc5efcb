"""Interactive explorers for the notebooks (ipywidgets), built on pure functions.

Each explorer is a thin layer of controls over functions that compute what it shows, so the same
numbers can be tested without a browser and drawn as a static figure for the rendered book (see
:mod:`course_lib.viz`). One module per chapter:

* :mod:`~course_lib.widgets._common` -- the next-token table and its HTML, shared by every explorer;
* :mod:`~course_lib.widgets.ngram` -- Chapter 1's n-gram explorer;
* :mod:`~course_lib.widgets.merges` -- Chapter 2's merge-by-merge view of byte-pair encoding;
* :mod:`~course_lib.widgets.temperature` -- Chapter 3's next-token distribution with a temperature;
* :mod:`~course_lib.widgets.gradient_flow` -- Chapter 4's gradient norms through time;
* :mod:`~course_lib.widgets.probes` -- Chapter 5's long-range probes;
* :mod:`~course_lib.widgets.translation` -- Chapter 6's translation, step by step, with its attention;
* :mod:`~course_lib.widgets.attention_maps` -- Chapter 7's attention of every layer and head;
* :mod:`~course_lib.widgets.decoding` -- Chapter 8's decoding methods on a story prompt.
"""
from course_lib.widgets._common import (BAR_COLOUR, SPECIAL_COLOUR, Detokenize, NextTokenTable, Tokenize,
                                        table_html)
from course_lib.widgets.attention_maps import (AttentionExplorer, AttentionMaps, attended_tokens,
                                               attention_explorer, attention_figure, attention_heads_figure,
                                               attention_maps, prompt_tokens)
from course_lib.widgets.decoding import (Decoded, DecodingExplorer, decode_prompt, decoding_explorer,
                                         decoding_figure)
from course_lib.widgets.gradient_flow import (GRADIENT_FLOW_ACTIVATIONS, GradientFlow, GradientFlowExplorer,
                                              gradient_flow, gradient_flow_explorer, gradient_flow_figure,
                                              random_recurrent_matrix)
from course_lib.widgets.merges import (MergeExplorer, Segmentation, merge_explorer, segment_with_merges,
                                       segmentation_html, segmentation_summary)
from course_lib.widgets.ngram import (NGramExplorer, context_as_seen, next_token_table, ngram_explorer,
                                      sample_text)
from course_lib.widgets.probes import (ANSWER_COLOUR, FACT_COLOUR, CandidateFunction, ProbeExplorer, candidate_table,
                                       probe_explorer, probe_fact_index, probe_html)
from course_lib.widgets.temperature import (NextTokenFunction, TemperatureExplorer, fixed_window_next_token_table,
                                            temperature_explorer, window_context)
from course_lib.widgets.translation import (StepByStepTranslation, TranslationExplorer, TranslationStep,
                                            UnknownWordsError, translation_explorer, translation_figure,
                                            translation_steps, true_translation)

__all__ = [
    "ANSWER_COLOUR", "BAR_COLOUR", "CandidateFunction", "Decoded", "DecodingExplorer", "decode_prompt",
    "decoding_explorer", "decoding_figure", "Detokenize", "FACT_COLOUR", "GRADIENT_FLOW_ACTIVATIONS",
    "GradientFlow", "GradientFlowExplorer", "MergeExplorer", "NGramExplorer", "NextTokenFunction", "NextTokenTable",
    "ProbeExplorer", "SPECIAL_COLOUR", "Segmentation", "TemperatureExplorer", "Tokenize", "candidate_table",
    "context_as_seen", "fixed_window_next_token_table", "gradient_flow", "gradient_flow_explorer",
    "gradient_flow_figure", "merge_explorer", "next_token_table", "ngram_explorer", "probe_explorer",
    "probe_fact_index", "probe_html", "random_recurrent_matrix", "sample_text", "segment_with_merges",
    "segmentation_html", "segmentation_summary", "table_html", "temperature_explorer", "window_context",
    "StepByStepTranslation", "TranslationExplorer", "TranslationStep", "UnknownWordsError", "translation_explorer",
    "translation_figure", "translation_steps", "true_translation",
    "AttentionExplorer", "AttentionMaps", "attended_tokens", "attention_explorer", "attention_figure",
    "attention_heads_figure", "attention_maps", "prompt_tokens",
]
