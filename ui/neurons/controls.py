"""The neuron page's controls: layer, neuron and (for a hub model) the text to read them on.

Layer and neuron are typed numbers bound to the URL; a value the model does not have (from a link,
or typed) gets a message saying which values exist, instead of being replaced silently."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from ui.common.page import show_problem
from ui.neurons import compute

SOURCES = {"corpus": "the bundled world's stories, as text", "text": "text I paste"}


@dataclass(frozen=True)
class Choice:
    layer: int
    neuron: int
    source: str  # "corpus" or "text"
    text: str
    key: str  # identifies the text the neurons are read on


def _whole(value) -> int | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return int(f) if np.isfinite(f) and f == int(f) else None


def best_explained(lm, layer: int) -> int:
    """The neuron of `layer` whose best single label separates it best (a good place to start)."""
    labels, aurocs = compute.layer_labels(lm, layer)
    return int(np.nanargmax(np.nanmax(np.where(np.isnan(aurocs), -1, aurocs), axis=0)))


def choose(lm) -> Choice | None:
    """Draw the controls; None (after saying why) when the choice cannot be used."""
    n_layers, d_mlp = lm.cfg.n_layers, lm.cfg.d_mlp
    c1, c2, c3 = st.columns([1, 1, 3])
    layer = c1.number_input("Layer", value=n_layers - 1, step=1, key="nrn_layer", bind="query-params",
                            help=f"The MLP of block L (0 to {n_layers - 1}).")
    layer = _whole(layer)
    if layer is None or not 0 <= layer < n_layers:
        show_problem(f"Layer {st.session_state.get('nrn_layer')} does not exist: this model has {n_layers} "
                     f"layers, numbered 0 to {n_layers - 1}.")
        return None
    # The default is the layer's best-explained neuron, so a link holds the neuron unless it is that one
    # (Streamlit leaves a widget's default out of the URL): neuron 0 is kept like any other.
    first = best_explained(lm, layer) if lm.is_bundled else 0
    neuron = c2.number_input("Neuron", value=first, step=1, key="nrn_neuron", bind="query-params",
                             help=f"Each layer's MLP has {d_mlp:,} neurons (0 to {d_mlp - 1}).")
    neuron = _whole(neuron)
    if neuron is None or not 0 <= neuron < d_mlp:
        show_problem(f"Neuron {st.session_state.get('nrn_neuron')} does not exist: layer {layer} has "
                     f"{d_mlp:,} neurons, numbered 0 to {d_mlp - 1}.")
        return None
    source, text = "corpus", ""
    with c3:
        if lm.is_bundled:
            st.caption(f"Neurons are read on the bundled corpus ({compute.CORPUS_ROWS} rows of "
                       f"{lm.cfg.n_ctx} tokens) and scored on fresh generated sentences.")
        else:
            source = st.radio("Read the neurons on", list(SOURCES), format_func=SOURCES.get,
                              horizontal=True, key="nrn_source")
            if source == "text":
                text = st.text_area("Text", key="nrn_text", height=120, max_chars=200_000,
                                    placeholder="Paste a few paragraphs for this model.")
                if not text.strip():
                    show_problem("Paste some text first: the box is empty.")
                    return None
    return Choice(layer, neuron, source, text, compute.text_key(text) if source == "text" else "corpus")
