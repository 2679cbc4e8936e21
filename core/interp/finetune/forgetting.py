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

A `SkillSuite` is built once per model and task (it keeps the prompts whose answers are single
tokens for that model, tokenized once), then `measure(lm)` runs four batched forward passes, scoring IOI and
induction exactly as core.world.metrics does for the bundled model's own evaluation. The
fine-tuning loop calls it every few steps, which gives the forgetting curves; the first against
the last measurement, skill by skill, is core.interp.finetune.verdict.SkillDrop. Mitigations to try
on the page: mix original data into every batch (replay), or give LoRA a lower rank; "LoRA Learns
Less and Forgets Less" (Biderman et al., 2024) found LoRA forgets less than full fine-tuning, and
learns less.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from core.interp.finetune.packing import pack_rows
from core.interp.finetune.tasks import Task
from core.world import metrics
from core.world.datasets import IOIPrompt, corpus_texts, fact_prompts, ioi_prompts

SKILLS = ("ioi_accuracy", "ioi_logit_diff", "fact_accuracy", "induction_accuracy", "val_loss",
          "task_accuracy")
SKILL_LABELS = {"ioi_accuracy": "IOI accuracy", "ioi_logit_diff": "IOI logit difference",
                "fact_accuracy": "Facts accuracy", "induction_accuracy": "Induction accuracy",
                "val_loss": "Validation loss", "task_accuracy": "New task accuracy"}
HIGHER_IS_BETTER = {s: s != "val_loss" for s in SKILLS}
ACCURACIES = ("ioi_accuracy", "fact_accuracy", "induction_accuracy", "task_accuracy")  # shares in [0, 1]
OLD_SKILLS = ("ioi_accuracy", "fact_accuracy", "induction_accuracy")  # what the model could do before


@dataclass(frozen=True)
class Top1Set:
    """Prompts whose answer is one known token for this model: prompts, answer ids [batch]."""

    prompts: tuple[str, ...]
    answers: torch.Tensor  # [batch]

    @classmethod
    def build(cls, lm, prompts, answers) -> Top1Set | None:
        """Keep only the prompts whose answers are single known tokens (None if none is left)."""
        ids = [lm.single_token_id(a) for a in answers]
        keep = [(p, i) for p, i in zip(prompts, ids, strict=True) if i is not None]
        if not keep:
            return None
        return cls(tuple(p for p, _ in keep), torch.tensor([i for _, i in keep]))

    def score(self, logits: torch.Tensor) -> float:
        """Share of rows of next-token logits [batch, d_vocab] whose top token is the answer."""
        return float((logits.argmax(-1) == self.answers).float().mean())


@dataclass(frozen=True)
class PromptBatch:
    """Every next-token prompt of a suite, tokenized once: the IOI prompts in one right-padded batch,
    the facts and the task's probes (shorter, similar lengths) in another, so that a measurement is two
    forward passes for all three with little padding. Right padding changes nothing before a row's
    last real token (attention is causal), so each row reads as if it ran alone."""

    ioi: tuple[torch.Tensor, torch.Tensor]  # tokens [n_ioi, pos], lengths [n_ioi]
    short: tuple[torch.Tensor, torch.Tensor]  # the facts' rows, then the task's
    n_facts: int

    @classmethod
    def build(cls, lm, ioi, facts: Top1Set | None, task: Top1Set | None) -> PromptBatch:
        short = (list(facts.prompts) if facts else []) + (list(task.prompts) if task else [])
        return cls(_tokenized(lm, [p.clean for p in ioi]), _tokenized(lm, short),
                   len(facts.prompts) if facts else 0)

    def next_token_logits(self, lm) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(IOI, facts, task) next-token logits [rows, d_vocab] of `lm`, each batch one forward pass."""
        ioi, short = _next_token_logits(lm, *self.ioi), _next_token_logits(lm, *self.short)
        return ioi, short[: self.n_facts], short[self.n_facts:]


def _next_token_logits(lm, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """[rows, d_vocab]: each row's prediction after its last real token (no rows: no forward pass)."""
    if not len(lengths):
        return torch.zeros(0, lm.cfg.d_vocab)
    return metrics.at_last_tokens(lm(tokens), lengths)


