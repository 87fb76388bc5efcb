"""course_lib: the tested implementations behind the lm-course book, exercises and grader.

One module per concept, named as the book names it (``ngram``, ``bpe``, ``rnn``, ...);
infrastructure lives apart (``data``, ``grading``, ``viz``, ``widgets``, ``cli``).
"""
from course_lib.runtime import pick_device, seed_everything

__version__ = "0.1.0"

__all__ = ["__version__", "pick_device", "seed_everything"]
