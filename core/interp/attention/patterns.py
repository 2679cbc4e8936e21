"""Who attends to whom: attention patterns, what they hide, and what kind of head made them.

Each attention head, at each position q (the query), decides how much to read from every earlier
position k (the keys): pattern[q, k] = softmax over k of (x_q W_Q) . (x_k W_K) / sqrt(d_head). Each
row sums to 1. What it reads is the value vector v_k = x_k W_V (+ b_V), and what it writes back into
the residual stream is sum_k pattern[q, k] * v_k W_O. A heatmap of pattern[q, k] (rows: the token
doing the looking; columns: the token looked at) is the classic picture of a head (bertviz,
CircuitsVis).

Why raw attention can mislead (Kobayashi et al., 2020, "Attention is not only a weight"): a big
weight on a token whose transformed value v_k W_O is tiny moves nothing. Heads often park most of
their attention on the first token (an "attention sink") precisely because its value vector is
small: the weight is large and the effect is nil. Value-weighted attention multiplies each weight
by the size of what that key actually contributes, ||pattern[q, k] * v_k W_O||, and here it is
rescaled so each row sums to 1 again, so the two pictures are comparable.

Entropy per head, H(q) = -sum_k pattern[q, k] log2 pattern[q, k] in bits, averaged over queries,
says how spread out a head's attention is: 0 bits is a head that always looks at exactly one token;
a uniform look over q + 1 tokens has log2(q + 1) bits.

Head types (core.interp.attention.head_scores) are measured on generated data rather than on one prompt:
repeated random tokens make previous-token, duplicate-token and induction behaviour unmistakable,
because nothing else in the data can explain attention to those positions. Each head gets the type
whose score is highest, if that score reaches a threshold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from core.models import act_name

# Head types in the order a tie is broken (most specific first); local_window is left out because
# every previous- and current-token head is also a narrow local head.
TYPE_ORDER = ("induction", "duplicate_token", "previous_token", "current_token", "first_token")


@dataclass(frozen=True)
class AttentionRun:
    """Attention of every head on one prompt."""

    tokens: tuple[int, ...]
    str_tokens: tuple[str, ...]
    pattern: np.ndarray  # [layer, head, q, k]; rows sum to 1, zero above the diagonal
    # [layer, head, k]: ||v_k W_O^h||, the size of what key k can write; None where the model offers
    # no value vectors (an nnsight model: v lives inside the attention function, see
    # core.models.nnsight_backend), so value weighting is not available
    value_norm: np.ndarray | None

    @property
    def n_pos(self) -> int:
        return len(self.tokens)


def has_values(lm) -> bool:
    """Whether lm offers the value vectors (hook v) that value weighting needs."""
    return act_name("v", 0) in set(lm.hook_names())


def run_attention(lm, tokens: torch.Tensor) -> AttentionRun:
    """Run lm on tokens [1, pos]; keep every pattern and, where the model offers v, the value norms
    for value weighting. No logits are computed: a remote model sends back only the patterns."""
    tokens = tokens[:1]
    with_v = has_values(lm)
    sites = ("pattern", "v") if with_v else ("pattern",)
    names = [act_name(site, layer) for layer in range(lm.cfg.n_layers) for site in sites]
    _, cache = lm.run_with_cache(tokens, names=names, stop_at_layer=lm.cfg.n_layers)
    patterns, norms = [], []
    for layer in range(lm.cfg.n_layers):
        if with_v:
            W_O = lm.attention_weights(layer).W_O.detach().float()  # [head, d_head, d_model]
            v = cache[act_name("v", layer)][0].float()  # [pos, head, d_head], kv heads already repeated
            written = torch.einsum("phd,hdm->hpm", v, W_O)  # [head, pos, d_model]
            norms.append(written.norm(dim=-1))  # [head, pos]
        patterns.append(cache[act_name("pattern", layer)][0].float())  # [head, q, k]
    ids = tuple(int(t) for t in tokens[0])
    return AttentionRun(ids, tuple(lm.to_str_tokens(tokens[0])), torch.stack(patterns).numpy(),
                        torch.stack(norms).numpy() if with_v else None)


def value_weighted(pattern: np.ndarray, value_norm: np.ndarray, normalize: bool = True) -> np.ndarray:
    """pattern[..., q, k] * value_norm[..., k] (Kobayashi et al., 2020); rows rescaled to sum 1."""
    weighted = pattern * value_norm[..., None, :]  # [..., q, k]
    if not normalize:
        return weighted
    total = weighted.sum(axis=-1, keepdims=True)
    return np.divide(weighted, total, out=np.zeros_like(weighted), where=total > 0)


def row_entropy(pattern: np.ndarray) -> np.ndarray:
    """Entropy in bits of each row of pattern [..., q, k] -> [..., q]."""
    p = np.clip(pattern, 0, None)
    logs = np.log2(p, out=np.zeros_like(p), where=p > 0)
    return -(p * logs).sum(axis=-1)


def entropy(pattern: np.ndarray) -> np.ndarray:
    """Mean entropy (bits) over queries q >= 1 of pattern [..., q, k] -> [...] (q = 0 has no choice)."""
    return row_entropy(pattern)[..., 1:].mean(axis=-1)


def uniform_entropy(n_pos: int) -> float:
    """The mean entropy of a head that spreads evenly over all q + 1 visible tokens, q >= 1."""
    return float(np.log2(np.arange(2, n_pos + 1)).mean())


def from_token(pattern: np.ndarray, q: int) -> np.ndarray:
    """Attention from query q to keys 0..q in every head: [layer, head, q + 1]."""
    return pattern[..., q, : q + 1]


TYPE_THRESHOLD = 0.5  # the evaluation report lists a head as a type from this score on


def head_types(scores: Mapping[str, np.ndarray], threshold: float = TYPE_THRESHOLD) -> np.ndarray:
    """Each head's type: the kind in TYPE_ORDER with the highest score, if >= threshold, else "".

    scores: kind -> [layer, head] (from core.interp.attention.head_scores). Returns [layer, head] of str."""
    kinds = [k for k in TYPE_ORDER if k in scores]
    stacked = np.stack([np.asarray(scores[k], dtype=np.float64) for k in kinds])  # [kind, layer, head]
    best = stacked.argmax(axis=0)  # the first kind wins a tie, which is the more specific one
    top = np.take_along_axis(stacked, best[None], axis=0)[0]
    names = np.array(kinds, dtype=object)[best]
    return np.where(top >= threshold, names, "")


@dataclass(frozen=True)
class PromptInduction:
    share: np.ndarray  # [layer, head]: mean attention on "the token after the earlier copy"
    n_queries: int  # query positions whose token occurred before (and so have a target)


def prompt_induction(tokens, pattern: np.ndarray) -> PromptInduction:
    """Induction on this prompt: from each token seen before (at p, with p + 1 < q), the attention
    on p + 1, summed over earlier copies, averaged over such queries. pattern [layer, head, q, k]."""
    tokens = [int(t) for t in tokens]
    total = np.zeros(pattern.shape[:2])
    n = 0
    for q, token in enumerate(tokens):
        targets = [p + 1 for p in range(1, q - 1) if tokens[p] == token]  # position 0 is BOS
        if targets:
            total += pattern[:, :, q, targets].sum(-1)
            n += 1
    return PromptInduction(total / max(n, 1), n)
