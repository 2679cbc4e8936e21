"""Cached calls into core.interp.steering.vectors for the steering page.

A model cannot be hashed, so every function takes it as `_lm` next to `spec`, its identity. The
unsteered continuation does not depend on the coefficient, so moving the slider only recomputes the
steered one; the curves and the layer x coefficient map do not depend on it either.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from core.interp.steering import effect as E
from core.interp.steering import vectors as S
from core.world import datasets

COEF_LIMIT = 12.0  # the coefficient slider runs from -COEF_LIMIT to +COEF_LIMIT
CURVE_COEFFICIENTS = tuple(float(c) for c in np.linspace(-COEF_LIMIT, COEF_LIMIT, 13))
SWEEP_COEFFICIENTS = CURVE_COEFFICIENTS
FLUENCY_TOKENS = 20
AUTO_SWEEP_PARAMS = 20e6  # below this size the layer sweep runs by itself; above, from a button


@st.cache_data(show_spinner=False)
def bundled_pairs(concept: str) -> tuple[tuple[str, str], ...]:
    return tuple(E.bundled_pairs(concept))


def reference_texts(lm, source, prompt_text: str) -> list[str]:
    """Texts on which the typical size of the residual stream is measured."""
    texts = [t for pair in source.pairs for t in pair] + [prompt_text]
    if lm.is_bundled:
        texts += datasets.corpus_texts(8)
    return texts


@st.cache_data(show_spinner=False, max_entries=64)
def steering_vector(_lm, spec: str, source, layer: int, prompt_text: str) -> S.SteeringVector:
    """The vector for this source: contrast pairs at `layer`, or the handed-over direction."""
    if source.direction is not None:
        d = source.direction
        return S.from_direction(_lm, d.vector, d.hook_name, method=d.source, label=d.name,
                                reference_texts=reference_texts(_lm, source, prompt_text))
    return S.mean_difference(_lm, source.pairs, layer, label=source.label)


@st.cache_data(show_spinner=False, max_entries=64)
def stream_norm(_lm, spec: str, hook_name: str, source, prompt_text: str) -> float:
    return S.typical_norm(_lm, hook_name, reference_texts(_lm, source, prompt_text))


@st.cache_data(show_spinner=False, max_entries=16)
def targets(_lm, spec: str, measure: str, pairs: tuple) -> E.ConceptTargets:
    if measure in E.BUNDLED_CONCEPTS:
        return E.bundled_targets(_lm, measure)
    return E.targets_from_pairs(_lm, pairs)


@dataclass(frozen=True)
class Continuation:
    text: str
    token_ids: tuple[int, ...]  # the new tokens
    perplexity: float  # of the new tokens under the unsteered model


@st.cache_data(show_spinner=False, max_entries=256)
def continuation(_lm, spec: str, prompt_text: str, source, layer: int, coefficient: float,
                 start_pos: int, temperature: float, top_k: int | None, seed: int,
                 n_new: int) -> Continuation:
    """Steered continuation (coefficient 0 is the unsteered one: the hook then adds nothing)."""
    tokens = _lm.prepare_prompt(prompt_text).tokens  # [1, pos]
    sv = steering_vector(_lm, spec, source, layer, prompt_text)
    gen = S.generate_steered(_lm, tokens, sv, coefficient, start_pos=start_pos, max_new_tokens=n_new,
                             temperature=temperature, top_k=top_k, seed=seed)
    ppl = S.perplexity(_lm, gen.tokens, tokens.shape[1])
    return Continuation(gen.new_text, tuple(gen.new_tokens.tolist()), ppl)


@st.cache_data(show_spinner=False, max_entries=64)
def point_effect(_lm, spec: str, source, layer: int, prompt_text: str, coefficient: float,
                 start_pos: int) -> dict:
    """P(+ words), P(- words), logit difference at coefficient 0 and at `coefficient`, for the vector
    and for the random control of the same norm."""
    sv = steering_vector(_lm, spec, source, layer, prompt_text)
    t = targets(_lm, spec, source.measure, source.pairs)
    out = {}
    for name, v in (("vector", sv), ("random", S.random_like(sv))):
        p_plus, p_minus, diff = E.next_token_effect(_lm, v, t, [0.0, coefficient], start_pos)
        out[name] = {"p_plus": p_plus.tolist(), "p_minus": p_minus.tolist(), "logit_diff": diff.tolist()}
    return out


@st.cache_data(show_spinner=False, max_entries=32)
def curves(_lm, spec: str, source, layer: int, prompt_text: str, start_pos: int, temperature: float,
           top_k: int | None, seed: int) -> list[E.EffectCurve]:
    sv = steering_vector(_lm, spec, source, layer, prompt_text)
    t = targets(_lm, spec, source.measure, source.pairs)
    tokens = _lm.prepare_prompt(prompt_text).tokens  # [1, pos]
    return E.effect_curves(_lm, sv, t, CURVE_COEFFICIENTS, fluency_tokens=tokens, start_pos=start_pos,
                           n_new=FLUENCY_TOKENS, temperature=temperature, top_k=top_k, seed=seed)


@st.cache_data(show_spinner=False, max_entries=16)
def sweep(_lm, spec: str, source, start_pos: int) -> E.LayerSweep:
    t = targets(_lm, spec, source.measure, source.pairs)
    return E.layer_sweep(_lm, source.pairs, t, SWEEP_COEFFICIENTS, start_pos=start_pos)


def sweep_runs_by_itself(lm) -> bool:
    return lm.cfg.n_params < AUTO_SWEEP_PARAMS
