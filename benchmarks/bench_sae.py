"""Training an 8x SAE (ReLU + L1) on 500,000 activations of width 128: ours against SAELens.

Both train on the same activation tensor (synthetic: sums of a few of 512 known sparse directions,
plus noise), in batches of 4,096, one pass, with the same settings: Adam (0.9, 0.999), the same
learning rate, L1 coefficient, L1 warm-up and final learning-rate decay, and activations scaled to
an average norm of sqrt(d_in). Neither resamples dead features. SAELens runs its StandardTrainingSAE
through its SAETrainer in float32 (its default), on 1 and on 2 threads, and the faster run counts;
ours runs the hand-written backward pass with bfloat16 matrix products on one thread (what the
page does), and once in float32 for reference.

"Same final loss" is checked with one formula applied to both trained SAEs on held-out rows:
MSE + l1 x sum_i f_i |W_dec[i]|, in the normalised units both trained in (this is SAELens's
objective; ours, with unit decoder rows, is the same number). SAELens comes from
requirements-bench.txt; without it the peer column stays empty.
"""

from __future__ import annotations

import itertools
import os
import time

import torch

from benchmarks import Result
from core.interp.sae.data import synthetic_activations
from core.interp.sae.train import SAETrainer, TrainConfig

N, D_IN, EXPANSION, BATCH = 500_000, 128, 8, 4096
STEPS = N // BATCH  # 122 full batches: one pass
L1, LR, L1_WARMUP, LR_DECAY = 2.0, 4e-3, 0.1, 0.2


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    data = synthetic_activations(N + 20_000, D_IN, 512, p_active=0.01, noise=0.02, seed=0)
    return data.acts[:N].contiguous(), data.acts[N:].contiguous()


def objective(encode, W_dec: torch.Tensor, b_dec: torch.Tensor, x: torch.Tensor, scale: float
              ) -> float:
    """MSE + L1 x sum f |W_dec| in normalised units, for an SAE that reads raw activations."""
    with torch.no_grad():
        f = encode(x)  # [n, d_sae]
        x_hat = f @ W_dec + b_dec
        mse = (x_hat - x).pow(2).sum(1).mean() * scale**2
        sparsity = (f * W_dec.norm(dim=1)).sum(1).mean() * scale
    return float(mse + L1 * sparsity)


def _scale(acts: torch.Tensor) -> float:
    """The normalisation both trainers use: average norm sqrt(d_in)."""
    return D_IN**0.5 / float(acts.norm(dim=1).mean())


def _ours(acts: torch.Tensor, held: torch.Tensor, bf16: bool) -> tuple[float, float]:
    config = TrainConfig(expansion=EXPANSION, l1_coefficient=L1, lr=LR, steps=STEPS,
                         batch_size=BATCH, bf16=bf16, l1_warmup=L1_WARMUP, lr_decay=LR_DECAY,
                         resample_at=(), log_every=STEPS, seed=0)
    start = time.perf_counter()
    trainer = SAETrainer(config).fit(acts)
    seconds = time.perf_counter() - start
    sae = trainer.sae_
    return seconds, objective(sae.encode, sae.W_dec, sae.b_dec, held, _scale(acts))


def _sae_lens_best(acts: torch.Tensor, held: torch.Tensor) -> tuple[float, float, int] | None:
    """SAELens on 1 and on 2 threads: (seconds, loss, threads) of the faster run."""
    runs = []
    for n in (1, 2):
        torch.set_num_threads(n)
        run = _sae_lens(acts, held)
        if run is None:
            return None
        runs.append((*run, n))
    return min(runs)


def _sae_lens(acts: torch.Tensor, held: torch.Tensor) -> tuple[float, float] | None:
    try:
        from sae_lens import StandardTrainingSAE, StandardTrainingSAEConfig
        from sae_lens.config import SAETrainerConfig
        from sae_lens.training.sae_trainer import SAETrainer as LensTrainer
    except ImportError:
        return None
    torch.manual_seed(0)
    sae = StandardTrainingSAE(StandardTrainingSAEConfig(
        d_in=D_IN, d_sae=EXPANSION * D_IN, l1_coefficient=L1,
        l1_warm_up_steps=int(L1_WARMUP * STEPS), normalize_activations="expected_average_only_in",
        dtype="float32", device="cpu"))
    cfg = SAETrainerConfig(total_training_samples=STEPS * BATCH, train_batch_size_samples=BATCH,
                           lr=LR, lr_end=LR, lr_decay_steps=int(LR_DECAY * STEPS), adam_beta1=0.9,
                           adam_beta2=0.999, device="cpu", autocast=False,
                           n_batches_for_norm_estimate=16)
    gen = torch.Generator().manual_seed(0)

    def batches():
        for _ in itertools.count():
            order = torch.randperm(len(acts), generator=gen)
            for i in range(0, len(acts) - BATCH + 1, BATCH):
                yield acts[order[i:i + BATCH]]

    trainer = LensTrainer(cfg, sae, batches())
    start = time.perf_counter()
    trainer.fit()
    seconds = time.perf_counter() - start
    # after fit, SAELens folds its normalisation into the weights: the SAE reads raw activations
    return seconds, objective(sae.encode, sae.W_dec, sae.b_dec, held, _scale(acts))


def run() -> list[Result]:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        acts, held = _data()
        torch.set_num_threads(1)  # ours on one thread, as in the app (ui.common.models, LAB_TORCH_THREADS)
        ours_s, ours_loss = _ours(acts, held, bf16=True)
        fp32_s, fp32_loss = _ours(acts, held, bf16=False)
        peer = _sae_lens_best(acts, held)
    finally:
        torch.set_num_threads(before)
    n = STEPS * BATCH
    load = os.getloadavg()[0]
    note = (f"final loss (held-out, same formula): ours {ours_loss:.3f}, ours fp32 {fp32_loss:.3f}"
            + (f", SAELens {peer[1]:.3f} (its faster run: {peer[2]} threads)" if peer else "")
            + f"; ours fp32 {fp32_s:.2f} s; load average {load:.1f} on {os.cpu_count()} CPUs")
    label = "SAELens" if peer else "SAELens (absent)"
    return [
        Result(f"SAE training, {EXPANSION}x, {n:,} acts x {D_IN}, batch {BATCH}", n / ours_s, "acts/s",
               peer=label, peer_value=None if peer is None else n / peer[0],
               goal=">= 1.5x SAELens, same final loss", note=note),
        Result(f"SAE training time, {EXPANSION}x, {n:,} acts x {D_IN}", ours_s, "s", peer=label,
               peer_value=None if peer is None else peer[0], goal="< 10 s"),
    ]
