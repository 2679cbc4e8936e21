"""Tuned copies are models of their own: a spec of their own (so @cache_on_model never hands them the
base model's results), the base model's is_bundled, and a size checked against the session's memory
budget (core.models.budget) before the model is copied."""

from __future__ import annotations

import math

import pytest
import torch

from core.interp.finetune.adapter_files import AdapterLoadError
from core.interp.finetune.adapter_io import adapter_zip, load_adapter
from core.interp.finetune.config import FinetuneConfig
from core.interp.finetune.lora import adapted_copy, lora_param_count
from core.interp.finetune.memory import adapter_bytes, check_copy_budget, copy_bytes, model_bytes
from core.interp.finetune.tasks import Probe, Task
from core.interp.finetune.training import FineTuner
from core.models import load_model
from core.models.budget import MemoryBudgetError, session_budget_bytes
from core.models.loading import wrap
from ui.common.cache import cache_on_model

TASK = Task("tiny", "tiny", ("the cat sat on the mat .", "a dog ran home ."),
            (Probe("the cat sat on the", " mat"),))


@pytest.fixture(scope="module")
def gpt2(tiny_model_dir):
    return load_model(str(tiny_model_dir("gpt2")))


@pytest.fixture()
def bundled_like(gpt2):
    """A tiny model that says it is the bundled one (spec "bundled", is_bundled=True)."""
    return wrap(gpt2.detached_model(), gpt2.tokenizer, spec="bundled", name="Bundled", is_bundled=True)


def _trained(tuned, peft_model):
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name or "ia3_l" in name:
                p.add_(0.2)
    return tuned


@pytest.mark.parametrize("method", ["lora", "ia3", "full"])
def test_tuned_copies_get_their_own_spec_and_keep_is_bundled(bundled_like, method):
    a, _ = adapted_copy(bundled_like, FinetuneConfig(method=method, rank=2))
    b, _ = adapted_copy(bundled_like, FinetuneConfig(method=method, rank=2))
    assert a.spec != bundled_like.spec and b.spec != a.spec  # another run, another spec
    assert a.spec.startswith(f"bundled+{method}#")
    assert a.is_bundled and b.is_bundled  # bundled-only features (ground truth) keep working
    ft = FineTuner(FinetuneConfig(method=method, steps=1, batch=2, train_rows=4)).fit(bundled_like, TASK)
    assert ft.model_.spec.startswith(f"bundled+{method}#") and ft.model_.is_bundled


def test_a_page_cache_keyed_on_spec_tells_base_and_tuned_apart(bundled_like):
    tokens = bundled_like.to_tokens("the cat sat on the")

    @cache_on_model(show_spinner=False)
    def last_logits(lm):
        return lm(tokens)[0, -1].tolist()

    tuned = _trained(*adapted_copy(bundled_like, FinetuneConfig(rank=2)))
    base_value = last_logits(bundled_like)
    tuned_value = last_logits(tuned)
    assert tuned_value == pytest.approx(tuned(tokens)[0, -1].tolist(), abs=1e-6)
    assert max(abs(x - y) for x, y in zip(base_value, tuned_value, strict=True)) > 1e-3


def test_a_loaded_adapter_gets_its_own_spec_and_keeps_is_bundled(bundled_like):
    tuned, peft_model = adapted_copy(bundled_like, FinetuneConfig(rank=2))
    _trained(tuned, peft_model)
    blob = adapter_zip(peft_model, bundled_like.spec)
    one, two = load_adapter(bundled_like, blob).model, load_adapter(bundled_like, blob).model
    assert one.spec.startswith("bundled+loaded-lora#") and one.spec != two.spec
    assert one.is_bundled and one.name == "Bundled + loaded LORA adapter"


def test_copy_bytes_count_weights_buffers_and_full_fine_tunings_training_state(gpt2):
    params = {id(p): p for p in gpt2.model.parameters()}.values()
    n_params = sum(p.numel() for p in params)
    buffers = sum(b.numel() * b.element_size() for b in gpt2.model.buffers())
    assert n_params == gpt2.cfg.n_params
    assert model_bytes(gpt2) == 4 * n_params + buffers  # float32
    assert copy_bytes(gpt2, "lora") == copy_bytes(gpt2, "ia3") == 4 * n_params + buffers
    assert copy_bytes(gpt2, "full") == 16 * n_params + buffers  # + gradient and two Adam moments
    need = copy_bytes(gpt2, "lora")
    assert check_copy_budget(gpt2, "lora", need) == need
    assert check_copy_budget(gpt2, "lora", math.inf, held_bytes=10**15) == need
    with pytest.raises(MemoryBudgetError, match="next to the"):
        check_copy_budget(gpt2, "lora", 2 * need, held_bytes=need + 1)
    assert check_copy_budget(gpt2, "lora", need + 10, extra_bytes=10) == need + 10  # the adapter counts


def test_the_session_budget_is_the_default(gpt2, monkeypatch):
    monkeypatch.setenv("LAB_SESSION_MEMORY_MB", "2")
    need = copy_bytes(gpt2, "full")
    assert session_budget_bytes() == 2_000_000 > need
    with pytest.raises(MemoryBudgetError, match="over this server's budget of 2 MB .* Try LoRA or IA3"):
        check_copy_budget(gpt2, "full", held_bytes=2_000_000 - need + 1)
    assert check_copy_budget(gpt2, "full", held_bytes=2_000_000 - need) == need


@pytest.mark.parametrize("method", ["lora", "ia3", "full"])
def test_every_method_is_refused_before_the_model_is_copied(gpt2, monkeypatch, method):
    cfg = FinetuneConfig(method=method)
    adapter = 0 if method == "full" else 16 * lora_param_count(gpt2, cfg)  # adapter, gradient, Adam
    need = copy_bytes(gpt2, method) + adapter

    def no_copy():
        raise AssertionError("the model was copied")

    monkeypatch.setattr(gpt2, "detached_model", no_copy)
    with pytest.raises(MemoryBudgetError, match="over this server's budget"):
        adapted_copy(gpt2, cfg, budget_bytes=need - 1)
    with pytest.raises(MemoryBudgetError, match=f"about {need / 1e6:,.0f} MB"):
        FineTuner(FinetuneConfig(method=method, steps=1), budget_bytes=need - 1).fit(gpt2, TASK)
    with pytest.raises(MemoryBudgetError, match="next to the"):  # what the session holds elsewhere counts
        adapted_copy(gpt2, cfg, budget_bytes=need, held_bytes=1)
    monkeypatch.undo()
    tuned, _ = adapted_copy(gpt2, cfg, budget_bytes=need)  # exactly fits
    assert tuned.model is not gpt2.model


def test_loading_an_adapter_is_refused_over_the_budget(gpt2):
    tuned, peft_model = adapted_copy(gpt2, FinetuneConfig(rank=2))
    blob = adapter_zip(peft_model, gpt2.spec)
    need = copy_bytes(gpt2, "lora") + adapter_bytes(lora_param_count(gpt2, FinetuneConfig(rank=2)))
    with pytest.raises(AdapterLoadError, match="over this server's budget"):
        load_adapter(gpt2, blob, budget_bytes=need - 1)
    assert load_adapter(gpt2, blob, budget_bytes=need).plan.rank == 2
