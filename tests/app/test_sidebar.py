"""The shared model picker: the choice is in the URL, and a model that fails to load leaves the
previous one in place with a message saying why."""

from __future__ import annotations

from tests.app.helpers import open_page, texts
from ui.common.models import ACTIVE_KEY


def test_a_model_folder_in_the_url_is_loaded(tiny_model_dir):
    at = open_page("app_pages/home.py", query={"model": str(tiny_model_dir("gpt2"))})
    assert "gpt2, 2 layers, 4 heads, d_model 32" in texts(at)


def _pick_after(previous: str, choice: str) -> str:
    """The session already uses `previous`; the learner now picks or types `choice`."""
    at = open_page("app_pages/home.py", query={"model": choice}, state={ACTIVE_KEY: previous})
    return texts(at)


def test_unknown_hub_id_keeps_the_previous_model(tiny_model_dir):
    folder = str(tiny_model_dir("llama"))
    shown = _pick_after(folder, "no-such-org/no-such-model")
    assert "Could not load 'no-such-org/no-such-model'" in shown
    assert "Still using" in shown and folder in shown
    assert "llama, 2 layers" in shown  # the previous model is still the one in use


def test_a_folder_that_is_not_a_model_is_explained(tiny_model_dir, tmp_path):
    shown = _pick_after(str(tiny_model_dir("gpt2")), str(tmp_path))
    assert "is a folder but not a model" in shown
    assert "gpt2, 2 layers" in shown


def test_a_model_over_budget_is_refused_with_the_reason(tiny_model_dir, monkeypatch):
    # The tiny models have 26,784 (llama) and 29,568 (gpt_neox) parameters: a budget between them
    # admits the first and refuses the second.
    monkeypatch.setenv("LAB_MAX_MODEL_PARAMS", "28000")
    shown = _pick_after(str(tiny_model_dir("llama")), str(tiny_model_dir("gpt_neox")))
    assert "over this app's budget" in shown and "LAB_MAX_MODEL_PARAMS" in shown
    assert "llama, 2 layers" in shown


def test_switching_to_a_good_model_replaces_the_active_one(tiny_model_dir):
    shown = _pick_after(str(tiny_model_dir("gpt2")), str(tiny_model_dir("gpt_neo")))
    assert "gpt_neo, 2 layers" in shown and "Still using" not in shown
