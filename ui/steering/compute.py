"""Cached calls into core.interp.steering for the steering page (@cache_on_model: keyed on the
model's spec).

The texts and the numbers at the current coefficient (`outcome`) are one cached call; the curves
and the layer x coefficient map do not depend on the coefficient, so moving the slider recomputes
only the outcome.
"""

from __future__ import annotations

import streamlit as st

from core.interp.steering import effect as E
from core.interp.steering import fluency as F
from core.interp.steering import targets as T
from core.interp.steering import vectors as S
from core.interp.steering.verdict import SteeringOutcome
from core.models.generation import SamplingSettings
from core.world import datasets
from ui.common.cache import cache_on_model

COEF_LIMIT = 12.0  # the coefficient slider runs from -COEF_LIMIT to +COEF_LIMIT
# denser near 0, where a push goes from doing nothing to word salad; the default (+3) is on the grid
CURVE_COEFFICIENTS = (-12.0, -8.0, -6.0, -4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0)
SWEEP_COEFFICIENTS = CURVE_COEFFICIENTS
FLUENCY_TOKENS = 20  # length of the continuation scored at every coefficient of the curves
AUTO_SWEEP_PARAMS = 20e6  # below this size the layer sweep runs by itself; above, from a button


@st.cache_data(show_spinner=False)
def bundled_pairs(concept: str) -> tuple[tuple[str, str], ...]:
    return tuple(T.bundled_pairs(concept))


def reference_texts(lm, source, prompt_text: str) -> list[str]:
    """Texts on which the typical size of the residual stream is measured."""
    texts = [t for pair in source.pairs for t in pair] + [prompt_text]
    if lm.is_bundled:
        texts += datasets.corpus_texts(8)
    return texts


@cache_on_model(show_spinner=False, max_entries=64)
def steering_vector(lm, source, layer: int, prompt_text: str) -> S.SteeringVector:
    """The vector for this source: contrast pairs at stream layer `layer`, or the handed-over
    direction (at its own hook point)."""
    if source.direction is not None:
        d = source.direction
        return S.from_direction(lm, d.vector, d.hook_name, method=d.source, label=d.name,
                                reference_texts=reference_texts(lm, source, prompt_text))
    return S.mean_difference(lm, source.pairs, layer, label=source.label)


@cache_on_model(show_spinner=False, max_entries=64)
def stream_norm(lm, hook_name: str, source, prompt_text: str) -> float:
    return S.typical_norm(lm, hook_name, reference_texts(lm, source, prompt_text))


@cache_on_model(show_spinner=False, max_entries=16)
def targets(lm, source) -> T.ConceptTargets:
    if source.measure in T.BUNDLED_CONCEPTS:
        return T.bundled_targets(lm, source.measure, toward=source.toward)
    return T.targets_from_pairs(lm, source.pairs)


@cache_on_model(show_spinner=False, max_entries=128)
def outcome(lm, source, layer: int, prompt_text: str, coefficient: float, start_pos: int,
            sampling: SamplingSettings) -> SteeringOutcome:
    """The unsteered and steered texts (same seeds), and the word shifts of the vector and of
    random pushes of its norm on the evaluation prompts."""
    sv = steering_vector(lm, source, layer, prompt_text)
    t = targets(lm, source)
    tokens = lm.prepare_prompt(prompt_text).tokens  # [1, pos]
    texts = F.compare_texts(lm, sv, tokens, coefficient, sampling, start_pos=start_pos)
    point = E.point_effect(lm, sv, t, coefficient, start_pos=start_pos)
    return SteeringOutcome(point, texts, t)


@cache_on_model(show_spinner=False, max_entries=32)
def curves(lm, source, layer: int, prompt_text: str, settings: E.CurveSettings) -> list[E.EffectCurve]:
    sv = steering_vector(lm, source, layer, prompt_text)
    tokens = lm.prepare_prompt(prompt_text).tokens  # [1, pos]
    return E.effect_curves(lm, sv, targets(lm, source), settings, fluency_tokens=tokens)


@cache_on_model(show_spinner=False, max_entries=16)
def sweep(lm, source, settings: E.CurveSettings) -> E.LayerSweep:
    return E.layer_sweep(lm, source.pairs, targets(lm, source), settings)


def curve_settings(start_pos: int, sampling: SamplingSettings, coefficients=CURVE_COEFFICIENTS
                   ) -> E.CurveSettings:
    """The curves' settings: the page's sampling, FLUENCY_TOKENS long, steered from start_pos."""
    fluency = SamplingSettings(max_new_tokens=FLUENCY_TOKENS, temperature=sampling.temperature,
                               top_k=sampling.top_k, seed=sampling.seed, stop_at_eos=False)
    return E.CurveSettings(tuple(coefficients), start_pos, fluency)


def sweep_runs_by_itself(lm) -> bool:
    return lm.cfg.n_params < AUTO_SWEEP_PARAMS
