"""Cached computations behind the Embeddings & positions page, keyed on the model by
@cache_on_model (ui.common.cache).

The weight matrices are read-only numpy views of the model's own weights (no copy: a GPT-2 embedding
is 150 MB), made on each call (a view costs nothing); only what is derived from them is cached.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core.interp.embeddings import geometry as E
from core.interp.embeddings import positions as P
from core.interp.embeddings import verdicts as V
from core.models import HookedLM
from ui.common.cache import cache_on_model

SPACES = {"embedding": "embedding W_E", "unembedding": "unembedding W_U"}
MAX_BAND_ROWS = 1024  # positions of W_pos the band verdict compares


def matrix(lm: HookedLM, space: str) -> np.ndarray:
    """Token vectors as rows, read-only: W_E [d_vocab, d_model] or W_U^T [d_vocab, d_model].

    A view of the weights themselves when they are float32 (no copy)."""
    W = lm.W_E if space == "embedding" else lm.W_U.T
    out = W.detach().float().numpy()
    out.setflags(write=False)
    return out


@cache_on_model(max_entries=32, show_spinner=False)
def token_set(lm: HookedLM, groups: tuple[tuple[str, tuple[str, ...]], ...]) -> E.TokenSet:
    return E.token_set(lm.tokenizer, dict(groups))


@cache_on_model(max_entries=32, show_spinner="Projecting the tokens to two dimensions...")
def projection(lm: HookedLM, space: str, ids: tuple[int, ...], method: str) -> E.Projection:
    return E.project(matrix(lm, space)[list(ids)], method, seed=0)


@cache_on_model(max_entries=32, show_spinner="Measuring how well the categories separate...")
def separation(lm: HookedLM, space: str, ids: tuple[int, ...], labels: tuple[str, ...]) -> E.Separation:
    return E.separation(matrix(lm, space)[list(ids)], labels, seed=0)


@cache_on_model(max_entries=64, show_spinner=False)
def neighbours(lm: HookedLM, space: str, token_id: int, k: int) -> E.Neighbours:
    return E.neighbours_of(matrix(lm, space), token_id, k, exclude=lm.tokenizer.all_special_ids)


@cache_on_model(max_entries=64, show_spinner=False)
def analogy(lm: HookedLM, space: str, a: int, b: int, c: int, k: int) -> E.Neighbours:
    return E.analogy(matrix(lm, space), a, b, c, k, exclude=lm.tokenizer.all_special_ids)


@cache_on_model(max_entries=64, show_spinner=False)
def analogy_check(lm: HookedLM, space: str, a: int, b: int, c: int) -> V.AnalogyCheck | None:
    """Where the world's answer to a - b + c ranks (None: the world knows no answer for these
    words, or the answer is not one token of this model)."""
    words = [t.strip() for t in lm.to_str_tokens([a, b, c])]
    found = E.world_analogy_answer(*words)
    if found is None:
        return None
    truth, what = found
    target = E.word_token_id(lm.tokenizer, truth)
    if target is None or target in (a, b, c):
        return None
    rank, n = V.analogy_rank(matrix(lm, space), a, b, c, target, exclude=lm.tokenizer.all_special_ids)
    return V.AnalogyCheck(truth, what, rank, n)


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


@cache_on_model(max_entries=8, show_spinner=False)
def learned_positions(lm: HookedLM) -> dict:
    """Cosine matrix (on at most 128 shown positions) and top PCs of W_pos."""
    W = lm.W_pos.detach().float().numpy()
    shown = P.shown_positions(len(W))
    pcs, explained = _pc_frame(W)
    return {"cosine": _cosine_frame(W, shown), "pcs": pcs, "explained": explained, "n_ctx": len(W),
            "step": int(shown[1] - shown[0]) if len(shown) > 1 else 1}


@cache_on_model(max_entries=8, show_spinner=False)
def position_band(lm: HookedLM) -> V.PositionBand:
    """The diagonal-band verdict on W_pos's first MAX_BAND_ROWS rows (the cosine by distance is
    O(n^2 d_model), so it is computed once per model)."""
    W = lm.W_pos.detach().float().numpy()[:MAX_BAND_ROWS]
    return V.position_band(P.cosine_by_distance(W))


@st.cache_data(max_entries=8, show_spinner=False)
def sinusoidal_positions(n_ctx: int, d_model: int) -> dict:
    W = P.sinusoidal(n_ctx, d_model)
    pcs, explained = _pc_frame(W)
    return {"cosine": _cosine_frame(W, P.shown_positions(n_ctx)), "pcs": pcs, "explained": explained}


@cache_on_model(max_entries=8, show_spinner=False)
def rotary(lm: HookedLM) -> dict | None:
    """The model's rotary frequencies next to the sinusoidal ones of the same head size."""
    theta = P.rotary_frequencies(lm.model)
    if theta is None:
        return None
    d_head, max_distance = lm.cfg.d_head, min(lm.cfg.n_ctx, 512)
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
