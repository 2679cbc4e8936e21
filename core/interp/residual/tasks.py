"""Two tasks with a known answer, for reading the stream against the truth: IOI and induction.

- IOI (indirect object identification): "When Mary and John went to the store, John gave a drink
  to" -> " Mary". The answer is the name that appeared once; the other answer is the repeated name
  (" John"). Prompts come from the bundled world's held-out templates (core.world.datasets).
- Induction: a run of random tokens, then the same run again, cut in the middle of the repeat:
  BOS x1 ... xn x1 ... xk -> x(k+1). Only copying from the first run can predict it. The other
  answer is the current token xk (repeating what you see instead of what came after it last time).

A task set gives token rows (right-padded), the position of the answer's prediction in each row, and
the two answer ids per row, the inputs of the lens and of direct logit attribution. Prompts whose
answers are not single tokens for the model are dropped (only the bundled world's names are
guaranteed single tokens; GPT-2 has most of them).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.world import datasets as D

TASKS = ("ioi", "induction")
TASK_WORDS = {"ioi": "indirect object (IOI)", "induction": "induction (repeated random tokens)"}


@dataclass(frozen=True)
class TaskSet:
    task: str
    tokens: torch.Tensor  # [batch, pos], right-padded
    positions: torch.Tensor  # [batch] where the answer is predicted (the prompt's last token)
    answer_ids: torch.Tensor  # [batch]
    other_ids: torch.Tensor  # [batch]
    answer: str  # what the answer is, in words: "the indirect object (IO name)"
    other: str
    example: str  # the first prompt as text, for the page

    @property
    def n(self) -> int:
        return int(self.tokens.shape[0])


def ioi_set(lm, n: int = 64, seed: int = 0) -> TaskSet:
    prompts = D.ioi_prompts(n, seed=seed, split="heldout")
    keep = [(p, a, b) for p in prompts
            if (a := lm.single_token_id(p.io)) is not None and (b := lm.single_token_id(p.s)) is not None]
    if not keep:
        raise ValueError(f"No IOI prompt has single-token names for {lm.name}.")
    tokens, lengths = lm.tokenize_batch([p.clean for p, _, _ in keep])
    return TaskSet("ioi", tokens, lengths - 1, torch.tensor([a for _, a, _ in keep]),
                   torch.tensor([b for _, _, b in keep]), "the indirect object (IO)",
                   "the repeated subject (S)", keep[0][0].clean)


def induction_set(lm, n: int = 64, half_len: int = 12, cut: int = 6, seed: int = 0) -> TaskSet:
    """BOS + x + x[:cut] -> x[cut] (answer) vs x[cut - 1] (other), x random non-special ids."""
    special = list(lm.tokenizer.all_special_ids)
    bos = lm.to_tokens("")[0, 0]
    full = D.induction_tokens(n * 2, half_len, seed, vocab_size=min(lm.cfg.d_vocab, len(lm.tokenizer)),
                              bos_id=int(bos), exclude=special)  # [2n, 1 + 2 half_len]
    answer, other = full[:, 1 + cut], full[:, cut]
    full = full[answer != other][:n]
    tokens = full[:, : 1 + half_len + cut]  # ends on x[cut - 1], the second time
    return TaskSet("induction", tokens, torch.full((len(tokens),), tokens.shape[1] - 1),
                   full[:, 1 + cut], full[:, cut], "the token after the earlier copy",
                   "the current token", lm.to_string(tokens[0, 1:]))


def task_set(lm, task: str, n: int = 64, seed: int = 0) -> TaskSet:
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, not {task!r}")
    return ioi_set(lm, n, seed) if task == "ioi" else induction_set(lm, n, seed=seed)
