"""The "Remote (NDIF)" group and the request log, in AppTest, against the stand-in NDIF server of
tests/unit/test_remote.py (no network): without a key the group explains how to get one and
contacts nothing; with a key it lists NDIF's models and connects; a bad key or an unreachable NDIF
leaves the session on the model it had, with a message; requests appear in the log with their
prompts, and a failed request becomes a message on the page.

The four wired pages (Residual stream, Attention, Steering, Patching), opened through app.py with
an NNsightLM over the tiny GPT-2 as the session's model, show the same numbers as with the same
weights in a HookedLM: equal at the precision the page prints (logit differences to 4 decimals,
entropies to 2, probabilities and shares to whole percent; the arrays behind them are compared to
1e-5 / 1e-4 in tests/unit/test_remote_pages.py); what they cannot do there they say. Through the
stand-in server, a refused or timed-out request leaves the page running with a clear message."""

from __future__ import annotations

import re

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
    at.session_state["page"] = "probes"  # could be remote, not wired yet: says so
    at.run()
    assert "This page runs on the local model: Probes train" in _text(at)
    at.session_state["page"] = "steering"  # wired: runs on the remote model
    at.run()
    assert "This page runs on the remote model" in _text(at)


def test_remote_model_for_serves_only_wired_remote_pages(ndif, monkeypatch):
    import ui.common.remote as ui_remote

    monkeypatch.setattr(ui_remote, "WIRED", frozenset({"residual"}))
    at = _run(secrets={rm.KEY_NAME: VALID_KEY}, state={"page": "residual"})
    at.button(key="remote_use").click().run()
    assert f"this page's model: {rm.remote_spec(REPO)}" in _text(at)
    for page in ("probes", "lora", "xor"):  # not wired yet; local-only; uses no model
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


# -- the wired pages -------------------------------------------------------------------------------------
TINY_TEXT = "the cat sat on the mat and the dog"
PAIRS = "the cat is happy | the cat is sad\na dog is happy | a dog is sad\nMary is happy | Mary is sad"
WIRED_PAGES = {
    "residual": ("app_pages/residual.py", {"res_prompt": TINY_TEXT, "res_answer": " cat",
                                           "res_other": " dog"}),
    "attention": ("app_pages/attention.py", {"attn_prompt": TINY_TEXT, "attn_layer": "1", "attn_head": "2"}),
    "steering": ("app_pages/steering.py", {"steer_pairs": PAIRS, "steer_prompt": "the cat sat on the mat .",
                                            "steer_temp": "0.0"}),
    "patching": ("app_pages/patching.py", {"patch_behaviour": "Your own pair", "patch_clean": TINY_TEXT,
                                           "patch_corrupt": "the dog sat on the mat and the dog",
                                           "patch_right": " cat", "patch_wrong": " dog"}),
}


@pytest.fixture(scope="module")
def nnsight_tiny(tiny_model_dir):
    from core.models.nnsight_backend import NNsightLM

    return NNsightLM.local(tiny_model_dir("gpt2"))


