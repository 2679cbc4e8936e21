"""Passing a direction from one page to another (probe or SAE feature -> steering), per session.

A direction is only meaningful for the model and hook point it came from, so it travels with them;
the steering page offers only directions whose model matches the one loaded now.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

KEY = "handoff_directions"


@dataclass(frozen=True)
class Direction:
    name: str  # shown to the learner, e.g. "probe: subject gender, layer 2"
    model_spec: str  # lm.spec of the model it was computed on
    hook_name: str  # e.g. "blocks.2.hook_resid_post"
    vector: np.ndarray  # [d_model]
    source: str  # "probe", "sae", ...
    concept: str | None = None  # e.g. "gender": the bundled concept it is about (measured on it)
    toward: str | None = None  # e.g. "male": the class it points to


def send_direction(direction: Direction) -> None:
    """Store a direction for the steering page (replaces one with the same name)."""
    st.session_state.setdefault(KEY, {})[direction.name] = direction


def received_directions(model_spec: str) -> list[Direction]:
    """Directions sent in this session for the given model, newest last."""
    return [d for d in st.session_state.get(KEY, {}).values() if d.model_spec == model_spec]
