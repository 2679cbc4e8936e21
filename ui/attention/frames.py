"""Data frames (and small PNGs) for the Attention page's charts: arrays from core in, tables out.

No Streamlit here: these are pure, so the chart data can be tested and benchmarked on its own.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from PIL import Image

# The "purples" scheme the heatmaps use (Vega), as anchors from weight 0 to weight 1.
_ANCHORS = np.array([[252, 251, 253], [218, 218, 235], [158, 154, 200], [106, 81, 163], [63, 0, 125]],
                    dtype=np.float64)
_HIDDEN = np.array([255, 255, 255], dtype=np.uint8)  # keys a query cannot see (the future)


def display_token(token: str) -> str:
    """A token as an axis label: newlines and tabs visible, an empty token shown as a symbol."""
    shown = token.replace("\n", "⏎").replace("\t", "⇥")
    return shown if shown.strip() else (shown.replace(" ", "·") or "∅")


def token_labels(str_tokens: Iterable[str]) -> list[str]:
    """Unique labels "position:token" (the same word twice is two different keys)."""
    return [f"{i}:{display_token(t)}" for i, t in enumerate(str_tokens)]


def head_name(layer: int, head: int) -> str:
    return f"{layer}.{head}"


def pattern_frame(weight: np.ndarray, raw: np.ndarray, labels: list[str]) -> pd.DataFrame:
    """Long table of one head's [q, k] matrix, visible cells only (k <= q)."""
    n = len(labels)
    q, k = np.tril_indices(n)
    lab = np.asarray(labels, dtype=object)
    return pd.DataFrame({"q": q, "k": k, "q_label": lab[q], "k_label": lab[k],
                         "weight": weight[q, k].astype(float), "raw": raw[q, k].astype(float)})


def _colour(values: np.ndarray) -> np.ndarray:
    # [..] in [0, 1] -> [.., 3] uint8, piecewise-linear through the anchors
    x = np.clip(values, 0, 1) * (len(_ANCHORS) - 1)
    i = np.minimum(x.astype(int), len(_ANCHORS) - 2)
    t = (x - i)[..., None]
    return (_ANCHORS[i] * (1 - t) + _ANCHORS[i + 1] * t).round().astype(np.uint8)


def pattern_png(matrix: np.ndarray, size: int) -> str:
    """A [q, k] pattern as a size x size PNG data URL (nearest-neighbour scaling keeps cells crisp)."""
    n = matrix.shape[0]
    rgb = _colour(matrix)  # [q, k, 3]
    rgb[np.triu_indices(n, 1)] = _HIDDEN
    image = Image.fromarray(rgb, "RGB").resize((size, size), Image.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def grid_frame(patterns: np.ndarray, entropy: np.ndarray, kinds: np.ndarray, size: int) -> pd.DataFrame:
    """One row per head with its pattern picture: patterns [layer, head, q, k]."""
    rows = []
    n_layers, n_heads = patterns.shape[:2]
    for layer in range(n_layers):
        for head in range(n_heads):
            rows.append({"layer": layer, "head": head, "name": head_name(layer, head),
                         "order": layer * n_heads + head,
                         "url": pattern_png(patterns[layer, head], size),
                         "entropy": float(entropy[layer, head]),
                         "kind": str(kinds[layer, head]).replace("_", " ") or "-"})
    return pd.DataFrame(rows)


def layer_head_frame(table: np.ndarray, value: str, marked: Iterable[tuple[int, int]] = ()) -> pd.DataFrame:
    """A [layer, head] table as rows (layer, head, value, marked)."""
    marked = set(marked)
    layer, head = np.indices(table.shape)
    return pd.DataFrame({"layer": layer.ravel(), "head": head.ravel(),
                         value: np.asarray(table, dtype=float).ravel(),
                         "marked": [(int(a), int(b)) in marked for a, b in zip(layer.ravel(), head.ravel(),
                                                                               strict=True)]})


def head_types_frame(scores: Mapping[str, np.ndarray], listed: Mapping[str, list[tuple[int, int, float]]],
                     kinds: Iterable[str]) -> pd.DataFrame:
    """Scores of several kinds, stacked with a `kind` column; `marked` = the report lists the head."""
    parts = []
    for kind in kinds:
        frame = layer_head_frame(scores[kind], "score", [(a, b) for a, b, _ in listed.get(kind, [])])
        frame["kind"] = kind.replace("_", " ")
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def from_token_frame(weight: np.ndarray, raw: np.ndarray, labels: list[str]) -> pd.DataFrame:
    """Attention of one query over keys: weight, raw [layer, head, k] -> rows (name, layer, head, key)."""
    n_layers, n_heads, n_keys = weight.shape
    layer, head, k = np.indices(weight.shape)
    names = np.array([[head_name(a, b) for b in range(n_heads)] for a in range(n_layers)], dtype=object)
    lab = np.asarray(labels[:n_keys], dtype=object)
    return pd.DataFrame({"name": names[layer, head].ravel(), "layer": layer.ravel(), "head": head.ravel(),
                         "k_label": lab[k.ravel()], "weight": weight.ravel().astype(float),
                         "raw": raw.ravel().astype(float)})


def distance_frame(profile: np.ndarray, layer: int, max_distance: int = 24) -> pd.DataFrame:
    """QK profile [head, distance] of one layer as rows (name, distance, score), NaNs dropped."""
    rows = [{"name": head_name(layer, h), "distance": d, "score": float(profile[h, d])}
            for h in range(profile.shape[0]) for d in range(min(profile.shape[1], max_distance + 1))
            if np.isfinite(profile[h, d])]
    return pd.DataFrame(rows)


def ov_frame(src_tokens: list[str], top_tokens: list[list[str]], top_values: np.ndarray,
             self_rank: np.ndarray) -> pd.DataFrame:
    """The OV table of one head: each source token, the tokens it pushes up most, its own rank."""
    return pd.DataFrame({
        "source token": [display_token(t) for t in src_tokens],
        "pushes up most (logit change)": [
            ", ".join(f"{display_token(t)} ({v:+.1f})" for t, v in zip(row, values, strict=True))
            for row, values in zip(top_tokens, top_values, strict=True)],
        "rank of itself": [int(r) for r in self_rank],
    })
