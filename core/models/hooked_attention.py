"""Eager attention with hook points inside, registered as a transformers attention implementation.

transformers 5 lets a model pick its attention kernel by name (`config._attn_implementation`). We
register "lab_hooked": the same arithmetic as the library's eager attention, plus five hook points
(q, k, v after rotary, the pre-softmax scores, the softmax pattern, and z = pattern @ v). Reading the
pattern out of an optimised kernel is impossible, which is why interpretability tools use eager
attention.

    scores[b, h, q, k] = (q[b, h, q, :] . k[b, h, k, :]) * scaling + mask[b, q, k]
    pattern = softmax(scores, over k)
    z[b, q, h, :] = sum_k pattern[b, h, q, k] v[b, h, k, :]

Grouped-query models (Llama-style) share each key/value head between several query heads; k and v
are repeated to one per query head before the hooks see them.
"""

from __future__ import annotations

import torch
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface, eager_mask

IMPLEMENTATION = "lab_hooked"


def _repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    # [batch, kv_head, pos, d_head] -> [batch, kv_head * n_rep, pos, d_head], each kv head repeated in place
    return x if n_rep == 1 else torch.repeat_interleave(x, n_rep, dim=1)


def _causal_mask(q_len: int, k_len: int, device: torch.device) -> torch.Tensor:
    # query i sits at absolute position (k_len - q_len + i) and may see keys at positions <= that
    q_pos = torch.arange(k_len - q_len, k_len, device=device)[:, None]
    return torch.arange(k_len, device=device)[None, :] <= q_pos  # [q_pos, k_pos] bool


def hooked_attention_forward(
    module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs
):
    """Drop-in replacement for transformers' eager_attention_forward with hook points.

    query [batch, head, q_pos, d_head]; key, value [batch, kv_head, k_pos, d_head].
    Returns (z [batch, q_pos, head, d_head], pattern [batch, head, q_pos, k_pos]).
    """
    site = getattr(module, "_lab_site", None)  # (dispatcher, layer) set by HookedLM, or None
    apply = site[0].apply if site is not None and site[0].current() is not None else None
    layer = site[1] if site is not None else None
    prefix = f"blocks.{layer}.attn."

    n_rep = query.shape[1] // key.shape[1]
    key, value = _repeat_kv(key, n_rep), _repeat_kv(value, n_rep)
    if apply is not None:  # q, k, v are shown as [batch, pos, head, d_head], like TransformerLens
        query = apply(prefix + "hook_q", layer, query.transpose(1, 2)).transpose(1, 2)
        key = apply(prefix + "hook_k", layer, key.transpose(1, 2)).transpose(1, 2)
        value = apply(prefix + "hook_v", layer, value.transpose(1, 2)).transpose(1, 2)

    if scaling is None:
        scaling = query.shape[-1] ** -0.5
    scores = torch.matmul(query, key.transpose(-1, -2)) * scaling  # [batch, head, q_pos, k_pos]
    q_len, k_len = scores.shape[-2:]
    if attention_mask is None:
        scores = scores.masked_fill(~_causal_mask(q_len, k_len, scores.device), float("-inf"))
    elif attention_mask.dtype == torch.bool:
        scores = scores.masked_fill(~attention_mask[..., :k_len], float("-inf"))
    else:
        scores = scores + attention_mask[..., :k_len]
    if apply is not None:
        scores = apply(prefix + "hook_attn_scores", layer, scores)

    pattern = torch.softmax(scores, dim=-1, dtype=torch.float32).to(value.dtype)
    if apply is not None:
        pattern = apply(prefix + "hook_pattern", layer, pattern)
    pattern = torch.nn.functional.dropout(pattern, p=dropout, training=module.training)

    z = torch.matmul(pattern, value).transpose(1, 2).contiguous()  # [batch, q_pos, head, d_head]
    if apply is not None:
        z = apply(prefix + "hook_z", layer, z)
    return z, pattern


def register() -> str:
    """Register the implementation (idempotent) and return its name."""
    AttentionInterface.register(IMPLEMENTATION, hooked_attention_forward)
    AttentionMaskInterface.register(IMPLEMENTATION, eager_mask)
    return IMPLEMENTATION
