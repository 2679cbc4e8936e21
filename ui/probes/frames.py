"""Data frames for the probes page's charts and tables (no st.* here)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.interp.probes.causal import CausalResult
from core.interp.probes.probe import ProbeReport
from core.models.hook_names import hook_label, short_label

SERIES = ("probe: held-out items", "probe: seen items", "control task", "selectivity",
          "cross-validated")


def layer_labels(r: ProbeReport) -> list[str]:
    """The layers on an axis: "embed" for the stream before block 0, else their numbers."""
    return [short_label(layer) for layer in r.layers]


def score_frame(r: ProbeReport) -> pd.DataFrame:
    """Long frame: layer, order, series, score, lo, hi (lo/hi: the cross-validation spread)."""
    values = (r.test_score, r.seen_score, r.control_score, r.selectivity, r.cv_mean)
    rows = []
    for name, series in zip(SERIES, values, strict=True):
        for i, (label, v) in enumerate(zip(layer_labels(r), series, strict=True)):
            if np.isnan(v):
                continue
            spread = r.cv_std[i] if name == "cross-validated" else 0.0
            rows.append(dict(layer=label, order=i, series=name, score=float(v),
                             lo=float(v - spread), hi=float(min(v + spread, 1.0))))  # scores <= 1
    return pd.DataFrame(rows)


def score_table(r: ProbeReport) -> pd.DataFrame:
    """One row per layer with every score, for the table under the chart."""
    return pd.DataFrame({
        "layer": layer_labels(r), "hook point": list(r.hook_names),
        "reads": [hook_label(n) for n in r.hook_names], "held-out": r.test_score,
        "train": r.train_score, "seen items": r.seen_score, "control": r.control_score,
        "selectivity": r.selectivity, "cross-validated": r.cv_mean, "cv std": r.cv_std})


def confusion_frame(r: ProbeReport, index: int) -> pd.DataFrame:
    counts = r.confusion[index]  # [true, predicted]
    share = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    return pd.DataFrame([dict(true=t, predicted=p, count=int(counts[i, j]), share=float(share[i, j]))
                         for i, t in enumerate(r.classes) for j, p in enumerate(r.classes)])


def regression_frame(r: ProbeReport, index: int) -> pd.DataFrame:
    return pd.DataFrame({"true": r.y_test.astype(float), "predicted": r.predictions[index]})


def cosine_frame(r: ProbeReport) -> pd.DataFrame:
    labels = layer_labels(r)
    return pd.DataFrame([dict(a=a, b=b, cosine=float(r.cosine[i, j]))
                         for i, a in enumerate(labels) for j, b in enumerate(labels)])


def causal_frame(c: CausalResult) -> pd.DataFrame:
    """condition (with the share of prompts where the right side wins, so no label sits on a bar),
    mean, lo, hi (+-2 standard errors), right."""
    labels = [f"{name} · right on {right:.0%}" for name, right in zip(c.conditions, c.right_rate,
                                                                       strict=True)]
    return pd.DataFrame({"condition": labels, "mean": c.mean, "lo": c.mean - 2 * c.sem,
                         "hi": c.mean + 2 * c.sem, "right": c.right_rate})
