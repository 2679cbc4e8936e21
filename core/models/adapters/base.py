"""Base of the architecture adapters: where each hook point lives in a Hugging Face module tree.

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
    ln1: nn.Module  # the norm before attention
    ln2: nn.Module  # the norm before the MLP
    attn_core: nn.Module | None = None  # the module our attention function receives, if not attn


class Adapter:
    """Base class; subclasses fill in the module paths of one family."""

    arch = ""
    attn_implementation = "lab_hooked"  # see core.models.hooked_attention
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

    def install_attention(self) -> None:
        """Families whose attention does not dispatch through transformers' interface patch it here."""

    # -- weights --------------------------------------------------------------------------------
    def attention_weights(self, layer: int, cfg: ModelConfig) -> AttentionWeights:
        raise NotImplementedError


def split_heads_in(weight_in_out: torch.Tensor, n_heads: int) -> torch.Tensor:
    # [d_model, head * d_head] -> [head, d_model, d_head]
    d_model = weight_in_out.shape[0]
    return weight_in_out.reshape(d_model, n_heads, -1).permute(1, 0, 2)


def split_heads_out(weight_in_out: torch.Tensor, n_heads: int) -> torch.Tensor:
    # [head * d_head, d_model] -> [head, d_head, d_model]
    return weight_in_out.reshape(n_heads, -1, weight_in_out.shape[-1])
