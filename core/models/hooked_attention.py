"""Eager attention with hook points inside, registered as a transformers attention implementation.

transformers 5 lets a model pick its attention kernel by name (`config._attn_implementation`). We
register "lab_hooked": the same arithmetic as the library's eager attention, plus six hook points
(q, k, v after rotary, the pre-softmax scores, the softmax pattern, and z = pattern @ v). Reading the
pattern out of an optimised kernel is impossible, which is why interpretability tools use eager
attention.

    scores[b, h, q, k] = (q[b, h, q, :] . k[b, h, k, :]) * scaling + mask[q, k]
    pattern = softmax(scores, over k)
    z[b, q, h, :] = sum_k pattern[b, h, q, k] v[b, h, k, :]

The mask is 0 where query q may look at key k and -inf where it may not (a later position), so
those keys get weight exactly 0 after the softmax. It is built once per length and shared.

Only a layer whose attention someone is looking at pays for the step-by-step version: when no hook
of the current run names that layer's q, k, v, scores, pattern or z (a plain forward pass, or
steering at the residual stream), the same attention runs as one fused kernel
(torch's scaled_dot_product_attention), as fast as the library's default. The two agree to float
rounding (about 1e-7; tests/unit/test_models_oracle.py checks both against transformers). While
training under bfloat16 autocast on a CPU, that kernel runs in float32: its bfloat16 backward pass is
far slower.

Grouped-query models (Llama-style) share each key/value head between several query heads; k and v
are repeated to one per query head before the hooks see them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.nn import functional as F
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from core.models.dispatch import Dispatcher, apply_in

IMPLEMENTATION = "lab_hooked"
SITES = ("hook_q", "hook_k", "hook_v", "hook_attn_scores", "hook_pattern", "hook_z")
FUSED = True  # False: always the step-by-step path (benchmarks compare the two)


@dataclass(frozen=True)
class AttentionSite:
    """Where an attention module sits: its model's dispatcher, its layer, and its hook names."""

    dispatch: Dispatcher
    layer: int
    names: frozenset[str] = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "names", frozenset(f"blocks.{self.layer}.attn.{s}" for s in SITES))


def _repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    # [batch, kv_head, pos, d_head] -> [batch, kv_head * n_rep, pos, d_head], each kv head repeated in place
    return x if n_rep == 1 else torch.repeat_interleave(x, n_rep, dim=1)


def _causal_mask(q_len: int, k_len: int, device: torch.device) -> torch.Tensor:
    # query i sits at absolute position (k_len - q_len + i) and may see keys at positions <= that
    q_pos = torch.arange(k_len - q_len, k_len, device=device)[:, None]
    return torch.arange(k_len, device=device)[None, :] <= q_pos  # [q_pos, k_pos] bool


def _fused(module, query, key, value, attention_mask, scaling, n_rep):
    """The same attention in one fused kernel (PyTorch's scaled_dot_product_attention), for layers
    where no hook wants q, k, v, the scores, the pattern or z: there is then nothing to show, and
    the fused kernel never materialises the [q_pos, k_pos] pattern. Returns (z, None)."""
    q_len, k_len = query.shape[-2], key.shape[-2]
    mask, causal = None, False
    if attention_mask is None:
        if q_len == k_len:
            causal = True
        elif q_len > 1:  # several new positions after a KV cache: bottom-right aligned
            mask = _causal_mask(q_len, k_len, query.device)
    else:
        mask = attention_mask[..., :k_len]
    if query.dtype == torch.bfloat16 and query.device.type == "cpu" and query.requires_grad:
        # training under bfloat16 autocast: torch's CPU kernel runs this backward pass about 9x slower
        # in bfloat16 than in float32 (16 ms against 1.8 ms per step of the bundled model), so the
        # attention itself runs in float32 (autocast would round it back); the products around it
        # stay in bfloat16
        if mask is not None and mask.is_floating_point():
            mask = mask.float()
        with torch.autocast("cpu", enabled=False):
            z = F.scaled_dot_product_attention(query.float(), key.float(), value.float(), attn_mask=mask,
                                               is_causal=causal, scale=scaling, enable_gqa=n_rep > 1)
        return z.to(query.dtype).transpose(1, 2).contiguous(), None
    z = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, is_causal=causal, scale=scaling,
                                       enable_gqa=n_rep > 1)  # [batch, head, q_pos, d_head]
    return z.transpose(1, 2).contiguous(), None  # [batch, q_pos, head, d_head]


