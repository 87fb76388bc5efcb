"""Bibliography labels in the form the citations in the text take: "Kneser and Ney, 1995".

sphinxcontrib-bibtex writes in-text citations author-year (``bibtex_reference_style:
author_year``) but labels the bibliography's entries with pybtex's "alpha" labels ([KN95]),
so a reader cannot match one with the other. This Sphinx extension registers a pybtex label
style that writes the citation's own text, and a formatting style ("author_year") that uses
it with pybtex's "plain" formatting (entries sorted by author, then year).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from string import ascii_lowercase

from pybtex.plugin import register_plugin
from pybtex.richtext import Text
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.labels import BaseLabelStyle


def _plain(latex: str) -> str:
    """A name as text: braces and LaTeX accents resolved ({\\'e} -> é)."""
    return Text.from_latex(latex).render_as("text")


def author_year(entry) -> str:
    """"Shannon, 1948", "Kneser and Ney, 1995", "Bengio et al., 2003" (editors if no authors)."""
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    surnames = [_plain(" ".join(person.prelast_names + person.last_names)) for person in people]
    if not surnames:
        who = _plain(entry.fields.get("organization", entry.fields.get("title", "Anonymous")))
    elif len(surnames) == 1:
        who = surnames[0]
    elif len(surnames) == 2:
        who = f"{surnames[0]} and {surnames[1]}"
    else:
        who = f"{surnames[0]} et al."
    return f"{who}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearLabelStyle(BaseLabelStyle):
    """Labels "Author, year"; two entries that would share a label get 1995a, 1995b."""

    def format_labels(self, sorted_entries: Iterable) -> Iterator[str]:
        labels = [author_year(entry) for entry in sorted_entries]
        shared = Counter(labels)
        seen: Counter = Counter()
        for label in labels:
            if shared[label] > 1:
                yield label + ascii_lowercase[seen[label]]
                seen[label] += 1
            else:
                yield label


class AuthorYearStyle(PlainStyle):
    default_label_style = "author_year"


def setup(app):
    register_plugin("pybtex.style.labels", "author_year", AuthorYearLabelStyle)
    register_plugin("pybtex.style.formatting", "author_year", AuthorYearStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
