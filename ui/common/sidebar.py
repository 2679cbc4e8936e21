"""The sidebar shared by every page: which model the lab is looking at.

The model in use lives in the URL by its id (?model=gpt2, never its display name), so a shared link
opens the same model on any page. The list says which models this machine can open with no network
("on this machine") and which must be downloaded; when the hub cannot be reached that is said once,
and choosing a model that is not here fails at once instead of after half a minute of retries.

A link's ?model= is read once, when the session opens, under the rule for links (a hub id, or a
folder under the server's model roots: core.models.loading.resolve_spec). A folder typed into the
picker by someone at the machine itself may be anywhere. A model that fails to load leaves the
previous one in place; the message says why, and the caption under the picker always describes the
model actually in use.
"""

from __future__ import annotations

import os

import streamlit as st

from core.models import BUNDLED, ModelLoadError
from core.models.catalog import (
    CURATED,
    cached_model_ids,
    forget_reachability,
    hub_cache_dir,
    hub_reachable,
)
from core.models.loading import BUNDLED_NAME, MAX_SPEC_CHARS, is_hub_id, resolve_spec, shown
from ui.common.models import ACTIVE_KEY, PAGE_KEY, load_cached, model_in_use
from ui.common.remote import bind_session_log, remote_group
from ui.common.session_models import is_session_spec, session_model, session_specs

MODEL_KEY = "model"  # the picker widget, and the URL parameter holding the model in use
LINK_READ_KEY = "model_link_read"  # set once the session's link has been read
FAILED_KEY = "model_failed"  # (choice, message) of the last choice that did not load
SHARED_SERVER_ENV = "LAB_SHARED_SERVER"  # "1": typed folders follow the rule for links too
# (the Cloud entry sets LAB_DEPLOYMENT=cloud, which means the same)


@st.cache_data(ttl=30, show_spinner=False)
def _cached_ids(cache_dir: str) -> list[str]:
    return cached_model_ids()


def _local_models() -> list[str]:
    """Hub models complete in this machine's cache (rescanned every 30 s, or when the cache moves)."""
    return _cached_ids(str(hub_cache_dir()))


def _hub_ok() -> bool:
    return hub_reachable()  # cached for a short while in core


def local_run() -> bool:
    """Whether the person choosing is at the machine itself: the browser connects over loopback
    (st.context.ip_address is None then) and the server is not declared shared."""
    if os.environ.get(SHARED_SERVER_ENV, "").strip().lower() in {"1", "true", "yes"}:
        return False
    if os.environ.get("LAB_DEPLOYMENT", "").strip().lower() == "cloud":
        return False
    # A remote visitor has an address string; loopback gives None (and AppTest a stand-in object).
    return not isinstance(st.context.ip_address, str)


HERE, DOWNLOAD, UNREACHABLE = "✓", "⇣", "✗"  # the marks in front of a hub model's name


def _mark(spec: str, local: list[str], reachable: bool) -> str:
    if spec == BUNDLED or spec in local:
        return HERE
    return DOWNLOAD if reachable else UNREACHABLE


def _legend(reachable: bool) -> str:
    second = (f"{DOWNLOAD} downloads from the Hugging Face hub first" if reachable
              else f"{UNREACHABLE} needs the Hugging Face hub, which cannot be reached from here")
    return f"{HERE} on this machine (works offline) · {second}"


def _name(spec: str) -> str:
    if is_session_spec(spec):
        lm = session_model(spec)
        return lm.name if lm is not None else spec
    return BUNDLED_NAME if spec == BUNDLED else CURATED.get(spec, spec)


def _labeller(local: list[str], reachable: bool):
    def label(spec: str) -> str:
        if spec == BUNDLED or spec in CURATED or (is_hub_id(spec) and spec in local):
            return f"{_mark(spec, local, reachable)} {_name(spec)}"
        if is_session_spec(spec) and session_model(spec) is not None:
            return f"{HERE} {_name(spec)}"
        return spec  # a typed id or folder is shown as typed (so the picker round-trips it)
    return label


def _read_link() -> None:
    """Once per session: the link's ?model=, resolved under the rule for links."""
    if st.session_state.get(LINK_READ_KEY):
        return
    st.session_state[LINK_READ_KEY] = True
    raw = st.query_params.get(MODEL_KEY)
    if not raw or not raw.strip():
        return
    try:
        spec = resolve_spec(raw, any_folder=False).spec
    except ModelLoadError as err:
        st.session_state[FAILED_KEY] = ("link", f"The link asked for the model {shown(raw.strip())}. {err}")
        return
    st.session_state[MODEL_KEY] = spec


