"""Charts of the Residual stream page (frames in, Altair charts out; no st.* here)."""

from __future__ import annotations

import altair as alt
import pandas as pd

# charts as wide as their column, at the height they ask for (plain "fit" would squeeze the height)
FIT_WIDTH = alt.AutoSizeParams(type="fit-x", contains="padding")

LENS_COLOURS = {"logit lens": "#4c78a8", "tuned lens": "#f58518"}


def _lens_scale(lenses) -> alt.Scale:
    present = [k for k in LENS_COLOURS if k in set(lenses)]
    return alt.Scale(domain=present, range=[LENS_COLOURS[k] for k in present])
KIND_COLOURS = {"embeddings": "#9d755d", "attention": "#4c78a8", "MLP": "#f58518", "interventions": "#e45756",
                "final biases": "#bab0ac"}


def _kind_scale(kinds) -> alt.Scale:
    """Colours for the kinds present only, so the legend lists exactly what the bars show."""
    present = [k for k in KIND_COLOURS if k in set(kinds)]
    return alt.Scale(domain=present, range=[KIND_COLOURS[k] for k in present])


def _points_axis(frame: pd.DataFrame, title: str = "stream point") -> alt.X:
    order = frame.sort_values("order")["point"].drop_duplicates().tolist()
    return alt.X("point:N", sort=order, title=title, axis=alt.Axis(labelAngle=0))


def lens_grid(frame: pd.DataFrame, title: str) -> alt.Chart:
    """Layer x position: colour = probability of the target token, text = the lens's top token,
    tooltip = the top 5."""
    rows = frame.sort_values("order")["point"].drop_duplicates().tolist()
    columns = frame.sort_values("pos")["column"].drop_duplicates().tolist()
    base = alt.Chart(frame).encode(
        x=alt.X("column:N", sort=columns, title="position: token",
                axis=alt.Axis(labelAngle=-50, labelLimit=90)),
        y=alt.Y("point:N", sort=rows, title="stream point"))
    cells = base.mark_rect(stroke="white", strokeWidth=0.5).encode(
        color=alt.Color("p_target:Q", title="P(target)", scale=alt.Scale(domain=[0, 1], scheme="blues")),
        tooltip=[alt.Tooltip("column:N", title="position"), alt.Tooltip("point:N", title="read"),
                 alt.Tooltip("target:N"), alt.Tooltip("p_target:Q", title="P(target)", format=".3f"),
                 alt.Tooltip("top5:N", title="top 5"),
                 alt.Tooltip("kl:Q", title="KL to output", format=".2f")])
    text = base.mark_text(fontSize=10, limit=58).encode(
        text="top:N",
        color=alt.condition("datum.p_target > 0.5", alt.value("white"), alt.value("#202124")))
    return (cells + text).properties(title=title, width=alt.Step(62), height=alt.Step(34))


def kl_chart(frame: pd.DataFrame) -> alt.Chart:
    return alt.Chart(frame).mark_line(point=True).encode(
        x=_points_axis(frame), y=alt.Y("kl:Q", title="KL(output || lens), nats"),
        color=alt.Color("lens:N", scale=_lens_scale(frame["lens"]), title=None),
        tooltip=["point:N", "lens:N", alt.Tooltip("kl:Q", format=".3f")],
    ).properties(height=260, width="container", autosize=FIT_WIDTH,
                 title="How far each lens is from the model's output, on held-out text")


def dla_bars(frame: pd.DataFrame, total: float) -> alt.Chart:
    order = frame.sort_values("order")["part"].tolist()
    bars = alt.Chart(frame).mark_bar().encode(
        y=alt.Y("part:N", sort=order, title=None),
        x=alt.X("value:Q", title="contribution to the logit difference"),
        color=alt.Color("kind:N", scale=_kind_scale(frame["kind"]), title=None),
        tooltip=["part:N", alt.Tooltip("value:Q", format="+.4f")])
    zero = alt.Chart(pd.DataFrame({"x": [0.0]})).mark_rule(color="#5f6368").encode(x="x:Q")
    return (bars + zero).properties(height=alt.Step(22), width="container", autosize=FIT_WIDTH,
                                    title=f"Direct effect per component (they sum to {total:+.3f})")


