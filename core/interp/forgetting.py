"""Forgetting: what a model could do before fine-tuning, measured again while it learns something new.

Fine-tuning moves weights that every skill shares, so teaching one thing can erase another
("catastrophic forgetting", McCloskey & Cohen 1989). The bundled model's skills are known exactly,
because we wrote its world, so we can watch each one while the new task is learned:

- IOI: "When Mary and John went to the store, John gave a drink to" -> " Mary". Accuracy (the
  right name is the top prediction) and the logit difference logit(IO) - logit(S).
- facts: top-1 accuracy on the world's facts (capitals, animal sounds, colours of things), leaving
  out the facts the task deliberately changes.
- induction: copying on BOS + x + x with x random tokens, top-1 accuracy on the second half.
- validation loss: next-token cross-entropy on fresh documents from the original corpus. It moves
  first and most smoothly; a rise means the model got worse at its old world in general.
- task: the share of the task's probes whose target is the top prediction (what we wanted to learn).

A `SkillSuite` is built once per model and task (prompts tokenized up front), then `measure(model)`
runs a few batched forward passes; the fine-tuning loop calls it every few steps, which gives the
forgetting curves. Mitigations to try on the page: mix original data into every batch (replay), or
give LoRA a lower rank; "LoRA Learns Less and Forgets Less" (Biderman et al., 2024) found LoRA
forgets less than full fine-tuning, and learns less.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from core.bundled.datasets import corpus_texts, fact_prompts, induction_tokens, ioi_prompts
from core.interp.finetune_tasks import Task

SKILLS = ("ioi_accuracy", "ioi_logit_diff", "fact_accuracy", "induction_accuracy", "val_loss",
          "task_accuracy")
SKILL_LABELS = {"ioi_accuracy": "IOI accuracy", "ioi_logit_diff": "IOI logit difference",
                "fact_accuracy": "Facts accuracy", "induction_accuracy": "Induction accuracy",
                "val_loss": "Validation loss", "task_accuracy": "New task accuracy"}
HIGHER_IS_BETTER = {s: s != "val_loss" for s in SKILLS}


def single_token_id(lm, word: str) -> int | None:
    """The id of a one-token word (" Mary"), or None if it is several tokens or unknown."""
    ids = lm.to_tokens(word, prepend_bos=False)[0]
    unk = lm.tokenizer.unk_token_id
    if len(ids) != 1 or (unk is not None and int(ids[0]) == unk):
        return None
    return int(ids[0])


@dataclass(frozen=True)
class NextTokenSet:
    """Prompts tokenized once: tokens [batch, pos] right-padded, lengths [batch], answer ids."""

    tokens: torch.Tensor
    lengths: torch.Tensor
    answers: torch.Tensor  # [batch]
    others: torch.Tensor | None = None  # [batch] a competing answer (IOI: the subject)

    @classmethod
    def build(cls, lm, prompts: list[str], answers: list[str], others: list[str] | None = None):
        """Keep only the prompts whose answers are single known tokens for this model."""
        keep, a_ids, o_ids = [], [], []
        for i, (prompt, answer) in enumerate(zip(prompts, answers, strict=True)):
            a = single_token_id(lm, answer)
            o = single_token_id(lm, others[i]) if others else 0
            if a is not None and o is not None:
                keep.append(prompt)
                a_ids.append(a)
                o_ids.append(o)
        if not keep:
            return None
        tokens, lengths = lm.tokenize_batch(keep)
        return cls(tokens, lengths, torch.tensor(a_ids),
                   torch.tensor(o_ids) if others else None)

    def last_logits(self, model) -> torch.Tensor:
        """Logits of the token after each prompt: [batch, d_vocab]."""
        mask = (torch.arange(self.tokens.shape[1])[None] < self.lengths[:, None]).long()  # [batch, pos]
        logits = model(input_ids=self.tokens, attention_mask=mask, use_cache=False).logits
        return logits[torch.arange(len(self.lengths)), self.lengths - 1].float()

    def accuracy(self, model) -> float:
        return float((self.last_logits(model).argmax(-1) == self.answers).float().mean())


def pack_rows(lm, texts: list[str] | tuple[str, ...], seq_len: int) -> torch.Tensor:
    """Documents (each BOS + text) packed end to end into rows [n_rows, seq_len]; a document that
    does not fit is cut, and the next row starts with a fresh one (as core.bundled.corpus does)."""
    rows, row = [], []
    for text in texts:
        ids = lm.to_tokens(text)[0].tolist()
        row += ids[: seq_len - len(row)]
        if len(row) == seq_len:
            rows.append(row)
            row = []
    if not rows:
        raise ValueError(f"Not enough text to fill one row of {seq_len} tokens")
    return torch.tensor(rows, dtype=torch.long)


@dataclass(frozen=True)
class SkillSuite:
    """Every skill's data for one model and task; `measure(model)` scores a transformers model."""

    ioi: NextTokenSet | None
    facts: NextTokenSet | None
    induction: torch.Tensor | None  # [batch, 1 + 2 * half_len]
    validation: torch.Tensor  # [batch, seq_len]
    task: NextTokenSet | None

    @classmethod
    def build(cls, lm, task: Task, *, n_ioi: int = 64, n_induction: int = 32, half_len: int = 20,
              n_val_rows: int = 16, seq_len: int = 64, seed: int = 0) -> SkillSuite:
        seq_len = min(seq_len, lm.cfg.n_ctx)
        half_len = min(half_len, (lm.cfg.n_ctx - 1) // 2)
        ioi = ioi_prompts(n_ioi, seed=seed, split="heldout")
        ioi_set = NextTokenSet.build(lm, [p.clean for p in ioi], [p.io for p in ioi], [p.s for p in ioi])
        touched = set(task.touched)
        facts = [f for f in fact_prompts("train")
                 if not touched & set((f.prompt + f.answer).replace(".", " ").split())]
        fact_set = NextTokenSet.build(lm, [f.prompt for f in facts], [f.answer for f in facts])
        bos = lm.tokenizer.bos_token_id
        induction = None
        if bos is not None:
            induction = induction_tokens(n_induction, half_len, seed, vocab_size=len(lm.tokenizer),
                                         bos_id=bos, exclude=lm.tokenizer.all_special_ids)
        texts = corpus_texts(8 * n_val_rows, seed=10_000 + seed)  # seeds the corpus never used
        validation = pack_rows(lm, texts, seq_len)[:n_val_rows]
        task_set = NextTokenSet.build(lm, [p.prompt for p in task.probes], [p.target for p in task.probes])
        return cls(ioi_set, fact_set, induction, validation, task_set)

    @torch.no_grad()
    def measure(self, model) -> dict[str, float]:
        """skill -> value (NaN where this model has no data for it); model is a transformers LM."""
        out = dict.fromkeys(SKILLS, math.nan)
        if self.ioi is not None:
            logits = self.ioi.last_logits(model)  # [batch, d_vocab]
            rows = torch.arange(len(logits))
            out["ioi_accuracy"] = float((logits.argmax(-1) == self.ioi.answers).float().mean())
            diff = logits[rows, self.ioi.answers] - logits[rows, self.ioi.others]
            out["ioi_logit_diff"] = float(diff.mean())
        if self.facts is not None:
            out["fact_accuracy"] = self.facts.accuracy(model)
        if self.induction is not None:
            half = (self.induction.shape[1] - 1) // 2
            logits = model(input_ids=self.induction, use_cache=False).logits
            pred = logits[:, half + 1: -1].argmax(-1)  # position p predicts token p + 1
            out["induction_accuracy"] = float((pred == self.induction[:, half + 2:]).float().mean())
        out["val_loss"] = lm_loss(model, self.validation)
        if self.task is not None:
            out["task_accuracy"] = self.task.accuracy(model)
        return out


def lm_loss(model, rows: torch.Tensor) -> float:
    """Mean next-token cross-entropy of a transformers LM on rows [batch, pos]."""
    logits = model(input_ids=rows, use_cache=False).logits  # [batch, pos, d_vocab]
    return float(F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), rows[:, 1:].flatten()))


@dataclass(frozen=True)
class SkillChange:
    skill: str
    before: float
    after: float

    @property
    def change(self) -> float:
        return self.after - self.before

    @property
    def forgotten(self) -> float:
        """How much worse the skill got (positive = forgotten; the sign follows 'worse')."""
        return -self.change if HIGHER_IS_BETTER[self.skill] else self.change


def summarize(history: list[tuple[int, dict[str, float]]]) -> list[SkillChange]:
    """First vs last measurement of every skill in a history of (step, skills)."""
    if not history:
        return []
    (_, first), (_, last) = history[0], history[-1]
    return [SkillChange(s, first[s], last[s]) for s in SKILLS]
