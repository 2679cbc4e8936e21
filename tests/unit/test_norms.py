"""Block norms switched off (core.models.norms): the model is what it says, and its folder loads back
as the same model through the lab's loader, for both families the training page builds."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from core.interp.training.architecture import ModelSettings, build_model
from core.interp.training.tasks import word_tokenizer
from core.models import load_model
from core.models.norms import BLOCK_NORMS_FLAG, PassThroughNorm, block_norm_modules, normalization_of


@pytest.mark.parametrize("positions", ["learned", "rotary"])
def test_a_model_without_block_norms_saves_and_loads_as_itself(positions, tmp_path):
    m = ModelSettings(n_layers=2, n_heads=2, d_model=16, mlp=True, positions=positions, block_norms=False,
                      init_std=0.3)
    model = build_model(m, d_vocab=12, n_ctx=16, seed=0).eval()
    norms = block_norm_modules(model)
    assert len(norms) == 4 and all(isinstance(n, PassThroughNorm) for n in norms)
    x = torch.randn(3, 16)
    assert torch.equal(norms[0](x), x)  # switched off: the input, not a normalised input
    assert normalization_of(norms[0], "layernorm") == "none"
    model.save_pretrained(tmp_path)
    word_tokenizer([f"s{i}" for i in range(10)], "symbol").save_pretrained(tmp_path)
    tokens = torch.randint(2, 12, (2, 10), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = model(input_ids=tokens).logits
    lm = load_model(str(tmp_path))
    assert getattr(lm.model.config, BLOCK_NORMS_FLAG) is False
    assert torch.allclose(lm(tokens), want, atol=1e-5)
    # a loader that ignores the flag normalises inside the blocks again: a different model
    plain = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        assert not torch.allclose(plain(input_ids=tokens).logits, want, atol=1e-3)


def test_models_with_block_norms_are_untouched(tmp_path):
    model = build_model(ModelSettings(n_layers=1, n_heads=2, d_model=16), d_vocab=12, n_ctx=16, seed=0)
    assert not any(isinstance(n, PassThroughNorm) for n in block_norm_modules(model))
    assert normalization_of(block_norm_modules(model)[0], "layernorm") == "layernorm"
    assert getattr(model.config, BLOCK_NORMS_FLAG, True) is True


def test_weight_readings_skip_a_switched_off_norm():
    from core.interp.attention.weight_circuits import effective_embed
    from core.interp.neurons.weights import normed_embeddings
    from core.interp.weights.svd import reading_embeddings
    from core.models.loading import wrap

    m = ModelSettings(n_layers=2, n_heads=2, d_model=16, mlp=True, block_norms=False, init_std=0.3)
    model = build_model(m, d_vocab=12, n_ctx=16, seed=0)
    model.requires_grad_(False)
    lm = wrap(model, word_tokenizer([f"s{i}" for i in range(10)], "symbol"), spec="test-no-norms")
    W_E = lm.W_E.detach()
    assert torch.allclose(reading_embeddings(lm, 1).float(), W_E, atol=1e-6)  # the layer reads E as it is
    assert torch.allclose(normed_embeddings(lm, 0), W_E, atol=1e-6)
    ids = torch.arange(2, 12)
    assert torch.allclose(effective_embed(lm, 0, ids, "direct").float(), W_E[ids], atol=1e-6)
