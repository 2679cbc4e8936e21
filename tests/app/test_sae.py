"""The SAE page: train a small SAE from the form, read the headline, open a feature, reload it;
predict first; hostile uploads and the session's memory budget."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import save

from core.interp.sae.model import SAE, SAEConfig
from core.interp.sae.train import SAETrainer, TrainConfig
from core.interp.sae.verdict import FOUND_AUROC
from core.models import ModelLoadError, act_name, load_model
from core.models.loading import ROOTS_ENV
from core.world.datasets import corpus_texts
from tests.app.helpers import ROOT, open_page, texts
from ui.sae.compute import MAX_FLOATS, activations, corpus, read_activations
from ui.sae.controls import Experiment
from ui.sae.files import download_bytes
from ui.sae.training import SWEEP_L1

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


def _train(query: dict, **kwargs):
    at = open_page("app_pages/sae.py", query=query, timeout=180, **kwargs)
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
    # the headline table lists every attribute with a feature index in range, and its verdict
    table = at.dataframe[0].value
    assert len(table) == 11 and table["feature"].between(0, 255).all()
    found = table["status"] == "found"
    assert found.sum() == int(re.search(r"It found (\d+)", page).group(1))
    assert (table.loc[found, "auroc"] >= FOUND_AUROC).all()
    assert (table.loc[~found, "auroc"] < FOUND_AUROC).all()
    # "what to notice" names exactly the attributes found, from the same verdict
    notice = next(str(m.value) for m in at.markdown if str(m.value).startswith("**What to notice.**"))
    if found.any():
        assert f"gives {found.sum()} of the 11 word lists" in notice
        listed = notice.split("or more): ")[1].split(". ")[0]
        assert all(a in listed for a in table.loc[found, "attribute"])
        assert not any(f"{a} (" in listed for a in table.loc[~found, "attribute"])
    else:
        assert "gives none of the 11 word lists" in notice
    # where it reads, in the lab's words: the stream after layer 1
    assert "blocks.1.hook_resid_post" in page and "residual stream after layer 1" in page

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


def test_a_hub_style_model_trains_too_and_says_what_the_attributes_mean(tiny_model_dir, monkeypatch):
    # A tiny Llama: rotary positions, few known words. The page must still train and report.
    monkeypatch.setenv(ROOTS_ENV, str(tiny_model_dir("llama").parent))  # a link may load models there
    query = {**SMALL, "model": str(tiny_model_dir("llama")), "sae_layer": "0"}
    at = _train(query)
    page = texts(at)
    assert re.search(r"It found \d+ of 11 known attributes", page)
    assert "only words that are a single token count" in page
    rows = at.dataframe[0].value.set_index("attribute")
    # the tiny vocabulary has " red" and " blue" but no digits or countries
    assert rows.loc["colours", "feature"] >= 0
    assert pd.isna(rows.loc["digits", "feature"]) and rows.loc["digits", "status"] == "absent"
    assert pd.isna(rows.loc["countries", "feature"]) and rows.loc["countries", "status"] == "absent"
    assert "have no single-token words for this model" in page
    assert "blocks.0.hook_resid_post" in page


def test_a_downloaded_sae_loads_back_and_a_bad_file_is_explained():
    at = _train(SMALL)
    found = re.search(r"It found (\d+) of 11", texts(at)).group(1)
    assert any(b.label == "Download this SAE (SAELens folder, .zip)" for b in at.get("download_button"))
    blob = download_bytes(at.session_state["sae_run_result"])  # what the download button serves
    fresh = open_page("app_pages/sae.py", timeout=180)  # default corpus: 3,000 documents, not 500
    fresh.file_uploader(key="sae_upload").upload("mine.zip", blob).run(timeout=180)
    assert not fresh.exception
    page = texts(fresh)
    assert f"It found {found} of 11" in page and r"Uploaded SAE (mine\.zip, SAELens folder)" in page

    fresh.file_uploader(key="sae_upload").upload("junk.safetensors", b"not an sae").run(timeout=60)
    assert "Could not read 'junk.safetensors' as an SAE" in texts(fresh)
    fresh.run(timeout=60)  # the message stays while the file is in the box
    assert "Could not read 'junk.safetensors' as an SAE" in texts(fresh)


def test_a_run_interrupted_mid_training_is_kept_as_it_was():
    # What a Stop click leaves behind: a trainer whose fit() was cut short by the rerun.
    lm = load_model()
    exp = Experiment(act_name("resid_post", 1), 500, TrainConfig(expansion=2, steps=300, batch_size=256))
    train, _ = activations(lm, exp.hook_name, exp.n_docs)
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
    small, default, large = (corpus(lm, n) for n in (2000, 3000, 5000))
    assert (small.n_texts, small.n_tokens, small.capped) == (2500, int(rows[2499]), False)
    assert (default.n_texts, default.n_tokens, default.capped) == (needed, cap, True)
    assert (large.n_texts, large.requested, large.capped) == (needed, 6250, True)
    read_activations.clear()
    hook = act_name("resid_post", 1)
    first = activations(lm, hook, 3000)
    assert activations(lm, hook, 5000) is first  # one cache entry, the model ran once
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
        (_file({**good, "hook_name": "blocks.1.mlp.hook_pre"}),
         "reads blocks.1.mlp.hook_pre (MLP neurons of layer 1, before the activation function) with "
         "width 128"),
        (_file({**good, "hook_name": "blocks.0.attn.hook_pattern"}), "this page's SAEs read the"),
    ]
    at = open_page("app_pages/sae.py", timeout=180)
    for i, (raw, message) in enumerate(cases):
        at.file_uploader(key="sae_upload").upload(f"crafted{i}.safetensors", raw).run(timeout=60)
        assert not at.exception, [e.value for e in at.exception]
        page = texts(at)
        assert f"'crafted{i}.safetensors'" in page and message in page, page[-1500:]
        assert "sae_run_result" not in at.session_state


def _audit_file() -> bytes:
    """The hostile-input audit's file: a valid fp16 SAE with d_sae = 16,384 on the bundled model."""
    half = torch.float16
    tensors = {"W_enc": torch.zeros(128, 16_384, dtype=half), "W_dec": torch.zeros(16_384, 128, dtype=half),
               "b_enc": torch.zeros(16_384, dtype=half), "b_dec": torch.zeros(128, dtype=half)}
    config = {"d_in": 128, "d_sae": 16_384, "architecture": "relu", "k": 0,
              "hook_name": act_name("resid_post", 1), "model_spec": "bundled"}
    return _file(config, tensors)


