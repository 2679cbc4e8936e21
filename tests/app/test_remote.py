"""The "Remote (NDIF)" group and the request log, in AppTest, against the stand-in NDIF server of
tests/unit/test_remote.py (no network): without a key the group explains how to get one and
contacts nothing; with a key it lists NDIF's models and connects; a bad key or an unreachable NDIF
leaves the session on the model it had, with a message; requests appear in the log with their
prompts, and a failed request becomes a message on the page."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.models import remote as rm
from tests.unit.test_remote import REPO, VALID_KEY, FakeNDIF


def _app():
    import streamlit as st

    from ui.common.remote import (
        RemoteCall,
        bind_session_log,
        remote_group,
        remote_model,
        remote_model_for,
        request_log_expander,
    )

    bind_session_log()
    with st.sidebar:
        st.subheader("Remote (NDIF)")
        remote_group(st.session_state.get("page", "steering"))
    lm = remote_model()
    st.markdown(f"model in use: {lm.spec if lm is not None else 'local'}")
    on_page = remote_model_for(st.session_state.get("page", "steering"))
    st.markdown(f"this page's model: {on_page.spec if on_page is not None else 'local'}")
    if lm is not None and st.button("Read the stream", key="probe"):
        got = RemoteCall("Reading the stream on NDIF").run(
            lambda: lm.run_with_cache(lm.to_tokens("the cat sat"), names=["blocks.1.hook_resid_post"]))
        if got is not None:
            st.markdown(f"read {tuple(got[1]['blocks.1.hook_resid_post'].shape)}")
    request_log_expander(expanded=True)


@pytest.fixture(scope="module")
def server_model(tiny_model_dir):
    from core.models.nnsight_backend import NNsightLM

    return NNsightLM.local(tiny_model_dir("gpt2"))._envoy


@pytest.fixture()
def ndif(server_model, tiny_model_dir, monkeypatch):
    """A stand-in NDIF serving the tiny GPT-2; the app reads that model's config from its folder."""
    import ui.common.remote as ui_remote
    from core.models.nnsight_backend import connect

    fake = FakeNDIF({REPO: server_model})
    monkeypatch.setenv(rm.HOST_ENV, fake.url)
    monkeypatch.delenv(rm.KEY_NAME, raising=False)
    folder = str(tiny_model_dir("gpt2"))
    monkeypatch.setattr(ui_remote, "_connect",
                        lambda repo: connect(repo, key_source=ui_remote.configured_key, folder=folder))
    rm.forget_listing()
    yield fake
    fake.close()
    rm.forget_listing()


