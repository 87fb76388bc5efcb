"""The encoder-decoder diagram draws what its docstring says, and refuses what it has no room for."""
import pytest

from course_lib.viz import plot_encoder_decoder


def _texts(figure):
    return [text.get_text() for text in figure.axes[0].texts]


def test_without_attention_the_context_vector_is_labelled_and_no_c_t_is_drawn():
    texts = _texts(plot_encoder_decoder(("Mia", "found", "a", "kite"), 3))
    assert "context\nvector" in texts and not any(text.startswith("$c_") for text in texts)
    assert texts.count("EOS") == 2 and "BOS" in texts and "$h_{5}$" in texts and "$s_{3}$" in texts


def test_with_attention_the_context_of_the_chosen_step_is_drawn():
    figure = plot_encoder_decoder(("Mia", "found", "a", "kite"), 3, attention_step=2)
    texts = _texts(figure)
    assert "$c_{2}$" in texts and "query" in texts and "context\nvector" not in texts
    # one curved line from each of the five encoder states (four words and EOS) to c_2
    curved = [text for text in figure.axes[0].texts
              if (getattr(text, "arrowprops", None) or {}).get("connectionstyle") == "arc3,rad=-0.12"]
    assert len(curved) == 5


def test_bad_arguments():
    with pytest.raises(ValueError, match="room for 1 to 5 source words"):
        plot_encoder_decoder(tuple("abcdef"))
    with pytest.raises(ValueError, match="attention_step must be an integer from 1 to 3"):
        plot_encoder_decoder(("a",), 3, attention_step=4)
