"""GPT-2 family adapter."""

from __future__ import annotations

from core.models.adapters.base import (
    Adapter,
    AttentionWeights,
    BlockModules,
    split_heads_in,
    split_heads_out,
)
from core.models.config import ModelConfig
from core.models.params import count_params


class GPT2Layout:
    """Where the shared modules sit in models laid out like GPT-2 (`model.transformer.{h, wte, wpe,
    ln_f}`): GPT-2 itself and GPT-Neo."""

    def blocks(self):
        return self.model.transformer.h

    def embed(self):
        return self.model.transformer.wte

    def pos_embed(self):
        return self.model.transformer.wpe

    def ln_final(self):
        return self.model.transformer.ln_f


class GPT2Adapter(GPT2Layout, Adapter):
    """GPT-2 (and our bundled model): learned positions, LayerNorm, Conv1D weights stored [in, out]."""

    arch = "gpt2"
    target_roles = {
        "attn_qkv": ("attn.c_attn",),
        "attn_out": ("attn.c_proj",),
        "mlp_in": ("mlp.c_fc",),
        "mlp_out": ("mlp.c_proj",),
    }

    def block_modules(self, layer):
        b = self.blocks()[layer]
        return BlockModules(b, b.attn, b.mlp, b.mlp.c_fc, b.mlp.c_proj, b.ln_1, b.ln_2)

    def config(self):
        c = self.model.config
        return ModelConfig(
            n_layers=c.n_layer, n_heads=c.n_head, d_model=c.n_embd, d_head=c.n_embd // c.n_head,
            d_mlp=c.n_inner or 4 * c.n_embd, d_vocab=c.vocab_size, n_ctx=c.n_positions,
            arch=self.arch, n_kv_heads=c.n_head, positional="learned", normalization="layernorm",
            act_fn=c.activation_function, parallel_attn_mlp=False,
            n_params=count_params(self.model),
        )

    def attention_weights(self, layer, cfg):
        attn = self.blocks()[layer].attn
        W, b = attn.c_attn.weight, attn.c_attn.bias  # [d_model, 3 * d_model], Conv1D: x @ W + b
        W_Q, W_K, W_V = (split_heads_in(w, cfg.n_heads) for w in W.split(cfg.d_model, dim=1))
        b_Q, b_K, b_V = (x.reshape(cfg.n_heads, cfg.d_head) for x in b.split(cfg.d_model))
        W_O = split_heads_out(attn.c_proj.weight, cfg.n_heads)
        return AttentionWeights(W_Q, W_K, W_V, W_O, b_Q, b_K, b_V, attn.c_proj.bias)