def _run(secrets: dict | None = None, state: dict | None = None) -> AppTest:
    at = AppTest.from_function(_app, default_timeout=60)
    for k, v in (secrets or {}).items():
        at.secrets[k] = v
    for k, v in (state or {}).items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _text(at: AppTest) -> str:
    parts = []
    for kind in ("markdown", "caption", "warning", "error", "info"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def test_without_a_key_the_group_explains_and_contacts_nothing(ndif):
    at = _run()
    shown = _text(at)
    assert "login.ndif.us" in shown and rm.KEY_NAME in shown
    assert "model in use: local" in shown
    assert ndif.status_calls == 0 and not at.selectbox


def test_a_key_in_secrets_lists_models_and_connects(ndif, monkeypatch):
    import ui.common.remote as ui_remote

    monkeypatch.setattr(ui_remote, "WIRED", frozenset({"steering"}))
    at = _run(secrets={rm.KEY_NAME: VALID_KEY})
    picker = at.selectbox(key="remote_pick")
    assert picker.options == [REPO]
    at.button(key="remote_use").click().run()
    assert not at.exception, [e.value for e in at.exception]
    shown = _text(at)
    assert f"model in use: {rm.remote_spec(REPO)}" in shown
    assert f"In use remotely: **{REPO}**" in shown and "This page runs on the remote model" in shown
    assert VALID_KEY not in shown and VALID_KEY not in str(dict(at.query_params))
    at.button(key="probe").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "read (1, 4, 32)" in _text(at)
    table = at.dataframe[0].value
    assert list(table["where"]) == ["NDIF"] and "the cat sat" in table["prompts"][0]
    assert list(table["status"]) == ["ok"]
    at.button(key="remote_leave").click().run()
    assert "model in use: local" in _text(at)


def test_a_bad_key_keeps_the_session_on_its_model(ndif, server_model):
    at = _run(secrets={rm.KEY_NAME: "not-a-key"})
    at.button(key="remote_use").click().run()
    shown = _text(at)
    assert "does not recognise the API key" in shown and "model in use: local" in shown
    assert "remote_model_spec" not in at.session_state
    # a session already on a remote model keeps it when switching fails
    other = REPO + "-b"
    ndif.models[other] = server_model
    ndif.deployments[other] = {**ndif.deployments[REPO], "repo_id": other}
    rm.forget_listing()
    at = _run(secrets={rm.KEY_NAME: VALID_KEY})
    at.button(key="remote_use").click().run()
    assert f"model in use: {rm.remote_spec(REPO)}" in _text(at)
    at.secrets[rm.KEY_NAME] = "revoked"
    at.selectbox(key="remote_pick").set_value(other).run()
    at.button(key="remote_use").click().run()
    shown = _text(at)
    assert "does not recognise the API key" in shown
    assert f"model in use: {rm.remote_spec(REPO)}" in shown


def test_an_unreachable_ndif_is_said_and_the_app_stays_local(ndif, monkeypatch):
    monkeypatch.setenv(rm.HOST_ENV, "http://127.0.0.1:9")  # nothing listens there
    at = _run(secrets={rm.KEY_NAME: VALID_KEY})
    shown = _text(at)
    assert "NDIF cannot be reached from here" in shown and "model in use: local" in shown


def test_a_page_that_needs_local_weights_says_why(ndif):
    at = _run(secrets={rm.KEY_NAME: VALID_KEY}, state={"page": "lora"})
    at.button(key="remote_use").click().run()
    shown = _text(at)
    assert "This page runs on the local model: Fine-tuning changes weights" in shown
    at.session_state["page"] = "steering"  # planned for remote, not wired yet: says so
    at.run()
    assert "still uses the local model: its remote version is not wired yet" in _text(at)


def test_remote_model_for_serves_only_wired_remote_pages(ndif, monkeypatch):
    import ui.common.remote as ui_remote

    monkeypatch.setattr(ui_remote, "WIRED", frozenset({"residual"}))
    at = _run(secrets={rm.KEY_NAME: VALID_KEY}, state={"page": "residual"})
    at.button(key="remote_use").click().run()
    assert f"this page's model: {rm.remote_spec(REPO)}" in _text(at)
    for page in ("steering", "lora", "xor"):  # not wired yet; local-only; uses no model
        at.session_state["page"] = page
        at.run()
        assert "this page's model: local" in _text(at), page


def test_a_refused_request_becomes_a_message_and_the_model_stays(ndif):
    at = _run(secrets={rm.KEY_NAME: VALID_KEY})
    at.button(key="remote_use").click().run()
    ndif.mode = "refuse"
    at.button(key="probe").click().run()
    assert not at.exception, [e.value for e in at.exception]
    shown = _text(at)
    assert "NDIF refused the request (HTTP 503)" in shown
    assert f"model in use: {rm.remote_spec(REPO)}" in shown
    assert list(at.dataframe[0].value["status"])[0].startswith("refused")


def test_the_run_started_by_cancel_does_not_send_the_request_again(ndif):
    at = _run(secrets={rm.KEY_NAME: VALID_KEY})
    at.button(key="remote_use").click().run()
    at.session_state["remote_call_cancel"] = True  # as in the run a click on Cancel starts
    at.button(key="probe").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "The request was cancelled; run it again to send it." in _text(at)
    assert ndif.requests == 0
    del at.session_state["remote_call_cancel"]
    at.button(key="probe").click().run()
    assert "read (1, 4, 32)" in _text(at) and ndif.requests == 1
