"""One logged step: everything the charts show, measured on a frozen copy of the model.

The copy is wrapped as a HookedLM (core.models.loading.wrap), the object every page inspects, so
the head scores logged here are computed exactly as the Attention page computes them
(core.interp.training.metrics). Then, by task:
- test loss: the next-token loss on the task's held-out data (the answer only, for modular
  addition); copy loss: the same on the copied tokens only (induction-type tasks);
- train and test accuracy: how often the model's top guess is the answer (modular addition);
- Fourier sparsity of the number embeddings (modular addition; core.interp.training.fourier);
- head scores, the in-context-learning probe and an attention snapshot for every task whose
  sequences are long enough to hold a repeated sequence (all but modular addition's six tokens).
"""

from __future__ import annotations

import copy

import torch

from core.interp.training.fourier import fourier_power
from core.interp.training.log import Checkpoint
from core.interp.training.metrics import head_fields
from core.interp.training.tasks import Batch, Task
from core.models import HookedLM
from core.models.loading import wrap
from core.models.loss import next_token_loss

MIN_PROBE_CTX = 7  # BOS + 3 + 3: the shortest sequence the repeated-sequence scores make sense on


def frozen_copy(model, task: Task, spec: str, name: str | None = None) -> HookedLM:
    """A HookedLM over a deep copy of `model` (training goes on; the copy stays as it is now)."""
    clone = copy.deepcopy(model)
    clone.requires_grad_(False)
    return wrap(clone, task.tokenizer, spec=spec, name=name)


def measures_heads(task: Task) -> bool:
    return task.n_ctx >= MIN_PROBE_CTX


def _loss(lm: HookedLM, batch: Batch, mask: torch.Tensor | None = None) -> float:
    logits = lm(batch.tokens)  # [batch, pos, d_vocab]
    mask = batch.mask if mask is None else mask
    return float(next_token_loss(logits, batch.tokens, mask=mask))


def answer_accuracy(lm: HookedLM, batch: Batch) -> float:
    """Share of sequences whose top next-token guess at the answer position is the answer."""
    logits = lm(batch.tokens)  # [batch, pos, d_vocab]
    rows = torch.arange(batch.tokens.shape[0])
    guess = logits[rows, batch.answer - 1].argmax(-1)  # [batch]
    return float((guess == batch.tokens[rows, batch.answer]).float().mean())


def measure(lm: HookedLM, task: Task, step: int, train_loss: float | None, elapsed_s: float) -> Checkpoint:
    """The Checkpoint of one logged step (see the module docstring)."""
    fields: dict = {}
    with torch.no_grad():
        test = task.test_batch()
        fields["test_loss"] = _loss(lm, test)
        if test.copy is not None:
            fields["copy_loss"] = _loss(lm, test, mask=test.copy)
        if task.has_answers:
            fields["train_acc"] = answer_accuracy(lm, task.train_batch())
            fields["test_acc"] = answer_accuracy(lm, test)
            fields["fourier_sparsity"] = fourier_power(lm.W_E[task.number_ids()]).sparsity
        if measures_heads(task):
            fields.update(head_fields(lm))
    return Checkpoint(step=step, train_loss=train_loss, elapsed_s=round(elapsed_s, 2), **fields)
