"""A training run's settings, checked before anything is built, and what the run will cost.

`problems(settings)` lists every setting that cannot work, each as a sentence that says what to
change: a d_model that does not split into the heads, a learning rate that is NaN, infinite or not
positive, a task that cannot be built (an empty custom task), a run that would not fit this server's
time or memory budget for one session. Nothing is allocated before the list is empty.

The time a run takes is estimated from its arithmetic: a training step costs about 6 floating-point
operations per parameter per token (forward and backward) plus the attention scores (6 per layer,
per token, per earlier token, per d_model), done at THROUGHPUT_FLOPS on one thread, plus a fixed
STEP_OVERHEAD_S of Python and optimizer work per step. Each logged step adds a forward pass (2 per
parameter per token) over the held-out data and the head-score probes. The constants were fitted to
the CPU time of one torch thread on this machine (benchmarks/bench_training.py); they overestimate
big models rather than underestimate small ones. On a busy server the wall time is longer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from core.interp.training.architecture import ModelSettings
from core.interp.training.metrics import probe_half_len
from core.interp.training.tasks import GRAMMAR_FAMILIES, TEST_SEQS, TaskError, TaskSettings, build_task

MAX_LAYERS, MAX_HEADS, MIN_D_MODEL, MAX_D_MODEL = 3, 16, 8, 256
MAX_N_CTX, MAX_BATCH, MAX_STEPS, MAX_VOCAB, MAX_P = 128, 4096, 50_000, 1_000, 127
MAX_LR, MAX_WEIGHT_DECAY = 1.0, 10.0
TIME_BUDGET_S = 600.0  # one run may take at most this long on one thread (estimated)
MAX_LOGGED_STEPS = 500  # measurements one run may keep (a log of 500 is a few tens of MB at most)
THROUGHPUT_FLOPS = 5e10  # floating-point operations per second on one thread (fitted, CPU time)
STEP_OVERHEAD_S = 0.008  # Python, autograd bookkeeping and AdamW per step (fitted)
MEASURE_OVERHEAD_S = 0.05  # copying the model and the Python around one logged step's measurements
PROBE_TOKENS = 2 * 32 * 49 + 13  # head scores and ICL probe (32 x BOS + 24 + 24 each) and the snapshot
BYTES_PER_FLOAT = 4


@dataclass(frozen=True)
class TrainSettings:
    task: TaskSettings = TaskSettings()
    model: ModelSettings = ModelSettings()
    lr: float = 3e-3
    weight_decay: float = 0.01
    batch: int = 64
    steps: int = 1500
    seed: int = 0
    log_every: int = 50
    grad_clip: float | None = 1.0  # None: no clipping
    betas: tuple[float, float] = (0.9, 0.98)

    def with_changes(self, **changes) -> TrainSettings:
        return replace(self, **changes)

    def describe(self) -> str:
        return (f"{self.task.describe()}; {self.model.describe()}; AdamW lr {self.lr:g}, weight decay "
                f"{self.weight_decay:g}, batch {self.batch}, {self.steps:,} steps, seed {self.seed}")


def _finite(x) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _model_problems(m: ModelSettings) -> list[str]:
    out = []
    if not 1 <= m.n_layers <= MAX_LAYERS:
        out.append(f"Layers must be 1 to {MAX_LAYERS} (got {m.n_layers}).")
    if not 1 <= m.n_heads <= MAX_HEADS:
        out.append(f"Heads must be 1 to {MAX_HEADS} (got {m.n_heads}).")
    if not MIN_D_MODEL <= m.d_model <= MAX_D_MODEL:
        out.append(f"d_model must be {MIN_D_MODEL} to {MAX_D_MODEL} (got {m.d_model}).")
    elif m.n_heads >= 1 and m.d_model % m.n_heads:
        lower = m.d_model - m.d_model % m.n_heads
        out.append(f"d_model {m.d_model} does not split into {m.n_heads} heads: each head gets d_model / "
                   f"heads dimensions, so d_model must be a multiple of the number of heads (for "
                   f"example {lower} or {lower + m.n_heads}).")
    elif m.positions == "rotary" and m.d_head % 2:
        out.append(f"Rotary positions rotate pairs of dimensions, so each head needs an even size; "
                   f"d_model {m.d_model} / {m.n_heads} heads = {m.d_head}. Change d_model or heads.")
    if m.positions not in ("learned", "rotary", "none"):
        out.append(f"Unknown positional scheme {m.positions!r}.")
    return out


def _task_problems(t: TaskSettings) -> list[str]:
    out = []
    if t.kind in ("induction", "fixed_offset", "grammar", "custom") and not 8 <= t.n_ctx <= MAX_N_CTX:
        out.append(f"Sequence length must be 8 to {MAX_N_CTX} tokens (got {t.n_ctx}).")
    if t.kind in ("induction", "fixed_offset") and not 2 <= t.vocab <= MAX_VOCAB:
        out.append(f"The number of symbols must be 2 to {MAX_VOCAB} (got {t.vocab}).")
    if t.kind == "induction":
        if not 2 <= t.min_segment <= t.max_segment:
            out.append(f"The copied segment's length must be a range from at least 2 tokens "
                       f"(got {t.min_segment} to {t.max_segment}).")
        elif 1 + 2 * t.max_segment > t.n_ctx:
            out.append(f"A segment of {t.max_segment} tokens and its copy need {1 + 2 * t.max_segment} "
                       f"tokens with BOS; the sequences are {t.n_ctx}. Lengthen them or shorten the segment.")
    if t.kind == "fixed_offset":
        if not (2 <= t.period and 1 + 2 * t.period <= t.n_ctx):
            out.append(f"The fixed segment ({t.period} tokens) and its copy must fit in {t.n_ctx} tokens "
                       "with BOS, and be at least 2 tokens long.")
        elif t.period == probe_half_len(t.n_ctx):
            out.append(f"With {t.n_ctx} tokens the page tests copying at a distance of {t.period}; a fixed "
                       f"distance of {t.period} too would hide whether the model copies by position. "
                       "Pick another segment length.")
    if t.kind == "modular_addition":
        if not 3 <= t.p <= MAX_P:
            out.append(f"The modulus p must be 3 to {MAX_P} (got {t.p}).")
        elif not _finite(t.train_fraction) or not 0 < t.train_fraction < 1:
            out.append("The training share of the pairs must be between 0 and 1 (both excluded).")
        elif round(t.train_fraction * t.p ** 2) < 1 or round(t.train_fraction * t.p ** 2) >= t.p ** 2:
            out.append(f"With p = {t.p}, a share of {t.train_fraction:g} leaves no training or no test pair.")
    if t.kind == "grammar" and (not t.families or set(t.families) - set(GRAMMAR_FAMILIES)):
        out.append(f"Pick at least one of the grammar's families: {', '.join(GRAMMAR_FAMILIES)}.")
    return out


def problems(s: TrainSettings, *, memory_budget_bytes: float | None = None) -> list[str]:
    """Everything wrong with these settings, as sentences; [] means the run can start."""
    out = _model_problems(s.model) + _task_problems(s.task)
    if not _finite(s.lr) or not 0 < float(s.lr) <= MAX_LR:
        out.append(f"The learning rate must be a number above 0 and at most {MAX_LR:g} (got {s.lr}).")
    if not _finite(s.weight_decay) or not 0 <= float(s.weight_decay) <= MAX_WEIGHT_DECAY:
        out.append(f"Weight decay must be a number from 0 to {MAX_WEIGHT_DECAY:g} (got {s.weight_decay}).")
    if not 1 <= s.batch <= MAX_BATCH:
        out.append(f"The batch must be 1 to {MAX_BATCH} sequences (got {s.batch}).")
    if not 1 <= s.steps <= MAX_STEPS:
        out.append(f"Steps must be 1 to {MAX_STEPS:,} (got {s.steps:,}).")
    if not 1 <= s.log_every <= max(1, s.steps):
        out.append(f"Log every 1 to {s.steps:,} steps (got {s.log_every}).")
    elif s.steps // s.log_every > MAX_LOGGED_STEPS:
        out.append(f"This run would be measured {s.steps // s.log_every:,} times; at most {MAX_LOGGED_STEPS} "
                   f"measurements are kept (each holds every head's scores and attention). Measure every "
                   f"{-(-s.steps // MAX_LOGGED_STEPS):,} steps or more.")
    if out:
        return out
    try:
        task = build_task(s.task)
    except TaskError as err:
        return [str(err)]
    cost = run_cost(s, task)
    if cost.seconds > TIME_BUDGET_S:
        out.append(f"This run would take about {cost.seconds / 60:,.0f} minutes on one thread; one run here "
                   f"may take at most {TIME_BUDGET_S / 60:.0f}. Use fewer steps, a smaller batch or a "
                   "smaller model.")
    if memory_budget_bytes is not None and cost.bytes > memory_budget_bytes:
        out.append(f"This run would need about {cost.bytes / 1e6:,.0f} MB, over the "
                   f"{memory_budget_bytes / 1e6:,.0f}"
                   " MB this session may use. Use a smaller batch, shorter sequences or a smaller model.")
    return out


def run_cost(s: TrainSettings, task):
    """What a run of these settings on this built task costs (the one estimate the checks and the
    session's memory ledger both use)."""
    return estimate(s, task.d_vocab, task.n_ctx, _train_rows(task, s.batch), _measured_tokens(task))


def _train_rows(task, batch: int) -> int:
    """Sequences per step: modular addition's full batch is the whole training split."""
    if task.kind == "modular_addition":
        return min(batch, task.train_pairs.shape[0])
    return batch


def _measured_tokens(task) -> int:
    """Tokens of held-out data one logged step runs through the model (modular addition: both splits)."""
    test = task.test_batch().tokens.numel()
    return test + (task.train_batch().tokens.numel() if task.has_answers else 0)


@dataclass(frozen=True)
class Cost:
    params: int
    seconds: float  # estimated wall time on one thread
    bytes: int  # peak memory: weights, gradients, AdamW state, activations kept for backward


def param_count(m: ModelSettings, d_vocab: int, n_ctx: int) -> int:
    """Parameters of the model these settings build (embeddings, positions, blocks, final norm)."""
    d, L = m.d_model, m.n_layers
    block = 4 * d * d + 4 * d + 2 * d * m.d_mlp + m.d_mlp + d + 4 * d  # attention, MLP, two LayerNorms
    positions = n_ctx * d if m.positions != "rotary" else 0
    embeddings = d_vocab * d * (1 if m.tied else 2)
    return embeddings + positions + L * block + 2 * d


def estimate(s: TrainSettings, d_vocab: int, n_ctx: int, rows: int | None = None,
             test_tokens: int | None = None) -> Cost:
    """Time and memory of a run (see the module docstring for the model of its cost)."""
    m = s.model
    rows = s.batch if rows is None else rows
    tokens = rows * n_ctx
    params = param_count(m, d_vocab, n_ctx)
    flops_per_step = 6 * tokens * params + 6 * tokens * n_ctx * m.d_model * m.n_layers
    n_logs = s.steps // max(1, s.log_every) + 2
    measure_tokens = test_tokens if test_tokens is not None else TEST_SEQS * n_ctx
    measure_flops = 2 * params * (measure_tokens + PROBE_TOKENS)
    seconds = (s.steps * (flops_per_step / THROUGHPUT_FLOPS + STEP_OVERHEAD_S)
               + n_logs * (measure_flops / THROUGHPUT_FLOPS + MEASURE_OVERHEAD_S))
    acts = tokens * (m.n_layers * (12 * m.d_model + 2 * m.d_mlp + 3 * m.n_heads * n_ctx) + 3 * d_vocab)
    weights = 4 * params  # weights, gradients, AdamW's two moments
    return Cost(params, seconds, int(BYTES_PER_FLOAT * (acts + weights)))
