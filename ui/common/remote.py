"""The sidebar's "Remote (NDIF)" group and the per-request log.

remote_group() draws the group: with no NDIF key configured it explains how to get one (and
contacts nothing); with a key it lists the models NDIF serves (a short timeout, a cached answer) and
connects to the one the learner picks. A model that cannot be connected (NDIF unreachable, the key
refused, a model it does not serve) leaves everything as it was and says why. The key is read from
Streamlit secrets or the environment (core.models.remote.api_key), never from a widget or the URL,
and the remote choice is not put in the URL either.

request_log_expander() shows this session's requests: the prompts sent, where, how long each took,
and the bytes each way. bind_session_log() makes this session's log the one core records to; the
sidebar calls it on every run, before the page computes anything.

RemoteCall wraps one request on a page: it shows the time waited, offers a Cancel button, and turns
a failed request into a message on the page (the page keeps running). `ask(lm, label, fn, key=...)`
is how a wired page asks: through RemoteCall for a remote model, directly for a local one.
`cache_on_backend` is ui.common.cache.cache_on_model that also keys an NNsightLM on its spec (without
importing nnsight), for the cached computations of wired pages.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from datetime import datetime

import pandas as pd
import streamlit as st

from core.models import remote as rm
from core.models.backend import is_remote

REMOTE_KEY = "remote_model_spec"  # the connected remote model's spec, or absent
PICK_KEY = "remote_pick"  # the selectbox of NDIF's models (not bound to the URL)
FAILED_KEY = "remote_failed"  # (repo id, message) of the last failed connect
LOG_KEY = "remote_request_log"
# Pages whose code asks through core.models.backend's helpers (read_at, lens_logits, head_projections,
# readout_weights, attribution_scores, Write, lm.generate_batch), so they run on an NNsightLM. A page
# that core.models.remote.PAGE_SUPPORT marks "remote" joins this set once it is wired; until then it
# keeps the local model and says so.
WIRED: frozenset[str] = frozenset({"residual", "attention", "steering", "patching"})
NNSIGHT_TYPE = "core.models.nnsight_backend.NNsightLM"  # by name: hashing it must not import nnsight


def cache_on_backend(func=None, **cache_kwargs):
    """ui.common.cache.cache_on_model, keyed on the spec of an NNsightLM as well as of a HookedLM."""
    from ui.common.cache import cache_on_model, model_key

    hash_funcs = {NNSIGHT_TYPE: model_key, **cache_kwargs.pop("hash_funcs", {})}
    return cache_on_model(func, hash_funcs=hash_funcs, **cache_kwargs)


def ask(lm, label: str, fn, *, key: str, timeout_s: float | None = None):
    """fn() for a local model; for a remote one through RemoteCall (the time waited, Cancel, a failed
    request as a message on the page). None after a failure (the message is already shown)."""
    if not is_remote(lm):
        return fn()
    return RemoteCall(label, key=key, timeout_s=timeout_s).run(fn)


# -- the key, the log ------------------------------------------------------------------------------
def configured_key() -> str | None:
    """The NDIF key from this app's secrets (NDIF_API_KEY) or environment."""
    try:
        secrets = st.secrets
    except Exception:  # no secrets file at all
        secrets = None
    return rm.api_key(secrets)


def session_log() -> rm.RequestLog:
    log = st.session_state.get(LOG_KEY)
    if not isinstance(log, rm.RequestLog):
        log = st.session_state[LOG_KEY] = rm.RequestLog()
    return log


def bind_session_log() -> rm.RequestLog:
    """Record this run's requests in this session's log (call once per run, before any request)."""
    log = session_log()
    rm.bind_log(log)
    return log


# -- connecting -------------------------------------------------------------------------------------
def _connect(repo_id: str):
    """Connect through core (tests replace this to read a tiny model's config from a folder)."""
    from core.models.nnsight_backend import connect

    return connect(repo_id, key_source=configured_key)


@st.cache_resource(max_entries=4, show_spinner=False)
def _connected(repo_id: str, host: str):
    return _connect(repo_id)


