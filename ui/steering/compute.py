"""Cached calls into core.interp.steering for the steering page (keyed on the model's spec, local or
remote: ui.common.remote.cache_on_backend).

The texts and the numbers at the current coefficient (`outcome`) are one cached call; the curves
and the layer x coefficient map do not depend on the coefficient, so moving the slider recomputes
only the outcome.

Every call runs under the interventions switched on in this session (a circuit from the Patching
page mean-ablated, a push from another page), except the page's own push when the learner keeps it
on for the other pages: `own` names it, so it is never added twice. `iv` is the signature of what
applies (ui.common.interventions.signature), so switching one on or off recomputes.
"""

from __future__ import annotations

from contextlib import contextmanager

import streamlit as st

from core.interp.residual.reads import MAX_READ_BYTES, has_weights
from core.interp.steering import effect as E
from core.interp.steering import fluency as F
from core.interp.steering import targets as T
from core.interp.steering import vectors as S
from core.interp.steering.verdict import SteeringOutcome
from core.models.generation import SamplingSettings
from core.models.hook_names import stream_layers
from core.world import datasets
from ui.common.interventions import active_hooks
from ui.common.remote import cache_on_backend

COEF_LIMIT = 12.0  # the coefficient slider runs from -COEF_LIMIT to +COEF_LIMIT
# denser near 0, where a push goes from doing nothing to word salad; the default (+3) is on the grid
CURVE_COEFFICIENTS = (-12.0, -8.0, -6.0, -4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0)
SWEEP_COEFFICIENTS = CURVE_COEFFICIENTS
FLUENCY_TOKENS = 20  # length of the continuation scored at every coefficient of the curves
AUTO_SWEEP_PARAMS = 20e6  # below this size the layer sweep runs by itself; above, from a button


# keyed on the concept alone: one of core.interp.steering.targets.BUNDLED_CONCEPTS (4) in practice; the
# bound keeps a server-wide cache from growing with whatever else a caller might pass
PAIR_CACHE_ENTRIES = 16


@st.cache_data(show_spinner=False, max_entries=PAIR_CACHE_ENTRIES)
def bundled_pairs(concept: str) -> tuple[tuple[str, str], ...]:
    return tuple(T.bundled_pairs(concept))


def reference_texts(lm, source, prompt_text: str) -> list[str]:
    """Texts on which the typical size of the residual stream is measured."""
    texts = [t for pair in source.pairs for t in pair] + [prompt_text]
    if lm.is_bundled:
        texts += datasets.corpus_texts(8)
    return texts


@contextmanager
def under_interventions(lm, own: str):
    """The session's active interventions for this model, except the page's own push."""
    with lm.hooks(active_hooks(lm, exclude=(own,))):
        yield


@cache_on_backend(show_spinner=False, max_entries=64)
def steering_vector(lm, source, layer: int, prompt_text: str, iv: tuple = (), own: str = ""
                    ) -> S.SteeringVector:
    """The vector for this source: contrast pairs at stream layer `layer`, or the handed-over
    direction (at its own hook point)."""
    with under_interventions(lm, own):
        if source.direction is not None:
            d = source.direction
            return S.from_direction(lm, d.vector, d.hook_name, method=d.source, label=d.name,
                                    reference_texts=reference_texts(lm, source, prompt_text))
        return S.mean_difference(lm, source.pairs, layer, label=source.label)


@cache_on_backend(show_spinner=False, max_entries=64)
def stream_norm(lm, hook_name: str, source, prompt_text: str, iv: tuple = (), own: str = "") -> float:
    with under_interventions(lm, own):
        return S.typical_norm(lm, hook_name, reference_texts(lm, source, prompt_text))


@cache_on_backend(show_spinner=False, max_entries=16)
def targets(lm, source) -> T.ConceptTargets:
    if source.measure in T.BUNDLED_CONCEPTS:
        return T.bundled_targets(lm, source.measure, toward=source.toward)
    return T.targets_from_pairs(lm, source.pairs)


@cache_on_backend(show_spinner=False, max_entries=128)
def outcome(lm, source, layer: int, prompt_text: str, coefficient: float, start_pos: int,
            sampling: SamplingSettings, iv: tuple = (), own: str = "") -> SteeringOutcome:
    """The unsteered and steered texts (same seeds), and the word shifts of the vector and of
    random pushes of its norm on the evaluation prompts."""
    sv = steering_vector(lm, source, layer, prompt_text, iv, own)
    t = targets(lm, source)
    tokens = lm.prepare_prompt(prompt_text).tokens  # [1, pos]
    with under_interventions(lm, own):
        texts = F.compare_texts(lm, sv, tokens, coefficient, sampling, start_pos=start_pos)
        point = E.point_effect(lm, sv, t, coefficient, start_pos=start_pos)
    return SteeringOutcome(point, texts, t)


@cache_on_backend(show_spinner=False, max_entries=32)
def curves(lm, source, layer: int, prompt_text: str, settings: E.CurveSettings, iv: tuple = (),
           own: str = "") -> list[E.EffectCurve]:
    sv = steering_vector(lm, source, layer, prompt_text, iv, own)
    tokens = lm.prepare_prompt(prompt_text).tokens  # [1, pos]
    with under_interventions(lm, own):
        return E.effect_curves(lm, sv, targets(lm, source), settings, fluency_tokens=tokens)


@cache_on_backend(show_spinner=False, max_entries=16)
def sweep(lm, source, settings: E.CurveSettings, iv: tuple = (), own: str = "") -> E.LayerSweep:
    with under_interventions(lm, own):
        return E.layer_sweep(lm, source.pairs, targets(lm, source), settings)


def sweep_bytes(lm, source) -> int:
    """What building a vector at every layer reads: every stream point at every token of the pairs."""
    n_tokens = sum(len(lm.to_tokens(t)[0]) for pair in source.pairs for t in pair)
    return n_tokens * len(stream_layers(lm.cfg.n_layers)) * lm.cfg.d_model * 4


def sweep_fits(lm, source) -> bool:
    """The layer sweep runs on a model elsewhere only when its reads stay under MAX_READ_BYTES."""
    return has_weights(lm) or sweep_bytes(lm, source) <= MAX_READ_BYTES


def curve_settings(start_pos: int, sampling: SamplingSettings, coefficients=CURVE_COEFFICIENTS
                   ) -> E.CurveSettings:
    """The curves' settings: the page's sampling, FLUENCY_TOKENS long, steered from start_pos."""
    fluency = SamplingSettings(max_new_tokens=FLUENCY_TOKENS, temperature=sampling.temperature,
                               top_k=sampling.top_k, seed=sampling.seed, stop_at_eos=False)
    return E.CurveSettings(tuple(coefficients), start_pos, fluency)


def sweep_runs_by_itself(lm) -> bool:
    return lm.cfg.n_params < AUTO_SWEEP_PARAMS
