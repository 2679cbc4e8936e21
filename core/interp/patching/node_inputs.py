"""Each input of a component, computed from a residual stream of its own.

Every head reads the same residual stream through three doors: its query, key and value. To patch
or score an *edge* (what one upstream component writes, as read by one door of one downstream head)
each door must be able to see a different stream. So this module recomputes a layer's queries,
keys and values from a stream per (head, door):

    q[h] = rotary(norm_1(x[h, q]) @ W_Q[h] + b_Q[h])      (and k, v alike; v has no rotary)

with the model's own norm module and its per-head weights (core.models HookedLM.attention_weights,
key/value heads repeated per query head on grouped-query models), and an MLP's output from a stream
of its own: mlp(norm_2(x)). Rotary models (Llama, GPT-NeoX, the latter rotating only part of each
head) rotate with the model's own cos/sin tables. A test checks the recomputed q, k, v against the
hook points for every architecture.
"""

from __future__ import annotations

import torch

from core.interp.patching.engine import quiet
from core.models import HookedLM

DOORS = ("q", "k", "v")


def _rotary(lm: HookedLM):
    """(rotary embedding module, apply function) for rotary models, else None."""
    if lm.cfg.positional != "rotary":
        return None
    if lm.cfg.arch == "llama":
        from transformers.models.llama.modeling_llama import apply_rotary_pos_emb
        return lm.model.model.rotary_emb, apply_rotary_pos_emb
    if lm.cfg.arch == "gpt_neox":
        from transformers.models.gpt_neox.modeling_gpt_neox import apply_rotary_pos_emb
        return lm.model.gpt_neox.rotary_emb, apply_rotary_pos_emb
    raise ValueError(f"No rotary tables known for {lm.cfg.arch!r}")


def head_inputs(lm: HookedLM, layer: int, x: torch.Tensor, start: int = 0) -> tuple[torch.Tensor, ...]:
    """q, k, v [rows, pos, head, d_head] of `layer` from x [rows, pos, head, 3, d_model]: a stream per
    head and door (q, k, v). start: the absolute position of x[:, 0] (for rotary tables)."""
    c = lm.cfg
    norm = lm.adapter.block_modules(layer).ln1
    w = lm.attention_weights(layer)
    h = norm(x)  # [rows, pos, head, 3, d_model]
    out = []
    for i, (W, b) in enumerate(((w.W_Q, w.b_Q), (w.W_K, w.b_K), (w.W_V, w.b_V))):
        y = torch.einsum("rphd,hde->rphe", h[..., i, :], W)  # [rows, pos, head, d_head]
        out.append(y if b is None else y + b)
    q, k, v = out
    rotary = _rotary(lm)
    if rotary is not None:
        module, apply = rotary
        positions = torch.arange(start, start + x.shape[1])[None]  # [1, pos]
        cos, sin = module(x[:, :, 0, 0], positions)  # [1, pos, rotary dims]
        q, k = apply(q, k, cos, sin, unsqueeze_dim=2)
    if c.arch == "gpt_neo":  # its attention runs in float32 whatever the weights' dtype
        q, k = q.float(), k.float()
    return q, k, v


def door_input(lm: HookedLM, layer: int, x: torch.Tensor, head: int, door: str,
               start: int = 0) -> torch.Tensor:
    """One head's query, key or value [rows, pos, d_head] from x [rows, pos, d_model] (absolute
    positions start..): the same arithmetic as head_inputs for a single head and door."""
    norm = lm.adapter.block_modules(layer).ln1
    w = lm.attention_weights(layer)
    W, b = {"q": (w.W_Q, w.b_Q), "k": (w.W_K, w.b_K), "v": (w.W_V, w.b_V)}[door]
    y = norm(x) @ W[head]  # [rows, pos, d_head]
    if b is not None:
        y = y + b[head]
    rotary = _rotary(lm) if door != "v" else None
    if rotary is not None:
        module, apply = rotary
        cos, sin = module(x[:, :, 0], torch.arange(start, start + x.shape[1])[None])
        y = apply(y[:, :, None], y[:, :, None], cos, sin, unsqueeze_dim=2)[0][:, :, 0]
    if lm.cfg.arch == "gpt_neo" and door != "v":
        y = y.float()
    return y


def mlp_output(lm: HookedLM, layer: int, x: torch.Tensor) -> torch.Tensor:
    """What the MLP of `layer` writes for a stream x [..., d_model] of its own (hooks stay quiet)."""
    m = lm.adapter.block_modules(layer)
    with quiet(lm):
        return m.mlp(m.ln2(x))
