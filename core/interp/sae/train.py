"""Training an SAE, and the numbers that say whether it is any good.

Each step takes a batch of activations x and does gradient descent (Adam) on

    loss = mean over tokens of |x - x_hat|^2  +  l1_coefficient x mean over tokens of sum_i f_i |W_dec[i]|

(for TopK the second term is absent: sparsity is built into the activation function). Why the
|W_dec[i]| in the penalty? Without it the SAE could dodge the L1 term by shrinking f_i and growing
W_dec[i]. There are two cures, and they describe the same optimum:
- keep every decoder row at unit length (after each step, and remove the part of the gradient
  that would only change the length first): TopK training does this, as in "Towards
  Monosemanticity" and Gao et al.;
- let the rows have any length but weigh each feature's L1 by it: ReLU training does this (as
  SAELens and Anthropic's 2024 update do), starting from short rows (length 0.1) and the encoder
  equal to the decoder transposed, which trains faster. At the end `fold_W_dec_norm` moves the
  lengths into the encoder, so every saved SAE has unit decoder rows.
Other details that matter in practice:
- Activations are first scaled so their average length is sqrt(d_in); then one L1 coefficient means
  about the same at any layer of any model. The scale is folded back into the biases at the end,
  so the saved SAE reads raw activations.
- The L1 coefficient ramps up from 0 over the first steps (l1_warmup), the learning rate decays to
  0 over the last ones (lr_decay), and gradients are clipped to norm 1.
- Dead features (silent for dead_window steps) are resampled a few times (resample_at): each is
  pointed at an input the SAE reconstructs badly, with a small encoder weight, and its Adam state
  is reset ("Towards Monosemanticity", 2023).
- The backward pass is written by hand (five matrix products, see sae.loss). The products run in
  bfloat16 where that measured faster on this CPU (core.models.dtype: about 6x faster with AMX,
  slower without it), else in float32; the weights, Adam's state and the sums stay float32. Trained
  in bfloat16, the held-out loss stays within BF16_TOLERANCE of float32's (tested).

The metrics: MSE (|x - x_hat|^2 per token, raw scale); explained variance, 1 - MSE / variance of x,
where 1 is perfect; L0, the number of active features per token; the dead fraction; and, best of
all, what the model thinks of the reconstruction (see sae_splice).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from core.interp.sae.loss import manual_gradients
from core.interp.sae.model import SAE, SAEConfig
from core.interp.sae.splice import SpliceLosses
from core.models.dtype import DtypeChoice, autocast_bf16, fastest_matmul_dtype

BF16_TOLERANCE = 0.01  # bfloat16 training: held-out loss within 1% (relative) of float32's


@dataclass(frozen=True)
class TrainConfig:
    expansion: int = 8  # d_sae = expansion x d_in
    architecture: str = "relu"  # "relu" (+ L1) or "topk"
    l1_coefficient: float = 1.0
    k: int = 16
    lr: float = 1e-3
    steps: int = 1000
    batch_size: int = 4096
    seed: int = 0
    bf16: bool | None = None  # None: bfloat16 products where they measured faster (core.models.dtype)
    l1_warmup: float = 0.05  # fraction of the steps over which the L1 coefficient ramps up
    lr_decay: float = 0.2  # fraction of the steps at the end over which lr decays linearly to 0
    decoder_init_norm: float = 0.1  # ReLU: starting length of the (free) decoder rows
    grad_clip: float = 1.0
    resample_at: tuple[float, ...] = (0.2, 0.4)  # when to resample dead features (fractions)
    dead_window: int = 100  # steps without firing after which a feature counts as dead
    normalize: bool = True
    log_every: int = 20  # steps between TrainPoints (and progress calls)
    eval_every: int = 5  # TrainPoints between spliced-loss evaluations (when an evaluator is given)


@dataclass(frozen=True)
class TrainPoint:
    step: int
    tokens_seen: int
    loss: float
    mse: float
    explained_variance: float
    l0: float
    dead_fraction: float
    splice: SpliceLosses | None = None


class SAETrainer:
    """Train an SAE on activations [n, d_in]; scikit-learn style: fit() returns self.

    Learned: sae_ (reads raw activations), history_ (TrainPoints), scale_ (the normalisation),
    steps_done_, stopped_ (progress asked to stop), seconds_, acts_per_second_, bf16_ (the matrix
    products ran in bfloat16) and dtype_choice_ (the measurement behind it; None when set by hand).
    """

    def __init__(self, config: TrainConfig = TrainConfig(), *, hook_name: str = "",
                 model_spec: str = ""):
        self.config, self.hook_name, self.model_spec = config, hook_name, model_spec

    # -- the public loop --------------------------------------------------------------------------
    def fit(self, acts: torch.Tensor, *, progress: Callable[[SAETrainer, TrainPoint], bool | None]
            | None = None, evaluate: Callable[[SAE], SpliceLosses] | None = None) -> SAETrainer:
        """Train for config.steps steps. progress(trainer, point) is called every log_every steps
        and may return False to stop early; evaluate(sae) adds spliced losses every eval_every logs.
        If progress raises (a page being interrupted), call finish() to keep what was learned.
        Runs on the thread count torch is set to (the app sets it once, in ui.common.models)."""
        self._start(acts)
        c = self.config
        self.stopped_ = False
        for step in range(c.steps):
            if step in self._resample_steps:
                self._resample()
            stats = self._step(step)
            self.steps_done_ = step + 1
            if (step + 1) % c.log_every == 0 or step + 1 == c.steps:
                point = self._point(stats, evaluate)
                self.history_.append(point)
                if progress is not None and progress(self, point) is False:
                    self.stopped_ = True
                    break
        return self.finish()

    def dtype_reason(self) -> str:
        """Which format the matrix products ran in, and why (a sentence for the page)."""
        if self.dtype_choice_ is not None:
            return self.dtype_choice_.reason()
        chosen = "bfloat16" if self.bf16_ else "float32"
        return f"Matrix products ran in {chosen}, as set (bf16={self.bf16_})."

    def finish(self) -> SAETrainer:
        """Freeze the current state into sae_ (also after an interrupted fit)."""
        self.sae_ = self.snapshot()
        self.seconds_ = time.perf_counter() - self._t0
        self.acts_per_second_ = self.steps_done_ * self.config.batch_size / max(self.seconds_, 1e-9)
        return self

    def snapshot(self) -> SAE:
        """A copy of the SAE as it is now, reading raw (unscaled) activations."""
        sae = copy.deepcopy(self._sae).eval()
        sae.fold_W_dec_norm()
        sae.fold_activation_scale(self.scale_)
        sae.requires_grad_(False)
        return sae

    # -- internals --------------------------------------------------------------------------------
    def _start(self, acts: torch.Tensor) -> None:
        c = self.config
        if acts.ndim != 2 or len(acts) < 2:
            raise ValueError(f"acts must be [n >= 2, d_in], got {tuple(acts.shape)}")
        d_in = acts.shape[1]
        cfg = SAEConfig(d_in, c.expansion * d_in, c.architecture,
                        k=c.k if c.architecture == "topk" else 0, hook_name=self.hook_name,
                        model_spec=self.model_spec)
        self.dtype_choice_: DtypeChoice | None = fastest_matmul_dtype() if c.bf16 is None else None
        self.bf16_ = autocast_bf16(c.bf16)
        self._t0 = time.perf_counter()
        self._acts = acts.float()
        self.scale_ = 1.0
        if c.normalize:
            self.scale_ = float(math.sqrt(d_in) / self._acts.norm(dim=1).mean().clamp(min=1e-8))
        self._gen = torch.Generator().manual_seed(c.seed)
        self._sae = SAE(cfg, seed=c.seed)
        self._unit_rows = c.architecture == "topk"  # else: free rows, norm-weighted L1
        with torch.no_grad():
            if self._unit_rows:  # TopK: start b_dec at the mean, or k features go to encoding it
                self._sae.b_dec.copy_(self._acts[: 65_536].mean(0) * self.scale_)
            else:  # ReLU: short free rows, b_dec = 0 (as SAELens)
                self._sae.W_dec.mul_(c.decoder_init_norm)
                self._sae.W_enc.copy_(self._sae.W_dec.T)
        self._opt = torch.optim.Adam(self._sae.parameters(), lr=c.lr, betas=(0.9, 0.999), fused=True)
        self._since_fired = torch.zeros(cfg.d_sae, dtype=torch.long)
        self._order, self._cursor = torch.randperm(len(acts), generator=self._gen), 0
        self._resample_steps = {int(f * c.steps) for f in c.resample_at if 0 < f < 1}
        self.history_: list[TrainPoint] = []
        self.steps_done_ = 0

    def _batch(self) -> torch.Tensor:
        n, b = len(self._acts), self.config.batch_size
        if self._cursor + b > n:  # a new epoch, in a new order
            self._order, self._cursor = torch.randperm(n, generator=self._gen), 0
        rows = self._order[self._cursor:self._cursor + b]
        self._cursor += b
        return self._acts.index_select(0, rows) * self.scale_  # [batch, d_in]

    def _coefficients(self, step: int) -> tuple[float, float]:
        c = self.config
        warm = max(1, int(c.l1_warmup * c.steps))
        l1 = c.l1_coefficient * min(1.0, (step + 1) / warm) if c.architecture == "relu" else 0.0
        decay_start = int((1 - c.lr_decay) * c.steps)
        lr = c.lr if step < decay_start else c.lr * (c.steps - step) / max(1, c.steps - decay_start)
        return l1, lr

    def _step(self, step: int) -> dict:
        x = self._batch()
        l1, lr = self._coefficients(step)
        for group in self._opt.param_groups:
            group["lr"] = lr
        sae = self._sae
        log = (step + 1) % self.config.log_every == 0 or step + 1 == self.config.steps
        grads, stats = manual_gradients(sae, x, l1, bf16=self.bf16_, full_stats=log)
        for name, p in sae.named_parameters():
            p.grad = grads[name]
        if self._unit_rows:
            sae.remove_gradient_parallel_to_decoder_directions()
        if self.config.grad_clip:
            torch.nn.utils.clip_grad_norm_(sae.parameters(), self.config.grad_clip)
        self._opt.step()
        if self._unit_rows:
            sae.set_decoder_norm_to_unit_norm()
        self._since_fired += 1
        self._since_fired[stats.pop("fired")] = 0
        return stats

    def _point(self, stats: dict, evaluate) -> TrainPoint:
        s2 = self.scale_ ** 2
        dead = float((self._since_fired >= self.config.dead_window).float().mean())
        splice = None
        if evaluate is not None and len(self.history_) % self.config.eval_every == 0:
            splice = evaluate(self.snapshot())
        return TrainPoint(self.steps_done_, self.steps_done_ * self.config.batch_size,
                          stats["loss"], stats["mse"] / s2, stats["ev"], stats["l0"], dead, splice)

    @torch.no_grad()
    def _resample(self) -> None:
        """Point dead features at badly reconstructed inputs (Towards Monosemanticity, 2023)."""
        dead = (self._since_fired >= self.config.dead_window).nonzero().flatten()
        if len(dead) == 0:
            return
        sae = self._sae
        x = torch.cat([self._batch() for _ in range(4)])  # [4 batch, d_in]
        loss = (sae(x) - x).pow(2).sum(1)  # [4 batch]
        rows = torch.multinomial(loss.pow(2) + 1e-12, len(dead), replacement=len(dead) > len(x),
                                 generator=self._gen)
        direction = x[rows] - sae.b_dec  # [n_dead, d_in]
        direction /= direction.norm(dim=1, keepdim=True).clamp(min=1e-8)
        alive = torch.ones(sae.cfg.d_sae, dtype=torch.bool)
        alive[dead] = False
        enc_norm = sae.W_enc.norm(dim=0)[alive].mean() if alive.any() else torch.tensor(1.0)
        dec_norm = sae.W_dec.norm(dim=1)[alive].mean() if alive.any() else torch.tensor(1.0)
        sae.W_dec[dead] = direction * (1.0 if self._unit_rows else dec_norm)
        sae.W_enc[:, dead] = direction.T * 0.2 * enc_norm
        sae.b_enc[dead] = 0.0
        for p, index in ((sae.W_dec, (dead,)), (sae.W_enc, (slice(None), dead)), (sae.b_enc, (dead,))):
            state = self._opt.state.get(p, {})
            for key in ("exp_avg", "exp_avg_sq"):
                if key in state:
                    state[key][index] = 0.0
        self._since_fired[dead] = 0


def training_bytes(d_in: int, d_sae: int, batch_size: int) -> int:
    """Memory a training run holds besides the activations: float32 weights with their gradients
    and Adam's two moments (4 copies), and about six [batch, d_sae] float32 temporaries per step."""
    params = 2 * d_in * d_sae + d_in + d_sae
    return 4 * (4 * params + 6 * batch_size * d_sae)


def sweep_configs(base: TrainConfig, values: list[float]) -> list[TrainConfig]:
    """One config per sparsity setting: L1 coefficients for ReLU, k for TopK."""
    if base.architecture == "topk":
        return [replace(base, k=int(v)) for v in values]
    return [replace(base, l1_coefficient=float(v)) for v in values]
