"""LoRA, IA3 and full fine-tuning on tiny models: the invariants of issue 9, with explicit tolerances.

B = 0 changes nothing; delta W from A and B equals PEFT's merged weight minus the base weight;
rank(delta W) <= r; the shared model never changes; hooks see the adapted modules; a stop keeps
what was learned.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from core.interp.finetune import weight_diff as D
from core.interp.finetune.config import FinetuneConfig
from core.interp.finetune.lora import adapted_copy, lora_param_count
from core.interp.finetune.targets import target_modules
from core.interp.finetune.tasks import Probe, Task
from core.interp.finetune.training import BF16_LOSS_TOLERANCE, FineTuner
from core.models import act_name

ARCHS = ("gpt2", "gpt_neo", "gpt_neox", "llama")
TASK = Task("tiny", "tiny", ("the cat sat on the mat .", "a dog ran home .", "Mary gave a red cat to John ."),
            (Probe("the cat sat on the", " mat"),))


@pytest.fixture(scope="module")
def models(tiny_lm):
    return tiny_lm


def _tokens(lm):
    return lm.to_tokens("the cat sat on the mat . a dog ran home")


def _randomize_B(peft_model, seed=0):
    """Give every lora_B a random value (PEFT starts it at zero), as training would."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name or "ia3_l" in name:
                p.add_(0.1 * torch.randn(p.shape, generator=gen))


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("method", ["lora", "ia3"])
def test_fresh_adapter_changes_nothing(models, arch, method):
    lm = models(arch)
    tuned, peft_model = adapted_copy(lm, FinetuneConfig(method=method, rank=4))
    assert peft_model is not None
    tokens = _tokens(lm)
    # B = 0 (LoRA) and l = 1 (IA3): the output is the base model's, up to float rounding order
    assert torch.allclose(tuned(tokens), lm(tokens), atol=1e-6, rtol=0)
    deltas = D.deltas(lm, tuned)
    assert len(deltas) == len(target_modules(lm, FinetuneConfig().roles))
    assert max(float(d.abs().max()) for d in deltas.values()) == 0.0


@pytest.mark.parametrize("arch", ["gpt2", "llama", "gpt_neox"])
@pytest.mark.parametrize("method", ["lora", "ia3"])
def test_delta_equals_merged_minus_base(models, arch, method):
    lm = models(arch)
    tuned, peft_model = adapted_copy(lm, FinetuneConfig(method=method, rank=4))
    _randomize_B(peft_model)
    deltas = D.deltas(lm, tuned)
    merged = dict(peft_model.merge_and_unload().named_modules())
    base = dict(lm.model.named_modules())
    for name, delta in deltas.items():
        expected = merged[name].weight - base[name].weight
        assert delta.shape == base[name].weight.shape
        assert torch.allclose(delta, expected, atol=1e-6), name
    assert max(float(d.abs().max()) for d in deltas.values()) > 1e-3  # the check saw real updates


@pytest.mark.parametrize("rank", [1, 2, 4])
def test_lora_delta_has_rank_at_most_r(models, rank):
    lm = models("gpt2")
    tuned, peft_model = adapted_copy(lm, FinetuneConfig(rank=rank))
    _randomize_B(peft_model, seed=rank)
    for m in D.diff_report(lm, D.deltas(lm, tuned)):
        assert m.rank == rank  # random A and B: exactly r, never more
        assert (m.singular_values[rank:] < 1e-5 * m.singular_values[0]).all()
        assert m.effective_rank <= rank + 1e-6 and m.energy_rank_90 <= rank


def test_lora_delta_formula_by_hand():
    A = torch.tensor([[1.0, 0.0, 2.0]])  # [r=1, d_in=3]
    B = torch.tensor([[1.0], [3.0]])  # [d_out=2, r=1]
    expected = torch.tensor([[1.0, 0.0, 2.0], [3.0, 0.0, 6.0]]) * 0.5
    assert torch.equal(D.lora_delta(A, B, 0.5), expected)
    assert torch.equal(D.lora_delta(A, B, 0.5, fan_in_fan_out=True), expected.T)