def _picked() -> None:
    """The learner chose in the picker: a message about the session's link is no longer news."""
    failed = st.session_state.get(FAILED_KEY)
    if failed and failed[0] == "link":
        st.session_state.pop(FAILED_KEY, None)


def _try_load(choice: str, local: list[str]) -> None:
    failed = st.session_state.get(FAILED_KEY)
    if failed and failed[0] == choice:
        return  # already failed; the message is shown below until the choice changes
    if is_session_spec(choice):  # trained in this session: nothing to load, nothing a link could name
        if session_model(choice) is None:
            st.session_state[FAILED_KEY] = (choice, f"No model {shown(choice)} was trained in this session.")
            return
        st.session_state[ACTIVE_KEY] = choice
        st.session_state.pop(FAILED_KEY, None)
        return
    try:
        spec = resolve_spec(choice, any_folder=local_run()).spec
        where = ("from this machine" if spec == BUNDLED or spec in local or not is_hub_id(spec)
                 else "(downloading it from the Hugging Face hub first)")
        with st.spinner(f"Loading {_name(spec)} {where}...", show_time=True):
            load_cached(spec)
    except ModelLoadError as err:
        st.session_state[FAILED_KEY] = (choice, str(err))
        return
    st.session_state[ACTIVE_KEY] = spec
    st.session_state.pop(FAILED_KEY, None)


def _sync_url(active: str) -> None:
    """The URL names the model in use by its id (no parameter for the bundled model, nor for a model
    trained in this session: no other session could open it)."""
    current = st.query_params.get(MODEL_KEY)
    if active == BUNDLED or is_session_spec(active):
        if current is not None:
            del st.query_params[MODEL_KEY]
    elif current != active:
        st.query_params[MODEL_KEY] = active


def _describe(lm, failed: bool) -> None:
    c = lm.cfg
    lead = "Still using" if failed else "In use:"
    st.caption(f"{lead} **{_name(lm.spec)}** ({c.arch} architecture, {c.n_layers} layers, "
               f"{c.n_heads} heads, d_model {c.d_model}, {c.n_params / 1e6:.1f}M parameters)")


def render_sidebar(url_path: str | None = None) -> None:
    bind_session_log()  # this run's nnsight / NDIF requests are logged in this session's log
    st.session_state[PAGE_KEY] = url_path  # current_model() serves a remote model only where it runs
    _read_link()
    local = _local_models()
    reachable = _hub_ok()
    active = st.session_state.get(ACTIVE_KEY, BUNDLED)
    st.session_state.setdefault(MODEL_KEY, active)
    held = st.session_state.get(MODEL_KEY)
    typed = [s for s in (held, active) if isinstance(s, str) and 0 < len(s) <= MAX_SPEC_CHARS
             and not (is_session_spec(s) and session_model(s) is None)]
    options = list(dict.fromkeys([BUNDLED, *session_specs(), *typed, *local, *CURATED]))
    with st.sidebar:
        choice = st.selectbox(
            "Model", options, key=MODEL_KEY, accept_new_options=True, on_change=_picked,
            format_func=_labeller(local, reachable),
            help="Pick a model, or type a Hugging Face hub id or a local folder.",
        )
        choice = (choice or BUNDLED).strip() or BUNDLED
        if choice != active:
            _try_load(choice, local)
        failed = st.session_state.get(FAILED_KEY)
        shown_failure = failed is not None and failed[0] in (choice, "link")
        if shown_failure:
            st.error(failed[1], icon=":material/error:")
        try:
            lm = model_in_use(st.session_state.get(ACTIVE_KEY, BUNDLED))
        except ModelLoadError as err:  # the model in use can no longer be read: back to the bundled one
            st.session_state[ACTIVE_KEY] = BUNDLED
            st.error(str(err), icon=":material/error:")
            try:
                lm = load_cached(BUNDLED)
            except ModelLoadError as bundled_err:
                st.error(str(bundled_err), icon=":material/error:")
                return
            shown_failure = True
        _describe(lm, shown_failure)
        _sync_url(lm.spec)
        if shown_failure:
            if st.button("Try again", key="model_retry"):
                st.session_state.pop(FAILED_KEY, None)
                forget_reachability()
                _cached_ids.clear()
                st.rerun()
        st.caption(_legend(reachable))
        with st.expander("Remote (NDIF)", icon=":material/cloud:"):
            remote_group(url_path)
