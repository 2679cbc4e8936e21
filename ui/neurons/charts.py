"""Charts of the MLP neurons & weights page (frames in, Altair charts out; no st.* here)."""

from __future__ import annotations

import altair as alt
import pandas as pd

# charts as wide as their column, at the height they ask for (plain "fit" would squeeze the height)
FIT_WIDTH = alt.AutoSizeParams(type="fit-x", contains="padding")

RULE_COLOURS = alt.Scale(domain=["rule holds", "rule does not hold"], range=["#f58518", "#4c78a8"])


def histogram(frame: pd.DataFrame, title: str) -> alt.Chart:
    return alt.Chart(frame).mark_bar(color="#4c78a8").encode(
        x=alt.X("from:Q", bin="binned", title="activation"), x2="to:Q",
        y=alt.Y("tokens:Q", title="tokens", scale=alt.Scale(type="symlog")),
        tooltip=[alt.Tooltip("from:Q", format=".3f"), alt.Tooltip("to:Q", format=".3f"), "tokens:Q"],
    ).properties(height=220, width="container", autosize=FIT_WIDTH, title=title)


def overlap(frame: pd.DataFrame) -> alt.Chart:
    """Two histograms as step lines (overlapping bars would blend into a third colour)."""
    return alt.Chart(frame).mark_line(interpolate="step-after", strokeWidth=2).encode(
        x=alt.X("from:Q", title="activation"),
        y=alt.Y("share:Q", title="share (square-root scale)",
                scale=alt.Scale(type="sqrt", domain=[0, 1])),
        color=alt.Color("tokens:N", scale=RULE_COLOURS, title=None),
        tooltip=["tokens:N", alt.Tooltip("from:Q", format=".3f"), alt.Tooltip("share:Q", format=".1%")],
    ).properties(height=240, width="container", autosize=FIT_WIDTH,
                 title="Activations where the rule holds and where it does not (fresh text)")


def knockout(frame: pd.DataFrame) -> alt.Chart:
    bars = alt.Chart(frame).mark_bar().encode(
        y=alt.Y("family:N", title=None, sort=None, axis=alt.Axis(labelLimit=200)),
        x=alt.X("change:Q", title="change in loss (nats per token)"),
        color=alt.condition("datum.change > 0", alt.value("#e45756"), alt.value("#54a24b")),
        tooltip=["family:N", alt.Tooltip("clean:Q", format=".4f"), alt.Tooltip("ablated:Q", format=".4f"),
                 alt.Tooltip("change:Q", format="+.4f"), "tokens:Q"])
    zero = alt.Chart(pd.DataFrame({"x": [0.0]})).mark_rule(color="#5f6368").encode(x="x:Q")
    return (bars + zero).properties(height=alt.Step(30), width="container", autosize=FIT_WIDTH,
                                    title="Loss with the neuron knocked out, minus the loss without")


def gate_up_scatter(frame: pd.DataFrame) -> alt.Chart:
    top = float(frame["activation"].abs().max()) or 1.0
    return alt.Chart(frame).mark_circle(size=14, opacity=0.6).encode(
        x=alt.X("gate:Q", title="gate (before the activation function)"),
        y=alt.Y("up:Q", title="up"),
        color=alt.Color("activation:Q", scale=alt.Scale(scheme="redblue", domain=[-top, top], reverse=True)),
        tooltip=[alt.Tooltip("gate:Q", format=".3f"), alt.Tooltip("up:Q", format=".3f"),
                 alt.Tooltip("activation:Q", format=".3f")],
    ).properties(height=300, width="container", autosize=FIT_WIDTH,
                 title="Every token: gate against up, coloured by the neuron's output")


def spectrum(frame: pd.DataFrame, title: str) -> alt.Chart:
    return alt.Chart(frame).mark_bar(color="#4c78a8").encode(
        x=alt.X("direction:O", title="singular direction"), y=alt.Y("singular value:Q"),
        tooltip=["direction:O", alt.Tooltip("singular value:Q", format=".3f")],
    ).properties(height=200, width="container", autosize=FIT_WIDTH, title=title)


def composition_heatmap(frame: pd.DataFrame, mode: str, baseline: float) -> alt.Chart:
    order_from = frame.sort_values(["l1", "h1"])["from"].drop_duplicates().tolist()
    order_to = frame.sort_values(["l2", "h2"])["to"].drop_duplicates().tolist()
    top = float(frame["score"].max())
    return alt.Chart(frame).mark_rect().encode(
        x=alt.X("to:N", sort=order_to, title="later head (reads)", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("from:N", sort=order_from, title="earlier head (writes)"),
        color=alt.Color("score:Q", title=f"{mode}-composition",
                        scale=alt.Scale(scheme="viridis", domain=[baseline, max(top, baseline + 1e-6)],
                                        clamp=True)),
        tooltip=["from:N", "to:N", alt.Tooltip("score:Q", format=".3f"), alt.Tooltip("z:Q", format=".1f")],
    ).properties(width=alt.Step(40), height=alt.Step(24),
                 title=f"{mode}-composition of every earlier head with every later head "
                       f"(colour starts at the shuffled baseline, {baseline:.3f})")
