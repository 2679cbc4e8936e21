"""What is measured at every logged step, and how.

A training run is watched through a few numbers computed on data the model never trains on:

- head scores: every head's previous-token and induction score (and duplicate-token, first-token),
  computed by the Attention page's own scorer (core.interp.attention.head_scores) on the same data
  it uses (32 sequences of BOS + 24 random tokens + the same 24 again, seed 0), so a number logged
  here is the number the Attention page shows for that checkpoint.
- in-context learning score: on the same repeated random tokens, the mean loss on the repeated
  half minus the mean loss on the first half. The first half is random, so its loss stays near
  log(vocabulary); only a model that reads its own context (an induction head) can predict the
  repeat, so the score falls below zero when in-context learning appears. Olsson et al. (2022) use
  the loss at token 500 minus the loss at token 50 of ordinary text; on repeated random tokens the
  late positions are exactly the ones earlier context predicts.
- attention snapshot: every head's pattern on one short repeated sequence (BOS + 6 tokens + the
  same 6), in whole percent, enough to see the previous-token diagonal and the induction stripe form.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.interp.attention.head_scores import head_scores
from core.models import HookedLM, act_name
from core.world.datasets import induction_tokens

# The Attention page's scoring data (ui.attention.compute: SCORE_SEQS, SCORE_HALF_LEN, SCORE_SEED).
SCORE_SEQS, SCORE_HALF_LEN, SCORE_SEED = 32, 24, 0
LOGGED_KINDS = ("previous_token", "induction", "duplicate_token", "first_token")
SNAPSHOT_HALF_LEN, SNAPSHOT_SEED = 6, 1


def _bos(lm: HookedLM) -> int:
    t = lm.tokenizer
    return t.bos_token_id if t.bos_token_id is not None else t.eos_token_id


def probe_half_len(n_ctx: int, half_len: int = SCORE_HALF_LEN) -> int:
    """The repeated half's length on sequences of n_ctx tokens (head_scores shortens it to fit)."""
    return min(half_len, (n_ctx - 1) // 2)


def repeated_tokens(lm: HookedLM, n: int, half_len: int, seed: int) -> torch.Tensor:
    """[n, 1 + 2 * half_len] BOS + random ids + the same ids: exactly head_scores' data."""
    half_len = probe_half_len(lm.cfg.n_ctx, half_len)
    return induction_tokens(n, half_len, seed, vocab_size=min(lm.cfg.d_vocab, len(lm.tokenizer)),
                            bos_id=_bos(lm), exclude=lm.tokenizer.all_special_ids)


@dataclass(frozen=True)
class IclScore:
    """Mean loss (nats) on the first half and on the repeated half; score = repeated - first."""

    first_half_loss: float
    repeated_half_loss: float

    @property
    def score(self) -> float:
        return self.repeated_half_loss - self.first_half_loss


def icl_score(lm: HookedLM, n: int = SCORE_SEQS, half_len: int = SCORE_HALF_LEN,
              seed: int = SCORE_SEED) -> IclScore:
    """Loss on the repeated half vs the first half of BOS + x + x (see the module docstring)."""
    tokens = repeated_tokens(lm, n, half_len, seed)  # [batch, 1 + 2 * half]
    half = (tokens.shape[1] - 1) // 2
    loss = lm.loss(tokens, per_token=True)  # [batch, pos - 1]; loss[:, i] predicts token i + 1
    # predicting tokens 2 .. half (the first is unpredictable from BOS alone either way) vs the
    # repeated half's tokens half + 2 .. 2 * half (its first token is still a fresh draw)
    first = loss[:, 1:half].mean()
    repeated = loss[:, half + 1:].mean()
    return IclScore(float(first), float(repeated))


def logged_head_scores(lm: HookedLM) -> dict[str, list[list[float]]]:
    """kind -> [layer][head] for LOGGED_KINDS, from the Attention page's scorer and data."""
    result = head_scores(lm, n=SCORE_SEQS, half_len=SCORE_HALF_LEN, seed=SCORE_SEED)
    return {kind: result.scores[kind].tolist() for kind in LOGGED_KINDS}


def snapshot_tokens(lm: HookedLM) -> torch.Tensor:
    """[1, 1 + 2 * SNAPSHOT_HALF_LEN]: the one short sequence every snapshot shows."""
    return repeated_tokens(lm, 1, SNAPSHOT_HALF_LEN, SNAPSHOT_SEED)


def attention_snapshot(lm: HookedLM) -> list:
    """[layer][head][q][k] attention of every head on snapshot_tokens, in whole percent (0-100):
    snapshots are pictures, and integers keep a timeline of them small."""
    tokens = snapshot_tokens(lm)
    names = [act_name("pattern", layer) for layer in range(lm.cfg.n_layers)]
    _, cache = lm.run_with_cache(tokens, names=names)
    stacked = torch.stack([cache[name][0] for name in names])  # [layer, head, q, k]
    return torch.round(stacked.float() * 100).int().tolist()


def head_fields(lm: HookedLM) -> dict:
    """The Checkpoint fields about heads and context: scores, the ICL probe's two losses, snapshot."""
    icl = icl_score(lm)
    return {"scores": logged_head_scores(lm), "snapshot": attention_snapshot(lm),
            "first_half_loss": icl.first_half_loss, "repeated_half_loss": icl.repeated_half_loss}
