"""What kind of head is this? Scores read off attention patterns.

An attention head's pattern [q, k] says how much each query position q reads from each key
position k (each row sums to 1). Some heads do the same thing on almost any text, and one number
per head catches each habit. Every score averages the attention on one target key per query, over
the query positions where that target is defined, so it lies in [0, 1]: 1 means the head puts all
its attention on the target every time, 0 means never.

- previous-token: target q - 1. Previous-token heads copy "what came just before me" into each
  position, the first half of an induction circuit.
- current-token: target q itself.
- first-token (BOS): target 0, for q >= 2. Many heads park their attention on the first token when
  they have nothing to do (an "attention sink").
- local window (width w): the attention on the w most recent keys, q - w + 1 .. q. Previous- and
  current-token heads are the narrowest local heads, so they score 1 here as well.
- duplicate-token: on a sequence repeated twice, from a token in the second half to its earlier
  copy, target q - half_len.
- induction: on the same data, from a token in the second half to the token just AFTER its
  earlier copy, target q - half_len + 1. That token is what came next last time, so attending to
  it (and copying it) predicts the next token: "... A B ... A" -> "B" (Olsson et al., 2022,
  "In-context learning and induction heads").

The repeated-sequence scores assume the layout of `induction_tokens`: BOS, then half_len random
tokens, then the same tokens again (length 1 + 2 * half_len). Random tokens make the scores honest:
nothing but copying can explain attention to the earlier copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.models import act_name
from core.world.datasets import induction_tokens

KINDS = ("previous_token", "current_token", "first_token", "local_window", "duplicate_token",
         "induction")


def _as_batch(pattern: torch.Tensor) -> torch.Tensor:
    """Accept [head, q, k] or [batch, head, q, k]; return [batch, head, q, k] in float32."""
    if pattern.ndim == 3:
        pattern = pattern[None]
    if pattern.ndim != 4 or pattern.shape[-1] != pattern.shape[-2]:
        raise ValueError(f"pattern must be [batch, head, pos, pos], got {tuple(pattern.shape)}")
    return pattern.float()


def offset_score(pattern: torch.Tensor, offset: int, q_start: int | None = None) -> torch.Tensor:
    """Mean attention from query q to key q - offset, over q >= q_start; returns [head]."""
    pattern = _as_batch(pattern)
    n = pattern.shape[-1]
    q_start = offset if q_start is None else max(q_start, offset)
    if q_start >= n:
        raise ValueError(f"no query position has a key {offset} back in a length-{n} pattern")
    q = torch.arange(q_start, n)
    return pattern[:, :, q, q - offset].mean(dim=(0, 2))  # [head]


def previous_token_score(pattern: torch.Tensor) -> torch.Tensor:
    """Attention from each token to the one before it; [head]."""
    return offset_score(pattern, 1)


def current_token_score(pattern: torch.Tensor) -> torch.Tensor:
    """Attention from each token to itself (positions >= 1); [head]."""
    return offset_score(pattern, 0, q_start=1)


def first_token_score(pattern: torch.Tensor) -> torch.Tensor:
    """Attention to position 0 (the BOS token) from positions >= 2; [head]."""
    pattern = _as_batch(pattern)
    return pattern[:, :, 2:, 0].mean(dim=(0, 2))


def local_window_score(pattern: torch.Tensor, window: int = 3) -> torch.Tensor:
    """Attention on the `window` most recent keys (including the token itself), q >= window - 1."""
    pattern = _as_batch(pattern)
    return sum(offset_score(pattern, d, q_start=window - 1) for d in range(window))


def _second_half_start(pattern: torch.Tensor, half_len: int) -> int:
    n = pattern.shape[-1]
    if n != 1 + 2 * half_len:
        raise ValueError(f"a repeated-sequence pattern has 1 + 2 * half_len = {1 + 2 * half_len} "
                         f"positions, not {n}")
    return 1 + half_len


def duplicate_token_score(pattern: torch.Tensor, half_len: int) -> torch.Tensor:
    """On BOS + x + x: attention from each second-half token to its own earlier copy; [head]."""
    pattern = _as_batch(pattern)
    return offset_score(pattern, half_len, _second_half_start(pattern, half_len))


def induction_score(pattern: torch.Tensor, half_len: int) -> torch.Tensor:
    """On BOS + x + x: attention from each second-half token to the token after its earlier copy."""
    pattern = _as_batch(pattern)
    return offset_score(pattern, half_len - 1, _second_half_start(pattern, half_len))


def all_scores(pattern: torch.Tensor, half_len: int, window: int = 3) -> dict[str, torch.Tensor]:
    """Every score of KINDS for one layer's pattern on repeated random tokens; kind -> [head]."""
    return {
        "previous_token": previous_token_score(pattern),
        "current_token": current_token_score(pattern),
        "first_token": first_token_score(pattern),
        "local_window": local_window_score(pattern, window),
        "duplicate_token": duplicate_token_score(pattern, half_len),
        "induction": induction_score(pattern, half_len),
    }


@dataclass(frozen=True)
class HeadScores:
    """scores[kind] is [layer, head]; measured on n sequences of 2 x half_len random tokens."""

    scores: dict
    n: int
    half_len: int
    seed: int

    def heads(self, kind: str, threshold: float = 0.5) -> list[tuple[int, int, float]]:
        """(layer, head, score) of the heads scoring >= threshold, best first."""
        table = self.scores[kind]
        found = [(int(layer), int(head), float(table[layer, head]))
                 for layer, head in (table >= threshold).nonzero().tolist()]
        return sorted(found, key=lambda t: -t[2])

    def best(self, kind: str) -> tuple[int, int, float]:
        """The single highest-scoring (layer, head, score) for a kind."""
        table = self.scores[kind]
        flat = int(table.argmax())
        layer, head = divmod(flat, table.shape[1])
        return layer, head, float(table[layer, head])


def head_scores(lm, n: int = 32, half_len: int = 24, seed: int = 0, window: int = 3
                ) -> HeadScores:
    """Run `lm` on repeated random tokens and score every head of every layer (it reads only the
    attention patterns, so any backend will do, a remote one included)."""
    half_len = min(half_len, (lm.cfg.n_ctx - 1) // 2)
    tokenizer = lm.tokenizer
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    tokens = induction_tokens(n, half_len, seed, vocab_size=min(lm.cfg.d_vocab, len(tokenizer)),
                              bos_id=bos, exclude=tokenizer.all_special_ids)
    names = [act_name("pattern", layer) for layer in range(lm.cfg.n_layers)]
    _, cache = lm.run_with_cache(tokens, names=names, stop_at_layer=lm.cfg.n_layers)  # patterns only
    per_layer = [all_scores(cache[name], half_len, window) for name in names]
    scores = {kind: torch.stack([s[kind] for s in per_layer]) for kind in KINDS}  # [layer, head]
    return HeadScores(scores, n, half_len, seed)
