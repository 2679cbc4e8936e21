"""The sidebar shared by every page: which model the lab is looking at.

The choice lives in the URL (?model=...), so a shared link opens the same model. A model that fails
to load leaves the previous one in place, with a message saying why and what is available here.
"""

from __future__ import annotations

import streamlit as st

from core.models import BUNDLED, ModelLoadError
from core.models.catalog import CURATED, cached_model_ids
from ui.common.models import ACTIVE_KEY, load_cached

FAILED_KEY = "model_failed"  # (spec, message) of the last choice that did not load


def _label(spec: str) -> str:
    if spec == BUNDLED:
        return "Bundled model (synthetic world, offline)"
    return CURATED.get(spec, spec)


@st.cache_data(ttl=60, show_spinner=False)
def _local_models() -> list[str]:
    return cached_model_ids()


def _try_load(choice: str, active: str) -> None:
    failed = st.session_state.get(FAILED_KEY)
    if failed and failed[0] == choice:
        return  # already failed; the message is shown below until the choice changes
    try:
        with st.spinner(f"Loading {choice} (downloading it first if it is not cached)...",
                        show_time=True):
            load_cached(choice)
    except ModelLoadError as err:
        st.session_state[FAILED_KEY] = (choice, str(err))
        return
    st.session_state[ACTIVE_KEY] = choice
    st.session_state.pop(FAILED_KEY, None)


def render_sidebar() -> None:
    local = _local_models()
    # Typed ids and folders (from this session or a shared link) stay listed, so they can be re-picked.
    typed = [st.session_state.get("model"), st.query_params.get("model"),
             st.session_state.get(ACTIVE_KEY)]
    options = list(dict.fromkeys([BUNDLED, *[t for t in typed if t], *local, *CURATED]))
    with st.sidebar:
        choice = st.selectbox(
            "Model", options, key="model", bind="query-params", accept_new_options=True,
            format_func=_label, help="Pick a model, or type a Hugging Face hub id or a local folder.",
        )
        active = st.session_state.get(ACTIVE_KEY, BUNDLED)
        choice = (choice or BUNDLED).strip()
        if choice != active:
            _try_load(choice, active)
        failed = st.session_state.get(FAILED_KEY)
        if failed and failed[0] == choice:
            st.error(failed[1], icon=":material/error:")
            st.caption(f"Still using **{_label(st.session_state.get(ACTIVE_KEY, BUNDLED))}**.")
            if local:
                st.caption("Available on this machine: " + ", ".join(local))
            if st.button("Try again", key="model_retry"):
                st.session_state.pop(FAILED_KEY, None)
                st.rerun()
        try:
            lm = load_cached(st.session_state.get(ACTIVE_KEY, BUNDLED))
        except ModelLoadError as err:
            st.error(str(err), icon=":material/error:")
            return
        c = lm.cfg
        st.caption(f"{c.arch}, {c.n_layers} layers, {c.n_heads} heads, d_model {c.d_model}, "
                   f"{c.n_params / 1e6:.1f}M parameters")
