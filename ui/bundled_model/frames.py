"""The bundled model's evaluation report and model card, turned into tables for its page."""

from __future__ import annotations

import pandas as pd

HEAD_KINDS = {"previous_token": "previous token", "induction": "induction",
              "duplicate_token": "duplicate token", "first_token": "first token (BOS)",
              "local_window": "local window", "current_token": "current token"}


def floors_table(rep: dict) -> pd.DataFrame:
    rows = []
    for item in rep["floors"].values():
        value, floor = item["value"], item["floor"]
        is_rate = floor <= 1 and not float(floor).is_integer()
        shown = "n/a" if value is None else f"{value:.1%}" if is_rate else f"{value:g}"
        rows.append({"what is measured": item["what"], "measured": shown,
                     "floor": f"{floor:.0%}" if is_rate else f"{floor:g}",
                     "pass": "yes" if item["pass"] else "NO"})
    return pd.DataFrame(rows)


def limits_table(rep: dict, labels: dict[str, str] | None = None) -> pd.DataFrame:
    """The report's limit tests; `labels` (report name -> the name the page's question uses) renames them."""
    rows = []
    for test, r in rep.get("limits", {}).items():
        rows.append({"test": (labels or {}).get(test, test), "n": r["n"], "accuracy": f"{r['accuracy']:.1%}",
                     "logit diff IO - S": f"{r['mean_logit_diff']:.2f}" if "mean_logit_diff" in r else ""})
    return pd.DataFrame(rows)


def head_score_frame(rep: dict, threshold: float) -> pd.DataFrame:
    """layer, head, score, kind, marked: every head's score of every kind, `marked` (outlined) when
    it reaches `threshold`: one rule, computed from the same numbers the cells show."""
    rows = []
    for kind, matrix in rep["head_scores"].items():
        for layer, row in enumerate(matrix):
            for head, score in enumerate(row):
                rows.append({"layer": layer, "head": head, "score": score,
                             "kind": HEAD_KINDS.get(kind, kind), "marked": bool(score >= threshold)})
    return pd.DataFrame(rows)
