"""SAELens's folder layout, both ways: SAELens loads what SAE.save writes, and SAE.load reads what
SAELens saved, with the same outputs. Needs sae-lens (requirements-bench.txt); where it is not
installed (the app's own environment) these tests skip and say so. Run them with the benchmark
environment: `.venv-bench/bin/python -m pytest tests/unit/test_sae_lens_format.py`.
The layout itself (file names, config fields) is tested without SAELens in test_sae_files.py."""

from __future__ import annotations

import warnings

import pytest
import torch

from core.interp.sae.model import SAE, SAEConfig

lens = pytest.importorskip("sae_lens", reason="sae-lens is not installed in this environment "
                                              "(requirements-bench.txt brings it: run with .venv-bench)")
HOOK = "blocks.0.hook_resid_post"
X = torch.randn(200, 16, generator=torch.Generator().manual_seed(0)) * 2


def _ours(arch: str) -> SAE:
    sae = SAE(SAEConfig(16, 64, arch, k=5 if arch == "topk" else 0, hook_name=HOOK, model_spec="bundled"),
              seed=1)
    with torch.no_grad():
        sae.b_enc.normal_(0, 0.3, generator=torch.Generator().manual_seed(2))
        sae.b_dec.normal_(generator=torch.Generator().manual_seed(3))
    return sae


@pytest.fixture(autouse=True)
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SAELens warns about deprecations unrelated to these files
        yield


@pytest.mark.parametrize(("arch", "lens_class"), [("relu", "StandardSAE"), ("topk", "TopKSAE")])
def test_sae_lens_loads_what_save_writes(arch, lens_class, tmp_path):
    ours = _ours(arch)
    folder = ours.save(tmp_path / "sae", notes={"lab_corpus_docs": "500"})
    theirs = lens.SAE.load_from_disk(folder)
    assert type(theirs).__name__ == lens_class
    assert theirs.cfg.metadata.hook_name == HOOK and theirs.cfg.metadata.model_name == "bundled"
    with torch.no_grad():
        assert torch.allclose(theirs.encode(X), ours.encode(X), atol=1e-5)
        assert torch.allclose(theirs(X), ours(X), atol=1e-5)
    assert SAE.load(folder).cfg == ours.cfg  # and it still loads here


def test_sae_lens_loads_the_zip_the_page_downloads_once_unzipped(tmp_path):
    import zipfile

    ours = _ours("relu")
    (tmp_path / "download.zip").write_bytes(ours.to_zip(folder_name="my_sae"))
    with zipfile.ZipFile(tmp_path / "download.zip") as archive:
        archive.extractall(tmp_path)
    theirs = lens.SAE.load_from_disk(tmp_path / "my_sae")
    with torch.no_grad():
        assert torch.allclose(theirs(X), ours(X), atol=1e-5)


def test_a_standard_sae_saved_by_sae_lens_loads_with_the_same_outputs(tmp_path):
    # decoder rows of different lengths, and an encoder that reads x rather than x - b_dec:
    # both are rewritten into this lab's form without changing what the SAE computes
    theirs = lens.StandardSAE(lens.StandardSAEConfig(d_in=16, d_sae=64, apply_b_dec_to_input=False))
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():
        theirs.b_enc.normal_(0, 0.3, generator=gen)
        theirs.b_dec.normal_(generator=gen)
        theirs.W_dec.mul_(torch.linspace(0.2, 3.0, 64)[:, None])
    theirs.cfg.metadata.hook_name = HOOK
    theirs.save_model(tmp_path / "lens")
    ours = SAE.load(tmp_path / "lens")
    assert ours.cfg == SAEConfig(16, 64, "relu", 0, HOOK, "")
    with torch.no_grad():
        assert torch.allclose(ours(X), theirs(X), atol=1e-5)
        norms = theirs.W_dec.norm(dim=1)
        assert torch.allclose(ours.encode(X), theirs.encode(X) * norms, atol=1e-4)  # unit rows here
    assert torch.allclose(ours.W_dec.norm(dim=1), torch.ones(64), atol=1e-5)


@pytest.mark.parametrize("rescale", [True, False])
def test_a_topk_sae_saved_by_sae_lens_picks_the_same_features(rescale, tmp_path):
    theirs = lens.TopKSAE(lens.TopKSAEConfig(d_in=16, d_sae=64, k=4, rescale_acts_by_decoder_norm=rescale))
    with torch.no_grad():
        theirs.b_enc.normal_(0, 0.3, generator=torch.Generator().manual_seed(5))
        if rescale:  # rows of any length: ranking by pre-activation x row length, as here
            theirs.W_dec.mul_(torch.linspace(0.2, 3.0, 64)[:, None])
        else:  # ranking by pre-activation alone: unit rows, as SAELens saves a trained TopK SAE
            theirs.W_dec.div_(theirs.W_dec.norm(dim=1, keepdim=True))
    theirs.save_model(tmp_path / "lens")
    ours = SAE.load(tmp_path / "lens")
    with torch.no_grad():
        assert torch.allclose(ours(X), theirs(X), atol=1e-5)
        assert torch.equal(ours.encode(X) > 0, theirs.encode(X) > 0)


def test_a_topk_sae_ranking_by_pre_activation_with_long_rows_is_refused(tmp_path):
    theirs = lens.TopKSAE(lens.TopKSAEConfig(d_in=16, d_sae=64, k=4, rescale_acts_by_decoder_norm=False))
    with torch.no_grad():
        theirs.W_dec.mul_(torch.linspace(0.2, 3.0, 64)[:, None])
    theirs.save_model(tmp_path / "lens")
    with pytest.raises(ValueError, match="rescale_acts_by_decoder_norm false"):
        SAE.load(tmp_path / "lens")


def test_a_jumprelu_sae_is_refused_with_a_message(tmp_path):
    theirs = lens.JumpReLUSAE(lens.JumpReLUSAEConfig(d_in=16, d_sae=64))
    theirs.save_model(tmp_path / "lens")
    with pytest.raises(ValueError, match="'jumprelu' SAE: this lab reads 'standard'"):
        SAE.load(tmp_path / "lens")
