"""Exercise checking and grading.

``check(name, fn)`` gives instant feedback inside a notebook; ``course grade`` grades submissions
with the same case sets, running the submission's code in a separate worker process. Importing
this package stays light: the case sets (and the reference implementations behind them) are
imported only when an item is checked or graded.
"""
from course_lib.grading.check import check

__all__ = ["check"]
