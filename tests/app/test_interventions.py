"""Interventions across pages, in one session (AppTest, through app.py): a push kept on from the
Steering page changes the Residual stream page's numbers and the Attention page's patterns, and
switching it off restores them exactly; the Steering page never adds its own push twice; a circuit
sent from the Patching page, switched on on the Steering page, mean-ablates its heads on the
Attention and Patching pages (with the note); one made on another model is ignored."""

from __future__ import annotations

import re

import pytest

from tests.app.helpers import open_page, texts
from ui.common.interventions import KEY, HeadAblation, Steering
from ui.patching.handoff import ABLATE_KEY

STEER = "app_pages/steering.py"
RESIDUAL = "app_pages/residual.py"
ATTENTION = "app_pages/attention.py"
PATCHING = "app_pages/patching.py"
PAIRS = "the cat is happy | the cat is sad\na dog is happy | a dog is sad\nMary is happy | Mary is sad"


@pytest.fixture(autouse=True)
def _tiny_models_may_be_linked(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LAB_MODEL_ROOTS", str(tmp_path_factory.getbasetemp()))


def go(at, page: str, **query):
    """Switch to another page in the same session (with these link values) and run it."""
    for key, value in query.items():
        at.query_params[key] = value
    at.switch_page(page)
    at.run(timeout=180)
    assert not at.exception, [e.value for e in at.exception]
    return at


def metric(at, start: str) -> str:
    return next(m.value for m in at.metric if m.label.startswith(start))


def entropy_line(at) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("Head **"))


def cards(at) -> tuple[str, str]:
    md = [str(m.value) for m in at.markdown]
    steered = next(i for i, m in enumerate(md) if m.startswith("**Steered**"))
    return md[md.index("**Unsteered**") + 1], md[steered + 1]


def steering_on_tiny(folder: str):
    return open_page(STEER, query={"model": folder, "steer_pairs": PAIRS, "steer_temp": "0.0",
                                   "steer_prompt": "the cat sat on the mat .", "steer_coef": "6.0",
                                   "steer_at": "0"})


def test_a_kept_push_changes_the_other_pages_and_switching_it_off_restores_them(tiny_model_dir):
    folder = str(tiny_model_dir("gpt2"))
    residual = {"res_view": "Direct logit attribution", "res_prompt": "the cat sat on the mat and the dog",
                "res_answer": " cat", "res_other": " dog"}
    at = steering_on_tiny(folder)
    before_cards = cards(at)
    go(at, RESIDUAL, **residual)
    clean_total, clean_text = metric(at, "logit("), texts(at)
    assert "switched on" not in clean_text
    go(at, ATTENTION, attn_view="One head", attn_layer="1")  # layer 1 reads the stream the push is added to
    clean_entropy = entropy_line(at)

    go(at, STEER)
    at.toggle(key="steer_keep").set_value(True).run()
    assert not at.exception
    assert "On for the other pages: steering vector **Steering page:" in texts(at)
    assert cards(at) == before_cards  # its own push is not added a second time on this page
    kept = list(at.session_state[KEY].values())
    assert len(kept) == 1 and kept[0].coefficient == 6.0 and kept[0].model_spec == folder

    go(at, RESIDUAL)
    shown = texts(at)
    assert "1 intervention switched on" in shown and "Steering page:" in shown
    assert metric(at, "logit(") != clean_total
    assert metric(at, "Sum of the parts") == metric(at, "logit(")  # the push is its own part
    assert "added by interventions" in at.dataframe[0].value["part"].tolist()
    go(at, ATTENTION)
    assert "1 intervention switched on" in texts(at) and entropy_line(at) != clean_entropy

    at.button(key="attn_iv_off_0").click().run()  # switched off on another page
    assert entropy_line(at) == clean_entropy and "switched on" not in texts(at)
    go(at, RESIDUAL)
    assert metric(at, "logit(") == clean_total  # exactly the numbers without it
    go(at, STEER)
    assert at.toggle(key="steer_keep").value is False  # the toggle follows the registry


