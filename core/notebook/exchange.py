"""Taking the notebook out and bringing it back: a JSON file (every field, to import again) and a
Markdown lab report (readable, with a link that reproduces every experiment: learning in public).

An imported file may come from anywhere, so it is read defensively: size and entry count are checked
first, every field's type and length after, and a file with one bad entry is refused as a whole with
a message that names the entry, so nothing half-imports.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, fields
from datetime import UTC, datetime

from core.notebook.entries import HEADINGS, Entry

FORMAT = "llm-internals-lab-notebook"
MAX_IMPORT_BYTES = 5_000_000
MAX_IMPORT_ENTRIES = 10_000
_TEXT = {"page", "model", "url", "question", "prediction", "reason", "measured", "heading", "note"}


class NotebookImportError(ValueError):
    """The file is not a notebook this app can import; the message says why (and which entry)."""


def to_json(entries: Sequence[Entry]) -> str:
    rows = []
    for e in entries:
        row = {k: v for k, v in asdict(e).items() if k not in ("id", "owner")}
        row["created"] = e.created.isoformat()
        rows.append(row)
    return json.dumps({"format": FORMAT, "version": 1, "entries": rows}, indent=1, ensure_ascii=False)


def from_json(data: bytes | str) -> list[Entry]:
    """Entries from a file written by to_json; raises NotebookImportError on anything else."""
    if len(data) > MAX_IMPORT_BYTES:
        raise NotebookImportError(f"The file has {len(data):,} bytes; a notebook file may have up to "
                                  f"{MAX_IMPORT_BYTES:,}.")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        raise NotebookImportError(f"The file is not JSON ({type(err).__name__}).") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("entries"), list):
        raise NotebookImportError("The file is JSON but not a notebook exported by this app "
                                  f"(it needs \"format\": \"{FORMAT}\" and a list of entries).")
    rows = doc["entries"]
    if len(rows) > MAX_IMPORT_ENTRIES:
        raise NotebookImportError(f"The file has {len(rows):,} entries; up to {MAX_IMPORT_ENTRIES:,} "
                                  "can be imported at once.")
    return [_entry(i + 1, row) for i, row in enumerate(rows)]


def _entry(n: int, row) -> Entry:
    if not isinstance(row, dict):
        raise NotebookImportError(f"Entry {n} is not an object.")
    known = {f.name for f in fields(Entry)} - {"id", "owner"}
    values = {}
    for key, value in row.items():
        if key not in known:
            raise NotebookImportError(f"Entry {n} has an unknown field {str(key)[:40]!r}.")
        if key in _TEXT and not isinstance(value, str):
            raise NotebookImportError(f"Entry {n}: {key} must be text.")
        values[key] = value
    for key in ("page", "model"):
        if not values.get(key):
            raise NotebookImportError(f"Entry {n} has no {key}.")
    try:
        values["created"] = _time(values.get("created"))
        values["confidence"] = _confidence(values.get("confidence"))
        correct = values.get("correct")
        if correct is not None and not isinstance(correct, bool):
            raise ValueError("correct must be true, false or null")
        if values.get("heading", "") not in ("", *HEADINGS):
            raise ValueError(f"heading must be one of {', '.join(HEADINGS)}")
        return Entry(**values)
    except (ValueError, TypeError, OverflowError) as err:
        raise NotebookImportError(f"Entry {n}: {err}") from None


def _time(value) -> datetime:
    if value is None:
        return datetime.now(UTC)
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError("created must be an ISO date and time")
    created = datetime.fromisoformat(value)
    return created if created.tzinfo else created.replace(tzinfo=UTC)


def _confidence(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not 0.5 <= value <= 1.0:
        raise ValueError("confidence must be a number from 0.5 to 1")
    return float(value)


def _md(text: str) -> str:
    """Text shown literally in Markdown: no HTML, no links or emphasis smuggled in through a note."""
    return "".join("\\" + ch if ch in "\\`*_{}[]<>()#+-.!|~" else ch for ch in text)


def to_markdown(entries: Sequence[Entry], base_url: str = "", title: str = "Lab notebook") -> str:
    """A readable lab report, newest first, grouped by day; each experiment links to its view."""
    lines = [f"# {title}", ""]
    predicted = [e for e in entries if e.correct is not None]
    if predicted:
        right = sum(e.correct for e in predicted)
        lines += [f"{len(entries)} entries; {right} of {len(predicted)} predictions right.", ""]
    day = None
    for e in sorted(entries, key=lambda e: e.created, reverse=True):
        if e.created.date() != day:
            day = e.created.date()
            lines += [f"## {day.isoformat()}", ""]
        link = (f"{base_url.rstrip('/')}/{e.page}{e.url}" if base_url else f"/{e.page}{e.url}")
        link = link.replace(" ", "%20").replace(")", "%29").replace("(", "%28")
        lines.append(f"### {e.created:%H:%M} {_md(e.page)} ([open the experiment]({link}))")
        lines.append(f"Model: {_md(e.model)}  ")
        if e.question:
            mark = "right" if e.correct else "wrong"
            sure = f" ({e.confidence:.0%} sure)" if e.confidence is not None else ""
            lines.append(f"Asked: {_md(e.question)}  ")
            lines.append(f"Predicted: {_md(e.prediction)}{sure}; measured: {_md(e.measured)}: **{mark}**  ")
            if e.reason:
                lines.append(f"Why: {_md(e.reason)}  ")
        if e.note:
            lines.append(f"*{_md(e.heading.capitalize())}*: {_md(e.note)}" if e.heading else _md(e.note))
        lines.append("")
    return "\n".join(lines)
