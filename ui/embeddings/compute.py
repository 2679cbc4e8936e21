"""Cached computations and tables behind the Embeddings & positions page.

A model cannot be hashed, so functions take it as `_lm` next to `spec`, its identity. The weight
matrices are read-only numpy views of the model's own weights (no copy: a GPT-2 embedding is 150 MB);
everything derived from them is cached per input with st.cache_data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core.interp.embeddings import geometry as E
from core.interp.embeddings import positions as P

SPACES = {"embedding": "embedding W_E", "unembedding": "unembedding W_U"}


@st.cache_resource(max_entries=4, show_spinner=False)
def matrix(_lm, spec: str, space: str) -> np.ndarray:
    """Token vectors as rows, read-only: W_E [d_vocab, d_model] or W_U^T [d_vocab, d_model].

    A view of the weights themselves when they are float32 (no copy)."""
    W = _lm.W_E if space == "embedding" else _lm.W_U.T
    out = W.detach().float().numpy()
    out.setflags(write=False)
    return out


@st.cache_data(max_entries=32, show_spinner=False)
def token_set(_lm, spec: str, groups: tuple[tuple[str, tuple[str, ...]], ...]) -> E.TokenSet:
    return E.token_set(_lm.tokenizer, dict(groups))


@st.cache_data(max_entries=32, show_spinner="Projecting the tokens to two dimensions...")
def projection(_lm, spec: str, space: str, ids: tuple[int, ...], method: str) -> E.Projection:
    return E.project(matrix(_lm, spec, space)[list(ids)], method, seed=0)


@st.cache_data(max_entries=32, show_spinner="Measuring how well the categories separate...")
def separation(_lm, spec: str, space: str, ids: tuple[int, ...], labels: tuple[str, ...]) -> E.Separation:
    return E.separation(matrix(_lm, spec, space)[list(ids)], labels, seed=0)


@st.cache_data(max_entries=64, show_spinner=False)
def neighbours(_lm, spec: str, space: str, token_id: int, k: int) -> E.Neighbours:
    return E.neighbours_of(matrix(_lm, spec, space), token_id, k, exclude=_lm.tokenizer.all_special_ids)


@st.cache_data(max_entries=64, show_spinner=False)
def analogy(_lm, spec: str, space: str, a: int, b: int, c: int, k: int) -> E.Neighbours:
    return E.analogy(matrix(_lm, spec, space), a, b, c, k, exclude=_lm.tokenizer.all_special_ids)


def neighbour_frame(lm, found: E.Neighbours) -> pd.DataFrame:
    return pd.DataFrame({"token": lm.to_str_tokens(list(found.ids)) if found.ids else [],
                         "cosine": np.round(found.similarity, 3)})


def scatter_frame(tokens: E.TokenSet, projection: E.Projection) -> pd.DataFrame:
    return pd.DataFrame({"x": projection.coords[:, 0], "y": projection.coords[:, 1],
                         "token": list(tokens.tokens), "category": list(tokens.labels)})


# -- positions ---------------------------------------------------------------------------------------
def _cosine_frame(W: np.ndarray, shown: np.ndarray) -> pd.DataFrame:
    cos = P.cosine_matrix(W[shown])
    i, j = np.indices(cos.shape)
    return pd.DataFrame({"i": shown[i.ravel()], "j": shown[j.ravel()], "cosine": cos.ravel()})


def _pc_frame(W: np.ndarray) -> tuple[pd.DataFrame, tuple[float, ...]]:
    pcs = P.position_pcs(W, k=3)
    n, k = pcs.components.shape
    frame = pd.DataFrame({"position": np.tile(np.arange(n), k),
                          "value": pcs.components.T.ravel(),
                          "component": np.repeat([f"PC{c + 1} ({pcs.explained[c]:.0%})" for c in range(k)],
                                                 n)})
    return frame, pcs.explained


@st.cache_data(max_entries=8, show_spinner=False)
def learned_positions(_lm, spec: str) -> dict:
    """Cosine matrix (on at most 128 shown positions) and top PCs of W_pos."""
    W = _lm.W_pos.detach().float().numpy()
    shown = P.shown_positions(len(W))
    pcs, explained = _pc_frame(W)
    return {"cosine": _cosine_frame(W, shown), "pcs": pcs, "explained": explained, "n_ctx": len(W),
            "step": int(shown[1] - shown[0]) if len(shown) > 1 else 1}


@st.cache_data(max_entries=8, show_spinner=False)
def sinusoidal_positions(n_ctx: int, d_model: int) -> dict:
    W = P.sinusoidal(n_ctx, d_model)
    pcs, explained = _pc_frame(W)
    return {"cosine": _cosine_frame(W, P.shown_positions(n_ctx)), "pcs": pcs, "explained": explained}


@st.cache_data(max_entries=8, show_spinner=False)
def rotary(_lm, spec: str) -> dict | None:
    """The model's rotary frequencies next to the sinusoidal ones of the same head size."""
    theta = P.rotary_frequencies(_lm.model)
    if theta is None:
        return None
    d_head, max_distance = _lm.cfg.d_head, min(_lm.cfg.n_ctx, 512)
    reference = P.sinusoidal_frequencies(d_head)
    # dimensions a partial-rotary model leaves unrotated behave like pairs with theta = 0
    whole_head = np.pad(theta, (0, max(0, d_head // 2 - len(theta))))
    waves = pd.concat([
        pd.DataFrame({"pair": np.arange(len(theta)), "wavelength": P.wavelengths(theta),
                      "source": "this model (rotary)"}),
        pd.DataFrame({"pair": np.arange(len(reference)), "wavelength": P.wavelengths(reference),
                      "source": "sinusoidal, base 10000"}),
    ])
    curve = pd.concat([
        pd.DataFrame({"distance": np.arange(max_distance + 1),
                      "score": P.rotary_score_by_distance(whole_head, max_distance),
                      "source": "this model (rotary)"}),
        pd.DataFrame({"distance": np.arange(max_distance + 1),
                      "score": P.rotary_score_by_distance(reference, max_distance),
                      "source": "sinusoidal, base 10000"}),
    ])
    return {"waves": waves, "curve": curve, "n_pairs": len(theta), "d_head": d_head,
            "fastest": float(P.wavelengths(theta).min()), "slowest": float(P.wavelengths(theta).max())}
