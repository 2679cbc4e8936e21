"""The SAE model: folding decoder norms, save/load, TopK, and splicing into a model."""

from __future__ import annotations

import pytest
import torch

from core.interp.sae import SAE, SAEConfig, perfect_sae
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


def test_load_refuses_files_that_are_not_saes(tmp_path):
    with pytest.raises(ValueError):
        SAE.load(b"not a safetensors file at all")
    from safetensors.torch import save

    with pytest.raises(ValueError, match="config is missing"):
        SAE.load(save({"W_enc": torch.zeros(2, 2)}))


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