@pytest.mark.parametrize("method", ["lora", "ia3", "full"])
def test_shared_model_is_unchanged_by_fine_tuning(models, method):
    lm = models("gpt2")
    before = {k: v.clone() for k, v in lm.model.state_dict().items()}
    ft = FineTuner(FinetuneConfig(method=method, steps=3, batch=4, lr=1e-2, train_rows=8)).fit(lm, TASK)
    after = lm.model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not any(p.requires_grad for p in lm.model.parameters())
    tokens = _tokens(lm)
    assert not torch.allclose(ft.model_(tokens), lm(tokens), atol=1e-4)  # the copy did learn


@pytest.mark.parametrize("arch", ["gpt2", "llama"])  # Conv1D ([in, out], fan_in_fan_out) and Linear
def test_lora_delta_added_to_plain_base_weights_gives_the_tuned_logits(models, arch):
    """Oracle: W + (B @ A) * scaling, written into a plain (PEFT-free) copy of the base model, must
    compute what PEFT's LoRA model computes; lora_diff's deltas are checked against the same matrices."""
    lm = models(arch)
    tuned, peft_model = adapted_copy(lm, FinetuneConfig(rank=4, alpha=8.0))
    _randomize_B(peft_model, seed=7)
    plain = lm.detached_model()  # torch.nn.Linear / transformers Conv1D, no adapter anywhere
    plain_modules, tuned_modules = dict(plain.named_modules()), dict(tuned.model.named_modules())
    conv1d = arch == "gpt2"
    computed = D.deltas(lm, tuned)
    assert set(computed) == set(target_modules(lm, FinetuneConfig().roles))
    with torch.no_grad():
        for name in computed:
            layer = tuned_modules[name]
            A, B = layer.lora_A["default"].weight, layer.lora_B["default"].weight  # [r, d_in], [d_out, r]
            assert layer.scaling["default"] == 8.0 / 4
            delta = (B @ A) * (8.0 / 4)  # [d_out, d_in]
            if conv1d:  # GPT-2's Conv1D stores W as [d_in, d_out]
                delta = delta.T
            assert plain_modules[name].weight.shape == delta.shape
            assert torch.allclose(computed[name], delta, atol=1e-6, rtol=0), name
            plain_modules[name].weight += delta
    tokens = _tokens(lm)
    with torch.no_grad():
        expected = plain(input_ids=tokens, attention_mask=torch.ones_like(tokens), use_cache=False).logits
    got = tuned(tokens)
    assert torch.allclose(got, expected, atol=1e-5, rtol=0)
    assert (got - lm(tokens)).abs().max() > 1e-2  # the update is big enough for the check to bite


def test_full_fine_tuning_trains_every_parameter(models):
    lm = models("llama")
    ft = FineTuner(FinetuneConfig(method="full", steps=2, batch=4, lr=1e-2, train_rows=8)).fit(lm, TASK)
    assert ft.n_trainable_ == lm.cfg.n_params
    assert all(p.grad is None for p in ft.model_.model.parameters())  # no gradients kept with the copy
    tokens = _tokens(lm)
    assert not torch.allclose(ft.model_(tokens), lm(tokens), atol=1e-4)


def test_hooks_of_the_tuned_model_see_the_adapter(models):
    lm = models("gpt2")
    tuned, peft_model = adapted_copy(lm, FinetuneConfig(roles=("mlp_in",), rank=2))
    _randomize_B(peft_model)
    tokens = _tokens(lm)
    name = act_name("pre", 0)  # the output of mlp_in, the adapted matrix
    _, base_cache = lm.run_with_cache(tokens, names=[name])
    _, tuned_cache = tuned.run_with_cache(tokens, names=[name])
    layer = dict(tuned.model.named_modules())["transformer.h.0.mlp.c_fc"]
    x = lm.run_with_cache(tokens, names=[act_name("resid_mid", 0)])[1][act_name("resid_mid", 0)]
    ln = lm.adapter.block_modules(0).ln2
    with torch.no_grad():
        expected = layer(ln(x))  # base weight plus LoRA, computed directly
    assert torch.allclose(tuned_cache[name], expected, atol=1e-5)
    assert not torch.allclose(tuned_cache[name], base_cache[name], atol=1e-3)


