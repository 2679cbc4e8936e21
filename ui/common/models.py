"""Loading models for the UI: one shared copy per server, and the prompt box every page uses.

Models are cached with st.cache_resource, so every session and thread gets the same object; that is
safe because a HookedLM's weights are frozen and its hooks are per thread (core.models.dispatch).
The cache is keyed on the canonical spec (core.models.loading.canonical_spec), so `x`, `x/` and `//x`
are one entry, and the bundled model has a cache of its own: no link, however many models it names,
can push the model every page falls back on out of memory.
"""

from __future__ import annotations

import streamlit as st
import torch

from core.models import BUNDLED, EmptyPromptError, HookedLM, ModelLoadError, Prompt, load_model
from core.models.loading import canonical_spec, env_int
from ui.common.page import escape_markdown, show_problem
from ui.common.session_models import is_session_spec, session_model

ACTIVE_KEY = "active_model_spec"  # the canonical spec that loaded successfully last
PAGE_KEY = "current_page_url_path"  # set by the sidebar on every run
SHARED_MODELS = env_int("LAB_SHARED_MODELS", 1)  # models besides the bundled one kept per server

# One intra-op thread per forward pass by default: the server runs many sessions at once, and the
# matrices of small models are too small to gain from splitting (measured here: a bundled-model
# forward pass took 10-28 ms on 1 thread and up to 1.4 s on 2 when other work shared the cores).
torch.set_num_threads(env_int("LAB_TORCH_THREADS", 1))


@st.cache_resource(max_entries=1, show_spinner=False)
def _bundled() -> HookedLM:
    return load_model(BUNDLED)


@st.cache_resource(max_entries=SHARED_MODELS, show_spinner=False)
def _shared(spec: str) -> HookedLM:
    return load_model(spec)


def load_cached(spec: str) -> HookedLM:
    """Load once per server; failures raise ModelLoadError (and are not cached), so a retry tries
    again. The spec must already have passed the caller's rules (links: resolve_spec(any_folder=False))."""
    canonical = canonical_spec(spec)
    return _bundled() if canonical == BUNDLED else _shared(canonical)


def model_in_use(spec: str) -> HookedLM:
    """The model a spec names for this session: one trained here (ui.common.session_models), or one
    loaded once per server (load_cached). A trained model this session no longer holds raises
    ModelLoadError like a folder that went away."""
    if is_session_spec(spec):
        lm = session_model(spec)
        if lm is None:
            raise ModelLoadError(f"The model {spec} trained in this session is no longer kept (a session "
                                 "keeps its last few trained models).")
        return lm
    return load_cached(spec)


def current_model() -> HookedLM:
    """The model chosen in the sidebar (the bundled one until another loads successfully), or the
    session's remote NDIF model on a page wired for it (ui.common.remote.WIRED)."""
    from ui.common.remote import remote_model_for

    remote = remote_model_for(st.session_state.get(PAGE_KEY))
    if remote is not None:
        return remote
    spec = st.session_state.get(ACTIVE_KEY, BUNDLED)
    try:
        return model_in_use(spec)
    except ModelLoadError as err:  # it loaded before, and now cannot (its folder went away)
        st.session_state[ACTIVE_KEY] = BUNDLED
        show_problem(f"{err} This page uses the bundled model instead.")
        return load_cached(BUNDLED)


def prompt_box(lm: HookedLM, *, key: str, default: str, label: str = "Prompt",
               height: int | None = None, max_chars: int = 8000,
               max_tokens: int | None = None) -> Prompt | None:
    """A text area bound to the URL; returns the validated prompt, or None after saying why.

    max_tokens: a page's own cap below the context window (e.g. where memory grows with pos^2).
    """
    text = st.text_area(label, value=default, key=key, bind="query-params", height=height,
                        max_chars=max_chars)
    try:
        prompt = lm.prepare_prompt(text, max_tokens)
    except EmptyPromptError as err:
        show_problem(str(err))
        return None
    if prompt.truncated:
        limit = prompt.tokens.shape[1]
        where = ("the model's context window of" if limit == lm.cfg.n_ctx
                 else f"this page's limit (the model reads up to {lm.cfg.n_ctx}) of")
        st.caption(f":material/content_cut: The prompt was cut to {where} {limit} tokens "
                   f"({prompt.n_dropped} tokens dropped from the end).")
    if prompt.unknown:
        show_problem("This model has never seen these words, so they become an unknown token: "
                     f"{escape_markdown(', '.join(prompt.unknown))}. Results for them mean little.")
    return prompt
