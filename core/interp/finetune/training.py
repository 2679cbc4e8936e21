"""The fine-tuning loop: next-token loss on the task's rows, one optimizer step at a time, the old
skills measured every few steps.

Each step draws `batch` rows of `seq_len` tokens from the task's packed documents (with replay > 0,
that share of the rows comes from the original corpus instead: a classic defence against
forgetting), computes the usual next-token cross-entropy (`lm.loss`, core.models.loss), and takes
one AdamW step on the trainable parameters only: LoRA's A and B, IA3's scales, or every weight.

Matrix products may run in bfloat16 (autocast; weights, gradients and Adam's moments stay float32).
Whether that is faster depends on the CPU (about 6x faster with AMX tiles, slower without), so the
choice is measured (core.models.dtype.autocast_bf16) unless the config says. A big matmul is not the
whole step, though: on the bundled model the matrices are small, and converting activations to
bfloat16 and back can cost more than the faster products save. So when the matmul probe favours
bfloat16, the trainer also times its own step, forward and backward on one batch, in both formats
(`measured_step_bf16`, once per process for each kind of run, the model left unchanged), and keeps
bfloat16 only if that step is faster too (by core.models.dtype.MIN_STEP_SPEEDUP). Its cost in accuracy is
stated and tested: step by step, the training losses of a bfloat16 run stay within
BF16_LOSS_TOLERANCE nats of the float32 run's. On the bundled model, over the page's default 150 steps,
they stayed within 0.004 nats for LoRA and for full fine-tuning; the skills measured at the end
differed by at most one IOI prompt in 64 (LoRA) and two facts in 86 (full fine-tuning).

A callback sees every step (`Progress`) and can stop the run by returning False; whatever was learned
so far is kept. A loss that stops being a finite number ends the run (`diverged_`): the learning rate
was too large for this model.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from core.interp.finetune.config import FinetuneConfig
from core.interp.finetune.forgetting import SkillSuite
from core.interp.finetune.lora import adapted_copy
from core.interp.finetune.packing import cycle_texts, pack_rows
from core.interp.finetune.tasks import Task
from core.models.dtype import autocast_bf16
from core.models.params import count_params
from core.world.datasets import corpus_texts

BF16_LOSS_TOLERANCE = 0.05  # nats: bfloat16 and float32 training losses agree this closely
PROBE_ROUNDS = 2  # rounds of (a block of float32 passes, a block of bfloat16 passes), order alternating
PROBE_STEPS = 3  # timed forward + backward passes per block, after one untimed pass
_STEP_TIMES: dict[tuple, tuple[float, float]] = {}  # kind of run -> (float32 s, bfloat16 s) per step


@dataclass(frozen=True)
class Progress:
    """What the training loop reports after each step (skills only on measuring steps)."""

    step: int  # steps done
    steps: int
    loss: float
    seconds: float
    skills: dict[str, float] | None = None


def _timed_pass(tuned, rows: torch.Tensor, bf16: bool) -> float:
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = tuned.loss(rows, grad=True)
    loss.backward()
    return time.perf_counter() - start


def measured_step_bf16(tuned, rows: torch.Tensor, key: tuple) -> tuple[float, float]:
    """(float32, bfloat16) seconds of one forward and backward pass of `tuned` on rows [batch, pos],
    measured once per process for each `key` (the kind of run). No optimizer step is taken and the
    gradients are cleared: the model is unchanged.

    A run computes in one format from start to end, so the passes are timed in blocks: in each of
    PROBE_ROUNDS rounds, a block per format (the order alternating between rounds), each block one
    untimed pass and then PROBE_STEPS timed ones; the medians of the timed passes. The first pass after
    a switch of format pays for the switch. When it was timed too (formats alternating pass by pass),
    bfloat16 measured 1.11-1.16x faster than float32 on the bundled model's LoRA step (1 thread, 8
    probes); in blocks it measures 1.13-1.19x, and blocks of 15 whole training steps 1.17-1.20x. On 2
    threads both ways measure 0.99-1.08x."""
    if key not in _STEP_TIMES:
        times: dict[bool, list[float]] = {False: [], True: []}
        for round_ in range(PROBE_ROUNDS):
            for bf16 in (True, False) if round_ % 2 == 0 else (False, True):
                _timed_pass(tuned, rows, bf16)  # the switch to this format
                times[bf16] += [_timed_pass(tuned, rows, bf16) for _ in range(PROBE_STEPS)]
        tuned.model.zero_grad(set_to_none=True)
        _STEP_TIMES[key] = (statistics.median(times[False]), statistics.median(times[True]))
    return _STEP_TIMES[key]


def trainable_parameters(model) -> list[torch.nn.Parameter]:
    return list({id(p): p for p in model.parameters() if p.requires_grad}.values())


class FineTuner:
    """Fine-tune a copy of `lm` on a task: FineTuner(cfg).fit(lm, task, suite, callback).

    Fitted attributes: model_ (the tuned HookedLM), peft_model_ (PeftModel, None for full FT),
    losses_ (training loss per step), history_ [(step, skills)], steps_done_, seconds_,
    n_trainable_, bf16_ (whether autocast ran in bfloat16), step_seconds_ ((float32, bfloat16) seconds
    of this run's step, when they were timed to choose), diverged_. They are filled in as training
    goes, so a run interrupted by the user (the callback returns False, or raises) keeps what it
    learned so far; finished_ says whether it ran every step. fit raises
    core.models.budget.MemoryBudgetError, before copying anything, if the copy and its training state,
    next to `held_bytes`, would not fit budget_bytes (None: the session budget).
    """

    def __init__(self, config: FinetuneConfig, budget_bytes: float | None = None, held_bytes: float = 0):
        self.config = config
        self.budget_bytes = budget_bytes
        self.held_bytes = held_bytes

    def _rows(self, lm, task: Task) -> tuple[torch.Tensor, torch.Tensor | None]:
        cfg = self.config
        seq_len = min(cfg.seq_len, lm.cfg.n_ctx)
        task_rows = pack_rows(lm, cycle_texts(task.texts, cfg.train_rows * seq_len, cfg.seed), seq_len)
        if not round(cfg.replay * cfg.batch):
            return task_rows, None
        return task_rows, pack_rows(lm, corpus_texts(cfg.train_rows * 4, seed=cfg.seed), seq_len)

    def fit(self, lm, task: Task, suite: SkillSuite | None = None,
            callback: Callable[[Progress], bool | None] | None = None) -> FineTuner:
        cfg = self.config
        self.losses_: list[float] = []
        self.history_: list[tuple[int, dict[str, float]]] = []
        self.steps_done_, self.seconds_, self.finished_, self.diverged_ = 0, 0.0, False, False
        task_rows, replay_rows = self._rows(lm, task)
        self.model_, self.peft_model_ = adapted_copy(lm, cfg, self.budget_bytes, self.held_bytes)
        model = self.model_.model
        model.train()
        timed: list[tuple[float, float]] = []  # this step in float32 and bfloat16, if it was timed

        def workload() -> tuple[float, float]:  # called only when the matmul probe favours bfloat16
            key = (lm.cfg, cfg.method, cfg.roles, cfg.rank, cfg.batch, task_rows.shape[1],
                   torch.get_num_threads())
            timed.append(measured_step_bf16(self.model_, task_rows[: cfg.batch], key))
            return timed[-1]

        self.bf16_ = autocast_bf16(cfg.bf16, workload=workload)
        self.step_seconds_ = timed[0] if timed else None
        params = trainable_parameters(model)
        self.n_trainable_ = count_params(model, trainable_only=True)
        n_replay = 0 if replay_rows is None else round(cfg.replay * cfg.batch)
        gen = torch.Generator().manual_seed(cfg.seed)
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0, fused=True)  # one kernel per step
        start = time.perf_counter()

        def measure(step: int) -> dict[str, float] | None:
            if suite is None:
                return None
            model.eval()
            skills = suite.measure(self.model_)
            model.train()
            self.history_.append((step, skills))
            return skills

        try:
            model.train()
            measure(0)
            for step in range(1, cfg.steps + 1):
                rows = task_rows[torch.randint(len(task_rows), (cfg.batch - n_replay,), generator=gen)]
                if n_replay:
                    replay = replay_rows[torch.randint(len(replay_rows), (n_replay,), generator=gen)]
                    rows = torch.cat([rows, replay])  # [batch, seq_len]
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16_):
                    loss = self.model_.loss(rows, grad=True)  # mean next-token cross-entropy
                if not math.isfinite(loss.item()):
                    self.diverged_ = True
                    break
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                self.losses_.append(loss.item())
                self.steps_done_ = step
                self.seconds_ = time.perf_counter() - start
                due = step == cfg.steps or (cfg.eval_every and step % cfg.eval_every == 0)
                skills = measure(step) if due else None
                if callback is not None and callback(Progress(step, cfg.steps, self.losses_[-1],
                                                              self.seconds_, skills)) is False:
                    break
            self.finished_ = self.steps_done_ == cfg.steps
        finally:
            model.eval()
            model.requires_grad_(False)
            for p in params:  # the last step's gradients would stay as long as the copy (full FT: its size)
                p.grad = None
            self.seconds_ = time.perf_counter() - start
        return self

    def measure_last(self, suite: SkillSuite) -> None:
        """After a stop between measurements, measure the skills at the step reached."""
        if self.steps_done_ and (not self.history_ or self.history_[-1][0] != self.steps_done_):
            self.history_.append((self.steps_done_, suite.measure(self.model_)))
