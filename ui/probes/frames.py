"""Data frames for the probes page's charts and its ground-truth sentences (no st.* here)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.interp.probes.causal import CausalResult
from core.interp.probes.probe import ProbeReport

SERIES = ("probe: held-out items", "probe: seen items", "control task", "selectivity",
          "cross-validated")


def score_frame(r: ProbeReport) -> pd.DataFrame:
    """Long frame: layer, order, series, score, lo, hi (lo/hi: the cross-validation spread)."""
    values = (r.test_score, r.seen_score, r.control_score, r.selectivity, r.cv_mean)
    rows = []
    for name, series in zip(SERIES, values, strict=True):
        for i, (label, v) in enumerate(zip(r.layer_labels, series, strict=True)):
            if np.isnan(v):
                continue
            spread = r.cv_std[i] if name == "cross-validated" else 0.0
            rows.append(dict(layer=label, order=i, series=name, score=float(v),
                             lo=float(v - spread), hi=float(min(v + spread, 1.0))))  # scores <= 1
    return pd.DataFrame(rows)


def score_table(r: ProbeReport) -> pd.DataFrame:
    """One row per layer with every score, for the table under the chart."""
    return pd.DataFrame({
        "layer": r.layer_labels, "hook point": r.hook_names, "held-out": r.test_score,
        "train": r.train_score, "seen items": r.seen_score, "control": r.control_score,
        "selectivity": r.selectivity, "cross-validated": r.cv_mean, "cv std": r.cv_std})


def confusion_frame(r: ProbeReport, layer: int) -> pd.DataFrame:
    counts = r.confusion[layer]  # [true, predicted]
    share = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    return pd.DataFrame([dict(true=t, predicted=p, count=int(counts[i, j]), share=float(share[i, j]))
                         for i, t in enumerate(r.classes) for j, p in enumerate(r.classes)])


def regression_frame(r: ProbeReport, layer: int) -> pd.DataFrame:
    return pd.DataFrame({"true": r.y_test.astype(float), "predicted": r.predictions[layer]})


def cosine_frame(r: ProbeReport) -> pd.DataFrame:
    labels = r.layer_labels
    return pd.DataFrame([dict(a=a, b=b, cosine=float(r.cosine[i, j]))
                         for i, a in enumerate(labels) for j, b in enumerate(labels)])


def causal_frame(c: CausalResult) -> pd.DataFrame:
    return pd.DataFrame({"condition": c.conditions, "mean": c.mean, "lo": c.mean - 2 * c.sem,
                         "hi": c.mean + 2 * c.sem, "right": c.right_rate})


def first_readable(r: ProbeReport, threshold: float = 0.9) -> int | None:
    """Index of the first layer whose held-out score reaches threshold, or None."""
    hits = np.flatnonzero(r.test_score >= threshold)
    return int(hits[0]) if len(hits) else None


def detail_layer(r: ProbeReport, threshold: float = 0.9) -> int:
    """The layer to show first: where the property becomes readable, else the best one."""
    i = first_readable(r, threshold)
    return i if i is not None else int(np.nanargmax(r.test_score))


def readable_sentence(r: ProbeReport, threshold: float = 0.9) -> str:
    """Where the property becomes readable, in words (with the selectivity there)."""
    i = first_readable(r, threshold)
    best = int(np.nanargmax(r.test_score))
    if i is None:
        return (f"No layer reaches {threshold:.0%} held-out {r.metric}; the best is layer "
                f"**{r.layer_labels[best]}** with {r.test_score[best]:.2f}.")
    before = (f" (layer {r.layer_labels[i - 1]}: {r.test_score[i - 1]:.2f})" if i > 0 else "")
    found = (f"It becomes readable at layer **{r.layer_labels[i]}**: held-out {r.metric} "
             f"{r.test_score[i]:.2f}{before}, control {r.control_score[i]:.2f}, selectivity "
             f"{r.selectivity[i]:.2f}.")
    if r.target == "class" and r.control_score[i] > r.chance + 0.2:
        found += (" The control is high too: this layer also carries *which word* it was, so a "
                  "probe could memorise; the held-out items show whether it needs to.")
    return found


def causal_sentence(c: CausalResult, layer_label: str) -> str:
    """What removing each direction did, in words."""
    clean = c.mean[0]
    parts = []
    for name, mean, flipped in zip(c.conditions[1:], c.mean[1:], c.flipped[1:], strict=True):
        gone = (clean - mean) / abs(clean) if clean else 0.0
        parts.append(f"- **{name}**: {clean:.2f} → {mean:.2f} ({gone:.0%} of the effect gone; the "
                     f"model's choice flips on {flipped:.0%} of prompts)")
    return (f"At layer **{layer_label}** the right side wins on {c.right_rate[0]:.0%} of prompts "
            f"clean (mean score {clean:.2f}). Removing {c.n_removed} direction(s):\n" + "\n".join(parts))


def causal_summary(c: CausalResult, layer_label: str) -> str:
    """The verdict of the causal check at one layer, in two sentences.

    The named direction that flips the most choices (then: removes the most of the effect) is
    compared with a random one. Flipping 20 points more than random means the model uses it to
    choose; removing at least a quarter of the effect, 15 points more than random, without flips,
    means it uses it but not alone; anything less, the behaviour reads the property elsewhere."""
    names = list(c.conditions)
    clean = c.mean[0]
    gone = (clean - c.mean) / abs(clean) if clean else np.zeros_like(c.mean)  # share of effect lost
    best = max(range(1, len(names) - 1), key=lambda i: (c.flipped[i], gone[i]))
    other = 1 if best == 2 else 2
    rnd = names.index("random direction removed")
    if c.flipped[best] - c.flipped[rnd] >= 0.2:
        verdict = "so the model **uses** this direction to choose."
    elif gone[best] >= 0.25 and gone[best] - gone[rnd] >= 0.15:
        verdict = (f"so the model **uses** this direction, though not alone: {gone[best]:.0%} of the "
                   f"effect goes with it ({gone[rnd]:.0%} with a random one), but the rest, carried "
                   "by other directions, still makes the right choice.")
    else:
        verdict = ("so the model does **not** rely on this direction alone: the information is "
                   "readable here but the behaviour reads it elsewhere (another direction or layer).")
    return (f"At layer **{layer_label}**, removing the **{names[best].removesuffix(' removed')}** "
            f"flips the model's choice on {c.flipped[best]:.0%} of prompts (score "
            f"{clean:.2f} → {c.mean[best]:.2f}), against {c.flipped[rnd]:.0%} for a random "
            f"direction and {c.flipped[other]:.0%} for the "
            f"{names[other].removesuffix(' removed')}; {verdict}")
