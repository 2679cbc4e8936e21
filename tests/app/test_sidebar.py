"""The shared model picker: the model in use is in the URL by its id, the list says what this machine
can open offline, links follow the rule for links, and a model that fails to load leaves the previous
one in place with a message saying why and a caption that describes the model actually in use."""

from __future__ import annotations

import shutil

import pytest

from core.models.loading import LINK_REFUSED, ROOTS_ENV
from core.models.loading import shown as quoted
from tests.app.helpers import open_page, texts
from tests.unit.test_models_loading import fake_hub_cache
from ui.common.models import ACTIVE_KEY, load_cached
from ui.common.sidebar import MODEL_KEY


@pytest.fixture
def roots(monkeypatch, tiny_model_dir):
    """The tiny models' folder is one of this server's model roots (links may name models in it)."""
    monkeypatch.setenv(ROOTS_ENV, str(tiny_model_dir("gpt2").parent))


def _pick(at, choice: str):
    """The learner picks or types `choice` in the sidebar."""
    picker = at.selectbox(key=MODEL_KEY)
    if picker.format_func(choice) not in picker.options:  # typed: the browser sends the typed text
        picker.options.append(picker.format_func(choice))
    picker.set_value(choice).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _after(previous: str, choice: str) -> str:
    """The session already uses `previous`; the learner now picks or types `choice`."""
    at = open_page("app_pages/home.py", state={ACTIVE_KEY: previous})
    return texts(_pick(at, choice))


def test_a_model_folder_in_a_link_is_loaded_and_the_url_keeps_its_id(tiny_model_dir, roots):
    folder = tiny_model_dir("gpt2")
    at = open_page("app_pages/home.py", query={"model": str(folder) + "//"})
    shown = texts(at)
    assert f"In use: **{folder}** (gpt2 architecture, 2 layers, 4 heads, d_model 32" in shown
    assert at.query_params[MODEL_KEY] == str(folder)  # canonical: the trailing slashes are gone


def test_a_link_outside_the_roots_gets_the_same_words_whether_or_not_the_path_exists(
        tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(ROOTS_ENV, str(tmp_path / "models"))
    existing = tmp_path / "a-model"
    shutil.copytree(tiny_model_dir("gpt2"), existing)
    seen = []
    for spec in (str(existing), str(tmp_path / "missing"), "/etc", "~/.ssh", "x" * 300, "a/" * 3000):
        shown = texts(open_page("app_pages/home.py", query={"model": spec}))
        assert LINK_REFUSED in shown
        assert "Still using **Bundled model (synthetic world)** (gpt2 architecture, 4 layers" in shown
        seen.append(shown.replace(quoted(spec), "<spec>"))
    assert len(set(seen)) == 1  # word for word the same page


def test_a_typed_hub_id_offline_fails_at_once_and_keeps_the_previous_model(tiny_model_dir):
    folder = str(tiny_model_dir("llama"))
    shown = _after(folder, "no-such-org/no-such-model")
    assert "'no-such-org/no-such-model' is not on this machine" in shown and "cannot be reached" in shown
    assert f"Still using **{folder}** (llama architecture, 2 layers" in shown
    assert "which cannot be reached from here" in shown


def test_the_picker_marks_models_on_this_machine_and_the_url_stores_the_id(
        tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    fake_hub_cache(tmp_path, "local-org/tiny-neox", tiny_model_dir("gpt_neox"))
    at = open_page("app_pages/home.py")
    labels = at.selectbox(key=MODEL_KEY).options
    assert "✓ local-org/tiny-neox" in labels and "✓ Bundled model (synthetic world)" in labels
    assert "✗ GPT-2 small (124M)" in labels and "✗ Pythia 70M" in labels
    assert ("✓ on this machine (works offline) · ✗ needs the Hugging Face hub, which cannot be "
            "reached") in texts(at)
    _pick(at, "local-org/tiny-neox")
    assert at.query_params[MODEL_KEY] == "local-org/tiny-neox"  # the id, not the label
    assert "In use: **local-org/tiny-neox** (gpt_neox architecture" in texts(at)
    at.switch_page("app_pages/attention.py").run()  # the next page keeps the model, with no new error
    assert not at.exception and not at.error
    assert "In use: **local-org/tiny-neox**" in texts(at)
    assert at.query_params[MODEL_KEY] == "local-org/tiny-neox"


def test_a_link_with_the_display_name_of_a_model_is_refused_offline_not_retried():
    shown = texts(open_page("app_pages/home.py", query={"model": "GPT-2 small (124M)"}))
    assert "The link asked for the model 'GPT-2 small (124M)'" in shown
    assert "Still using **Bundled model (synthetic world)**" in shown


def test_a_typed_folder_that_does_not_exist_says_so(tiny_model_dir, tmp_path):
    shown = _after(str(tiny_model_dir("gpt2")), str(tmp_path / "no-such-model"))
    assert "No such folder" in shown and "gpt2 architecture, 2 layers" in shown


def test_a_typed_folder_outside_the_roots_is_allowed_at_the_machine(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(ROOTS_ENV, str(tmp_path / "models"))
    shown = _after("bundled", str(tiny_model_dir("gpt_neo")))
    assert "In use:" in shown and "gpt_neo architecture" in shown


def test_on_a_shared_server_a_typed_folder_follows_the_rule_for_links(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(ROOTS_ENV, str(tmp_path / "models"))
    monkeypatch.setenv("LAB_DEPLOYMENT", "cloud")
    shown = _after("bundled", str(tiny_model_dir("gpt_neo")))
    assert LINK_REFUSED in shown and "Still using **Bundled model" in shown


def test_a_folder_that_is_not_a_model_is_explained(tiny_model_dir, tmp_path):
    shown = _after(str(tiny_model_dir("gpt2")), str(tmp_path))
    assert "is a folder but not a model" in shown
    assert "gpt2 architecture, 2 layers" in shown


def test_a_model_over_budget_is_refused_with_the_reason(tiny_model_dir, monkeypatch):
    # The tiny models have 26,784 (llama) and 29,568 (gpt_neox) parameters: a budget between them
    # admits the first and refuses the second.
    monkeypatch.setenv("LAB_MAX_MODEL_PARAMS", "28000")
    shown = _after(str(tiny_model_dir("llama")), str(tiny_model_dir("gpt_neox")))
    assert "over this app's budget" in shown and "LAB_MAX_MODEL_PARAMS" in shown
    assert "llama architecture, 2 layers" in shown


def test_switching_to_a_good_model_replaces_the_active_one(tiny_model_dir):
    shown = _after(str(tiny_model_dir("gpt2")), str(tiny_model_dir("gpt_neo")))
    assert "gpt_neo architecture, 2 layers" in shown and "Still using" not in shown


def test_spellings_of_one_folder_share_one_copy_and_no_link_evicts_the_bundled_model(tiny_model_dir):
    folder = str(tiny_model_dir("gpt2"))
    bundled = load_cached("bundled")
    first = load_cached(folder)
    assert all(load_cached(s) is first for s in (folder + "/", "/" + folder, folder + "//", f"{folder}/."))
    for arch in ("gpt_neo", "llama", "gpt_neox"):  # more models than the cache keeps besides it
        load_cached(str(tiny_model_dir(arch)))
    assert load_cached("bundled") is bundled
