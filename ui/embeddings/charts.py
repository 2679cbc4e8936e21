"""Altair charts for the Embeddings & positions page: data frames in, charts out (no st.* here)."""

from __future__ import annotations

import altair as alt
import pandas as pd

COSINE_SCHEME = "purpleorange"  # cosine similarity, -1 .. 1, centred on 0
# Twelve clearly different hues (Tableau 10's, with its pale grey swapped for black, plus cyan and
# olive): neighbouring categories (female / male names, colours / places) never get look-alikes.
PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#59a14f", "#b07aa1", "#edc948", "#76b7b2", "#ff9da7",
           "#9c755f", "#222222", "#17becf", "#808000"]
SCATTER_HEIGHT = 560  # px, the chart with its legend; the plot itself is about 440 px tall
HEATMAP_HEIGHT, LINES_HEIGHT = 400, 300  # px with title and legend, for st.altair_chart(height=...)
SHAPES = ["circle", "square", "triangle-up", "diamond", "cross", "triangle-down"]


def token_scatter(frame: pd.DataFrame, *, x_title: str, y_title: str, categories: list[str],
                  size: int = 480) -> alt.Chart:
    """Tokens as points coloured by category (frame: x, y, token, category, label); hover for the
    token. Rows with a non-empty `label` get it written beside the point (frames.label_subset keeps
    those apart). Past twelve categories the shape changes too, so no two share a look."""
    legend = alt.Legend(symbolLimit=60, labelLimit=200, orient="bottom", columns=4)
    colour = alt.Color("category:N", title="category", sort=categories, legend=legend,
                       scale=alt.Scale(domain=categories, range=PALETTE))
    encodings = {"color": colour}
    if len(categories) > len(PALETTE):
        encodings["shape"] = alt.Shape("category:N", title="category", sort=categories, legend=legend,
                                       scale=alt.Scale(domain=categories, range=SHAPES))
    room = alt.Scale(zero=False, padding=12)  # no point is cut by the plot's edge
    base = alt.Chart(frame).encode(
        x=alt.X("x:Q", title=x_title, scale=room, axis=alt.Axis(labels=False, ticks=False)),
        y=alt.Y("y:Q", title=y_title, scale=room, axis=alt.Axis(labels=False, ticks=False)))
    points = base.mark_point(size=70, opacity=0.9, filled=True, stroke="white", strokeWidth=0.6).encode(
        tooltip=[alt.Tooltip("token:N"), alt.Tooltip("category:N")], **encodings)
    chart = points
    if frame["label"].astype(bool).any():
        chart = points + base.transform_filter(alt.datum.label != "").mark_text(
            align="left", dx=6, fontSize=10, color="#222").encode(text="label:N")
    return chart.properties(width="container", height=size).interactive()


def cosine_heatmap(frame: pd.DataFrame, *, title: str, size: int = 300) -> alt.Chart:
    """A [position, position] cosine-similarity matrix (frame: i, j, cosine), as wide as its column
    (legend below, so two fit side by side at 1024 px)."""
    return alt.Chart(frame).mark_rect().encode(
        x=alt.X("j:O", title="position", axis=alt.Axis(labelOverlap=True, labelAngle=0)),
        y=alt.Y("i:O", title="position", axis=alt.Axis(labelOverlap=True)),
        color=alt.Color("cosine:Q", title="cosine", scale=alt.Scale(scheme=COSINE_SCHEME, domain=[-1, 1]),
                        legend=alt.Legend(orient="bottom", gradientLength=160)),
        tooltip=[alt.Tooltip("i:O", title="position"), alt.Tooltip("j:O", title="position"),
                 alt.Tooltip("cosine:Q", format=".3f")],
    ).properties(width="container", height=size, title=title)


def component_lines(frame: pd.DataFrame, *, title: str) -> alt.Chart:
    """Each position's coordinate on the top principal components (frame: position, value, component)."""
    return alt.Chart(frame).mark_line().encode(
        x=alt.X("position:Q", title="position"), y=alt.Y("value:Q", title="coordinate"),
        color=alt.Color("component:N", title=None, scale=alt.Scale(scheme="dark2"),
                        legend=alt.Legend(orient="bottom", columns=2)),
        tooltip=["component:N", "position:Q", alt.Tooltip("value:Q", format=".3f")],
    ).properties(width="container", height=200, title=title)


def wavelength_chart(frame: pd.DataFrame) -> alt.Chart:
    """Positions per full turn of each rotating pair of dimensions (frame: pair, wavelength, source)."""
    return alt.Chart(frame).mark_line(point=True).encode(
        x=alt.X("pair:Q", title="pair of dimensions i (fastest first)",
                axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y("wavelength:Q", title="positions per turn (log)", scale=alt.Scale(type="log")),
        color=alt.Color("source:N", title=None, legend=alt.Legend(orient="bottom")),
        tooltip=["source:N", "pair:Q", alt.Tooltip("wavelength:Q", format=",.1f")],
    ).properties(width="container", height=220)


def distance_curve(frame: pd.DataFrame) -> alt.Chart:
    """q . k against distance for a query equal to its key (frame: distance, score, source)."""
    return alt.Chart(frame).mark_line().encode(
        x=alt.X("distance:Q", title="distance between query and key (positions)"),
        y=alt.Y("score:Q", title="q . k / |q|^2"),
        color=alt.Color("source:N", title=None, legend=alt.Legend(orient="bottom")),
        tooltip=["source:N", "distance:Q", alt.Tooltip("score:Q", format=".3f")],
    ).properties(width="container", height=220)
