"""Charts every page shares (data in, Altair chart out, no st.* here)."""

from __future__ import annotations

import altair as alt
import pandas as pd

from core.models.hook_names import EMBEDDINGS, stream_label

STREAM_COLOUR, BLOCK_COLOUR, READ_COLOUR = "#9aa0a6", "#e8e6fb", "#5b4bd5"


def layer_diagram(n_layers: int, layer: int, *, verb: str = "read") -> alt.Chart:
    """Where "layer L" is in the model: embeddings -> block 0 -> ... -> unembedding, a marker on
    the stream point after block `layer` (EMBEDDINGS: before block 0). verb: "read" or "written"."""
    boxes = pd.DataFrame(
        [{"x": 0, "label": "embed", "kind": "io"}]
        + [{"x": 2 * i + 2, "label": f"layer {i}", "kind": "block"} for i in range(n_layers)]
        + [{"x": 2 * n_layers + 2, "label": "unembed", "kind": "io"}])
    x_at = 1 if layer == EMBEDDINGS else 2 * layer + 3  # the gap right after that block
    boxes["y"] = 0.0
    marker = pd.DataFrame([{"x": x_at, "y": 0.0, "text": f"{verb} here: {stream_label(layer)}"}])
    x = alt.X("x:Q", scale=alt.Scale(domain=[-1, 2 * n_layers + 3]), axis=None)
    y = alt.Y("y:Q", scale=alt.Scale(domain=[-1, 1]), axis=None)
    stream = alt.Chart(pd.DataFrame({"x": [-0.5], "x2": [2 * n_layers + 2.5], "y": [0.0]})).mark_rule(
        color=STREAM_COLOUR, strokeWidth=3).encode(x=x, x2="x2:Q", y=y)
    block = alt.Chart(boxes).mark_square(size=900, stroke=READ_COLOUR, strokeWidth=1, opacity=1).encode(
        x=x, y=y, color=alt.Color("kind:N", scale=alt.Scale(domain=["io", "block"],
                                                            range=["#f1f3f4", BLOCK_COLOUR]), legend=None))
    names = alt.Chart(boxes).mark_text(dy=28, fontSize=11).encode(x=x, y=y, text="label:N")
    point = alt.Chart(marker).mark_point(shape="triangle-down", size=160, filled=True, color=READ_COLOUR,
                                         yOffset=-24).encode(x=x, y=y)
    # the words start at the marker near the left end and end at it near the right end, so they never
    # run off the chart
    align = "left" if x_at <= 1 else "right" if x_at >= 2 * n_layers else "center"
    words = alt.Chart(marker).mark_text(dy=-42, fontSize=12, color=READ_COLOUR, fontWeight="bold",
                                        align=align, dx={"left": -8, "right": 8}.get(align, 0)).encode(
        x=x, y=y, text="text:N")
    return (stream + block + names + point + words).properties(height=110).configure_view(stroke=None)
