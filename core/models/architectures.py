"""One small adapter per architecture family: where each hook point lives in the Hugging Face module tree.

The checkpoint is used as it is (no weight conversion, no folding of layer norms), so what a learner
sees is the model's own parameters. An adapter only answers "which module is the attention of layer
L?" and "how do I cut this fused weight into per-head W_Q, W_K, W_V, W_O?".

Weight shapes returned (TransformerLens conventions, so x @ W works left to right):
    W_Q, W_K, W_V [head, d_model, d_head]    W_O [head, d_head, d_model]
    b_Q, b_K, b_V [head, d_head]             b_O [d_model]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from core.models.config import ModelConfig


@dataclass(frozen=True)
class AttentionWeights:
    W_Q: torch.Tensor
    W_K: torch.Tensor
    W_V: torch.Tensor
    W_O: torch.Tensor
    b_Q: torch.Tensor | None
    b_K: torch.Tensor | None
    b_V: torch.Tensor | None
    b_O: torch.Tensor | None


@dataclass(frozen=True)
class BlockModules:
    """The modules of one block that carry hook points."""

    block: nn.Module
    attn: nn.Module
    mlp: nn.Module
    mlp_in: nn.Module  # its output is mlp.hook_pre (the gate projection on gated MLPs)
    mlp_out: nn.Module  # its input is mlp.hook_post


class Adapter:
    """Base class; subclasses fill in the module paths of one family."""

    arch = ""
    # Names (relative to a block) grouped by role, used as PEFT target_modules.
    target_roles: dict[str, tuple[str, ...]] = {}

    def __init__(self, model: nn.Module):
        self.model = model

    # -- structure ------------------------------------------------------------------------------
    def blocks(self) -> nn.ModuleList:
        raise NotImplementedError

    def block_modules(self, layer: int) -> BlockModules:
        raise NotImplementedError

    def embed(self) -> nn.Module:
        raise NotImplementedError

    def pos_embed(self) -> nn.Module | None:
        return None

    def ln_final(self) -> nn.Module:
        raise NotImplementedError

    def config(self) -> ModelConfig:
        raise NotImplementedError

    # -- weights --------------------------------------------------------------------------------
    def attention_weights(self, layer: int, cfg: ModelConfig) -> AttentionWeights:
        raise NotImplementedError


def _count_params(model: nn.Module) -> int:
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total


def _split_heads_in(weight_in_out: torch.Tensor, n_heads: int) -> torch.Tensor:
    # [d_model, head * d_head] -> [head, d_model, d_head]
    d_model = weight_in_out.shape[0]
    return weight_in_out.reshape(d_model, n_heads, -1).permute(1, 0, 2)


def _split_heads_out(weight_in_out: torch.Tensor, n_heads: int) -> torch.Tensor:
    # [head * d_head, d_model] -> [head, d_head, d_model]
    return weight_in_out.reshape(n_heads, -1, weight_in_out.shape[-1])


class GPT2Adapter(Adapter):
    """GPT-2 (and our bundled model): learned positions, LayerNorm, Conv1D weights stored [in, out]."""

    arch = "gpt2"
    target_roles = {
        "attn_qkv": ("attn.c_attn",),
        "attn_out": ("attn.c_proj",),
        "mlp_in": ("mlp.c_fc",),
        "mlp_out": ("mlp.c_proj",),
    }

    def blocks(self):
        return self.model.transformer.h

    def block_modules(self, layer):
        b = self.blocks()[layer]
        return BlockModules(b, b.attn, b.mlp, b.mlp.c_fc, b.mlp.c_proj)

    def embed(self):
        return self.model.transformer.wte

    def pos_embed(self):
        return self.model.transformer.wpe

    def ln_final(self):
        return self.model.transformer.ln_f

    def config(self):
        c = self.model.config
        return ModelConfig(
            n_layers=c.n_layer, n_heads=c.n_head, d_model=c.n_embd, d_head=c.n_embd // c.n_head,
            d_mlp=c.n_inner or 4 * c.n_embd, d_vocab=c.vocab_size, n_ctx=c.n_positions,
            arch=self.arch, n_kv_heads=c.n_head, positional="learned", normalization="layernorm",
            act_fn=c.activation_function, parallel_attn_mlp=False,
            n_params=_count_params(self.model),
        )

    def attention_weights(self, layer, cfg):
        attn = self.blocks()[layer].attn
        W, b = attn.c_attn.weight, attn.c_attn.bias  # [d_model, 3 * d_model], Conv1D: x @ W + b
        W_Q, W_K, W_V = (_split_heads_in(w, cfg.n_heads) for w in W.split(cfg.d_model, dim=1))
        b_Q, b_K, b_V = (x.reshape(cfg.n_heads, cfg.d_head) for x in b.split(cfg.d_model))
        W_O = _split_heads_out(attn.c_proj.weight, cfg.n_heads)
        return AttentionWeights(W_Q, W_K, W_V, W_O, b_Q, b_K, b_V, attn.c_proj.bias)


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
        return BlockModules(b, b.attention, b.mlp, b.mlp.dense_h_to_4h, b.mlp.dense_4h_to_h)

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
            n_params=_count_params(self.model),
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
        W_O = _split_heads_out(attn.dense.weight.T, cfg.n_heads)
        return AttentionWeights(W_Q, W_K, W_V, W_O, b_Q, b_K, b_V, attn.dense.bias)


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
        return BlockModules(b, b.self_attn, b.mlp, b.mlp.gate_proj, b.mlp.down_proj)

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
            n_params=_count_params(self.model),
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

        W_O = _split_heads_out(attn.o_proj.weight.T, cfg.n_heads)
        return AttentionWeights(
            per_head(attn.q_proj, cfg.n_heads), per_head(attn.k_proj, cfg.n_heads // n_rep),
            per_head(attn.v_proj, cfg.n_heads // n_rep), W_O,
            bias(attn.q_proj, cfg.n_heads), bias(attn.k_proj, cfg.n_kv_heads),
            bias(attn.v_proj, cfg.n_kv_heads), attn.o_proj.bias,
        )


ADAPTERS: dict[str, type[Adapter]] = {
    "gpt2": GPT2Adapter,
    "gpt_neox": NeoXAdapter,
    "llama": LlamaAdapter,
}
SUPPORTED = tuple(ADAPTERS)


def adapter_for(model: nn.Module) -> Adapter:
    model_type = model.config.model_type
    if model_type not in ADAPTERS:
        raise ValueError(
            f"Architecture {model_type!r} is not supported yet; supported families: "
            f"{', '.join(SUPPORTED)} (GPT-2, Pythia, Llama/SmolLM)."
        )
    return ADAPTERS[model_type](model)
