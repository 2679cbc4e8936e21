"""Llama-style (SmolLM) family adapter."""

from __future__ import annotations

import torch
from torch import nn

from core.models.adapters.base import (
    Adapter,
    AttentionWeights,
    BlockModules,
    split_heads_out,
)
from core.models.config import ModelConfig
from core.models.params import count_params


class LlamaAdapter(Adapter):
    """Llama-style (SmolLM): rotary positions, RMSNorm, gated MLP, grouped-query attention."""

    arch = "llama"
    target_roles = {
        "attn_qkv": ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
        "attn_out": ("self_attn.o_proj",),
        "mlp_in": ("mlp.gate_proj", "mlp.up_proj"),
        "mlp_out": ("mlp.down_proj",),
    }

    def blocks(self):
        return self.model.model.layers

    def block_modules(self, layer):
        b = self.blocks()[layer]
        return BlockModules(b, b.self_attn, b.mlp, b.mlp.gate_proj, b.mlp.down_proj,
                            b.input_layernorm, b.post_attention_layernorm)

    def embed(self):
        return self.model.model.embed_tokens

    def ln_final(self):
        return self.model.model.norm

    def config(self):
        c = self.model.config
        d_head = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
        return ModelConfig(
            n_layers=c.num_hidden_layers, n_heads=c.num_attention_heads, d_model=c.hidden_size,
            d_head=d_head, d_mlp=c.intermediate_size, d_vocab=c.vocab_size,
            n_ctx=c.max_position_embeddings, arch=self.arch,
            n_kv_heads=c.num_key_value_heads or c.num_attention_heads, positional="rotary",
            normalization="rmsnorm", act_fn=c.hidden_act, parallel_attn_mlp=False,
            n_params=count_params(self.model),
        )

    def attention_weights(self, layer, cfg):
        attn = self.blocks()[layer].self_attn
        n_rep = cfg.n_heads // cfg.n_kv_heads

        def per_head(linear: nn.Linear, n: int) -> torch.Tensor:
            w = linear.weight.reshape(n, cfg.d_head, cfg.d_model).transpose(1, 2)
            return torch.repeat_interleave(w, cfg.n_heads // n, dim=0)

        def bias(linear: nn.Linear, n: int) -> torch.Tensor | None:
            if linear.bias is None:
                return None
            return torch.repeat_interleave(linear.bias.reshape(n, cfg.d_head), cfg.n_heads // n, 0)

        W_O = split_heads_out(attn.o_proj.weight.T, cfg.n_heads)
        return AttentionWeights(
            per_head(attn.q_proj, cfg.n_heads), per_head(attn.k_proj, cfg.n_heads // n_rep),
            per_head(attn.v_proj, cfg.n_heads // n_rep), W_O,
            bias(attn.q_proj, cfg.n_heads), bias(attn.k_proj, cfg.n_kv_heads),
            bias(attn.v_proj, cfg.n_kv_heads), attn.o_proj.bias,
        )