def test_a_stop_keeps_what_was_learned(models):
    lm = models("gpt2")
    seen = []

    def stop_at_3(p):
        seen.append(p.step)
        return p.step < 3

    ft = FineTuner(FinetuneConfig(steps=50, batch=4, lr=1e-2, train_rows=8, eval_every=0)).fit(
        lm, TASK, callback=stop_at_3)
    assert seen == [1, 2, 3] and ft.steps_done_ == 3 and len(ft.losses_) == 3
    assert not ft.finished_ and not ft.model_.model.training
    assert ft.model_.model.config._attn_implementation == "lab_hooked"  # hooks work again
    _, cache = ft.model_.run_with_cache(_tokens(lm), names=[act_name("pattern", 0)])
    assert cache[act_name("pattern", 0)].shape[1] == lm.cfg.n_heads


def test_training_lowers_the_task_loss_and_is_seeded(models):
    lm = models("gpt2")
    cfg = FinetuneConfig(steps=12, batch=4, lr=5e-3, train_rows=8, rank=4)
    a = FineTuner(cfg).fit(lm, TASK)
    b = FineTuner(cfg).fit(lm, TASK)
    assert a.losses_ == b.losses_  # same seed, same run
    assert sum(a.losses_[-3:]) < sum(a.losses_[:3])
    assert a.n_trainable_ == sum(4 * (i + o) for i, o in [(32, 96), (32, 32), (32, 128), (128, 32)]) * 2
    assert a.n_trainable_ == lora_param_count(lm, cfg)  # counted from shapes before anything is built
    ia3 = FinetuneConfig(method="ia3", steps=1, batch=2, train_rows=4)
    assert FineTuner(ia3).fit(lm, TASK).n_trainable_ == lora_param_count(lm, ia3) == (96 + 32 + 128 + 128) * 2


@pytest.mark.parametrize("method", ["lora", "full"])
def test_bfloat16_training_matches_float32_within_the_stated_tolerance(models, method):
    """bf16=None picks the dtype by measurement (core.models.dtype); either way the losses must agree
    with float32 training within BF16_LOSS_TOLERANCE nats, step by step."""
    lm = models("gpt2")
    cfg = FinetuneConfig(method=method, steps=20, batch=4, lr=5e-3 if method == "lora" else 1e-3,
                         train_rows=8, rank=4)
    fp32 = FineTuner(replace(cfg, bf16=False)).fit(lm, TASK)
    bf16 = FineTuner(replace(cfg, bf16=True)).fit(lm, TASK)
    assert not fp32.bf16_ and bf16.bf16_
    gaps = [abs(a - b) for a, b in zip(fp32.losses_, bf16.losses_, strict=True)]
    assert max(gaps) <= BF16_LOSS_TOLERANCE, max(gaps)
    assert max(gaps) > 0  # bfloat16 really ran: the rounding shows
    assert bf16.losses_[-1] < bf16.losses_[0] - 0.5  # and it learned as float32 did


