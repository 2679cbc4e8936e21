"""Training an SAE: hand-written gradients equal autograd, known features are recovered, dead
features are resampled, and the spliced cross-entropy behaves."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.interp.sae.data import collect_activations, split, synthetic_activations
from core.interp.sae.features import attribute_token_ids, max_cosine
from core.interp.sae.loss import manual_gradients, training_loss
from core.interp.sae.model import SAE, SAEConfig, perfect_sae
from core.interp.sae.report import report
from core.interp.sae.splice import SpliceEvaluator, splice_losses
from core.interp.sae.train import BF16_TOLERANCE, SAETrainer, TrainConfig, sweep_configs
from core.models import act_name, load_model
from core.models.dtype import fastest_matmul_dtype

ROOT = Path(__file__).resolve().parents[2]


def _sae(arch: str, seed: int = 0) -> SAE:
    sae = SAE(SAEConfig(16, 48, arch, k=6 if arch == "topk" else 0), seed=seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        sae.b_enc.copy_(0.2 * torch.randn(48, generator=gen))
        sae.b_dec.copy_(torch.randn(16, generator=gen))
        sae.W_enc.add_(0.3 * torch.randn(16, 48, generator=gen))
    return sae


@pytest.mark.parametrize("arch", ["relu", "topk"])
def test_hand_written_gradients_equal_autograd(arch):
    sae = _sae(arch)
    with torch.no_grad():  # free decoder rows of different lengths (ReLU training has them)
        sae.W_dec.mul_(torch.linspace(0.1, 2.0, 48)[:, None])
    x = torch.randn(128, 16, generator=torch.Generator().manual_seed(5)) * 2
    l1 = 0.3 if arch == "relu" else 0.0
    grads, stats = manual_gradients(sae, x, l1, bf16=False)
    loss = training_loss(sae, x, l1)
    loss.backward()
    assert stats["loss"] == pytest.approx(loss.item(), rel=1e-5)
    for name, p in sae.named_parameters():
        mine, ref = grads[name], p.grad
        assert torch.allclose(mine, ref, atol=1e-5, rtol=1e-4), (name, (mine - ref).abs().max())
        assert mine.is_contiguous(), name  # fused Adam on CPU silently misreads strided grads
        assert ref.abs().max() > 1e-3  # a real gradient, not two zeros


def test_bfloat16_gradients_point_the_same_way():
    sae = _sae("relu")
    x = torch.randn(512, 16, generator=torch.Generator().manual_seed(6))
    exact, _ = manual_gradients(sae, x, 0.3, bf16=False)
    fast, _ = manual_gradients(sae, x, 0.3, bf16=True)
    for name in exact:
        cos = torch.nn.functional.cosine_similarity(exact[name].flatten(), fast[name].flatten(), dim=0)
        assert cos > 0.99, (name, cos)


def test_the_sae_code_never_changes_the_process_thread_count(tiny_model_dir, monkeypatch):
    # torch's thread count is process-wide: the app sets it once (ui.common.models); a request that
    # switched it would change every other session's forward passes too.
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", lambda n: calls.append(n))
    lm = load_model(str(tiny_model_dir("gpt2")))
    texts = ["the cat sat on the mat .", "Mary gave a red ball to John", "the dog ran home"] * 4
    hook = act_name("resid_post", 0)
    train, heldout = split(collect_activations(lm, texts, hook), 0.7)
    trainer = SAETrainer(TrainConfig(expansion=2, steps=20, batch_size=16, log_every=10),
                         hook_name=hook).fit(train.acts)
    r = report(trainer.sae_, heldout, attribute_token_ids(lm, {"colours": (" red",)}), lm.cfg.d_vocab,
               splice=SpliceEvaluator(lm, hook, *lm.tokenize_batch(texts[:2])))
    assert calls == []
    assert trainer.steps_done_ == 20 and r.recon.l0 >= 0 and r.splice is not None


@pytest.mark.parametrize(("arch", "settings"), [("relu", {"l1_coefficient": 2.0, "steps": 1000}),
                                                ("topk", {"k": 3, "steps": 400})])
def test_sae_recovers_known_sparse_features(arch, settings):
    data = synthetic_activations(20_000, 16, 32, p_active=0.05, seed=7)  # 1.6 features per row
    config = TrainConfig(expansion=4, architecture=arch, lr=1e-2, batch_size=256, seed=0, **settings)
    untrained = max_cosine(SAE(SAEConfig(16, 64), seed=0).W_dec, data.features)
    trainer = SAETrainer(config).fit(data.acts)
    recovered = max_cosine(trainer.sae_.W_dec, data.features)  # [32]
    assert untrained.mean() < 0.6  # random directions are far from the bar
    assert recovered.mean() > 0.9, recovered.mean()
    assert torch.allclose(trainer.sae_.W_dec.norm(dim=1), torch.ones(64), atol=1e-4)
    last = trainer.history_[-1]
    assert last.step == settings["steps"] and last.explained_variance > 0.75
    assert last.l0 <= (3 if arch == "topk" else 8)


def test_normalisation_is_folded_back_so_the_sae_reads_raw_activations():
    data = synthetic_activations(20_000, 16, 32, p_active=0.05, seed=1)
    raw = data.acts * 250.0  # a residual stream with a large norm
    trainer = SAETrainer(TrainConfig(expansion=4, l1_coefficient=0.2, steps=300, batch_size=256,
                                     lr=4e-3)).fit(raw)
    assert trainer.scale_ == pytest.approx(4 / raw.norm(dim=1).mean().item(), rel=1e-4)
    x = raw[:2000]
    ev = 1 - (trainer.sae_(x) - x).pow(2).sum() / (x - x.mean(0)).pow(2).sum()
    assert ev > 0.8


@pytest.mark.parametrize("arch", ["relu", "topk"])
def test_dead_features_are_resampled_towards_badly_reconstructed_inputs(arch):
    data = synthetic_activations(5000, 16, 32, seed=2)
    trainer = SAETrainer(TrainConfig(expansion=4, steps=10, batch_size=256, architecture=arch, k=8))
    trainer._start(data.acts)
    sae = trainer._sae
    dead = torch.arange(0, 64, 2)
    with torch.no_grad():
        sae.b_enc[dead] = -1e4  # these can never fire
    trainer._step(0)  # creates the optimiser state
    trainer._since_fired[dead] = 10_000
    trainer._resample()
    x = data.acts[:2000] * trainer.scale_
    fires = (sae.encode(x) > 0).any(0)
    assert fires[dead].float().mean() > (0.9 if arch == "relu" else 0.3)
    # new rows are as long as the living ones: 1 for TopK, the free rows' mean for ReLU
    alive_norm = sae.W_dec[1::2].norm(dim=1).mean()
    assert torch.allclose(sae.W_dec[dead].norm(dim=1), alive_norm.expand(len(dead)), rtol=1e-4)
    state = trainer._opt.state[sae.W_dec]
    assert state["exp_avg"][dead].abs().max() == 0 and state["exp_avg"][1::2].abs().max() > 0
    assert (trainer._since_fired[dead] == 0).all()


def test_progress_can_stop_training_early_and_keep_the_sae():
    data = synthetic_activations(5000, 16, 32, seed=3)
    seen = []

    def progress(trainer, point):
        seen.append(point.step)
        return point.step < 40

    trainer = SAETrainer(TrainConfig(expansion=2, steps=200, batch_size=128, log_every=20)).fit(
        data.acts, progress=progress)
    assert trainer.stopped_ and trainer.steps_done_ == 40 and seen == [20, 40]
    assert trainer.sae_.cfg.d_sae == 32


def test_sweep_configs_vary_only_the_sparsity_setting():
    base = TrainConfig(architecture="topk", k=8, steps=77)
    configs = sweep_configs(base, [2, 4])
    assert [c.k for c in configs] == [2, 4] and all(c.steps == 77 for c in configs)
    assert [c.l1_coefficient for c in sweep_configs(TrainConfig(), [0.5, 2])] == [0.5, 2.0]


def test_spliced_losses_of_a_perfect_sae_equal_the_clean_loss(tiny_model_dir):
    lm = load_model(str(tiny_model_dir("gpt2")))
    tokens, lengths = lm.tokenize_batch(["the cat sat on the mat .", "Mary gave a red ball to John"])
    hook = act_name("resid_post", 0)
    losses = splice_losses(lm, perfect_sae(lm.cfg.d_model, hook), tokens, lengths)
    assert losses.spliced == pytest.approx(losses.clean, abs=1e-5)
    assert abs(losses.zero - losses.clean) > 0.05  # zeroing the stream matters (random model)
    assert losses.recovered == pytest.approx(1.0, abs=1e-4)
    # a useless SAE recovers much less
    bad = SAE(SAEConfig(lm.cfg.d_model, 64, hook_name=hook), seed=1)
    with torch.no_grad():
        bad.b_enc.fill_(-100.0)  # never fires: it reconstructs only b_dec = 0, like zero-ablation
    assert splice_losses(lm, bad, tokens, lengths).recovered == pytest.approx(0.0, abs=1e-4)


def _heldout_loss(sae: SAE, x: torch.Tensor, l1: float, scale: float) -> float:
    """The training objective on held-out rows, in the normalised units training used."""
    with torch.no_grad():
        f = sae.encode(x)  # the SAE reads raw activations
        mse = (sae.decode(f) - x).pow(2).sum(1).mean() * scale**2
        return float(mse + l1 * (f * sae.W_dec.norm(dim=1)).sum(1).mean() * scale)


def test_bfloat16_training_matches_float32_within_the_stated_tolerance():
    data = synthetic_activations(60_000, 32, 128, p_active=0.02, noise=0.02, seed=4)
    train, held = data.acts[:50_000], data.acts[50_000:]
    losses, evs = {}, {}
    for bf16 in (False, True):
        config = TrainConfig(expansion=8, l1_coefficient=1.0, lr=4e-3, steps=600, batch_size=512, bf16=bf16)
        trainer = SAETrainer(config).fit(train)
        assert trainer.bf16_ is bf16
        losses[bf16] = _heldout_loss(trainer.sae_, held, 1.0, trainer.scale_)
        evs[bf16] = 1 - float((trainer.sae_(held) - held).pow(2).sum() / (held - held.mean(0)).pow(2).sum())
    assert abs(losses[True] - losses[False]) <= BF16_TOLERANCE * losses[False], losses
    assert abs(evs[True] - evs[False]) < 0.02 and evs[False] > 0.8, evs
    # and the comparison can fail: a run with a tenth of the steps is far outside the tolerance
    short = SAETrainer(TrainConfig(expansion=8, l1_coefficient=1.0, lr=4e-3, steps=60, batch_size=512,
                                   bf16=False)).fit(train)
    gap = abs(_heldout_loss(short.sae_, held, 1.0, short.scale_) - losses[False])
    assert gap > BF16_TOLERANCE * losses[False]


def test_the_matmul_format_is_chosen_by_measuring_unless_set():
    data = synthetic_activations(2000, 16, 32, seed=5)
    measured = SAETrainer(TrainConfig(expansion=2, steps=5, batch_size=64)).fit(data.acts)
    choice = fastest_matmul_dtype()
    assert measured.bf16_ == choice.use_bf16 and measured.dtype_choice_ == choice
    assert measured.dtype_reason() == choice.reason() and "GFLOP/s" in measured.dtype_reason()
    for bf16, words in ((False, "float32"), (True, "bfloat16")):
        fixed = SAETrainer(TrainConfig(expansion=2, steps=5, batch_size=64, bf16=bf16)).fit(data.acts)
        assert fixed.bf16_ is bf16 and fixed.dtype_choice_ is None
        assert fixed.dtype_reason() == f"Matrix products ran in {words}, as set (bf16={bf16})."


def test_the_splice_evaluator_runs_one_forward_pass_per_sae(tiny_model_dir, monkeypatch):
    lm = load_model(str(tiny_model_dir("gpt2")))
    tokens, lengths = lm.tokenize_batch(["the cat sat on the mat .", "Mary gave a red ball to John"])
    hook = act_name("resid_post", 0)
    perfect = perfect_sae(lm.cfg.d_model, hook)
    evaluator = SpliceEvaluator(lm, hook, tokens, lengths)
    reference = splice_losses(lm, perfect, tokens, lengths)
    passes = []
    forward = type(lm).forward
    monkeypatch.setattr(type(lm), "forward", lambda self, *a, **k: passes.append(1) or forward(self, *a, **k))
    assert evaluator(perfect) == reference
    assert len(passes) == 1
    reused = SpliceEvaluator(lm, hook, tokens, lengths, baseline=(reference.clean, reference.zero))
    assert reused(perfect) == reference and len(passes) == 2  # a given baseline costs no pass
