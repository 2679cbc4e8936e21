"""Altair charts for the LoRA page: data frames in (from ui.lora.frames), charts out."""

from __future__ import annotations

import altair as alt
import pandas as pd

RUN_COLORS = ["#5b4bd5", "#e8843c", "#2a9d8f", "#c0392b", "#7f8c8d", "#b8860b", "#1f77b4", "#8e44ad"]
ROLE_COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759"]  # tableau10: four distinct hues
DIVERGING = ["#2166ac", "#f7f7f7", "#b2182b"]  # negative blue, zero white, positive red


def _runs(frame: pd.DataFrame, field: str = "run") -> alt.Scale:
    names = list(dict.fromkeys(frame[field]))
    return alt.Scale(domain=names, range=RUN_COLORS[: max(1, len(names))])


def loss_chart(frame: pd.DataFrame, *, height: int = 180) -> alt.Chart:
    """Training loss per step (frame: step, loss, run), one line per run."""
    return alt.Chart(frame).mark_line(strokeWidth=1.6).encode(
        x=alt.X("step:Q", title="step"),
        y=alt.Y("loss:Q", title="training loss", scale=alt.Scale(zero=False)),
        color=alt.Color("run:N", scale=_runs(frame), title=None, legend=alt.Legend(orient="top")),
        tooltip=["run:N", "step:Q", alt.Tooltip("loss:Q", format=".3f")],
    ).properties(height=height)