def test_hostile_sae_files_get_a_message_before_anything_is_built():
    good = {"d_in": 128, "d_sae": 256, "architecture": "relu", "k": 0, "hook_name": act_name("resid_post", 1),
            "model_spec": "bundled"}
    float8 = {**SAE(SAEConfig(128, 256)).tensors()}
    float8["W_dec"] = float8["W_dec"].to(torch.float8_e4m3fn)
    cases = [
        (_audit_file(), "16,384 features for width 128: more than 32 x d_in"),
        (_file(good, float8), "W_dec is stored as 8-bit float (F8_E4M3)"),
        (_file(good)[:-500], "cut short"),
        ((10**12).to_bytes(8, "little") + b"{}", "header is cut short"),
        (b"PK\x03\x04" + b"\x00" * 60, "Not a readable SAE zip"),
    ]
    at = open_page("app_pages/sae.py", timeout=180)
    for i, (raw, message) in enumerate(cases):
        at.file_uploader(key="sae_upload").upload(f"hostile{i}.safetensors", raw).run(timeout=60)
        assert not at.exception, [e.value for e in at.exception]
        page = texts(at)
        assert f"'hostile{i}.safetensors'" in page and message in page, page[-1500:]
        assert "sae_run_result" not in at.session_state


def test_an_upload_over_the_sessions_memory_budget_is_refused_with_advice(monkeypatch):
    blob = SAE(SAEConfig(128, 4096, hook_name=act_name("resid_post", 1), model_spec="bundled")).to_zip()
    monkeypatch.setenv("LAB_SESSION_MEMORY_MB", "50")  # the report on 4,096 features needs more
    at = open_page("app_pages/sae.py", timeout=180)
    at.file_uploader(key="sae_upload").upload("wide.zip", blob).run(timeout=60)
    assert not at.exception
    page = texts(at)
    assert "over this server's budget of 50 MB per session. Try a smaller SAE." in page, page[-1500:]
    assert "sae_run_result" not in at.session_state
    # and training something that does not fit says what to lower, before reading any activation
    at = open_page("app_pages/sae.py", query={"sae_expansion": "32x"}, timeout=180)
    next(b for b in at.button if b.label == "Train SAE").click().run(timeout=60)
    assert not at.exception
    assert "Try a smaller expansion." in texts(at) and "sae_run_result" not in at.session_state


