"""One notebook entry: what was asked, what the learner predicted, what was measured, and a note.

An entry carries the experiment's full URL state, so its link reproduces the view. Notes are filed
under the four headings of a research log: what worked, what didn't, a surprise, an open question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

HEADINGS = ("what worked", "what didn't", "surprise", "open question")
MAX_NOTE_CHARS = 20_000  # a note longer than this is refused with a message, not cut silently
MAX_FIELD_CHARS = 2_000  # question, answers, measured outcome, reason
PAGE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")  # a page's url_path: links are built from it
MAX_URL_CHARS = 16_000  # a page's URL state: a full 2,000-character text box triples when URL-encoded


@dataclass(frozen=True)
class Entry:
    page: str  # the page's url_path
    model: str  # the model's spec
    url: str = ""  # the experiment's query string ("?model=bundled&attn_layer=2"), a link that reproduces it
    question: str = ""  # the question as asked ("" for a note without a prediction)
    prediction: str = ""  # the answer in words
    confidence: float | None = None  # 0.5 .. 1.0
    reason: str = ""
    measured: str = ""  # the measured outcome in words
    correct: bool | None = None  # None: nothing was predicted
    heading: str = ""  # one of HEADINGS, or ""
    note: str = ""
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    id: int | None = None  # set by the store
    owner: str = ""  # the signed-in user, or "" on a local run

    def __post_init__(self):
        if not PAGE_NAME.fullmatch(self.page or ""):
            raise ValueError(f"page must be a page's name (lower-case letters, digits, -), not "
                             f"{self.page[:40]!r}")
        if self.url and (not self.url.startswith("?") or any(c in self.url for c in "\r\n\\ ")):
            raise ValueError("url must be the query part of a link to this app (starting with '?')")
        if self.heading and self.heading not in HEADINGS:
            raise ValueError(f"heading must be one of {HEADINGS}, not {self.heading!r}")
        if len(self.note) > MAX_NOTE_CHARS:
            raise ValueError(f"The note has {len(self.note):,} characters; the notebook keeps up to "
                             f"{MAX_NOTE_CHARS:,} per entry. Split it into several entries.")
        for name in ("question", "prediction", "reason", "measured", "url", "page", "model"):
            limit = MAX_URL_CHARS if name == "url" else MAX_FIELD_CHARS
            if len(getattr(self, name)) > limit:
                raise ValueError(f"The {name} is longer than {limit:,} characters.")

    def with_note(self, heading: str, note: str) -> Entry:
        return replace(self, heading=heading, note=note)