def norms_chart(frame: pd.DataFrame, roles: list[str], *, height: int = 220) -> alt.FacetChart:
    """||delta W||_F / ||W||_F per layer and matrix role, one panel per run
    (frame: run, layer, role, rel_fro, fro, effective_rank)."""
    return alt.Chart(frame).mark_bar().encode(
        x=alt.X("layer:O", title="layer", axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("role:N", sort=roles),
        y=alt.Y("rel_fro:Q", title="‖ΔW‖ / ‖W‖"),
        color=alt.Color("role:N", sort=roles, scale=alt.Scale(domain=roles, range=ROLE_COLORS),
                        title="matrix", legend=alt.Legend(orient="top")),
        tooltip=["run:N", "layer:O", "role:N", alt.Tooltip("rel_fro:Q", format=".4f", title="‖ΔW‖/‖W‖"),
                 alt.Tooltip("fro:Q", format=".4f", title="‖ΔW‖_F"),
                 alt.Tooltip("effective_rank:Q", format=".1f", title="effective rank")],
    ).properties(height=height, width=260).facet(
        column=alt.Column("run:N", title=None, sort=list(dict.fromkeys(frame["run"]))),
    )


def spectrum_chart(frame: pd.DataFrame, rank: int | None, *, height: int = 260) -> alt.LayerChart:
    """Singular values of delta W, largest first, log scale (frame: run, index, value, share).
    A dashed rule marks LoRA's rank r: a LoRA update has nothing beyond it."""
    lines = alt.Chart(frame).mark_line(point=alt.OverlayMarkDef(size=18)).encode(
        x=alt.X("index:Q", title="singular value number i (largest first)", axis=alt.Axis(tickMinStep=1)),
        y=alt.Y("value:Q", title="singular value s_i", scale=alt.Scale(type="log")),
        color=alt.Color("run:N", scale=_runs(frame), title=None, legend=alt.Legend(orient="top")),
        tooltip=["run:N", "index:Q", alt.Tooltip("value:Q", format=".3g"),
                 alt.Tooltip("share:Q", format=".1%", title="share of ‖ΔW‖²")],
    )
    if not rank:
        return alt.layer(lines).properties(height=height)
    rule = alt.Chart(pd.DataFrame({"index": [rank + 0.5], "label": [f"LoRA rank r = {rank}"]})).mark_rule(
        strokeDash=[5, 4], color="#555").encode(x="index:Q", tooltip=["label:N"])
    return alt.layer(lines, rule).properties(height=height)


def heatmap_chart(frame: pd.DataFrame, *, x_title: str, y_title: str) -> alt.Chart:
    """delta W as colours (frame: row, col, value), red positive, blue negative, white zero; square
    cells of 4 to 8 pixels, so the picture keeps the matrix's shape and stays at least ~200 px high."""
    top = float(frame["value"].abs().max()) or 1.0
    rows, cols = int(frame["row"].max()) + 1, int(frame["col"].max()) + 1
    cell = min(8, max(4, 220 // rows))
    width, height = cell * cols, cell * rows
    return alt.Chart(frame).mark_rect().encode(
        x=alt.X("col:O", title=x_title, axis=alt.Axis(labels=False, ticks=False)),
        y=alt.Y("row:O", title=y_title, axis=alt.Axis(labels=False, ticks=False)),
        color=alt.Color("value:Q", title="ΔW", scale=alt.Scale(domain=[-top, 0, top], range=DIVERGING)),
        tooltip=["row:O", "col:O", alt.Tooltip("value:Q", format=".4f", title="ΔW")],
    ).properties(width=width, height=height)


def kl_chart(frame: pd.DataFrame, *, height: int = 240) -> alt.Chart:
    """KL(p_tuned || p_base) at each position (frame: pos, label, kl, run, top_before, top_after)."""
    order = list(dict.fromkeys(frame["label"]))
    return alt.Chart(frame).mark_bar().encode(
        x=alt.X("label:N", sort=order, title="prediction made at token",
                axis=alt.Axis(labelAngle=-50, labelOverlap=False, labelLimit=120)),
        xOffset=alt.XOffset("run:N"),
        y=alt.Y("kl:Q", title="KL(tuned ‖ base), nats"),
        color=alt.Color("run:N", scale=_runs(frame), title=None, legend=alt.Legend(orient="top")),
        tooltip=["run:N", "label:N", alt.Tooltip("kl:Q", format=".3f"),
                 alt.Tooltip("top_before:N", title="top next token, base"),
                 alt.Tooltip("top_after:N", title="top next token, tuned")],
    ).properties(height=height)


def accuracy_chart(frame: pd.DataFrame, skills: list[str], *, columns: int = 4, width: int = 190,
                   height: int = 150) -> alt.FacetChart:
    """Each accuracy over the training steps, one line per run (frame: run, step, skill, value). The
    y axis is the whole 0-1 range in every panel, so a one-point drop looks like one point."""
    return alt.Chart(frame).mark_line(point=alt.OverlayMarkDef(size=20)).encode(
        x=alt.X("step:Q", title="training step"),
        y=alt.Y("value:Q", title="accuracy", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format=".1f")),
        color=alt.Color("run:N", scale=_runs(frame), title=None, legend=alt.Legend(orient="top")),
        tooltip=["run:N", "skill:N", "step:Q", alt.Tooltip("value:Q", format=".3f")],
    ).properties(width=width, height=height).facet(
        facet=alt.Facet("skill:N", title=None, sort=skills), columns=columns,
    )


def other_skills_chart(frame: pd.DataFrame, skills: list[str], *, width: int = 250,
                       height: int = 150) -> alt.FacetChart:
    """Skills that are not shares (IOI logit difference, validation loss), each on its own scale."""
    return alt.Chart(frame).mark_line(point=alt.OverlayMarkDef(size=20)).encode(
        x=alt.X("step:Q", title="training step"),
        y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
        color=alt.Color("run:N", scale=_runs(frame), title=None, legend=alt.Legend(orient="top")),
        tooltip=["run:N", "skill:N", "step:Q", alt.Tooltip("value:Q", format=".3f")],
    ).properties(width=width, height=height).facet(
        facet=alt.Facet("skill:N", title=None, sort=skills), columns=2,
    ).resolve_scale(y="independent")


def learn_forget_chart(frame: pd.DataFrame, *, height: int = 260) -> alt.Chart:
    """Learned vs forgotten, one point per run (frame: run, learned, forgotten), both accuracies on
    fixed 0-1 axes (a gain on the old skills shows at 0)."""
    return alt.Chart(frame).mark_circle(size=140, opacity=0.9).encode(
        x=alt.X("forgotten:Q", title="accuracy lost on the old skills, mean (forgetting) →",
                scale=alt.Scale(domain=[0, 1], clamp=True), axis=alt.Axis(format=".1f", tickCount=10)),
        y=alt.Y("learned:Q", title="new task accuracy (learning) →", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("run:N", scale=_runs(frame), title=None, legend=alt.Legend(orient="right")),
        tooltip=["run:N", alt.Tooltip("learned:Q", format=".2f"), alt.Tooltip("forgotten:Q", format=".3f")],
    ).properties(height=height)