def test_changing_the_vector_replaces_the_kept_push_and_the_toggle_removes_it(tiny_model_dir):
    folder = str(tiny_model_dir("gpt2"))
    at = steering_on_tiny(folder)
    at.toggle(key="steer_keep").set_value(True).run()
    first = list(at.session_state[KEY].values())[0]
    at.slider(key="steer_coef").set_value(-4.0).run()
    assert not at.exception
    (second,) = at.session_state[KEY].values()
    assert second.coefficient == -4.0 and second.name == first.name
    at.toggle(key="steer_keep").set_value(False).run()
    assert at.session_state[KEY] == {}


def test_a_circuit_from_patching_switched_on_in_steering_ablates_heads_everywhere():
    at = open_page(PATCHING, query={"patch_view": "Circuit", "patch_behaviour": "Induction"}, timeout=240)
    at.button(key="patch_send").click().run(timeout=240)
    assert not at.exception
    (sent,) = at.session_state[ABLATE_KEY].values()
    go(at, ATTENTION, attn_view="One head", attn_layer="3", attn_head="1")
    clean_entropy = entropy_line(at)
    go(at, STEER)
    shown = texts(at)
    assert "Circuits from the Patching page (1)" in str([e.label for e in at.expander])
    heads = ", ".join(f"{a}.{b}" for a, b in sent.heads)
    toggle = next(t for t in at.toggle if t.label == f"Mean-ablate heads {heads}")
    toggle.set_value(True).run(timeout=180)
    assert not at.exception
    ivs = list(at.session_state[KEY].values())
    assert ivs and all(isinstance(iv, HeadAblation) and iv.values is not None for iv in ivs)
    assert {(iv.layer, h) for iv in ivs for h in iv.heads} == set(sent.heads)
    shown = texts(at)
    assert "switched on" in shown and "mean-ablated" in shown  # the Steering page runs under it
    go(at, ATTENTION)
    assert "mean-ablated" in texts(at)
    assert any(layer < 3 for layer, _ in sent.heads)  # the previous-token head 2.0 is in the circuit,
    assert entropy_line(at) != clean_entropy  # so the induction head 3.1, which reads it, looks elsewhere
    go(at, PATCHING)
    assert "mean-ablated" in texts(at)
    go(at, STEER)
    next(t for t in at.toggle if t.label == f"Mean-ablate heads {heads}").set_value(False).run(timeout=180)
    assert at.session_state[KEY] == {}
    go(at, ATTENTION)
    assert entropy_line(at) == clean_entropy


def test_an_intervention_made_on_another_model_is_ignored(tiny_model_dir):
    folder = str(tiny_model_dir("gpt2"))
    import numpy as np

    other = Steering(name="made on the bundled model", model_spec="bundled",
                     hook_name="blocks.0.hook_resid_post", vector=np.ones(32, dtype=np.float32),
                     coefficient=5.0, source="steering")
    query = {"model": folder, "attn_view": "One head"}
    clean = open_page(ATTENTION, query=query)
    at = open_page(ATTENTION, query=query, state={KEY: {other.name: other}})
    assert "switched on" not in texts(at) and entropy_line(at) == entropy_line(clean)
    at = open_page(PATCHING, query={"model": folder}, state={KEY: {other.name: other}})
    assert "switched on" not in texts(at)


def test_patching_numbers_change_under_an_intervention_and_come_back():
    clean = open_page(PATCHING)
    base = metric(clean, "Logit difference, clean")
    strongest = re.search(r"The strongest patch is (.*?) of the behaviour", texts(clean)).group(1)
    ablate = HeadAblation(name="test ablation", model_spec="bundled", layer=3, heads=(0, 1, 2, 3))
    at = open_page(PATCHING, state={KEY: {ablate.name: ablate}})
    assert "1 intervention switched on" in texts(at) and "zero-ablated" in texts(at)
    assert metric(at, "Logit difference, clean") != base
    at.button(key="patch_iv_off_0").click().run()
    assert metric(at, "Logit difference, clean") == base
    assert re.search(r"The strongest patch is (.*?) of the behaviour", texts(at)).group(1) == strongest
