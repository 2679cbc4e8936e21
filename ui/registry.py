"""The table of contents: every topic page, its section and the one-line promise on its card.

app.py builds `st.navigation` from this list, the home page draws a card per entry, and the browser
test opens every entry. A page is listed here only once it works.
"""

from __future__ import annotations

from dataclasses import dataclass

SECTIONS: tuple[str, ...] = ("Foundations", "Looking inside", "Interpretability", "Adaptation", "Lab")


@dataclass(frozen=True)
class Topic:
    path: str  # script path relative to the repository root
    title: str
    icon: str  # a Material Symbols name, written ":material/name:"
    section: str
    blurb: str  # one sentence for the home-page card
    url_path: str  # stable URL segment, so shared links keep working


TOPICS: tuple[Topic, ...] = ()


def topics_in(section: str) -> list[Topic]:
    """Topics of one section, in the order they are listed."""
    return [t for t in TOPICS if t.section == section]
