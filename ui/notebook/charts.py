"""Altair charts for the notebook page: frames in, charts out (no st.* here)."""

from __future__ import annotations

import altair as alt
import pandas as pd

OUTCOME_COLOURS = alt.Scale(domain=["right", "wrong", "note"], range=["#2e7d32", "#c62828", "#9e9e9e"])


def timeline(per_day: pd.DataFrame) -> alt.Chart:
    return alt.Chart(per_day).mark_bar().encode(
        x=alt.X("day:T", title=None),
        y=alt.Y("n:Q", title="entries", stack=True),
        color=alt.Color("outcome:N", scale=OUTCOME_COLOURS, title=None),
        tooltip=["day:T", "outcome:N", "n:Q"],
    ).properties(height=180)


def reliability_chart(frame: pd.DataFrame) -> alt.Chart:
    """Stated confidence vs fraction right per bin; the diagonal is perfect calibration."""
    axis = alt.Scale(domain=[0.5, 1.0])
    right = alt.Scale(domain=[0.0, 1.0])
    diagonal = alt.Chart(pd.DataFrame({"x": [0.5, 1.0], "y": [0.5, 1.0]})).mark_line(
        strokeDash=[4, 4], color="#9e9e9e").encode(x=alt.X("x:Q", scale=axis), y=alt.Y("y:Q", scale=right))
    points = alt.Chart(frame).mark_circle(color="#5b4bd5").encode(
        x=alt.X("stated confidence:Q", scale=axis, axis=alt.Axis(format="%")),
        y=alt.Y("fraction right:Q", scale=right, axis=alt.Axis(format="%")),
        size=alt.Size("n:Q", title="predictions", scale=alt.Scale(range=[60, 600])),
        tooltip=["bin:N", alt.Tooltip("stated confidence:Q", format=".0%"),
                 alt.Tooltip("fraction right:Q", format=".0%"), "n:Q"],
    )
    return (diagonal + points).properties(height=260, title="Reliability: points on the dashed line are "
                                                             "calibrated")


def accuracy_chart(frame: pd.DataFrame) -> alt.Chart:
    return alt.Chart(frame).mark_bar(color="#5b4bd5").encode(
        x=alt.X("accuracy:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        y=alt.Y("page:N", title=None, sort="-x"),
        tooltip=["page:N", "right:Q", "graded:Q", alt.Tooltip("accuracy:Q", format=".0%")],
    ).properties(height=alt.Step(24), title="Right per page")
