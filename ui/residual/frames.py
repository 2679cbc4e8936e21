"""Residual-stream results -> pandas frames for the charts and tables (no st.* here)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from core.interp.residual.anatomy import StreamAnatomy
from core.interp.residual.dla import DLAResult
from core.interp.residual.logit_lens import LensGrid
from core.interp.residual.verdicts import LensComparison, Readability
from core.models.hook_names import EMBEDDINGS


def point_label(layer: int) -> str:
    """A stream point in a chart's axis: "embed" or "after 2"."""
    return "embed" if layer == EMBEDDINGS else f"after {layer}"


def show_token(text: str) -> str:
    """A token as a chart shows it: spaces visible as a middle dot, newlines as ⏎."""
    return text.replace(" ", "·").replace("\n", "⏎") or "∅"


def grid_frame(grid: LensGrid, decode: Callable[[int], str]) -> pd.DataFrame:
    """One row per (stream point, position): the top token, the target's probability, the top 5."""
    rows = []
    for i, layer in enumerate(grid.layers):
        for p, tok in enumerate(grid.str_tokens):
            top = [f"{show_token(decode(int(t)))} {q:.0%}" for t, q in
                   zip(grid.top_ids[i, p], grid.top_probs[i, p], strict=True)]
            rows.append({
                "point": point_label(layer), "order": i, "pos": p,
                "column": f"{p}: {show_token(tok)}", "top": show_token(decode(int(grid.top_ids[i, p, 0]))),
                "target": show_token(decode(int(grid.target_ids[p]))),
                "p_target": float(grid.target_prob[i, p]), "top5": "  ".join(top),
                "kl": float(grid.kl_to_final[i, p]),
            })
    return pd.DataFrame(rows)


def kl_frame(kl: LensComparison) -> pd.DataFrame:
    rows = []
    for i, layer in enumerate(kl.layers):
        for lens, values in (("logit lens", kl.kl_logit), ("tuned lens", kl.kl_tuned)):
            rows.append({"point": point_label(layer), "order": i, "lens": lens, "kl": float(values[i])})
    return pd.DataFrame(rows)


GROUP_WORDS = {"embed": "embeddings", "pos_embed": "embeddings", "final_bias": "final biases",
               "hooks": "interventions"}


def dla_groups_frame(result: DLAResult) -> pd.DataFrame:
    """The parts summed per component in forward order: embeddings, attention L (its heads and
    bias), MLP L, ..., interventions, final biases."""
    groups: dict[str, dict] = {}
    for label, kind, layer, value in zip(result.labels, result.kinds, result.layers, result.values,
                                         strict=True):
        if kind in ("head", "attn_bias"):
            name, what = f"attention {layer}", "attention"
        elif kind == "mlp":
            name, what = label, "MLP"
        else:
            name, what = GROUP_WORDS[kind], GROUP_WORDS[kind]
        row = groups.setdefault(name, {"part": name, "kind": what, "value": 0.0, "order": len(groups)})
        row["value"] += float(value)
    return pd.DataFrame(list(groups.values()))


def parts_table(result: DLAResult) -> pd.DataFrame:
    return pd.DataFrame({"part": result.labels, "kind": result.kinds, "logit difference": result.values})


def head_frame(table: np.ndarray) -> pd.DataFrame:
    n_layers, n_heads = table.shape
    return pd.DataFrame([{"layer": L, "head": h, "name": f"{L}.{h}", "value": float(table[L, h])}
                         for L in range(n_layers) for h in range(n_heads)])


def accumulated_frame(result: DLAResult) -> pd.DataFrame:
    return pd.DataFrame({"point": [point_label(p) for p in result.accumulated_layers],
                         "order": range(len(result.accumulated_layers)),
                         "logit difference": result.accumulated})


def anatomy_frame(a: StreamAnatomy) -> pd.DataFrame:
    return pd.DataFrame({
        "write": a.labels, "order": range(len(a.labels)),
        "kind": [{"embed": "embeddings", "attn": "attention", "mlp": "MLP"}[k] for k in a.kinds],
        "write norm": a.write_norm, "stream norm before": a.input_norm, "stream norm after": a.after_norm,
        "cos with the stream it reads": a.cos_input, "cos with the final stream": a.cos_final})


def readability_frame(*results: Readability) -> pd.DataFrame:
    rows = []
    for r in results:
        for i, layer in enumerate(r.layers):
            rows.append({"point": point_label(layer), "order": i, "lens": f"{r.lens} lens",
                         "share": float(r.share_top[i]), "p_answer": float(r.answer_prob[i])})
    return pd.DataFrame(rows)