def hooked_attention_forward(
    module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs
):
    """Drop-in replacement for transformers' eager_attention_forward with hook points.

    query [batch, head, q_pos, d_head]; key, value [batch, kv_head, k_pos, d_head].
    Returns (z [batch, q_pos, head, d_head], pattern [batch, head, q_pos, k_pos] or None when the
    fused path ran).
    """
    site = getattr(module, "_lab_site", None)  # an AttentionSite set by HookedLM, or None
    run = site.dispatch.current() if site is not None else None
    wanted = run is not None and run.wants_any(site.names)
    if scaling is None:
        scaling = query.shape[-1] ** -0.5
    n_rep = query.shape[1] // key.shape[1]
    training_dropout = module.training and dropout > 0  # keep dropout's random stream as it was
    if FUSED and not wanted and not training_dropout and query.dtype == key.dtype == value.dtype:
        return _fused(module, query, key, value, attention_mask, scaling, n_rep)

    layer = site.layer if site is not None else None
    prefix = f"blocks.{layer}.attn."

    def apply(name, act):
        return apply_in(run, prefix + name, layer, act) if wanted else act

    key, value = _repeat_kv(key, n_rep), _repeat_kv(value, n_rep)
    if wanted:  # q, k, v are shown as [batch, pos, head, d_head], like TransformerLens
        query = apply("hook_q", query.transpose(1, 2)).transpose(1, 2)
        key = apply("hook_k", key.transpose(1, 2)).transpose(1, 2)
        value = apply("hook_v", value.transpose(1, 2)).transpose(1, 2)

    batch, head, q_len, d_head = query.shape
    k_len = key.shape[-2]
    if attention_mask is None:
        bias = causal_bias(q_len, k_len, query.dtype, query.device)  # [q_pos, k_pos] or None
    elif attention_mask.dtype == torch.bool:
        bias = torch.zeros(attention_mask.shape[:-1] + (k_len,), dtype=query.dtype,
                           device=query.device).masked_fill_(~attention_mask[..., :k_len], float("-inf"))
    else:
        bias = attention_mask[..., :k_len]
    # scores = q k^T * scaling + bias, in one batched matmul: [batch, head, q_pos, k_pos]
    q3 = query.reshape(batch * head, q_len, d_head)
    kT3 = key.transpose(-1, -2).reshape(batch * head, d_head, k_len)
    if bias is None:
        scores = torch.bmm(q3, kT3).mul_(scaling)
    elif bias.dim() <= 2:
        scores = torch.baddbmm(bias.to(q3.dtype), q3, kT3, alpha=scaling)
    else:  # a per-row (padding) mask [batch, 1 or head, q_pos, k_pos]
        scores = torch.bmm(q3, kT3).mul_(scaling).view(batch, head, q_len, k_len).add_(bias)
    scores = apply("hook_attn_scores", scores.view(batch, head, q_len, k_len))

    pattern = torch.softmax(scores, dim=-1, dtype=torch.float32).to(value.dtype)
    pattern = apply("hook_pattern", pattern)
    if module.training and dropout > 0:
        pattern = torch.nn.functional.dropout(pattern, p=dropout, training=True)

    z = torch.matmul(pattern, value).transpose(1, 2).contiguous()  # [batch, q_pos, head, d_head]
    z = apply("hook_z", z)
    return z, pattern


_BIAS_CACHE_MAX_ELEMENTS = 1 << 20  # masks up to 1,024 x 1,024 positions (4 MB) are kept and shared
_bias_cache: dict[tuple, torch.Tensor] = {}


def causal_bias(q_len: int, k_len: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor | None:
    """The additive causal mask [q_pos, k_pos]: 0 where a query may look, -inf where it may not.

    None when every query may see every key (one new position after a KV cache). Kept per shape:
    every layer and every forward pass of that length reuses one read-only tensor (a dict read and
    write are atomic, so threads share it safely)."""
    if q_len == 1 or (q_len == 0 or k_len == 0):
        return None
    key = (q_len, k_len, dtype, device)
    bias = _bias_cache.get(key)
    if bias is None:
        allowed = _causal_mask(q_len, k_len, device)  # [q_pos, k_pos] bool
        bias = torch.zeros(q_len, k_len, dtype=dtype, device=device).masked_fill_(~allowed, float("-inf"))
        if q_len * k_len <= _BIAS_CACHE_MAX_ELEMENTS:
            if len(_bias_cache) > 64:
                _bias_cache.clear()
            _bias_cache[key] = bias
    return bias


def hooked_mask(*args, dtype: torch.dtype = torch.float32, **kwargs) -> torch.Tensor | None:
    """The attention mask for "lab_hooked": None when the plain causal rule is all there is (no
    padding, every query sees every earlier key; the attention applies it itself, and the fused
    kernel runs its faster causal mode), else transformers' additive float mask (0 or the dtype's
    minimum), exactly as its eager attention gets it."""
    kwargs.pop("allow_is_causal_skip", None)
    mask = sdpa_mask(*args, allow_is_causal_skip=True, **kwargs)  # [batch, 1, q_pos, k_pos] bool, or None
    if mask is None:
        return None
    return torch.where(mask, torch.zeros((), device=mask.device, dtype=dtype), torch.finfo(dtype).min)


def register() -> str:
    """Register the implementation (idempotent) and return its name."""
    AttentionInterface.register(IMPLEMENTATION, hooked_attention_forward)
    AttentionMaskInterface.register(IMPLEMENTATION, hooked_mask)
    return IMPLEMENTATION
