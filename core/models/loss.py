"""The language-modelling loss: how surprised the model is by each next token.

For tokens t_0 ... t_n the model's logits at position i predict t_{i+1}; the loss at position i is
-log softmax(logits_i)[t_{i+1}] (cross-entropy, in nats). The mean over positions is what training
lowers; exp(mean) is the perplexity. The last position has no next token, so n positions give n - 1
losses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_IGNORED = -100  # a target no token id can be: F.cross_entropy leaves it out of the mean


def next_token_loss(logits: torch.Tensor, tokens: torch.Tensor, *, per_token: bool = False,
                    mask: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of each next token. logits [batch, pos, d_vocab], tokens [batch, pos].

    per_token=True returns [batch, pos - 1] (float32); else the mean over the positions that count.
    mask [batch, pos] (bool or 0/1) marks the tokens whose *prediction* counts: mask[:, i + 1] says
    whether predicting t_{i+1} is included (padding, or a prompt that is not the answer, is left out).
    """
    if mask is None and not per_token:
        # the same mean, taken over every position with the last one's target ignored: no copy of the
        # logits out of a [:, :-1] slice, and none of the zeros that slice's backward pass writes
        ignored = F.pad(tokens[:, 1:], (0, 1), value=_IGNORED)  # [batch, pos]
        return F.cross_entropy(logits.float().flatten(0, 1), ignored.flatten(), ignore_index=_IGNORED)
    pred = logits[:, :-1].float()  # [batch, pos - 1, d_vocab]
    target = tokens[:, 1:]  # [batch, pos - 1]
    loss = F.cross_entropy(pred.flatten(0, 1), target.flatten(), reduction="none").view_as(target)
    if per_token or mask is None:
        return loss
    weight = mask[:, 1:].to(loss.dtype)
    return (loss * weight).sum() / weight.sum().clamp_min(1.0)
