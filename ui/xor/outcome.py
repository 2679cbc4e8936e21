"""The XOR page's "predict, then run" box and the verdict: what happened, and the failure modes named.

A prediction is stored per experiment (its key), so changing a control asks for a new one, and
going back to a setup shows what you predicted for it.
"""

from __future__ import annotations

import streamlit as st

from core.scratch.train import TrainResult

OUTCOMES = {"solved": "Solves it", "stuck": "Gets stuck", "diverged": "Diverges",
            "learning": "Still learning"}
PREDICTIONS_KEY = "xor_predictions"  # {experiment key: (outcome, reason)}
HIDE_KEY = "xor_predict_first"
_SHOW = {"success": st.success, "error": st.error, "warning": st.warning, "info": st.info}
_ICONS = {"success": ":material/check_circle:", "error": ":material/error:", "warning": ":material/warning:",
          "info": ":material/info:"}


def _lock(run_key: str) -> None:
    choice, why = st.session_state.get("xor_guess"), st.session_state.get("xor_why", "")
    if choice:
        st.session_state.setdefault(PREDICTIONS_KEY, {})[run_key] = (choice, why)


def _forget(run_key: str) -> None:
    st.session_state.get(PREDICTIONS_KEY, {}).pop(run_key, None)


def predict_box(run_key: str, summary: str, outcome: str | None) -> bool:
    """Draw the box; return whether the results may be shown (always, unless 'predict first' is on
    and no prediction is locked in for this experiment)."""
    prediction = st.session_state.get(PREDICTIONS_KEY, {}).get(run_key)
    with st.container(border=True):
        head, toggle = st.columns([4, 1])
        head.markdown(f"**Predict, then run.** Before you look: what will {summary} do?")
        hide = toggle.toggle("Predict first", key=HIDE_KEY,
                             help="Hide the results until you lock in a prediction for this setup.")
        if prediction is None:
            with st.form("xor_predict_form", border=False):
                guess, why, lock = st.columns([5, 4, 2], vertical_alignment="bottom")
                guess.radio("My prediction", list(OUTCOMES), format_func=OUTCOMES.get, index=None,
                            key="xor_guess", horizontal=True)
                why.text_input("Why (one line)", key="xor_why",
                               placeholder="e.g. two ReLU units: one dies, one line cannot split XOR")
                lock.form_submit_button("Lock it in", on_click=_lock, args=(run_key,), icon=":material/lock:")
            if hide:
                st.caption("The results are hidden until you lock in a prediction.")
            return not hide
        said, why = prediction
        mine, actual = st.columns(2)
        mine.markdown(f"**You predicted:** {OUTCOMES[said]}" + (f"  \n*“{why}”*" if why else ""))
        if outcome is not None:
            mark = ":material/check: right" if said == outcome else ":material/close: not this time"
            actual.markdown(f"**What happened:** {OUTCOMES[outcome]}  \n{mark}")
        st.button("Predict again", key="xor_forget", on_click=_forget, args=(run_key,), type="tertiary",
                  icon=":material/replay:")
    return True


def show_verdict(result: TrainResult) -> None:
    """The numbers of the run, and every finding of the diagnosis as a coloured box."""
    loss, acc, epochs, speed = st.columns(4)
    final = result.final_loss
    loss.metric("Final loss", f"{final:.4f}" if final >= 1e-3 else f"{final:.2e}", border=True)
    acc.metric("Accuracy", f"{result.final_accuracy:.0%}", border=True)
    epochs.metric("Epochs trained", f"{result.epochs_run:,}", border=True)
    took = f"{result.seconds:.2f} s" if result.seconds >= 1 else f"{result.seconds * 1000:.0f} ms"
    speed.metric("Training took", took, border=True,
                 help=f"{result.steps:,} optimiser steps")
    for finding in result.diagnosis.findings:
        _SHOW[finding.severity](f"**{finding.title}.** {finding.detail}", icon=_ICONS[finding.severity])
