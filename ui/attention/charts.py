"""Altair charts for the Attention page: data frames in (built by ui.attention.frames), charts out."""

from __future__ import annotations

import altair as alt
import pandas as pd

WEIGHT_SCHEME = "purples"  # attention weights, everywhere on the page
PICK = "head_pick"  # the name of the click selection on every per-head chart


def _cell(n: int, max_px: int = 640, min_cell: int = 5, max_cell: int = 30) -> int:
    """Pixels per row/column: a heatmap of n tokens stays within about max_px.

    Sizes are given as alt.Step (per cell), which Streamlit keeps for layered and single views alike."""
    return int(min(max_cell, max(min_cell, max_px // max(n, 1))))


def _token_axis(n: int, cell: int, angle: int = 0) -> alt.Axis:
    font = int(min(11, max(6, cell - 3)))
    return alt.Axis(labelFontSize=font, labelOverlap=cell < 9, labelAngle=angle, labelLimit=110)


def pattern_heatmap(frame: pd.DataFrame, order: list[str], *, title: str, value_title: str,
                    extra_tooltips: tuple = ()) -> alt.Chart:
    """One head: rows are queries (the token looking), columns keys (looked at), colour the weight.

    frame: q_label, k_label, weight, raw (the plain attention weight) [+ extra_tooltips columns]."""
    cell = _cell(len(order))
    return alt.Chart(frame).mark_rect().encode(
        x=alt.X("k_label:N", sort=order, title="key: the token looked at",
                axis=_token_axis(len(order), cell, angle=-90)),
        y=alt.Y("q_label:N", sort=order, title="query: the token looking",
                axis=_token_axis(len(order), cell)),
        color=alt.Color("weight:Q", title=value_title, scale=alt.Scale(scheme=WEIGHT_SCHEME, domain=[0, 1])),
        tooltip=[alt.Tooltip("q_label:N", title="query"), alt.Tooltip("k_label:N", title="key"),
                 alt.Tooltip("weight:Q", format=".3f", title=value_title),
                 alt.Tooltip("raw:Q", format=".3f", title="attention weight"), *extra_tooltips],
    ).properties(width=alt.Step(cell), height=alt.Step(cell), title=title)


def head_grid(frame: pd.DataFrame, *, size: int, columns: int) -> alt.Chart:
    """Small multiples: one picture per head (frame: layer, head, name, url, entropy, kind).

    Each picture is a PNG of the pattern (see ui.attention.frames.pattern_png); click one to open it."""
    pick = alt.selection_point(name=PICK, fields=["layer", "head"], on="click")
    return alt.Chart(frame).mark_image(width=size, height=size).encode(
        x=alt.value(size / 2), y=alt.value(size / 2), url="url:N",
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.55)),
        tooltip=[alt.Tooltip("name:N", title="head"),
                 alt.Tooltip("entropy:Q", format=".2f", title="entropy (bits)"),
                 alt.Tooltip("kind:N", title="type (repeated random tokens)")],
    ).properties(width=size, height=size).add_params(pick).facet(
        facet=alt.Facet("name:N", title=None, sort=alt.SortField("order"),
                        header=alt.Header(labelFontSize=12, labelPadding=2)),
        columns=columns, spacing=6,
    )


def layer_head_heatmap(frame: pd.DataFrame, *, value: str, title: str, scheme: str = "purples",
                       domain: list[float] | None = None, fmt: str = ".2f", facet: str | None = None,
                       facet_order: list[str] | None = None, columns: int = 3, cell: int = 34) -> alt.Chart:
    """A layers x heads table as a heatmap with the numbers written in; click a head to open it.

    frame: layer, head, `value`, marked (bool: outlined, e.g. heads the evaluation report lists)
    [, facet column]. With `facet`, one panel per value of that column. A domain [-1, 1] with a
    diverging scheme centres the colours on 0."""
    pick = alt.selection_point(name=PICK, fields=["layer", "head"], on="click")
    n_heads = int(frame["head"].max()) + 1
    cell = max(14, min(cell, 520 // max(n_heads, 1)))
    values = frame[value].abs()
    top = float(domain[1]) if domain else float(values.max() or 1.0)
    scale = alt.Scale(scheme=scheme, domain=domain) if domain else alt.Scale(scheme=scheme)
    base = alt.Chart(frame).encode(x=alt.X("head:O", title="head"), y=alt.Y("layer:O", title="layer"))
    heat = base.mark_rect().encode(
        color=alt.Color(f"{value}:Q", title=title, scale=scale),
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.6)),
        tooltip=[alt.Tooltip("layer:O"), alt.Tooltip("head:O"),
                 alt.Tooltip(f"{value}:Q", format=fmt, title=title)]
        + ([alt.Tooltip(f"{facet}:N")] if facet else []),
    ).add_params(pick)
    ring = base.transform_filter(alt.datum.marked).mark_rect(fill=None, stroke="#e8843c", strokeWidth=3)
    layers = [heat, ring]
    if cell >= 26:
        layers.append(base.mark_text(fontSize=10).encode(
            text=alt.Text(f"{value}:Q", format=fmt),
            color=alt.condition(f"abs(datum['{value}']) > {0.6 * top}", alt.value("white"),
                                alt.value("black")),
        ))
    chart = alt.layer(*layers).properties(width=alt.Step(cell), height=alt.Step(cell))
    if facet:
        return chart.facet(facet=alt.Facet(f"{facet}:N", title=None, sort=facet_order), columns=columns)
    return chart.properties(title=title)


def from_token_heatmap(frame: pd.DataFrame, order: list[str], head_order: list[str], *,
                       value_title: str) -> alt.Chart:
    """Attention from one query to every earlier key, one row per head (frame: name, layer, head,
    k_label, weight, raw); click a row to open that head."""
    pick = alt.selection_point(name=PICK, fields=["layer", "head"], on="click")
    cell = _cell(len(order), max_cell=36)
    return alt.Chart(frame).mark_rect().encode(
        x=alt.X("k_label:N", sort=order, title="key: the token looked at",
                axis=_token_axis(len(order), cell, angle=-90)),
        y=alt.Y("name:N", sort=head_order, title="head (layer.head)",
                axis=alt.Axis(labelOverlap=len(head_order) > 56, labelFontSize=10)),
        color=alt.Color("weight:Q", title=value_title, scale=alt.Scale(scheme=WEIGHT_SCHEME, domain=[0, 1])),
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.6)),
        tooltip=[alt.Tooltip("name:N", title="head"), alt.Tooltip("k_label:N", title="key"),
                 alt.Tooltip("weight:Q", format=".3f", title=value_title),
                 alt.Tooltip("raw:Q", format=".3f", title="attention weight")],
    ).add_params(pick).properties(width=alt.Step(cell),
                                  height=alt.Step(max(6, min(16, 900 // len(head_order)))))


def distance_lines(frame: pd.DataFrame, chosen: str) -> alt.Chart:
    """QK positional preference: mean centred score by distance, one line per head of the layer
    (frame: distance, score, name); the chosen head is drawn thick."""
    return alt.Chart(frame).mark_line(point=alt.OverlayMarkDef(size=18)).encode(
        x=alt.X("distance:Q", title="distance (query position - key position)"),
        y=alt.Y("score:Q", title="mean score vs row mean"),
        color=alt.Color("name:N", title="head"),
        strokeWidth=alt.condition(alt.datum.name == chosen, alt.value(3.5), alt.value(1.2)),
        opacity=alt.condition(alt.datum.name == chosen, alt.value(1.0), alt.value(0.45)),
        tooltip=["name:N", "distance:Q", alt.Tooltip("score:Q", format=".3f")],
    ).properties(width=560, height=260)
