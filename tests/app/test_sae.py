"""The SAE page: train a small SAE from the form, read the headline, open a feature, reload it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from safetensors.torch import save

from core.interp.sae.model import SAE, SAEConfig
from core.interp.sae.train import SAETrainer, TrainConfig
from core.models import ModelLoadError, act_name, load_model
from core.world.datasets import corpus_texts
from tests.app.helpers import ROOT, open_page, texts
from ui.sae.controls import MAX_FLOATS, Experiment, activations, corpus, read_activations
from ui.sae.files import download_bytes

SMALL = {"sae_steps": "100", "sae_docs": "500", "sae_expansion": "2x", "sae_l1": "1.0", "sae_lr": "0.005"}
BUNDLED_WEIGHTS = ROOT / "assets" / "bundled" / "model.safetensors"


def require_bundled(weights: Path = BUNDLED_WEIGHTS, load=load_model) -> None:
    """Skip only when the checkpoint is absent; a present one that fails to load fails the test."""
    if not weights.is_file():
        pytest.skip(f"the bundled model is not built yet: {weights} is missing")
    load()


@pytest.fixture(scope="module", autouse=True)
def bundled_model():
    require_bundled()


def test_only_a_missing_checkpoint_skips(tmp_path):
    with pytest.raises(pytest.skip.Exception):
        require_bundled(tmp_path / "model.safetensors")
    broken = tmp_path / "model.safetensors"
    broken.write_bytes(b"not weights")

    def load():
        raise ModelLoadError("the checkpoint does not load")

    with pytest.raises(ModelLoadError):  # a load error is a failure, not a skip
        require_bundled(broken, load)


def _train(query: dict):
    at = open_page("app_pages/sae.py", query=query, timeout=180)
    assert "Press **Train SAE**" in texts(at)
    submit = next(b for b in at.button if b.label == "Train SAE")
    submit.click()
    at.run(timeout=180)
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_training_shows_the_ground_truth_headline_and_a_feature():
    at = _train(SMALL)
    page = texts(at)
    found = re.search(r"It found (\d+) of (\d+) known attributes", page)
    assert found, page[:2000]
    assert int(found.group(2)) == 11  # the bundled world's attribute lists
    assert "ReLU + L1, L1 = 1, 2x, 100 steps" in page
    metrics = {m.label: m.value for m in at.metric}
    assert 0.3 < float(metrics["Explained variance"]) <= 1.0
    assert 0 < float(metrics["L0"]) < 256
    # the headline table lists every attribute with a feature index in range
    table = at.dataframe[0].value
    assert len(table) == 11 and table["feature"].between(-1, 255).all()

    # move one control: open another feature; its dashboard follows
    at.number_input(key="sae_feature").set_value(7).run(timeout=120)
    assert not at.exception
    assert "Feature 7" in texts(at)

    # search features by token: a table of features that fire on " red"
    at.text_input(key="sae_search").set_value(" red").run(timeout=120)
    hits = at.dataframe[-1].value
    assert list(hits.columns) == ["feature", "mean act", "fires on"] and len(hits) > 0
    assert hits["mean act"].is_monotonic_decreasing and (hits["mean act"] > 0).all()

    # hand the feature's decoder direction to the steering page
    next(b for b in at.button if b.label == "Send to the steering page").click().run(timeout=120)
    sent = list(at.session_state["handoff_directions"].values())
    assert len(sent) == 1 and sent[0].source == "sae" and sent[0].name.startswith("SAE feature 7")
    assert sent[0].hook_name == "blocks.1.hook_resid_post" and sent[0].vector.shape == (128,)
    assert abs(float((sent[0].vector ** 2).sum()) - 1.0) < 1e-4  # a unit decoder row


def test_topk_runs_with_exactly_k_active_features():
    at = _train({**SMALL, "sae_arch": "TopK", "sae_k": "4"})
    metrics = {m.label: m.value for m in at.metric}
    assert 0 < float(metrics["L0"]) <= 4.0
    assert "TopK, k = 4" in texts(at)


def test_a_hub_style_model_trains_too_and_says_what_the_attributes_mean(tiny_model_dir):
    # A tiny Llama: rotary positions, few known words. The page must still train and report.
    query = {**SMALL, "model": str(tiny_model_dir("llama")), "sae_layer": "0"}
    at = _train(query)
    page = texts(at)
    assert re.search(r"It found \d+ of 11 known attributes", page)
    assert "only words that are a single token count" in page
    rows = at.dataframe[0].value.set_index("attribute")
    # the tiny vocabulary has " red" and " blue" but no digits or countries
    assert rows.loc["colours", "feature"] >= 0
    assert rows.loc["digits", "feature"] == -1 and not rows.loc["digits", "found"]
    assert rows.loc["countries", "feature"] == -1 and not rows.loc["countries", "found"]
    assert "blocks.0.hook_resid_post" in page


def test_a_downloaded_sae_loads_back_and_a_bad_file_is_explained():
    at = _train(SMALL)
    found = re.search(r"It found (\d+) of 11", texts(at)).group(1)
    assert any(b.label == "Download this SAE (.safetensors)" for b in at.get("download_button"))
    blob = download_bytes(at.session_state["sae_run_result"])  # what the download button serves
    fresh = open_page("app_pages/sae.py", timeout=180)  # default corpus: 3,000 documents, not 500
    fresh.file_uploader(key="sae_upload").upload("mine.safetensors", blob).run(timeout=180)
    assert not fresh.exception
    page = texts(fresh)
    assert f"It found {found} of 11" in page and "Uploaded SAE" in page

    fresh.file_uploader(key="sae_upload").upload("junk.safetensors", b"not an sae").run(timeout=60)
    assert "Could not read 'junk.safetensors' as an SAE" in texts(fresh)
    fresh.run(timeout=60)  # the message stays while the file is in the box
    assert "Could not read 'junk.safetensors' as an SAE" in texts(fresh)


def test_a_run_interrupted_mid_training_is_kept_as_it_was():
    # What a Stop click leaves behind: a trainer whose fit() was cut short by the rerun.
    lm = load_model()
    exp = Experiment(act_name("resid_post", 1), 500, TrainConfig(expansion=2, steps=300, batch_size=256))
    train, _ = activations(lm, lm.spec, exp.hook_name, exp.n_docs)
    trainer = SAETrainer(exp.config, hook_name=exp.hook_name, model_spec=lm.spec)

    def interrupted(trainer, point):
        raise KeyboardInterrupt  # stands in for Streamlit's rerun exception

    with pytest.raises(KeyboardInterrupt):
        trainer.fit(train.acts, progress=interrupted)
    at = open_page("app_pages/sae.py", state={"sae_live": (exp, trainer)}, timeout=180)
    page = texts(at)
    assert "Training was stopped at step 20;" in page
    assert re.search(r"It found \d+ of 11 known attributes", page)
    assert "sae_live" not in at.session_state


def test_corpus_settings_above_the_cap_share_one_cache_entry_and_the_page_says_so():
    lm = load_model()
    cap = MAX_FLOATS // lm.cfg.d_model  # 125,000 activations of width 128
    _, lengths = lm.tokenize_batch(corpus_texts(6250, seed=0))
    rows = (lengths - 1).cumsum(0)
    needed = int((rows < cap).sum()) + 1  # documents read until the cap is reached
    assert 2500 < needed < 3750  # 2,000 documents fit; 3,000 (the default) and 5,000 do not
    small, default, large = (corpus(lm, lm.spec, n) for n in (2000, 3000, 5000))
    assert (small.n_texts, small.n_tokens, small.capped) == (2500, int(rows[2499]), False)
    assert (default.n_texts, default.n_tokens, default.capped) == (needed, cap, True)
    assert (large.n_texts, large.requested, large.capped) == (needed, 6250, True)
    read_activations.clear()
    hook = act_name("resid_post", 1)
    first = activations(lm, lm.spec, hook, 3000)
    assert activations(lm, lm.spec, hook, 5000) is first  # one cache entry, the model ran once
    assert len(first[0]) + len(first[1]) == cap
    assert int(first[1].lengths[-1]) == int(first[1].pos[-1]) + 1  # the cut document's real length
    read_activations.clear()

    at = open_page("app_pages/sae.py", timeout=180)
    assert (f"Corpus capped at {cap:,} activations per hook on {lm.name} (64 MB of float32): the SAE "
            f"reads the first {needed:,} of 3,750 generated documents") in texts(at)
    at = open_page("app_pages/sae.py", query={"sae_docs": "2000"}, timeout=180)
    assert f"Corpus: 2,500 generated documents, {int(rows[2499]):,} tokens" in texts(at)


def _file(config: dict, tensors: dict | None = None) -> bytes:
    tensors = tensors if tensors is not None else SAE(SAEConfig(128, 256)).tensors()
    return save(tensors, metadata={"sae_config": json.dumps(config)})


def test_crafted_uploads_are_explained_and_the_page_keeps_running():
    hook = act_name("resid_post", 1)
    good = {"d_in": 128, "d_sae": 256, "architecture": "relu", "k": 0, "hook_name": hook,
            "model_spec": "bundled"}
    header = json.dumps([1, 2]).encode()
    cases = [
        (len(header).to_bytes(8, "little") + header, "header is not a JSON object"),
        (_file({**good, "d_sae": 10**9}), "W_dec has shape (256, 128), but d_in 128 and d_sae 1000000000"),
        (_file({**good, "d_in": "128"}), "d_in should be int"),
        (_file({**good, "hook_name": "blocks.1.mlp.hook_pre"}), "reads blocks.1.mlp.hook_pre with width 128"),
        (_file({**good, "hook_name": "blocks.0.attn.hook_pattern"}), "this page's SAEs read the"),
    ]
    at = open_page("app_pages/sae.py", timeout=180)
    for i, (raw, message) in enumerate(cases):
        at.file_uploader(key="sae_upload").upload(f"crafted{i}.safetensors", raw).run(timeout=60)
        assert not at.exception, [e.value for e in at.exception]
        page = texts(at)
        assert f"'crafted{i}.safetensors'" in page and message in page, page[-1500:]
        assert "sae_run_result" not in at.session_state
