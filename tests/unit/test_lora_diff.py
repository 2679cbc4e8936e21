"""The measuring tools of the LoRA page on matrices whose answer is known, and the behaviour diff and
adapter files on tiny models."""

from __future__ import annotations

import io
import json
import math
import zipfile

import numpy as np
import pytest
import torch

from core.interp.finetune import behaviour_diff as B
from core.interp.finetune import weight_diff as D
from core.interp.finetune.adapter_files import AdapterLoadError, folder_message
from core.interp.finetune.adapter_io import adapter_zip, load_adapter
from core.interp.finetune.config import FinetuneConfig
from core.interp.finetune.lora import adapted_copy
from core.models import load_model
from tests.unit.zips import make_zip


def test_effective_rank_of_known_spectra():
    assert D.effective_rank(np.ones(10)) == pytest.approx(10.0)
    assert D.effective_rank(np.array([3.0, 0, 0])) == pytest.approx(1.0)
    assert D.effective_rank(np.array([1.0, 1.0, 0.0, 0.0])) == pytest.approx(2.0)
    assert D.effective_rank(np.zeros(4)) == 0.0
    p = np.array([0.5, 0.25, 0.25])  # exp(entropy) by hand
    assert D.effective_rank(p * 7) == pytest.approx(math.exp(-(p * np.log(p)).sum()))


def test_energy_and_numerical_rank():
    s = np.array([3.0, 1.0, 1.0, 0.0])  # energies 9, 1, 1: 9/11 = 82% < 90%, 10/11 = 91%
    assert D.energy_rank(s, 0.9) == 2 and D.energy_rank(s, 0.8) == 1 and D.energy_rank(s, 1.0) == 3
    assert D.numerical_rank(s) == 3 and D.numerical_rank(np.zeros(3)) == 0


def test_subspace_overlap_same_orthogonal_and_partial():
    e = torch.eye(6, dtype=torch.float64)
    a = e[:, :2] @ torch.randn(2, 5, dtype=torch.float64)  # output space span(e0, e1)
    b = e[:, 2:4] @ torch.randn(2, 5, dtype=torch.float64)  # span(e2, e3)
    c = e[:, 1:3] @ torch.randn(2, 5, dtype=torch.float64)  # span(e1, e2): shares one direction
    assert D.subspace_overlap(a, a * 3, 2) == pytest.approx(1.0)
    assert D.subspace_overlap(a, b, 2) == pytest.approx(0.0, abs=1e-12)
    assert D.subspace_overlap(a, c, 2) == pytest.approx(0.5)


def test_pool_signed_keeps_the_largest_entry_with_its_sign():
    m = torch.zeros(4, 6)
    m[0, 1], m[1, 0], m[3, 5], m[2, 4] = 0.5, -2.0, 1.0, -0.3
    pooled = D.pool_signed(m, max_side=3)  # blocks of 2 x 2
    assert pooled.shape == (2, 3)
    assert pooled[0, 0] == -2.0 and pooled[1, 2] == 1.0 and pooled[1, 1] == 0.0
    assert D.pool_signed(m, 128).shape == (4, 6)  # small matrices are left whole
    assert D.pool_signed(torch.ones(384, 128), 128).shape == (128, 43)  # one factor: the shape is kept


@pytest.fixture(scope="module")
def gpt2(tiny_model_dir):
    return load_model(str(tiny_model_dir("gpt2")))


def _trained_lora(lm, seed=0):
    tuned, peft_model = adapted_copy(lm, FinetuneConfig(rank=2))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.add_(0.3 * torch.randn(p.shape, generator=gen))
    return tuned, peft_model


def test_token_kl_is_zero_for_the_same_model_and_positive_after_a_change(gpt2):
    tokens = gpt2.to_tokens("the cat sat on the mat")
    same = B.token_kl(gpt2, gpt2, tokens)
    assert len(same.kl) == tokens.shape[1] == len(same.str_tokens)
    assert max(same.kl) == pytest.approx(0.0, abs=1e-6) and same.top_before == same.top_after
    tuned, _ = _trained_lora(gpt2)
    diff = B.token_kl(gpt2, tuned, tokens)
    assert min(diff.kl) >= 0 and max(diff.kl) > 1e-3
    # KL by hand at the most changed position
    i = diff.most_changed(1)[0]
    p = torch.softmax(tuned(tokens)[0, i], -1)
    q = torch.softmax(gpt2(tokens)[0, i], -1)
    assert diff.kl[i] == pytest.approx(float((p * (p.log() - q.log())).sum()), rel=1e-4)
    gens = B.generations(gpt2, tuned, ["the cat"], max_new_tokens=4)
    assert gens[0].prompt == "the cat" and isinstance(gens[0].after, str)


def test_adapter_zip_round_trip_gives_the_same_model(gpt2):
    tuned, peft_model = _trained_lora(gpt2)
    blob = adapter_zip(peft_model, gpt2.spec)
    names = set(zipfile.ZipFile(io.BytesIO(blob)).namelist())
    assert {"adapter_config.json", "adapter_model.safetensors"} <= names
    result = load_adapter(gpt2, blob)
    loaded, config = result.model, result.config
    assert config["peft_type"] == "LORA" and config["r"] == 2
    tokens = gpt2.to_tokens("the cat sat on the mat")
    assert torch.allclose(loaded(tokens), tuned(tokens), atol=1e-6)
    for name, delta in D.deltas(gpt2, loaded).items():
        assert torch.allclose(delta, D.deltas(gpt2, tuned)[name], atol=1e-7)


def test_bad_adapter_files_get_clear_messages(gpt2, tiny_model_dir, tmp_path):
    with pytest.raises(AdapterLoadError, match="not a zip"):
        load_adapter(gpt2, b"hello")
    with pytest.raises(AdapterLoadError, match="unsafe path"):
        load_adapter(gpt2, make_zip({"../evil/adapter_config.json": b"{}"}))
    with pytest.raises(AdapterLoadError, match="No adapter_config.json"):
        load_adapter(gpt2, make_zip({"readme.txt": b"hi"}))
    pickled = make_zip({"a/adapter_config.json": json.dumps({"peft_type": "LORA"}).encode(),
                    "a/adapter_model.bin": b"pickle"})
    with pytest.raises(AdapterLoadError, match="only safetensors"):
        load_adapter(gpt2, pickled)
    with pytest.raises(AdapterLoadError) as err:
        load_adapter(gpt2, str(tmp_path / "missing"))
    assert str(err.value) == folder_message()
    # an adapter saved for another architecture does not fit this one
    llama = load_model(str(tiny_model_dir("llama")))
    _, other = adapted_copy(llama, FinetuneConfig(rank=2))
    with pytest.raises(AdapterLoadError, match="names no module of .* \\(it was saved for"):
        load_adapter(gpt2, adapter_zip(other, llama.spec))