def remote_model():
    """The session's connected remote model (an NNsightLM), or None."""
    spec = st.session_state.get(REMOTE_KEY)
    if not rm.is_remote_spec(spec):
        return None
    try:
        return _connected(rm.repo_of(spec), rm.host())
    except rm.RemoteModelError as err:  # connected before, and now cannot be
        st.session_state.pop(REMOTE_KEY, None)
        st.session_state[FAILED_KEY] = (rm.repo_of(spec), str(err))
        return None


def remote_model_for(url_path: str | None):
    """The remote model if one is connected and the page at url_path runs on it (PAGE_SUPPORT says
    "remote" and the page is wired); else None (the page uses the local model, support_note says why)."""
    support = rm.page_support(url_path) if url_path else None
    if support is None or not support.remote or url_path not in WIRED:
        return None
    return remote_model()


def _use(repo_id: str) -> None:
    """The learner asked for repo_id: connect, or keep what was there and say why."""
    try:
        with st.spinner(f"Connecting to {repo_id} on NDIF (its config and tokenizer, and your key)...",
                        show_time=True):
            _connected(repo_id, rm.host())
    except rm.RemoteModelError as err:
        st.session_state[FAILED_KEY] = (repo_id, str(err))
        return
    st.session_state[REMOTE_KEY] = rm.remote_spec(repo_id)
    st.session_state.pop(FAILED_KEY, None)


def _label(listing: rm.Listing):
    def label(repo_id: str) -> str:
        m = listing.find(repo_id)
        if m is None or m.ready:
            return repo_id
        return f"{repo_id} ({m.state.lower()})"
    return label


def support_note(url_path: str | None) -> None:
    """One line: whether this page can use the remote model, and why not if not."""
    support = rm.page_support(url_path) if url_path else None
    if support is None or not rm.is_remote_spec(st.session_state.get(REMOTE_KEY)):
        return
    if support.remote and url_path in WIRED:
        st.caption(f":material/cloud: This page runs on the remote model. {support.reason}")
    elif support.remote:
        st.caption(":material/computer: This page still uses the local model: its remote version is "
                   "not wired yet.")
    else:
        st.caption(f":material/computer: This page runs on the local model: {support.reason}")


def remote_group(url_path: str | None = None) -> None:
    """The content of the sidebar's "Remote (NDIF)" group (the caller puts it in the sidebar)."""
    key = configured_key()
    listing = rm.list_models(key)
    if not listing.has_key:
        st.caption(listing.message)
        return
    if not listing.reachable:
        st.warning(listing.message, icon=":material/cloud_off:")
        if st.button("Check again", key="remote_retry"):
            rm.forget_listing()
            st.rerun()
        return
    active = st.session_state.get(REMOTE_KEY)
    if not listing.models:
        st.caption(listing.message)
    else:
        options = [m.repo_id for m in listing.models]
        pick = st.selectbox("NDIF serves", options, key=PICK_KEY, format_func=_label(listing),
                            help="Large models on NDIF's GPUs: your prompts and the vectors you write "
                                 "travel there; only what a page draws comes back.")
        if st.button("Use this model remotely", key="remote_use", disabled=active == rm.remote_spec(pick)):
            _use(pick)
    failed = st.session_state.get(FAILED_KEY)
    if failed:
        st.error(f"{failed[0]}: {failed[1]}", icon=":material/error:")
    active = st.session_state.get(REMOTE_KEY)
    if rm.is_remote_spec(active):
        st.caption(f"In use remotely: **{rm.repo_of(active)}** (on the pages that support it).")
        if st.button("Back to the local model", key="remote_leave"):
            st.session_state.pop(REMOTE_KEY, None)
            st.rerun()
    support_note(url_path)


# -- the request log ----------------------------------------------------------------------------------
def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB" if n >= 1e3 else f"{n} B"


