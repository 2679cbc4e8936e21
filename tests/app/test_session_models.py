"""A model trained in this session is a model like any other for the pages: the sidebar lists it by
its name, current_model() serves it, the URL never names it (no other session could open it), and a
session that no longer holds it falls back to the bundled model with a message."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.app.helpers import texts


def _script(keep: bool) -> None:
    import dataclasses

    import streamlit as st

    from core.interp.training.loop import train
    from core.interp.training.presets import INDUCTION
    from ui.common.models import ACTIVE_KEY, current_model
    from ui.common.session_models import SESSION_MODELS_KEY
    from ui.common.sidebar import render_sidebar
    from ui.training.use import register_trained

    settings = dataclasses.replace(INDUCTION.settings, steps=2, log_every=1, batch=4)
    run = train(settings, run_id="t1")
    lm = register_trained(run, "t1")
    st.session_state[ACTIVE_KEY] = lm.spec
    if not keep:
        st.session_state[SESSION_MODELS_KEY] = {}
    render_sidebar("attention")
    st.markdown(f"current: {current_model().name}")


def _open(keep: bool) -> AppTest:
    at = AppTest.from_function(_script, args=(keep,), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_trained_model_is_listed_served_and_kept_out_of_the_url():
    at = _open(keep=True)
    picker = at.sidebar.selectbox(key="model")
    assert "✓ Trained here (induction, 2 layers x 4 heads" in picker.options[1]
    shown = texts(at)
    assert "current: Trained here (induction" in shown
    assert "In use: **Trained here (induction" in shown and "2 layers, 4 heads, d_model 64" in shown
    assert "model" not in at.query_params


def test_a_trained_model_the_session_no_longer_holds_falls_back_to_the_bundled_one():
    at = _open(keep=False)
    shown = texts(at)
    assert "current: Bundled model (synthetic world)" in shown
    assert "no longer kept" in shown
