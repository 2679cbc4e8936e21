"""The training loop: next-token prediction with AdamW, measured every `log_every` steps.

Each step draws a batch from the task, computes the logits and the next-token cross-entropy on the
positions the task counts (core.models.loss.next_token_loss), backpropagates, clips the gradient
norm (to grad_clip, unless it is None) and takes one AdamW step. Weight decay pulls every matrix
(embeddings included) towards zero by lr * weight_decay of itself per step; it is what makes a
memorising network give way to a general one when modular addition groks. Vectors (biases,
LayerNorm gains) are not decayed.

Before the first step and every `log_every` steps a frozen copy of the model is measured
(core.interp.training.measure) and handed to `on_checkpoint`. Between steps the loop asks
`should_stop()`; a stop (the learner's button, a closed browser) ends the run after the current
step and keeps everything learned so far: the model and a final checkpoint of the step it reached.
A loss that turns NaN or infinite ends the run too (diverged); the log then ends at the last
finite measurement.

The loop never touches Streamlit; it runs in a worker thread (core.interp.training.worker).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch

from core.interp.training.architecture import build_model, frozen_parameters
from core.interp.training.log import Checkpoint, TrainingLog
from core.interp.training.measure import frozen_copy, measure, measures_heads
from core.interp.training.metrics import snapshot_tokens
from core.interp.training.settings import TrainSettings
from core.interp.training.tasks import Task, build_task
from core.models.loss import next_token_loss

Ending = Literal["finished", "stopped", "diverged"]


@dataclass
class TrainedRun:
    """What a run leaves: the model (a plain transformers model), its task, log and how it ended."""

    settings: TrainSettings
    task: Task
    model: torch.nn.Module
    log: TrainingLog
    steps_done: int = 0
    ending: Ending = "finished"
    diverged_at: int | None = None
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def optimizer_for(model, s: TrainSettings) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; weight decay on matrices only."""
    frozen = {id(p) for p in frozen_parameters(model)}
    params = [p for p in model.parameters() if id(p) not in frozen]
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": s.weight_decay},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=s.lr, betas=s.betas)


def train(s: TrainSettings, *, task: Task | None = None, run_id: str = "run",
          on_start: Callable[[TrainingLog], None] | None = None,
          on_checkpoint: Callable[[Checkpoint], None] | None = None,
          on_step: Callable[[int], None] | None = None,
          should_stop: Callable[[], bool] = lambda: False) -> TrainedRun:
    """Train from scratch with settings `s` (already checked by settings.problems)."""
    start = time.perf_counter()
    task = task or build_task(s.task)
    model = build_model(s.model, task.d_vocab, task.n_ctx, s.seed)
    model.train()
    opt = optimizer_for(model, s)
    trainable = [p for group in opt.param_groups for p in group["params"]]
    log = TrainingLog(meta={"settings": s.describe(), "task": s.task.kind, "run_id": run_id,
                            "n_layers": s.model.n_layers, "n_heads": s.model.n_heads,
                            "d_model": s.model.d_model, "d_vocab": task.d_vocab, "n_ctx": task.n_ctx,
                            "log_every": s.log_every, "steps": s.steps})
    run = TrainedRun(s, task, model, log)
    if measures_heads(task):
        log.meta["snapshot_tokens"] = task.tokenizer.convert_ids_to_tokens(
            snapshot_tokens(frozen_copy(model, task, spec=f"{run_id}@tokens"))[0].tolist())
    if on_start is not None:
        on_start(log)

    def record(step: int, train_loss: float | None) -> None:
        lm = frozen_copy(model, task, spec=f"{run_id}@{step}")
        checkpoint = measure(lm, task, step, train_loss, time.perf_counter() - start)
        log.checkpoints.append(checkpoint)
        if on_checkpoint is not None:
            on_checkpoint(checkpoint)

    record(0, None)
    batches = task.batches(s.seed, s.batch)
    recent: list[float] = []
    for step in range(s.steps):
        if should_stop():
            run.ending = "stopped"
            break
        batch = next(batches)
        logits = model(input_ids=batch.tokens, use_cache=False).logits  # [batch, pos, d_vocab]
        loss = next_token_loss(logits, batch.tokens, mask=batch.mask)
        if not math.isfinite(loss.item()):
            run.ending, run.diverged_at = "diverged", step + 1
            recent = []  # nothing finite to report since the last record
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if s.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(trainable, s.grad_clip)
        opt.step()
        recent.append(loss.item())
        run.steps_done = step + 1
        if on_step is not None:
            on_step(run.steps_done)
        if run.steps_done % s.log_every == 0 or run.steps_done == s.steps:
            record(run.steps_done, sum(recent) / len(recent))
            recent = []
    if recent:  # stopped or diverged between logged steps: log where it got to
        record(run.steps_done, sum(recent) / len(recent))
    model.eval()
    run.seconds = time.perf_counter() - start
    log.meta.update(steps_done=run.steps_done, ending=run.ending, seconds=round(run.seconds, 2))
    return run
