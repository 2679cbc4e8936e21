"""GPT-NeoX (Pythia) family adapter."""

from __future__ import annotations

from core.models.adapters.base import (
    Adapter,
    AttentionWeights,
    BlockModules,
    split_heads_out,
)
from core.models.config import ModelConfig
from core.models.params import count_params


class NeoXAdapter(Adapter):
    """GPT-NeoX (Pythia): rotary positions, LayerNorm, usually parallel attention and MLP."""

    arch = "gpt_neox"
    target_roles = {
        "attn_qkv": ("attention.query_key_value",),
        "attn_out": ("attention.dense",),
        "mlp_in": ("mlp.dense_h_to_4h",),
        "mlp_out": ("mlp.dense_4h_to_h",),
    }

    def blocks(self):
        return self.model.gpt_neox.layers

    def block_modules(self, layer):
        b = self.blocks()[layer]
        return BlockModules(b, b.attention, b.mlp, b.mlp.dense_h_to_4h, b.mlp.dense_4h_to_h,
                            b.input_layernorm, b.post_attention_layernorm)

    def embed(self):
        return self.model.gpt_neox.embed_in

    def ln_final(self):
        return self.model.gpt_neox.final_layer_norm

    def config(self):
        c = self.model.config
        return ModelConfig(
            n_layers=c.num_hidden_layers, n_heads=c.num_attention_heads, d_model=c.hidden_size,
            d_head=c.hidden_size // c.num_attention_heads, d_mlp=c.intermediate_size,
            d_vocab=c.vocab_size, n_ctx=c.max_position_embeddings, arch=self.arch,
            n_kv_heads=c.num_attention_heads, positional="rotary", normalization="layernorm",
            act_fn=c.hidden_act, parallel_attn_mlp=bool(c.use_parallel_residual),
            n_params=count_params(self.model),
        )

    def attention_weights(self, layer, cfg):
        attn = self.blocks()[layer].attention
        # Linear weight [out, in]; the out axis is laid out [head, (q, k, v), d_head]
        W = attn.query_key_value.weight.reshape(cfg.n_heads, 3, cfg.d_head, cfg.d_model)
        W_Q, W_K, W_V = (W[:, i].transpose(1, 2) for i in range(3))  # [head, d_model, d_head]
        bias = attn.query_key_value.bias
        b_Q = b_K = b_V = None
        if bias is not None:
            b_Q, b_K, b_V = bias.reshape(cfg.n_heads, 3, cfg.d_head).unbind(1)
        W_O = split_heads_out(attn.dense.weight.T, cfg.n_heads)
        return AttentionWeights(W_Q, W_K, W_V, W_O, b_Q, b_K, b_V, attn.dense.bias)
