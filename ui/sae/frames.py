"""Core results -> pandas frames for the SAE page's charts and tables (no st.* here)."""

from __future__ import annotations

import math

import pandas as pd

from core.interp.sae.features import GroundTruthMatch
from core.interp.sae.train import TrainPoint
from core.interp.sae.verdict import status


def matches_frame(matches: list[GroundTruthMatch]) -> pd.DataFrame:
    """One row per attribute: its best feature, AUROC, precision, recall and verdict status; label
    is what the chart writes at the bar (three decimals, so 0.899 never reads as 0.90)."""
    rows = []
    for m in matches:
        state = status(m.auroc, m.n_tokens)
        rows.append({
            "attribute": m.attribute, "status": state, "tokens": m.n_tokens,
            "feature": m.feature if m.feature >= 0 else None,
            "auroc": None if math.isnan(m.auroc) else m.auroc,
            "precision": m.precision if state != "absent" else None,
            "recall": m.recall if state != "absent" else None,
            "label": "no single-token words" if state == "absent" else f"#{m.feature}  {m.auroc:.3f}",
        })
    return pd.DataFrame(rows)


def history_frame(history: list[TrainPoint]) -> pd.DataFrame:
    """Long form (step, metric, value) of the training metrics, spliced loss where measured."""
    rows = []
    for p in history:
        rows += [(p.step, "explained_variance", p.explained_variance), (p.step, "l0", p.l0),
                 (p.step, "dead_fraction", p.dead_fraction)]
        if p.splice is not None:
            rows.append((p.step, "loss_recovered", p.splice.recovered))
    return pd.DataFrame(rows, columns=["step", "metric", "value"])
