"""The SAE model: folding decoder norms, save/load, TopK, and splicing into a model."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save

from core.interp.sae.file_format import read_notes
from core.interp.sae.model import SAE, SAEConfig, perfect_sae
from core.models import act_name, load_model


def _random_sae(arch: str = "relu", d_in: int = 16, d_sae: int = 64, seed: int = 0) -> SAE:
    sae = SAE(SAEConfig(d_in, d_sae, arch, k=5 if arch == "topk" else 0, hook_name="h"), seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        sae.b_enc.copy_(0.1 * torch.randn(d_sae, generator=gen))
        sae.b_dec.copy_(torch.randn(d_in, generator=gen))
    return sae


@pytest.mark.parametrize("arch", ["relu", "topk"])
def test_folding_decoder_norms_leaves_reconstructions_unchanged(arch):
    sae = _random_sae(arch)
    with torch.no_grad():  # decoder rows of very different lengths
        sae.W_dec.mul_(torch.logspace(-1, 1, sae.cfg.d_sae)[:, None])
    x = torch.randn(200, 16, generator=torch.Generator().manual_seed(3)) * 2
    before = sae(x)
    acts_before = sae.encode(x)
    norms = sae.fold_W_dec_norm()
    after = sae(x)
    assert torch.allclose(after, before, atol=1e-5, rtol=1e-5)
    assert torch.allclose(sae.W_dec.norm(dim=1), torch.ones(sae.cfg.d_sae), atol=1e-6)
    # each activation grew by its decoder row's old length
    assert torch.allclose(sae.encode(x), acts_before * norms, atol=1e-5, rtol=1e-4)
    assert norms.min() < 0.2 and norms.max() > 5  # the test really had something to fold


def test_fold_activation_scale_lets_the_sae_read_raw_activations():
    sae = _random_sae()
    x = torch.randn(50, 16)
    scale = 7.0
    expected = sae(x * scale) / scale
    sae.fold_activation_scale(scale)
    assert torch.allclose(sae(x), expected, atol=1e-5)


@pytest.mark.parametrize("arch", ["relu", "topk"])
def test_save_then_load_gives_identical_outputs(arch, tmp_path):
    sae = _random_sae(arch)
    x = torch.randn(64, 16)
    from_folder = SAE.load(sae.save(tmp_path / "sae"))
    from_bytes = SAE.load(sae.to_bytes())
    (tmp_path / "one.safetensors").write_bytes(sae.to_bytes())
    from_file = SAE.load(tmp_path / "one.safetensors")
    for loaded in (from_folder, from_bytes, from_file):
        assert loaded.cfg == sae.cfg
        assert torch.equal(loaded(x), sae(x))
        assert torch.equal(loaded.encode(x), sae.encode(x))
    assert (tmp_path / "sae" / "cfg.json").is_file()


def test_notes_travel_beside_the_config_and_cannot_replace_it():
    sae = _random_sae("relu")
    blob = sae.to_bytes(notes={"lab_corpus_docs": "500", "sae_config": "{}"})
    assert read_notes(blob) == {"lab_corpus_docs": "500"}
    assert SAE.load(blob).cfg == sae.cfg  # the real config wins over a note of the same name
    assert read_notes(sae.to_bytes()) == {}
    with pytest.raises(ValueError, match="too short"):
        read_notes(b"abc")


def test_load_refuses_files_that_are_not_saes(tmp_path):
    with pytest.raises(ValueError):
        SAE.load(b"not a safetensors file at all")
    from safetensors.torch import save

    with pytest.raises(ValueError, match="config is missing"):
        SAE.load(save({"W_enc": torch.zeros(2, 2)}))


def _crafted(header) -> bytes:
    """A file with a hand-written safetensors header (and no tensor data)."""
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text


def _with_config(config, tensors=None) -> bytes:
    tensors = tensors if tensors is not None else _random_sae().tensors()
    return save(tensors, metadata={"sae_config": config if isinstance(config, str) else json.dumps(config)})


GOOD = {"d_in": 16, "d_sae": 64, "architecture": "relu", "k": 0, "hook_name": "h", "model_spec": ""}


CRAFTED = {
    "header-list": (lambda: _crafted([1, 2, 3]), "header is not a JSON object"),
    "metadata-string": (lambda: _crafted({"__metadata__": "sae"}), "__metadata__ is not a JSON object"),
    "config-number": (lambda: _crafted({"__metadata__": {"sae_config": 5}}), "not a JSON string"),
    "config-bad-json": (lambda: _crafted({"__metadata__": {"sae_config": "{not"}}), "not readable JSON"),
    "header-too-long": (lambda: b"\xff" * 8 + b"{}", "header is cut short"),
    "config-list": (lambda: _with_config([16, 64]), "config is not a JSON object"),
    "d_in-string": (lambda: _with_config({**GOOD, "d_in": "16"}), "d_in should be int"),
    "d_sae-float": (lambda: _with_config({**GOOD, "d_sae": 64.0}), "d_sae should be int"),
    "d_in-bool": (lambda: _with_config({**GOOD, "d_in": True}), "d_in should be int"),
    "hook-list": (lambda: _with_config({**GOOD, "hook_name": ["h"]}), "hook_name should be str"),
    "d_sae-negative": (lambda: _with_config({**GOOD, "d_sae": -64}), "impossible sizes"),
    "unknown-field": (lambda: _with_config({**GOOD, "extra": 1}), "unknown fields extra"),
    "no-d_sae": (lambda: _with_config({"d_in": 16}), "lacks d_sae"),
    "k-too-big": (lambda: _with_config({**GOOD, "architecture": "topk", "k": 65}), "TopK needs 0 < k"),
}


@pytest.mark.parametrize("case", list(CRAFTED))
def test_load_turns_every_crafted_file_into_a_clear_value_error(case):
    make, message = CRAFTED[case]
    with pytest.raises(ValueError, match=message):
        SAE.load(make())


def test_load_compares_config_and_tensor_shapes_before_allocating_anything(monkeypatch):
    # A config claiming d_sae = 1e9 would allocate d_sae x d_in random weights if the SAE were
    # built before the shapes were checked: building one at all fails this test.
    def boom(self, cfg, seed=0):
        raise AssertionError(f"an SAE of d_sae {cfg.d_sae} was built before checking the shapes")

    huge = _with_config({**GOOD, "d_sae": 10**9})
    narrow = _with_config({**GOOD, "d_in": 8}, {**_random_sae().tensors(), "W_dec": torch.zeros(64, 8),
                                                "W_enc": torch.zeros(8, 64)})
    monkeypatch.setattr(SAE, "__init__", boom)
    with pytest.raises(ValueError, match=r"W_dec has shape \(64, 16\), but d_in 16 and d_sae "
                                         r"1000000000 need \(1000000000, 16\)"):
        SAE.load(huge)
    with pytest.raises(ValueError, match=r"b_dec has shape \(16,\), but d_in 8"):
        SAE.load(narrow)


def test_load_refuses_weights_that_are_not_finite_floats():
    tensors = _random_sae().tensors()
    tensors["W_enc"][3, 5] = float("nan")
    with pytest.raises(ValueError, match="W_enc contains NaN or infinite values"):
        SAE.load(_with_config(GOOD, tensors))
    tensors = {**_random_sae().tensors(), "b_dec": torch.zeros(16, dtype=torch.int32)}
    with pytest.raises(ValueError, match="b_dec is stored as 32-bit integers"):
        SAE.load(_with_config(GOOD, tensors))
    missing = {k: v for k, v in _random_sae().tensors().items() if k != "b_enc"}
    with pytest.raises(ValueError, match="lacks b_enc"):
        SAE.load(_with_config(GOOD, missing))
    assert SAE.load(_with_config(GOOD)).cfg == SAEConfig(**GOOD)  # the same file, intact, loads


def test_topk_keeps_exactly_k_features():
    sae = _random_sae("topk")
    f = sae.encode(torch.randn(300, 16) * 3)
    assert ((f > 0).sum(dim=1) <= 5).all()
    assert (f >= 0).all()
    assert (f > 0).sum(dim=1).float().mean() > 4  # almost always k positive pre-activations


def test_config_checks_its_values():
    with pytest.raises(ValueError):
        SAEConfig(8, 16, "gated")
    with pytest.raises(ValueError):
        SAEConfig(8, 16, "topk", k=0)
    assert SAEConfig(8, 64).expansion == 8


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_spliced_sae_with_perfect_reconstruction_leaves_logits_unchanged(arch, tiny_model_dir):
    lm = load_model(str(tiny_model_dir(arch)))
    hook = act_name("resid_post", 0)
    tokens = lm.to_tokens(["the cat sat on the mat", "Mary gave a red ball to John ."])
    clean = lm(tokens)
    sae = perfect_sae(lm.cfg.d_model, hook)
    for skip_first in (True, False):
        with lm.hooks([(hook, sae.splice_hook(skip_first=skip_first))]):
            spliced = lm(tokens)
        assert torch.allclose(spliced, clean, atol=1e-5), (spliced - clean).abs().max()
    # and an SAE that does not reconstruct does change them (so the check above can fail)
    bad = _random_sae(d_in=lm.cfg.d_model, d_sae=2 * lm.cfg.d_model)
    with lm.hooks([(hook, bad.splice_hook())]):
        assert (lm(tokens) - clean).abs().max() > 1e-2
