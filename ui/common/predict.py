"""Predict, then run: the step every topic page puts before its main result.

    step = predict_first(QUESTION, key="attn_prev", context=lm.spec, cfg=lm.cfg)
    if step.ready:                      # locked, skipped, or predictions switched off
        result = compute(...)           # the main result is computed only now
        step.reveal(result)             # graded side by side, with "Add to notebook"

A prediction belongs to one experiment (`context`: the settings that change the answer), so changing
them asks again, and going back shows what was predicted for that setup. The sidebar switch
"Predict before results" (on by default) turns the step off for the whole session.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import streamlit as st

from core.models.hook_names import layer_words
from core.notebook.entries import Entry
from core.notebook.questions import Grade, Prediction, Question, head_name
from ui.common.notebook import experiment_url, note_form
from ui.common.page import escape_markdown
from ui.common.url_state import defer_check

PREDICTIONS_KEY = "predictions"  # {(question id, context): Prediction | SKIPPED}
SWITCH_KEY = "predict_first"
SKIPPED = "skipped"


def default_on() -> bool:
    """Predictions are on for a new session unless LAB_PREDICT_FIRST=0 (e.g. for a demo screen)."""
    return os.environ.get("LAB_PREDICT_FIRST", "1").strip().lower() not in ("0", "false", "no", "off")


def predictions_on() -> bool:
    return bool(st.session_state.get(SWITCH_KEY, default_on()))


def predict_switch() -> None:
    """The sidebar switch, drawn once by app.py for every page."""
    st.session_state.setdefault(SWITCH_KEY, default_on())
    st.sidebar.toggle("Predict before results", key=SWITCH_KEY,
                      help="Each page asks a question before it shows its main result, and grades "
                           "your answer against what it measures. Switch off to see results at once.")


def answer_words(question: Question, answer) -> str:
    """An answer as the learner would say it."""
    if question.kind == "head":
        return f"head {head_name(answer)}"
    if question.kind == "layer":
        return layer_words(int(answer))
    if question.kind == "number":
        return f"{float(answer):g}{(' ' + question.unit) if question.unit else ''}"
    return str(answer)


@dataclass
class PredictStep:
    question: Question
    text: str  # the question as asked
    key: str
    state: Prediction | str | None  # None: waiting for an answer
    page: str
    model: str

    @property
    def ready(self) -> bool:
        """May the page compute and show its main result?"""
        return self.state is not None

    @property
    def prediction(self) -> Prediction | None:
        return self.state if isinstance(self.state, Prediction) else None

    def reveal(self, result) -> Grade | None:
        """Grade the prediction against the page's result and show both side by side."""
        if self.prediction is None:
            return None
        grade = self.question.grade(result, self.prediction)
        p = self.prediction
        with st.container(border=True):
            mine, measured = st.columns(2)
            mine.markdown(f"**You predicted:** {answer_words(self.question, p.answer)} "
                          f"({p.confidence:.0%} sure)" + (f"  \n*“{_plain(p.reason)}”*" if p.reason else ""))
            mark = (":green[:material/check: right]" if grade.correct
                    else ":red[:material/close: not this time]")
            measured.markdown(f"**Measured:** {_plain(grade.measured)}  \n{mark}"
                              + (f" ({_plain(grade.detail)})" if grade.detail else ""))
            left, right = st.columns([1, 1])
            with left:
                note_form(lambda: Entry(
                    page=self.page, model=self.model, url=experiment_url(), question=self.text,
                    prediction=answer_words(self.question, p.answer), confidence=p.confidence,
                    reason=p.reason, measured=grade.measured, correct=grade.correct),
                    key=f"{self.key}_graded")
            right.button("Predict again", key=f"{self.key}_again", type="tertiary", icon=":material/replay:",
                         on_click=_forget, args=(self.key, self.question.id))
        return grade


def _plain(text: str) -> str:
    return escape_markdown(text)


def _store() -> dict:
    return st.session_state.setdefault(PREDICTIONS_KEY, {})


def _forget(key: str, question_id: str) -> None:
    context = st.session_state.get(f"{key}_context")
    _store().pop((question_id, context), None)


def _answer_input(question: Question, key: str, cfg, options: Sequence | None):
    if question.kind == "choice":
        return st.radio("My prediction", list(options or question.options), index=None, key=f"{key}_answer",
                        horizontal=True)
    if question.kind == "number":
        lo, hi, step = question.number_range
        return st.number_input(f"My prediction{f' ({question.unit})' if question.unit else ''}",
                               min_value=lo, max_value=hi, step=step, value=None, key=f"{key}_answer")
    if question.kind == "layer":
        layers = list(options) if options is not None else list(range(cfg.n_layers))
        return st.selectbox("My prediction", layers, index=None, format_func=layer_words, key=f"{key}_answer")
    heads = list(options) if options is not None else [
        (layer, head) for layer in range(cfg.n_layers) for head in range(cfg.n_heads)]
    return st.selectbox("My prediction", heads, index=None, format_func=lambda h: f"head {head_name(h)}",
                        key=f"{key}_answer")


def predict_first(question: Question, *, key: str, context: str, page: str, model: str, cfg=None,
                  fields: dict | None = None, options: Sequence | None = None) -> PredictStep:
    """Draw the prediction step; return it (see the module docstring)."""
    text = question.ask(**(fields or {}))
    st.session_state[f"{key}_context"] = context
    if not predictions_on():
        return PredictStep(question, text, key, SKIPPED, page, model)
    stored = _store().get((question.id, context))
    if stored is not None:
        return PredictStep(question, text, key, stored, page, model)
    with st.container(border=True):
        st.markdown(f":material/psychology_alt: **Predict first.** {text}")
        with st.form(f"{key}_form", border=False):
            answer_col, sure_col = st.columns([3, 2], vertical_alignment="bottom")
            with answer_col:
                answer = _answer_input(question, key, cfg, options)
            with sure_col:
                sure = st.slider("How sure are you?", 50, 100, 70, step=5, format="%d%%", key=f"{key}_sure")
            why = st.text_input("Why (one line)", max_chars=200, key=f"{key}_why",
                                placeholder="What you expect, and the reason")
            lock_col, skip_col = st.columns([1, 1])
            locked = lock_col.form_submit_button("Lock my prediction", icon=":material/lock:", type="primary")
            skipped = skip_col.form_submit_button("Skip this time", type="tertiary")
        if skipped:
            _store()[(question.id, context)] = SKIPPED
            st.rerun()
        if locked:
            if answer is None:
                st.warning("Pick an answer first (or skip this time).", icon=":material/warning:")
            else:
                _store()[(question.id, context)] = Prediction(question.id, answer, sure / 100, why.strip())
                st.rerun()
        st.caption("The result appears once you lock a prediction or skip. Switch predictions off in "
                   "the sidebar to see results at once.")
    defer_check()  # the controls behind the result are not drawn yet: check the link's values later
    return PredictStep(question, text, key, None, page, model)
