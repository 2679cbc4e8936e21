"""Notebook entries as data frames for the table and the charts (no st.* here)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from core.notebook.calibration import accuracy_by_page, reliability
from core.notebook.entries import Entry


def outcome(e: Entry) -> str:
    return "note" if e.correct is None else ("right" if e.correct else "wrong")


def table(entries: Sequence[Entry], base_url: str = "") -> pd.DataFrame:
    """One row per entry, newest first; `link` reproduces the experiment."""
    rows = [{
        "id": e.id, "when": e.created, "page": e.page, "model": e.model, "question": e.question,
        "predicted": e.prediction, "sure": e.confidence, "measured": e.measured, "outcome": outcome(e),
        "heading": e.heading, "note": e.note,
        "link": f"{base_url.rstrip('/')}/{e.page}{e.url}" if base_url else f"/{e.page}{e.url}",
    } for e in entries]
    columns = ["id", "when", "page", "model", "question", "predicted", "sure", "measured", "outcome",
               "heading", "note", "link"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values("when", ascending=False, kind="stable").reset_index(drop=True)


def filtered(frame: pd.DataFrame, pages: Sequence[str], outcomes: Sequence[str], headings: Sequence[str],
             text: str) -> pd.DataFrame:
    keep = pd.Series(True, index=frame.index)
    if pages:
        keep &= frame["page"].isin(pages)
    if outcomes:
        keep &= frame["outcome"].isin(outcomes)
    if headings:
        keep &= frame["heading"].isin(headings)
    if text.strip():
        needle = text.strip().lower()
        hay = (frame["question"] + " " + frame["note"] + " " + frame["predicted"] + " " + frame["measured"])
        keep &= hay.str.lower().str.contains(needle, regex=False)
    return frame[keep]


def per_day(entries: Sequence[Entry]) -> pd.DataFrame:
    """day, outcome, n: the timeline (aggregated, so 5,000 entries draw as fast as 50)."""
    if not entries:
        return pd.DataFrame(columns=["day", "outcome", "n"])
    frame = pd.DataFrame({"day": [e.created.date().isoformat() for e in entries],
                          "outcome": [outcome(e) for e in entries]})
    return frame.groupby(["day", "outcome"]).size().reset_index(name="n")


def reliability_frame(entries: Sequence[Entry]) -> pd.DataFrame:
    return pd.DataFrame([{"bin": f"{b.low:.0%}-{b.high:.0%}", "stated confidence": b.mean_confidence,
                          "fraction right": b.fraction_right, "n": b.n} for b in reliability(entries)],
                        columns=["bin", "stated confidence", "fraction right", "n"])


def page_accuracy(entries: Sequence[Entry]) -> pd.DataFrame:
    return pd.DataFrame([{"page": p, "accuracy": r / n, "right": r, "graded": n}
                         for p, (r, n) in sorted(accuracy_by_page(entries).items())],
                        columns=["page", "accuracy", "right", "graded"])
