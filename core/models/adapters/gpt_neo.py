"""GPT-Neo family adapter (TinyStories models): learned positions, unscaled attention, and layers
that alternate between global attention and local attention over a sliding window.

GPT-Neo computes attention in its own method rather than through transformers' attention interface,
so this adapter replaces that method, per module, with our hooked attention. Two quirks a learner
meets here: scores are NOT divided by sqrt(d_head), and "local" layers only see the last
`window_size` tokens.
"""

from __future__ import annotations

import types

import torch

from core.models.adapters.base import Adapter, AttentionWeights, BlockModules
from core.models.adapters.gpt2 import GPT2Layout
from core.models.config import ModelConfig
from core.models.hooked_attention import hooked_attention_forward
from core.models.params import count_params


def _hooked_neo_attn(self, query, key, value, attention_mask=None):
    """Replaces GPTNeoSelfAttention._attn: query/key/value [batch, head, pos, d_head]."""
    q_len, k_len = query.shape[-2], key.shape[-2]
    allowed = self.bias[:, :, k_len - q_len : k_len, :k_len]  # causal (and local-window) mask
    mask = torch.zeros(allowed.shape, dtype=torch.float32, device=query.device)
    mask = mask.masked_fill(~allowed, float("-inf"))
    if attention_mask is not None:
        mask = mask + attention_mask[..., :k_len]
    z, pattern = hooked_attention_forward(self, query.float(), key.float(), value, mask, scaling=1.0)
    return z.transpose(1, 2), pattern  # GPT-Neo merges heads from [batch, head, pos, d_head]


class GPTNeoAdapter(GPT2Layout, Adapter):
    arch = "gpt_neo"
    attn_implementation = "eager"  # GPT-Neo only knows eager / flash; we patch eager below
    target_roles = {
        "attn_qkv": ("attn.attention.q_proj", "attn.attention.k_proj", "attn.attention.v_proj"),
        "attn_out": ("attn.attention.out_proj",),
        "mlp_in": ("mlp.c_fc",),
        "mlp_out": ("mlp.c_proj",),
    }

    def block_modules(self, layer):
        b = self.blocks()[layer]
        return BlockModules(b, b.attn, b.mlp, b.mlp.c_fc, b.mlp.c_proj, b.ln_1, b.ln_2,
                            attn_core=b.attn.attention)

    def install_attention(self):
        for block in self.blocks():
            core = block.attn.attention
            core._attn = types.MethodType(_hooked_neo_attn, core)

    def config(self):
        c = self.model.config
        return ModelConfig(
            n_layers=c.num_layers, n_heads=c.num_heads, d_model=c.hidden_size,
            d_head=c.hidden_size // c.num_heads, d_mlp=c.intermediate_size or 4 * c.hidden_size,
            d_vocab=c.vocab_size, n_ctx=c.max_position_embeddings, arch=self.arch,
            n_kv_heads=c.num_heads, positional="learned", normalization="layernorm",
            act_fn=c.activation_function, parallel_attn_mlp=False, n_params=count_params(self.model),
        )

    def attention_weights(self, layer, cfg):
        attn = self.blocks()[layer].attn.attention

        def per_head(linear):  # Linear weight [head * d_head, d_model] -> [head, d_model, d_head]
            return linear.weight.reshape(cfg.n_heads, cfg.d_head, cfg.d_model).transpose(1, 2)

        W_O = attn.out_proj.weight.T.reshape(cfg.n_heads, cfg.d_head, cfg.d_model)
        return AttentionWeights(per_head(attn.q_proj), per_head(attn.k_proj), per_head(attn.v_proj),
                                W_O, None, None, None, attn.out_proj.bias)
