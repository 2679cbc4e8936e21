"""Models that live in one session only: the ones a learner trained on the training page.

A trained model is a HookedLM over weights that exist nowhere but in this browser session, so it is
kept in st.session_state, never in a server-wide cache, and named by a spec of its own,
"trained:<run id>" (unique per run, so caches keyed on the spec never mix two runs):

    st.session_state[SESSION_MODELS_KEY] = {"trained:1f3a9c0e": HookedLM, ...}   (oldest first)

The sidebar lists them beside the other models and `ui.common.models.current_model` serves them like
any other; a link cannot name one (another session has no such weights), so the URL never carries
their spec. At most MAX_SESSION_MODELS are kept; adding one more drops the oldest, and each is booked
in the session's memory ledger (ui.common.budget).
"""

from __future__ import annotations

import streamlit as st

from core.models import HookedLM
from core.models.params import count_params
from ui.common.budget import hold, release

SESSION_MODELS_KEY = "trained_models"
SESSION_PREFIX = "trained:"
MAX_SESSION_MODELS = 3
BYTES_PER_PARAM = 4  # float32 weights


def _models() -> dict[str, HookedLM]:
    return st.session_state.setdefault(SESSION_MODELS_KEY, {})


def _ledger_key(spec: str) -> str:
    return f"session_model:{spec}"


def is_session_spec(spec: object) -> bool:
    return isinstance(spec, str) and spec.startswith(SESSION_PREFIX)


def add_session_model(lm: HookedLM) -> HookedLM:
    """Keep `lm` (its spec must start with SESSION_PREFIX) for this session; drops the oldest beyond
    MAX_SESSION_MODELS. Returns the model kept under that spec."""
    if not is_session_spec(lm.spec):
        raise ValueError(f"a session model's spec starts with {SESSION_PREFIX!r}, not {lm.spec!r}")
    models = _models()
    if lm.spec in models:
        return models[lm.spec]
    while len(models) >= MAX_SESSION_MODELS:
        oldest = next(iter(models))
        models.pop(oldest)
        release(_ledger_key(oldest))
    models[lm.spec] = lm
    hold(_ledger_key(lm.spec), BYTES_PER_PARAM * count_params(lm.model))
    return lm


def session_model(spec: str) -> HookedLM | None:
    """This session's model by that spec, or None (another session's spec names nothing here)."""
    return _models().get(spec)


def session_specs() -> list[str]:
    return list(_models())