def _tokenized(lm, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens [batch, pos] right-padded, lengths [batch]); empty tensors for no texts."""
    if not texts:
        return torch.zeros(0, 1, dtype=torch.long), torch.zeros(0, dtype=torch.long)
    return lm.tokenize_batch(texts)


@dataclass(frozen=True)
class SkillSuite:
    """Every skill's data for one model and task; `measure(lm)` scores a HookedLM (active hooks apply)."""

    ioi: tuple[IOIPrompt, ...]  # held-out prompts whose two names are single known tokens
    facts: Top1Set | None
    induction: tuple[int, int, int] | None  # (n, half_len, seed); None when there is no BOS token
    validation: torch.Tensor  # [batch, seq_len]
    task: Top1Set | None
    prompts: PromptBatch  # the IOI, fact and task prompts, tokenized once
    ioi_answers: tuple[torch.Tensor, torch.Tensor]  # IO and S token ids [n_ioi]
    induction_tokens: torch.Tensor | None  # [n, 1 + 2 half_len]

    @classmethod
    def build(cls, lm, task: Task, *, n_ioi: int = 64, n_induction: int = 32, half_len: int = 20,
              n_val_rows: int = 16, seq_len: int = 64, seed: int = 0) -> SkillSuite:
        seq_len = min(seq_len, lm.cfg.n_ctx)
        half_len = min(half_len, (lm.cfg.n_ctx - 1) // 2)
        ioi = tuple(p for p in ioi_prompts(n_ioi, seed=seed, split="heldout")
                    if lm.single_token_id(p.io) is not None and lm.single_token_id(p.s) is not None)
        ioi_answers = (torch.tensor([lm.single_token_id(p.io) for p in ioi], dtype=torch.long),
                       torch.tensor([lm.single_token_id(p.s) for p in ioi], dtype=torch.long))
        touched = set(task.touched)
        facts = [f for f in fact_prompts("train")
                 if not touched & set((f.prompt + f.answer).replace(".", " ").split())]
        fact_set = Top1Set.build(lm, [f.prompt for f in facts], [f.answer for f in facts])
        induction = None if lm.tokenizer.bos_token_id is None else (n_induction, half_len, seed)
        texts = corpus_texts(8 * n_val_rows, seed=10_000 + seed)  # seeds the corpus never used
        validation = pack_rows(lm, texts, seq_len)[:n_val_rows]
        task_set = Top1Set.build(lm, [p.prompt for p in task.probes], [p.target for p in task.probes])
        prompts = PromptBatch.build(lm, ioi, fact_set, task_set)
        induction_tokens = None if induction is None else metrics.induction_batch(lm, *induction)
        return cls(ioi, fact_set, induction, validation, task_set, prompts, ioi_answers, induction_tokens)

    @torch.no_grad()
    def measure(self, lm) -> dict[str, float]:
        """skill -> value (NaN where this model has no data for it) for the HookedLM `lm`.

        Four forward passes: the IOI prompts, the fact and task prompts, the induction rows, the
        validation rows. IOI and induction are scored by core.world.metrics, the bundled model's own
        evaluation."""
        out = dict.fromkeys(SKILLS, math.nan)
        ioi_logits, fact_logits, task_logits = self.prompts.next_token_logits(lm)
        if self.ioi:
            ioi = metrics.ioi_scores(ioi_logits, *self.ioi_answers)
            out["ioi_accuracy"], out["ioi_logit_diff"] = ioi["accuracy"], ioi["mean_logit_diff"]
        if self.facts is not None:
            out["fact_accuracy"] = self.facts.score(fact_logits)
        if self.induction_tokens is not None:
            tokens, half_len = self.induction_tokens, self.induction[1]
            out["induction_accuracy"] = metrics.induction_score(lm(tokens), tokens, half_len)
        out["val_loss"] = float(lm.loss(self.validation))  # next-token cross-entropy
        if self.task is not None:
            out["task_accuracy"] = self.task.score(task_logits)
        return out
