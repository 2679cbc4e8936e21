"""One meaning of "layer" on every page, and a picture of it (short_label is re-exported for pages).

"Layer L" is the residual stream after block L; "the embeddings" is the stream before block 0
(core.models.hook_names.stream_hook). A page that reads or writes the stream asks for the point with
`stream_layer_select` and shows where it is with `show_layer`.
"""

from __future__ import annotations

import streamlit as st

from core.models.hook_names import hook_label, short_label, stream_hook, stream_label, stream_layers
from ui.common.charts import layer_diagram

HELP = ("Layer L is the residual stream after block L (what block L + 1 reads); 'embed' is the stream "
        "before block 0: token + position embeddings.")


def stream_layer_select(n_layers: int, *, key: str, default: int, label: str = "Layer",
                        include_embeddings: bool = True, bind: bool = True, **kwargs) -> int:
    """A slider over the stream points (embed, 0, ..., n_layers - 1), bound to the URL by default."""
    options = stream_layers(n_layers) if include_embeddings else list(range(n_layers))
    default = default if default in options else options[-1]
    if key in st.session_state and st.session_state[key] not in options:
        st.session_state[key] = default  # a value from another model (fewer layers)
    return st.select_slider(label, options=options, value=default, format_func=short_label, key=key,
                            help=kwargs.pop("help", HELP), bind="query-params" if bind else None, **kwargs)


def show_layer(n_layers: int, layer: int, *, verb: str = "read") -> None:
    """The diagram and one caption: the plain-words label next to the hook name."""
    st.altair_chart(layer_diagram(n_layers, layer, verb=verb), width="stretch")
    st.caption(f"{stream_label(layer).capitalize()}: `{stream_hook(layer)}` "
               f"({hook_label(stream_hook(layer))}).")
