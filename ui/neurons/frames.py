"""Neuron and weight results -> pandas frames (no st.* here)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from core.interp.neurons.ablation import FAMILY_WORDS, KnockOut
from core.interp.neurons.activations import NeuronRecords
from core.interp.neurons.gated import QUADRANTS, GateUp
from core.interp.neurons.weights import TokenList
from core.interp.weights.composition import Baseline, Composition
from core.interp.weights.svd import CircuitSVD

Decode = Callable[[int], str]


def show_token(text: str) -> str:
    return text.replace(" ", "·").replace("\n", "⏎") or "∅"


def histogram_frame(rec: NeuronRecords, neuron: int) -> pd.DataFrame:
    edges, counts = rec.hist_edges[neuron], rec.hist_counts[neuron]
    return pd.DataFrame({"from": edges[:-1], "to": edges[1:], "tokens": counts})


def layer_table(rec: NeuronRecords, labels: tuple[str, ...], aurocs: np.ndarray) -> pd.DataFrame:
    """Every neuron of the layer: its largest activation, mean, share positive, best label."""
    best = np.nanargmax(np.where(np.isnan(aurocs), -1, aurocs), axis=0)  # [d_mlp]
    return pd.DataFrame({
        "neuron": np.arange(rec.d_mlp), "max": rec.top_values[:, 0], "min": rec.bottom_values[:, 0],
        "mean": rec.mean, "positive": rec.frac_positive,
        "best label": [labels[i] for i in best],
        "AUROC": aurocs[best, np.arange(rec.d_mlp)],
    })


def token_table(tl: TokenList, decode: Decode, which: str = "top") -> pd.DataFrame:
    ids, vals = (tl.top_ids, tl.top_values) if which == "top" else (tl.bottom_ids, tl.bottom_values)
    return pd.DataFrame({"token": [show_token(decode(int(i))) for i in ids], "score": vals})


def overlap_frame(acts: np.ndarray, mask: np.ndarray, bins: int = 30) -> pd.DataFrame:
    """Histograms (as shares) of the activations where a rule holds and where it does not."""
    lo, hi = float(np.min(acts)), float(np.max(acts))
    edges = np.linspace(lo, hi if hi > lo else lo + 1e-6, bins + 1)
    rows = []
    for name, part in (("rule holds", acts[mask]), ("rule does not hold", acts[~mask])):
        counts, _ = np.histogram(part, edges)
        share = counts / max(1, counts.sum())
        rows += [{"from": a, "to": b, "share": s, "tokens": name}
                 for a, b, s in zip(edges[:-1], edges[1:], share, strict=True)]
    return pd.DataFrame(rows)


def knockout_frame(ko: KnockOut) -> pd.DataFrame:
    return pd.DataFrame({"family": [FAMILY_WORDS[f] for f in ko.families], "clean": ko.clean,
                         "ablated": ko.ablated, "change": ko.delta, "tokens": ko.n_tokens})


def quadrant_frame(gu: GateUp) -> pd.DataFrame:
    return pd.DataFrame({"quadrant": QUADRANTS, "share of tokens": gu.share, "mean activation": gu.mean_post})


def gate_up_points(gu: GateUp, limit: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(gu.gate), size=min(limit, len(gu.gate)), replace=False)
    return pd.DataFrame({"gate": gu.gate[idx], "up": gu.up[idx], "activation": gu.post[idx]})


def spectrum_frame(r: CircuitSVD) -> pd.DataFrame:
    return pd.DataFrame({"direction": np.arange(1, len(r.singular_values) + 1),
                         "singular value": r.singular_values})


def directions_frame(r: CircuitSVD, decode: Decode) -> pd.DataFrame:
    words = lambda ids: ", ".join(show_token(decode(int(i))) for i in ids)  # noqa: E731
    first, second = ("reads", "writes") if r.kind == "OV" else ("query", "looks for keys")
    return pd.DataFrame({"direction": [i + 1 for i in range(len(r.directions))],
                         "singular value": [d.value for d in r.directions],
                         first: [words(d.in_ids) for d in r.directions],
                         second: [words(d.out_ids) for d in r.directions]})


def composition_frame(comp: Composition, base: Baseline, mode: str) -> pd.DataFrame:
    s = comp.scores[mode]
    L, H = s.shape[:2]
    rows = []
    for l1 in range(L):
        for h1 in range(H):
            for l2 in range(l1 + 1, L):
                for h2 in range(H):
                    v = float(s[l1, h1, l2, h2])
                    rows.append({"from": f"{l1}.{h1}", "to": f"{l2}.{h2}", "l1": l1, "h1": h1, "l2": l2,
                                 "h2": h2, "score": v, "z": base.z(mode, v)})
    return pd.DataFrame(rows)
