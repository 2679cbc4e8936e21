"""Patching results -> pandas frames for the charts (no st.* here)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.interp.patching.attribution import AttributionResult
from core.interp.patching.graph import Graph
from core.interp.patching.node_inputs import DOORS
from core.interp.patching.path_patching import PathResult
from core.interp.patching.reads import BudgetSweep
from core.interp.patching.sweeps import SweepResult
from core.models.hook_names import hook_label

PANEL_WORDS = {"output": "output", "q": "queries", "k": "keys", "v": "values", "pattern": "pattern"}


def sweep_frame(result: SweepResult) -> pd.DataFrame:
    """One row per patch: panel, row, col (with their order), hook (name and words), raw, normalised,
    effect."""
    rows = []
    for p, panel in enumerate(result.panels):
        for r, row in enumerate(result.rows):
            layer, _ = result.row_keys[r]
            hook = result.hooks[r]
            if panel != "output":  # head_parts: the row's hook is the queries'; the panel names the part
                hook = hook.replace("hook_q", f"hook_{panel}")
            for c, col in enumerate(result.cols):
                rows.append({"panel": PANEL_WORDS[panel], "row": row, "row_i": r, "col": col, "col_i": c,
                             "hook": hook, "where": hook_label(hook), "raw": float(result.raw[p, r, c]),
                             "normalised": float(result.normalised[p, r, c]),
                             "effect": float(result.effect[p, r, c])})
    return pd.DataFrame(rows)


def budget_frame(sweep: BudgetSweep) -> pd.DataFrame:
    """sweep_frame of a sweep on a budget, with `measured` per cell and a `status` for the tooltip;
    cells not patched get effect 0 (drawn grey by the chart, never read as a result)."""
    frame = sweep_frame(sweep.result)
    est = sweep.estimate if sweep.result.direction == "denoise" else 1 - sweep.estimate  # as effect
    measured = sweep.measured.reshape(-1)
    ran = sweep.ran.reshape(-1)
    frame["measured"] = measured
    frame["status"] = [("patched exactly" if r else "no run needed (identical before the first difference)")
                       if m else f"not patched; attribution estimate {e:+.0%}"
                       for m, r, e in zip(measured, ran, est.reshape(-1), strict=True)]
    frame.loc[~frame["measured"], ["effect", "normalised", "raw"]] = 0.0
    return frame


def path_frame(result: PathResult) -> pd.DataFrame:
    """sender, receiver, door (q, k, v, or "direct" for the logits), effect."""
    rows = []
    for i, s in enumerate(result.senders):
        a = result.heads[s]
        for j, b in enumerate(result.heads):
            for d, door in enumerate(DOORS):
                e = result.effect[i, j, d]
                if np.isfinite(e):
                    rows.append({"sender": f"{a[0]}.{a[1]}", "receiver": f"{b[0]}.{b[1]}", "door": door,
                                 "effect": float(e), "raw": float(result.raw[i, j, d])})
        if np.isfinite(result.direct_effect[i]):
            rows.append({"sender": f"{a[0]}.{a[1]}", "receiver": "logits", "door": "direct",
                         "effect": float(result.direct_effect[i]), "raw": float(result.direct_raw[i])})
    return pd.DataFrame(rows)


def attribution_frame(result: AttributionResult, estimate: str) -> pd.DataFrame:
    est = getattr(result, estimate)
    return pd.DataFrame({"component": result.names, "group": result.groups, "exact": result.exact,
                         "estimate": est, "miss": np.abs(est - result.exact)})


def graph_frames(graph: Graph, kept: np.ndarray, scores: np.ndarray | None
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(nodes, edges) placed for a drawing: embed at the bottom, each layer's heads in a row with its
    MLP to the right and a little higher, the logits on top."""
    H, L = graph.n_heads, graph.n_layers
    pos = {"embed": ((H - 1) / 2, -1.0), "logits": ((H - 1) / 2, float(L))}
    for layer in range(L):
        for h in range(H):
            pos[f"{layer}.{h}"] = (float(h), float(layer))
        pos[f"MLP {layer}"] = (H + 0.3, layer + 0.4)
    used = set()
    edges = []
    for r, s in np.argwhere(kept):
        a, b = graph.sender_names[s], graph.receiver_node(int(r))
        name = graph.receiver_names[r]
        if name.endswith((" q", " k", " v")):
            door = name.rsplit(" ", 1)[1]
        else:
            door = "logits" if b == "logits" else "MLP in"
        used |= {a, b}
        score = float(scores[r, s]) if scores is not None else float("nan")
        edges.append({"edge": graph.edge_name(int(r), int(s)), "door": door, "x": pos[a][0], "y": pos[a][1],
                      "x2": pos[b][0], "y2": pos[b][1], "score": score,
                      "width": abs(score) if np.isfinite(score) else 1.0})
    nodes = [{"node": n, "x": x, "y": y, "in circuit": n in used,
              "kind": "head" if n[0].isdigit() else ("MLP" if n.startswith("MLP") else n)}
             for n, (x, y) in pos.items()]
    edge_frame = pd.DataFrame(edges, columns=["edge", "door", "x", "y", "x2", "y2", "score", "width"])
    return pd.DataFrame(nodes), edge_frame


def curve_frame(points) -> pd.DataFrame:
    return pd.DataFrame([{"edges asked for": a, "edges kept": b, "faithfulness": f} for a, b, f in points])