def log_frame(records: list[rm.RequestRecord]) -> pd.DataFrame:
    """The request log as a table, newest first (no st.* here)."""
    columns = ["time", "where", "seconds", "sent", "received", "status", "prompts", "rows x tokens",
               "request", "model"]
    rows = [{
        "time": datetime.fromtimestamp(r.started).strftime("%H:%M:%S"), "where": r.where,
        "seconds": round(r.seconds, 2), "sent": _size(r.bytes_sent), "received": _size(r.bytes_received),
        "status": r.status if not r.message else f"{r.status}: {r.message[:120]}",
        "prompts": " | ".join(r.prompts), "rows x tokens": f"{r.n_rows} x {r.n_tokens}",
        "request": r.kind, "model": r.model,
    } for r in reversed(records)]
    return pd.DataFrame(rows, columns=columns)


def request_log_expander(expanded: bool = False) -> None:
    """This session's requests: what was sent, how long it took, how much came back."""
    records = session_log().records()
    title = f"Requests sent ({len(records)})" if records else "Requests sent"
    with st.expander(title, icon=":material/swap_vert:", expanded=expanded):
        if not records:
            st.caption("No request yet in this session. Every trace a page runs is listed here: the "
                       "prompts it sent, where it ran, how long it took and the bytes each way.")
            return
        remote = [r for r in records if r.where == "NDIF"]
        if remote:
            total = sum(r.bytes_sent + r.bytes_received for r in remote)
            st.caption(f"{len(remote)} request(s) to NDIF moved {_size(total)} in all; the weights "
                       "never left the server.")
        st.dataframe(log_frame(records), hide_index=True, width="stretch")
        if st.button("Clear the log", key="remote_log_clear"):
            session_log().clear()
            st.rerun()


@contextmanager
def _page_element():
    """Draw on the page from inside a cached computation (the wait of a request made by an
    st.cache_data function): the element belongs to this run, not to the cached result, so it must
    not be recorded for replay (a replay could not find the placeholder it was drawn into). Yields
    False where Streamlit offers no way to say so; the caller then draws nothing."""
    try:
        from streamlit.runtime.scriptrunner_utils.script_run_context import in_cached_function
    except ImportError:  # a Streamlit that moved it: skip the live update (the final time is still shown)
        yield False
        return
    token = in_cached_function.set(False)
    try:
        yield True
    finally:
        in_cached_function.reset(token)


# -- one request on a page -------------------------------------------------------------------------------
class RemoteCall:
    """Run one remote request from a page, with the time waited shown, a Cancel button and a message
    if it fails:

        call = RemoteCall("Reading the stream on NDIF", key="lens")
        result = call.run(lambda: lm.run_with_cache(tokens, names))
        if result is None: ...  # call.error says why (already shown on the page)

    Cancel works the Streamlit way: clicking it starts a new run of the script, which stops this one
    at its next progress update (the request is abandoned and logged as cancelled). In the run the
    click started, run() does not send the request again; the run after that does."""

    def __init__(self, label: str, *, timeout_s: float | None = None, key: str = "remote_call"):
        self.label, self.timeout_s, self.key = label, timeout_s, key
        self.error: str | None = None
        self.cancel = threading.Event()

    @property
    def cancel_key(self) -> str:
        return f"{self.key}_cancel"

    def run(self, fn):
        from ui.common.page import show_problem

        if st.session_state.get(self.cancel_key):  # this run was started by the Cancel button
            self.error = "The request was cancelled; run it again to send it."
            show_problem(self.error)
            return None
        shown, stop = st.empty(), st.empty()
        stop.button("Cancel", key=self.cancel_key)
        start = time.monotonic()
        log = rm.current_log()
        before = log.records()[-1] if log is not None and len(log) else None

        def progress(elapsed: float) -> None:
            with _page_element() as ok:
                if ok:
                    shown.caption(f":material/hourglass_top: {self.label}: {elapsed:.1f} s")

        try:
            with rm.waiting(timeout_s=self.timeout_s, cancel=self.cancel, progress=progress):
                return fn()
        except rm.RemoteRequestError as err:
            self.error = str(err)
            show_problem(self.error)
            return None
        finally:
            self.cancel.set()
            stop.empty()
            after = log.records()[-1] if log is not None and len(log) else None
            if self.error is None and after is before:  # answered from the cache: nothing was sent
                shown.empty()
            else:
                shown.caption(f"{self.label}: {time.monotonic() - start:.1f} s")