def head_heatmap(frame: pd.DataFrame, title: str = "Direct effect of each head") -> alt.Chart:
    top = float(frame["value"].abs().max()) or 1.0
    base = alt.Chart(frame).encode(x=alt.X("head:O", title="head", axis=alt.Axis(labelAngle=0)),
                                   y=alt.Y("layer:O", title="layer"))
    cells = base.mark_rect().encode(
        color=alt.Color("value:Q", title="logit diff", scale=alt.Scale(scheme="redblue", domain=[-top, top])),
        tooltip=["name:N", alt.Tooltip("value:Q", format="+.3f")])
    n_heads = frame["head"].nunique()
    text = base.mark_text(fontSize=10 if n_heads <= 16 else 7).encode(
        text=alt.Text("value:Q", format="+.1f"),
        color=alt.condition(f"abs(datum.value) > {0.6 * top}", alt.value("white"), alt.value("#202124")))
    return (cells + text).properties(title=title, width=alt.Step(44 if n_heads <= 16 else 22),
                                     height=alt.Step(30))


def accumulated_line(frame: pd.DataFrame, total: float) -> alt.Chart:
    line = alt.Chart(frame).mark_line(point=True, color="#4c78a8").encode(
        x=_points_axis(frame), y=alt.Y("logit difference:Q", title="logit difference"),
        tooltip=["point:N", alt.Tooltip("logit difference:Q", format="+.3f")])
    rule = alt.Chart(pd.DataFrame({"y": [total]})).mark_rule(strokeDash=[4, 3], color="#e45756").encode(
        y=alt.Y("y:Q", title="logit difference"))
    return (line + rule).properties(height=240, width="container", autosize=FIT_WIDTH,
                                    title="The logit difference already in the stream "
                                          "(dashed: the model's output)")


def anatomy_norms(frame: pd.DataFrame) -> alt.Chart:
    order = frame.sort_values("order")["write"].tolist()
    bars = alt.Chart(frame).mark_bar().encode(
        x=alt.X("write:N", sort=order, title=None, axis=alt.Axis(labelAngle=-40)),
        y=alt.Y("write norm:Q", title="mean norm"),
        color=alt.Color("kind:N", scale=alt.Scale(domain=["embeddings", "attention", "MLP"],
                                                  range=["#9d755d", "#4c78a8", "#f58518"]), title="write"),
        tooltip=["write:N", alt.Tooltip("write norm:Q", format=".2f"),
                 alt.Tooltip("stream norm before:Q", format=".2f"),
                 alt.Tooltip("stream norm after:Q", format=".2f")])
    stream = alt.Chart(frame).mark_line(point=True, color="#202124", strokeDash=[4, 3]).encode(
        x=alt.X("write:N", sort=order), y="stream norm after:Q",
        tooltip=["write:N", alt.Tooltip("stream norm after:Q", format=".2f")])
    return (bars + stream).properties(height=280, width=alt.Step(44),
                                      title="Size of each write (bars) and of the stream after it (dashed)")


def anatomy_cosines(frame: pd.DataFrame) -> alt.Chart:
    order = frame.sort_values("order")["write"].tolist()
    long = frame.melt(id_vars=["write", "order"], value_vars=["cos with the stream it reads",
                                                               "cos with the final stream"],
                      var_name="cosine", value_name="value").dropna()
    return alt.Chart(long).mark_bar().encode(
        x=alt.X("write:N", sort=order, title=None, axis=alt.Axis(labelAngle=-40)),
        xOffset="cosine:N",
        y=alt.Y("value:Q", title="mean cosine", scale=alt.Scale(domain=[-1, 1])),
        color=alt.Color("cosine:N", scale=alt.Scale(range=["#54a24b", "#b279a2"]), title=None),
        tooltip=["write:N", "cosine:N", alt.Tooltip("value:Q", format="+.2f")],
    ).properties(height=260, width=alt.Step(44), title="Direction of each write")


def readability_chart(frame: pd.DataFrame) -> alt.Chart:
    return alt.Chart(frame).mark_line(point=True).encode(
        x=_points_axis(frame), y=alt.Y("share:Q", title="share on top",
                                       scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("lens:N", scale=_lens_scale(frame["lens"]), title=None),
        tooltip=["point:N", "lens:N", alt.Tooltip("share:Q", format=".0%"),
                 alt.Tooltip("p_answer:Q", title="mean P(answer)", format=".3f")],
    ).properties(height=220, width="container", autosize=FIT_WIDTH)