@pytest.fixture(autouse=True)
def _tiny_models_may_be_linked(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LAB_MODEL_ROOTS", str(tmp_path_factory.getbasetemp()))


def _open_both(page: str, query: dict, folder: str, nnsight, monkeypatch):
    """The page on the HookedLM of `folder`, then with the NNsightLM over it as the session's model."""
    import ui.common.remote as ui_remote
    from tests.app.helpers import open_page

    path, base = WIRED_PAGES[page]
    q = {"model": folder, **base, **query}
    here = open_page(path, query=q, timeout=180)
    monkeypatch.setattr(ui_remote, "remote_model", lambda: nnsight)
    there = open_page(path, query=q, timeout=180)
    monkeypatch.undo()
    return here, there


def _lines(at, start: str) -> list[str]:
    return [str(m.value) for m in at.markdown if str(m.value).startswith(start)]


def _metrics(at) -> list[tuple[str, str]]:
    return [(m.label, m.value) for m in at.metric]


@pytest.mark.parametrize("view", ["Logit lens", "Direct logit attribution", "Stream anatomy", "Ground truth"])
def test_residual_page_numbers_equal_on_an_nnsight_model(view, tiny_model_dir, nnsight_tiny, monkeypatch):
    here, there = _open_both("residual", {"res_view": view}, str(tiny_model_dir("gpt2")), nnsight_tiny,
                             monkeypatch)
    assert not there.exception
    if view == "Direct logit attribution":
        (lt, total), (ls, parts), _ = _metrics(there)
        assert _metrics(here)[:2] == [(lt, total), (ls, parts)] and float(total) == float(parts)
        assert _lines(here, "Heads writing") == _lines(there, "Heads writing")
    elif view == "Logit lens":
        assert _lines(there, "Under the logit lens") == _lines(here, "Under the logit lens") != []
        assert "the KL divergence to the output needs every token's probability" in _text(there)
    elif view == "Stream anatomy":
        assert _lines(there, "Embeddings + every write") == _lines(here, "Embeddings + every write") != []
    else:
        assert _lines(there, "Under the logit lens") == _lines(here, "Under the logit lens") != []
        assert "the tuned lens runs on local models only" in _text(there)


def test_residual_tuned_lens_says_it_is_local_only(tiny_model_dir, nnsight_tiny, monkeypatch):
    _, there = _open_both("residual", {"res_view": "Tuned lens"}, str(tiny_model_dir("gpt2")), nnsight_tiny,
                          monkeypatch)
    assert "The tuned lens runs on local models only" in _text(there)
    assert not [b for b in there.button if b.key == "res_tuned_train"]


@pytest.mark.parametrize("view", ["One head", "From one token", "Head types", "Circuits"])
def test_attention_page_numbers_equal_on_an_nnsight_model(view, tiny_model_dir, nnsight_tiny, monkeypatch):
    here, there = _open_both("attention", {"attn_view": view}, str(tiny_model_dir("gpt2")), nnsight_tiny,
                             monkeypatch)
    assert not there.exception
    shown = _text(there)
    assert "Value weighting needs each token's value vector v" in shown
    assert there.toggle(key="attn_value_weighted").disabled
    if view == "One head":
        assert _lines(there, "Head **1.2**: entropy") == _lines(here, "Head **1.2**: entropy") != []
    elif view == "From one token":
        assert _lines(there, "From **") == _lines(here, "From **") != []
    elif view == "Head types":
        assert [c.proto.spec for c in there.get("vega_lite_chart")] != []
        assert "Each head scored on 32 sequences" in shown
    else:
        assert "The circuits run on local models only" in shown


def test_steering_page_texts_and_numbers_equal_on_an_nnsight_model(tiny_model_dir, nnsight_tiny, monkeypatch):
    here, there = _open_both("steering", {}, str(tiny_model_dir("gpt2")), nnsight_tiny, monkeypatch)
    assert not there.exception
    cards = lambda at: [str(m.value) for m in at.markdown if str(m.value).startswith(":gray[")]  # noqa: E731
    assert cards(there) == cards(here) and len(cards(here)) == 2
    assert _metrics(there) == _metrics(here) and len(_metrics(here)) == 4
    assert [c.proto.spec for c in there.get("vega_lite_chart")]  # the curves and the layer map are drawn


@pytest.mark.parametrize("sweep", ["Residual stream", "Heads", "Head q, k, v, pattern"])
def test_patching_page_numbers_equal_on_an_nnsight_model(sweep, tiny_model_dir, nnsight_tiny, monkeypatch):
    here, there = _open_both("patching", {"patch_sweep": sweep}, str(tiny_model_dir("gpt2")), nnsight_tiny,
                             monkeypatch)
    assert not there.exception
    assert _metrics(there) == _metrics(here)  # the pair's logit differences
    shown = _text(there)
    if sweep == "Head q, k, v, pattern":
        assert "live inside the attention function" in shown
    else:
        assert _lines(there, "**What to notice.**") == _lines(here, "**What to notice.**") != []
        assert re.search(r"\d+ cells: \d+ patched exactly, one request each", shown)


def test_patching_page_tabs_that_need_the_model_here_say_why(tiny_model_dir, nnsight_tiny, monkeypatch):
    for tab, words in (("Path patching", "Path patching recomputes"), ("Circuit", "Circuit discovery scores"),
                       ("Cross-check", "the last two need the model"),
                       ("Attribution vs exact", "AtP*'s QK fix needs")):
        _, there = _open_both("patching", {"patch_view": tab}, str(tiny_model_dir("gpt2")), nnsight_tiny,
                              monkeypatch)
        assert not there.exception and words in _text(there), tab


# -- through the stand-in server: success, refusal, timeout ----------------------------------------------
def _open_remote(page: str, monkeypatch, query: dict | None = None):
    from tests.app.helpers import open_page

    monkeypatch.setenv(rm.KEY_NAME, VALID_KEY)
    path, base = WIRED_PAGES[page]
    return open_page(path, query={**base, **(query or {})}, state={"remote_model_spec": rm.remote_spec(REPO)},
                     timeout=180)


@pytest.mark.parametrize("page", list(WIRED_PAGES))
def test_each_wired_page_runs_on_the_stand_in_ndif(page, ndif, monkeypatch):
    at = _open_remote(page, monkeypatch)
    assert not at.exception
    shown = _text(at)
    assert "This page runs on the remote model" in shown
    assert ndif.requests > 0
    records = at.session_state["remote_request_log"].records()
    assert records and {r.where for r in records} == {"NDIF"} and all(r.status == "ok" for r in records)


@pytest.mark.parametrize("page", list(WIRED_PAGES))
def test_a_refused_request_leaves_the_page_running_with_a_message(page, ndif, monkeypatch):
    import streamlit as st

    st.cache_data.clear()  # the test above cached this page's first answers: ask the server again
    ndif.mode = "refuse"
    at = _open_remote(page, monkeypatch)
    assert not at.exception
    shown = _text(at)
    assert "NDIF refused the request (HTTP 503)" in shown and "At capacity" in shown
    assert at.session_state["remote_model_spec"] == rm.remote_spec(REPO)  # the model stays
    assert any(f"/{page}" in c.value for c in at.code)  # the page foot (its link) still draws


def test_a_timed_out_request_says_so_and_the_next_run_works(ndif, tiny_model_dir, monkeypatch):
    import ui.common.remote as ui_remote
    from core.models.nnsight_backend import connect

    folder = str(tiny_model_dir("gpt2"))
    monkeypatch.setattr(ui_remote, "_connect", lambda repo: connect(repo, key_source=ui_remote.configured_key,
                                                                    folder=folder, timeout_s=0.5))
    ndif.mode = "slow"
    at = _open_remote("attention", monkeypatch)
    assert not at.exception
    assert "did not answer within 0.5 s" in _text(at)
    ndif.mode = "run"
    at.run(timeout=180)
    assert not at.exception and "did not answer" not in _text(at)
    assert _lines(at, "Head **1.2**: entropy")
