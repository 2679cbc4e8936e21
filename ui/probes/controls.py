"""The probes page's controls: widgets -> a frozen settings object, every value bound to the URL
(the uploaded CSV itself cannot travel in a link; the page says so)."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from core.interp.probes.activations import SITES, HookPoints
from core.interp.probes.data import BUNDLED, POSITIONS
from core.models.hook_names import hook_label
from ui.common.layers import show_layer, stream_layer_select

SOURCES = (*BUNDLED, "csv")
SITE_LABELS = {"resid": "residual stream", "attn_out": "attention output", "mlp_out": "MLP output",
               "mlp_post": "MLP neurons"}
POSITION_LABELS = {"last": "last token", "marked": "marked token", "mean": "mean over tokens"}
SIZES = (200, 500, 1000, 2000, 4000)
SITE_HELP = {"attn_out": "Layer L here is what the attention of block L writes into the stream.",
             "mlp_out": "Layer L here is what the MLP of block L writes into the stream.",
             "mlp_post": "Layer L here is the MLP neurons of block L (after the activation function)."}


@dataclass(frozen=True)
class ProbeControls:
    source: str  # a key of BUNDLED, or "csv"
    site: str  # one of SITES
    position: str  # "default" or one of POSITIONS
    n: int  # bundled examples


def source_label(source: str) -> str:
    return "Your CSV (text, label, token)" if source == "csv" else BUNDLED[source].title


def controls() -> ProbeControls:
    """Dataset and examples on one row, hook site and reading position on the next (wide enough at
    1024 px for every label)."""
    top_left, top_right = st.columns([3, 2])
    source = top_left.selectbox("Dataset", SOURCES, format_func=source_label, key="probes_dataset",
                                bind="query-params",
                                help="Labelled sentences from the bundled world's ground truth, or "
                                     "your own CSV.")
    n = top_right.select_slider("Examples", SIZES, value=2000, key="probes_n", bind="query-params",
                                disabled=source == "csv",
                                help="How many bundled-world sentences (a quarter of them held out "
                                     "for testing).")
    left, right = st.columns(2)
    site = left.selectbox("Hook site", SITES, format_func=SITE_LABELS.get, key="probes_site",
                          bind="query-params", help="Where in each layer the activations are read.")
    default = BUNDLED[source].position if source in BUNDLED else "token column, else last"
    position = right.selectbox(
        "Read at", ("default", *POSITIONS), key="probes_position", bind="query-params",
        format_func=lambda p: f"{POSITION_LABELS.get(default, default)} (default)"
        if p == "default" else POSITION_LABELS[p],
        help="The last token, the token carrying the label (marked), or the mean over all tokens.")
    return ProbeControls(source, site, position, n)


def layer_control(points: HookPoints, n_layers: int, default: int) -> int:
    """The layer whose details are shown (lab numbering: embed, 0, 1, ...), bound to the URL; opens
    where the property becomes readable. For the residual stream, the diagram of where it is read."""
    layer = stream_layer_select(
        n_layers, key="probes_layer", default=default, label="Layer for the details below",
        include_embeddings=points.site == "resid", **({"help": SITE_HELP[points.site]}
                                                     if points.site in SITE_HELP else {}))
    if points.site == "resid":
        show_layer(n_layers, layer)
    else:
        name = points.hook_names[points.layers.index(layer)]
        st.caption(f"Read at `{name}` ({hook_label(name)}).")
    return layer