def test_bf16_none_follows_the_matmul_probe_then_the_steps_own_timing(models, monkeypatch):
    import core.interp.finetune.training as T
    import core.models.dtype as D

    lm = models("gpt2")
    cfg = FinetuneConfig(steps=2, batch=4, train_rows=8, rank=4)  # bf16=None: measured
    slow = D.DtypeChoice(torch.float32, fp32_gflops=100, bf16_gflops=60, threads=1, cpu="test")
    fast = D.DtypeChoice(torch.bfloat16, fp32_gflops=100, bf16_gflops=700, threads=1, cpu="test")
    monkeypatch.setattr(D, "fastest_matmul_dtype", lambda: slow)  # matmuls: float32 is faster
    run = FineTuner(cfg).fit(lm, TASK)
    assert not run.bf16_ and run.step_seconds_ is None  # no need to time the step
    monkeypatch.setattr(D, "fastest_matmul_dtype", lambda: fast)  # matmuls: bfloat16 is faster
    monkeypatch.setattr(T, "_STEP_TIMES", {})
    run = FineTuner(cfg).fit(lm, TASK)  # the step itself is timed, once
    (key, (fp32, bf16)), = T._STEP_TIMES.items()
    assert run.step_seconds_ == (fp32, bf16) > (0, 0) and run.bf16_ == (bf16 * D.MIN_STEP_SPEEDUP <= fp32)
    for times, chosen in (((1.0, 0.5), True), ((1.0, 0.88), True), ((1.0, 0.93), False), ((0.5, 1.0), False)):
        T._STEP_TIMES[key] = times  # as if measured so: bfloat16 must win by MIN_STEP_SPEEDUP (1.10)
        assert FineTuner(cfg).fit(lm, TASK).bf16_ is chosen
    assert FineTuner(replace(cfg, bf16=False)).fit(lm, TASK).step_seconds_ is None  # asked for: not timed


def test_timing_the_step_leaves_the_model_unchanged(models):
    import core.interp.finetune.training as T

    lm = models("gpt2")
    tuned, peft_model = adapted_copy(lm, FinetuneConfig(rank=2))
    _randomize_B(peft_model)
    before = {k: v.clone() for k, v in tuned.model.state_dict().items()}
    rows = lm.to_tokens(["the cat sat on the mat .", "a dog ran home . the cat"])
    fp32, bf16 = T.measured_step_bf16(tuned, rows, key=("test", id(tuned)))
    assert fp32 > 0 and bf16 > 0
    assert all(torch.equal(before[k], v) for k, v in tuned.model.state_dict().items())
    assert all(p.grad is None for p in tuned.model.parameters())


def test_a_loss_that_is_not_a_number_ends_the_run(models):
    lm = models("gpt2")
    ft = FineTuner(FinetuneConfig(method="full", steps=30, batch=4, lr=1e30, train_rows=8, bf16=False)).fit(
        lm, TASK)
    assert ft.diverged_ and not ft.finished_ and ft.steps_done_ < 30
    assert all(math.isfinite(x) for x in ft.losses_)  # the non-finite loss is not recorded


def test_an_update_with_nan_is_reported_without_a_spectrum(models):
    lm = models("gpt2")
    tuned, _ = adapted_copy(lm, FinetuneConfig(method="full"))
    deltas = D.deltas(lm, tuned)
    first = next(iter(deltas))
    deltas[first] = deltas[first].clone().fill_(float("nan"))
    report = {m.name: m for m in D.diff_report(lm, deltas)}  # no LinAlgError
    assert not report[first].finite and report[first].singular_values.size == 0
    assert all(m.finite for name, m in report.items() if name != first)
    overlaps = D.overlaps(lm, deltas, D.deltas(lm, tuned), k=2)
    assert math.isnan(overlaps[first][0]) and not math.isnan(overlaps[first][2])


def test_config_rejects_bad_settings():
    with pytest.raises(ValueError, match="method"):
        FinetuneConfig(method="dora")
    with pytest.raises(ValueError, match="at least one"):
        FinetuneConfig(roles=())
    with pytest.raises(ValueError, match="Unknown roles"):
        FinetuneConfig(roles=("embed",))
    with pytest.raises(ValueError, match="replay"):
        FinetuneConfig(replay=1.0)
    for bad in (dict(rank=0), dict(steps=0), dict(batch=0), dict(lr=float("nan")), dict(alpha=-1.0),
                dict(rank=10**6), dict(eval_every=-1)):
        with pytest.raises(ValueError):
            FinetuneConfig(**bad)
