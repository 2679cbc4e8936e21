"""Altair charts for the Embeddings & positions page: data frames in, charts out (no st.* here)."""

from __future__ import annotations

import altair as alt
import pandas as pd

COSINE_SCHEME = "purpleorange"  # cosine similarity, -1 .. 1, centred on 0


def token_scatter(frame: pd.DataFrame, *, x_title: str, y_title: str, categories: list[str],
                  labels: bool = False, size: int = 480) -> alt.Chart:
    """Tokens as points coloured by category (frame: x, y, token, category); hover for the token."""
    colour = alt.Color("category:N", title="category", sort=categories,
                       scale=alt.Scale(scheme="tableau20"), legend=alt.Legend(symbolLimit=40))
    base = alt.Chart(frame).encode(x=alt.X("x:Q", title=x_title, axis=alt.Axis(labels=False, ticks=False)),
                                   y=alt.Y("y:Q", title=y_title, axis=alt.Axis(labels=False, ticks=False)))
    points = base.mark_circle(size=70, opacity=0.85, stroke="white", strokeWidth=0.6).encode(
        color=colour, tooltip=[alt.Tooltip("token:N"), alt.Tooltip("category:N")],
    )
    chart = points
    if labels:
        chart = points + base.mark_text(align="left", dx=6, fontSize=10, opacity=0.8).encode(
            text="token:N", color=colour)
    return chart.properties(width="container", height=size).interactive()


def cosine_heatmap(frame: pd.DataFrame, *, title: str, size: int = 330) -> alt.Chart:
    """A [position, position] cosine-similarity matrix (frame: i, j, cosine), about size px square."""
    step = max(2, size // max(frame["i"].nunique(), 1))
    return alt.Chart(frame).mark_rect().encode(
        x=alt.X("j:O", title="position", axis=alt.Axis(labelOverlap=True, labelAngle=0)),
        y=alt.Y("i:O", title="position", axis=alt.Axis(labelOverlap=True)),
        color=alt.Color("cosine:Q", title="cosine", scale=alt.Scale(scheme=COSINE_SCHEME, domain=[-1, 1])),
        tooltip=[alt.Tooltip("i:O", title="position"), alt.Tooltip("j:O", title="position"),
                 alt.Tooltip("cosine:Q", format=".3f")],
    ).properties(width=alt.Step(step), height=alt.Step(step), title=title)


def component_lines(frame: pd.DataFrame, *, title: str, width: int = 330) -> alt.Chart:
    """Each position's coordinate on the top principal components (frame: position, value, component)."""
    return alt.Chart(frame).mark_line().encode(
        x=alt.X("position:Q", title="position"), y=alt.Y("value:Q", title="coordinate"),
        color=alt.Color("component:N", title=None, scale=alt.Scale(scheme="dark2")),
        tooltip=["component:N", "position:Q", alt.Tooltip("value:Q", format=".3f")],
    ).properties(width=width, height=200, title=title)


def wavelength_chart(frame: pd.DataFrame, *, width: int = 330) -> alt.Chart:
    """Positions per full turn of each rotating pair of dimensions (frame: pair, wavelength, source)."""
    return alt.Chart(frame).mark_line(point=True).encode(
        x=alt.X("pair:Q", title="pair of dimensions i (fastest first)",
                axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y("wavelength:Q", title="positions per turn (log)", scale=alt.Scale(type="log")),
        color=alt.Color("source:N", title=None),
        tooltip=["source:N", "pair:Q", alt.Tooltip("wavelength:Q", format=",.1f")],
    ).properties(width=width, height=220)


def distance_curve(frame: pd.DataFrame, *, width: int = 330) -> alt.Chart:
    """q . k against distance for a query equal to its key (frame: distance, score, source)."""
    return alt.Chart(frame).mark_line().encode(
        x=alt.X("distance:Q", title="distance between query and key (positions)"),
        y=alt.Y("score:Q", title="q . k / |q|^2"),
        color=alt.Color("source:N", title=None),
        tooltip=["source:N", "distance:Q", alt.Tooltip("score:Q", format=".3f")],
    ).properties(width=width, height=220)