def test_random_bytes_and_strings_in_the_upload_never_raise():
    rng = random.Random(1)
    good = SAE(SAEConfig(128, 256, hook_name=act_name("resid_post", 1), model_spec="bundled")).to_zip()
    at = open_page("app_pages/sae.py", timeout=180)
    for i in range(24):
        if i % 3 == 0:
            raw = rng.randbytes(rng.randint(0, 300))
        elif i % 3 == 1:
            raw = "".join(chr(rng.randint(1, 0x2FFF)) for _ in range(rng.randint(0, 120))).encode("utf-8")
        else:
            damaged = bytearray(good)
            for _ in range(rng.randint(1, 6)):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
            raw = bytes(damaged)
        name = rng.choice(["x.zip", "x.safetensors", "ü ✓.zip", "a" * 200 + ".safetensors"])
        at.file_uploader(key="sae_upload").upload(name, raw).run(timeout=60)
        assert not at.exception, (i, [e.value for e in at.exception])


def test_predict_first_hides_the_result_until_locked_then_grades_it():
    at = _train(SMALL, predict=True)
    page = texts(at)
    assert "Predict first." in page and "How many of the 11 known attributes" in page
    assert "Lock or skip your prediction above" in page and "It found" not in page  # trained, not shown
    at.number_input(key="sae_predict_answer").set_value(3)
    next(b for b in at.button if b.label == "Lock my prediction").click().run(timeout=180)
    assert not at.exception, [e.value for e in at.exception]
    page = texts(at)
    found = int(re.search(r"It found (\d+) of 11", page).group(1))
    assert "**You predicted:** 3 attributes" in page
    measured = re.search(r"\*\*Measured:\*\* (\d+) of 11 found", page)
    assert measured and int(measured.group(1)) == found
    mark = "right" if abs(found - 3) <= 1 else "not this time"
    assert mark in page


def test_the_layer_follows_the_lab_convention_and_says_where_it_reads():
    at = open_page("app_pages/sae.py", query={"sae_layer": "embed"}, timeout=180)
    assert "`blocks.0.hook_resid_pre` (the residual stream before layer 0 (the embeddings))" in texts(at)
    at = open_page("app_pages/sae.py", query={"sae_site": "MLP output", "sae_layer": "2"}, timeout=180)
    assert "`blocks.2.hook_mlp_out`: what the MLP of layer 2 writes" in texts(at)
    at = open_page("app_pages/sae.py", query={"sae_site": "MLP output", "sae_layer": "embed"}, timeout=180)
    page = texts(at)  # the embeddings have no MLP output: the slider does not offer them; the note says so
    assert "embed" not in at.select_slider(key="sae_layer").options
    assert "**sae\\_layer** = embed is not valid here; used 1" in page
    assert "`blocks.1.hook_mlp_out`" in page and "blocks.0.hook_mlp_out" not in page
    at.selectbox(key="sae_site").set_value("resid_post").run()
    assert at.select_slider(key="sae_layer").options[0] == "embed"  # the stream has a point before block 0


def test_the_sweep_trains_five_saes_and_words_what_they_show():
    at = _train({**SMALL, "sae_steps": "200"})
    next(b for b in at.button if b.label == f"Run a sweep ({len(SWEEP_L1)} SAEs)").click().run(timeout=300)
    assert not at.exception, [e.value for e in at.exception]
    sweep = [p for p in at.session_state["sae_points"] if p["source"] == "sweep"]
    assert [p["setting"] for p in sweep] == SWEEP_L1 == [0.2, 0.5, 1.0, 2.0, 4.0]
    l0 = [p["l0"] for p in sweep]
    assert l0 == sorted(l0, reverse=True)  # a larger L1 coefficient gives a sparser SAE
    page = texts(at)
    sparsest = min(sweep, key=lambda p: p["l0"])
    assert (f"the sparsest SAE (L0 {sparsest['l0']:.1f}) found {sparsest['found']}" in page
            or f"Every SAE of the sweep found {sparsest['found']}" in page), page[-2000:]
