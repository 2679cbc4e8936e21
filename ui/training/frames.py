"""Training logs as pandas frames for the charts (no st.* here)."""

from __future__ import annotations

import math

import pandas as pd

from core.interp.training.log import Checkpoint

LOSS_SERIES = {"train_loss": "train loss", "test_loss": "test loss", "copy_loss": "test loss, copied tokens"}
ACCURACY_SERIES = {"train_acc": "train accuracy", "test_acc": "test accuracy"}
SCORE_KINDS = {"previous_token": "previous-token", "induction": "induction"}


def _ok(value) -> bool:
    return value is not None and isinstance(value, int | float) and math.isfinite(value)


def long_frame(checkpoints: list[Checkpoint], series: dict[str, str]) -> pd.DataFrame:
    """step, series, value for every finite logged value of the named fields."""
    rows = [{"step": c.step, "series": label, "value": float(getattr(c, field))}
            for c in checkpoints for field, label in series.items() if _ok(getattr(c, field))]
    return pd.DataFrame(rows, columns=["step", "series", "value"])


def icl_frame(checkpoints: list[Checkpoint]) -> pd.DataFrame:
    """step, series (first half / repeated half), value: the two losses of the ICL probe."""
    rows = []
    for c in checkpoints:
        if _ok(c.first_half_loss) and _ok(c.repeated_half_loss):
            rows.append({"step": c.step, "series": "first half (random)", "value": c.first_half_loss})
            rows.append({"step": c.step, "series": "repeated half", "value": c.repeated_half_loss})
    return pd.DataFrame(rows, columns=["step", "series", "value"])


def best_score_frame(checkpoints: list[Checkpoint]) -> pd.DataFrame:
    """step, series, value, head: the best head's score of each kind at every logged step."""
    rows = []
    for c in checkpoints:
        if not c.scores:
            continue
        for kind, label in SCORE_KINDS.items():
            table = c.scores.get(kind)
            if not table:
                continue
            layer, head, value = max(((li, hi, v) for li, row in enumerate(table) for hi, v in enumerate(row)
                                      if _ok(v)), key=lambda t: t[2], default=(None, None, None))
            if value is not None:
                rows.append({"step": c.step, "series": f"best {label} head", "value": float(value),
                             "head": f"{layer}.{head}"})
    return pd.DataFrame(rows, columns=["step", "series", "value", "head"])


def head_table_frame(checkpoint: Checkpoint) -> pd.DataFrame:
    """layer, head, kind, score (every head, both kinds) at one checkpoint."""
    rows = []
    for kind, label in SCORE_KINDS.items():
        for layer, row in enumerate((checkpoint.scores or {}).get(kind, [])):
            for head, value in enumerate(row):
                rows.append({"layer": layer, "head": head, "kind": label,
                             "score": float(value) if _ok(value) else 0.0, "marked": False})
    return pd.DataFrame(rows, columns=["layer", "head", "kind", "score", "marked"])


def snapshot_frame(checkpoint: Checkpoint, tokens: list[str]) -> pd.DataFrame:
    """name, order, q, k, q_label, k_label, weight for every head's snapshot pattern (0-1)."""
    rows = []
    if not checkpoint.snapshot:
        return pd.DataFrame(columns=["name", "order", "q", "k", "q_label", "k_label", "weight"])
    n_heads = len(checkpoint.snapshot[0])
    labels = [f"{i}:{t}" for i, t in enumerate(tokens)]
    for layer, heads in enumerate(checkpoint.snapshot):
        for head, pattern in enumerate(heads):
            for q, row in enumerate(pattern):
                for k, percent in enumerate(row):
                    if k <= q:
                        rows.append({"name": f"{layer}.{head}", "order": layer * n_heads + head,
                                     "q": q, "k": k,
                                     "q_label": labels[q] if q < len(labels) else str(q),
                                     "k_label": labels[k] if k < len(labels) else str(k),
                                     "weight": percent / 100})
    return pd.DataFrame(rows)


def fourier_frame(checkpoints: list[Checkpoint]) -> pd.DataFrame:
    rows = [{"step": c.step, "series": "Fourier sparsity of W_E", "value": c.fourier_sparsity}
            for c in checkpoints if _ok(c.fourier_sparsity)]
    return pd.DataFrame(rows, columns=["step", "series", "value"])
